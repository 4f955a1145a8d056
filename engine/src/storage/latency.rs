//! [`LatencyStorage`]: any [`Storage`] made to answer like a distant object store, so cold
//! numbers measured against a local S3 server (or a local directory) mean something.
//!
//! Every request that reaches the backend waits a first-byte latency, then its bytes at a
//! bandwidth limit: `latency + len / bandwidth`, per request (S3 serves parallel requests in
//! parallel, so concurrent requests wait side by side, not in a queue). What the backend's
//! own caches serve (the memory block cache, the disk cache) costs nothing: a ranged read
//! or a `map` is charged only when the backend's counters ([`Storage::cache_stats`]) show
//! that it fetched something, and then for the bytes it fetched. Under concurrent reads a
//! cache hit may be charged for a neighbour's miss in the same instant: the injector errs
//! on the slow side.
//!
//! | request | charge |
//! | --- | --- |
//! | `get`, `put`, `put_if_absent` | latency + bytes / bandwidth |
//! | `get_range`, `map` | the same when the backend fetched (its bytes), else nothing |
//! | `list`, `delete`, server-side `copy_from` | latency |
//! | appends (local WAL files), lock | nothing: object stores have neither |

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::{AppendFile, Blob, CacheStats, Fetched, LockGuard, NativeFile, ObjectInfo, Storage};
use crate::error::Result;

/// How slow the injected store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    /// Wait before the first byte of every request (S3 in the same region: 10–30 ms).
    pub first_byte: Duration,
    /// Bytes per second of one request's body; `None`: unlimited. One S3 GET streams
    /// about 50–100 MB/s.
    pub bytes_per_sec: Option<u64>,
}

impl Latency {
    /// `first_byte_ms` of latency and `mb_per_sec` megabytes (10^6) per second per request
    /// (`0`: unlimited).
    pub fn new(first_byte_ms: u64, mb_per_sec: u64) -> Latency {
        Latency {
            first_byte: Duration::from_millis(first_byte_ms),
            bytes_per_sec: (mb_per_sec > 0).then(|| mb_per_sec * 1_000_000),
        }
    }

    /// What one request moving `bytes` costs.
    pub fn cost(&self, bytes: u64) -> Duration {
        let transfer = match self.bytes_per_sec {
            Some(bps) => Duration::from_secs_f64(bytes as f64 / bps as f64),
            None => Duration::ZERO,
        };
        self.first_byte + transfer
    }
}

/// How the injector waits: the real thread sleep, or a test's recorder.
pub type Delay = Arc<dyn Fn(Duration) + Send + Sync>;

/// Requests charged and time injected so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Injected {
    /// Requests that were charged.
    pub requests: u64,
    /// Bytes those requests moved.
    pub bytes: u64,
    /// Total wait injected, over all threads.
    pub delay: Duration,
}

/// A [`Storage`] that delays every backend request (see the module docs).
pub struct LatencyStorage {
    inner: Arc<dyn Storage>,
    latency: Latency,
    delay: Delay,
    requests: AtomicU64,
    bytes: AtomicU64,
    delay_ns: AtomicU64,
}

impl fmt::Debug for LatencyStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyStorage")
            .field("inner", &self.inner)
            .field("latency", &self.latency)
            .finish()
    }
}

impl LatencyStorage {
    /// Wrap `inner`; waits are real sleeps of the calling thread.
    pub fn new(inner: Arc<dyn Storage>, latency: Latency) -> LatencyStorage {
        LatencyStorage {
            inner,
            latency,
            delay: Arc::new(std::thread::sleep),
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            delay_ns: AtomicU64::new(0),
        }
    }

    /// Wait through `delay` instead of sleeping (tests record the waits).
    pub fn with_delay(mut self, delay: Delay) -> LatencyStorage {
        self.delay = delay;
        self
    }

    /// The injected latency.
    pub fn latency(&self) -> Latency {
        self.latency
    }

    /// What has been charged so far.
    pub fn injected(&self) -> Injected {
        Injected {
            requests: self.requests.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            delay: Duration::from_nanos(self.delay_ns.load(Ordering::Relaxed)),
        }
    }

    fn charge(&self, bytes: u64) {
        let d = self.latency.cost(bytes);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.delay_ns.fetch_add(ns, Ordering::Relaxed);
        if !d.is_zero() {
            (self.delay)(d);
        }
    }

    /// Charge one round of `ranges` ranges that returned `len` bytes, by what the inner
    /// storage counted since `before` (nothing when its caches served every range).
    fn charge_ranges(&self, before: CacheStats, ranges: usize, len: u64) {
        let after = self.inner.cache_stats();
        let requests = after.requests.saturating_sub(before.requests);
        let fetched = after.bytes_fetched.saturating_sub(before.bytes_fetched);
        let hits = (after.memory_hits + after.disk_hits)
            .saturating_sub(before.memory_hits + before.disk_hits);
        match (requests, hits) {
            (0, h) if h > 0 || len == 0 => {}
            // No counters (local disk): every range was a request.
            (0, _) => self.charge_round(ranges as u64, len),
            (r, _) => self.charge_round(r, fetched),
        }
    }

    /// `requests` issued side by side moving `bytes` in all: one wait, as long as the
    /// largest request's (the bytes spread evenly), `requests` counted.
    fn charge_round(&self, requests: u64, bytes: u64) {
        let d = self.latency.cost(bytes / requests.max(1));
        self.requests.fetch_add(requests, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.delay_ns.fetch_add(ns, Ordering::Relaxed);
        if !d.is_zero() {
            (self.delay)(d);
        }
    }

    /// A read the backend may serve from its caches: charged when its counters moved past
    /// a pure cache hit. A backend without counters (local disk) is always charged.
    fn charge_read(&self, before: CacheStats, len: u64) {
        let after = self.inner.cache_stats();
        let fetched = after.bytes_fetched.saturating_sub(before.bytes_fetched);
        let misses = after.misses.saturating_sub(before.misses);
        let hits = (after.memory_hits + after.disk_hits)
            .saturating_sub(before.memory_hits + before.disk_hits);
        match (misses, fetched, hits) {
            (0, 0, h) if h > 0 => {}
            (_, 0, _) => self.charge(len),
            (_, f, _) => self.charge(f),
        }
    }
}

impl Storage for LatencyStorage {
    fn location(&self) -> &str {
        self.inner.location()
    }

    fn get(&self, path: &str) -> Result<Bytes> {
        let got = self.inner.get(path);
        self.charge(got.as_ref().map_or(0, |b| b.len() as u64));
        got
    }

    fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes> {
        let before = self.inner.cache_stats();
        let got = self.inner.get_range(path, range)?;
        if !got.is_empty() {
            self.charge_read(before, got.len() as u64);
        }
        Ok(got)
    }

    /// One round of parallel requests: charged once, as the largest of them would cost
    /// (the fetched bytes spread evenly over the requests the backend counted).
    fn get_ranges(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let got = self.get_blocks(path, ranges)?;
        Ok(got.into_iter().map(|f| f.bytes).collect())
    }

    fn get_ranges_uncached(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let before = self.inner.cache_stats();
        let got = self.inner.get_ranges_uncached(path, ranges)?;
        let len: u64 = got.iter().map(|b| b.len() as u64).sum();
        self.charge_ranges(before, ranges.len(), len);
        Ok(got)
    }

    fn get_blocks(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Fetched>> {
        let before = self.inner.cache_stats();
        let got = self.inner.get_blocks(path, ranges)?;
        let len: u64 = got.iter().map(|f| f.bytes.len() as u64).sum();
        self.charge_ranges(before, ranges.len(), len);
        Ok(got)
    }

    fn reads_in_blocks(&self) -> bool {
        self.inner.reads_in_blocks()
    }

    fn warm(&self, path: &str, ranges: &[Range<u64>], keep_going: &dyn Fn() -> bool) -> Result<()> {
        let before = self.inner.cache_stats();
        self.inner.warm(path, ranges, keep_going)?;
        let after = self.inner.cache_stats();
        let requests = after.requests.saturating_sub(before.requests);
        let fetched = after.bytes_fetched.saturating_sub(before.bytes_fetched);
        if requests > 0 {
            self.charge_round(requests, fetched);
        }
        Ok(())
    }

    fn map(&self, path: &str) -> Result<Blob> {
        let before = self.inner.cache_stats();
        let got = self.inner.map(path)?;
        self.charge_read(before, got.len() as u64);
        Ok(got)
    }

    fn put(&self, path: &str, data: Bytes) -> Result<()> {
        self.charge(data.len() as u64);
        self.inner.put(path, data)
    }

    fn put_if_absent(&self, path: &str, data: Bytes) -> Result<bool> {
        self.charge(data.len() as u64);
        self.inner.put_if_absent(path, data)
    }

    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        self.charge(0);
        self.inner.list(dir)
    }

    fn delete(&self, path: &str) -> Result<()> {
        self.charge(0);
        self.inner.delete(path)
    }

    fn supports_append(&self) -> bool {
        self.inner.supports_append()
    }

    fn create_append(&self, path: &str) -> Result<Box<dyn AppendFile>> {
        self.inner.create_append(path)
    }

    fn lock_exclusive(&self) -> Result<Option<Box<dyn LockGuard>>> {
        self.inner.lock_exclusive()
    }

    fn native(&self, path: &str) -> Option<NativeFile> {
        self.inner.native(path)
    }

    /// The backend's copy (server-side where it has one), charged as one request; the
    /// bytes of a copy through this process are charged to the source's reads only.
    fn copy_from(&self, src: &dyn Storage, path: &str) -> Result<bool> {
        self.charge(0);
        self.inner.copy_from(src, path)
    }

    fn cache_stats(&self) -> CacheStats {
        self.inner.cache_stats()
    }

    fn count_memory_hits(&self, n: u64) {
        self.inner.count_memory_hits(n);
    }

    fn cache_resident_bytes(&self) -> u64 {
        self.inner.cache_resident_bytes()
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;
    use crate::storage::LocalStorage;

    fn recorded(
        inner: Arc<dyn Storage>,
        latency: Latency,
    ) -> (LatencyStorage, Arc<Mutex<Vec<Duration>>>) {
        let waits = Arc::new(Mutex::new(Vec::new()));
        let log = waits.clone();
        let s =
            LatencyStorage::new(inner, latency).with_delay(Arc::new(move |d| log.lock().push(d)));
        (s, waits)
    }

    #[test]
    fn conforms_and_charges_every_request() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()).unwrap());
        let (s, waits) = recorded(local, Latency::new(25, 100));
        crate::storage::conformance::run(&s);
        let injected = s.injected();
        assert!(injected.requests > 20, "{injected:?}");
        assert_eq!(waits.lock().len() as u64, injected.requests);
        let total: Duration = waits.lock().iter().sum();
        assert_eq!(total, injected.delay);
        assert!(waits.lock().iter().all(|d| *d >= Duration::from_millis(25)));
    }

    #[test]
    fn cost_is_latency_plus_bytes_over_bandwidth() {
        let l = Latency::new(25, 100);
        assert_eq!(l.cost(0), Duration::from_millis(25));
        assert_eq!(l.cost(100_000_000), Duration::from_millis(1_025));
        assert_eq!(Latency::new(0, 0).cost(1 << 30), Duration::ZERO);
    }

    #[test]
    fn reads_are_charged_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()).unwrap());
        local.put("f", Bytes::from(vec![7u8; 2_000_000])).unwrap();
        let (s, waits) = recorded(local, Latency::new(10, 100));
        assert_eq!(s.map("f").unwrap().len(), 2_000_000);
        assert_eq!(s.get_range("f", 0..1_000_000).unwrap().len(), 1_000_000);
        assert!(s.get_range("f", 5..5).unwrap().is_empty());
        assert_eq!(
            *waits.lock(),
            vec![Duration::from_millis(30), Duration::from_millis(20)],
            "map: 10 ms + 2 MB at 100 MB/s; 1 MB range: 10 ms + 10 ms; empty range: free"
        );
        assert_eq!(s.injected().bytes, 3_000_000);
    }

    #[test]
    fn real_sleeps_take_at_least_the_latency() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()).unwrap());
        let s = LatencyStorage::new(local, Latency::new(20, 0));
        let t = std::time::Instant::now();
        assert!(s.list("").unwrap().is_empty());
        assert!(t.elapsed() >= Duration::from_millis(20));
    }
}
