//! A shard: the public handle of the embedded engine.
//!
//! ```
//! use vecshard_engine::{Filter, Metric, Options, Point, SearchRequest, Shard, ShardSpec, Value};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let shard = Shard::create(dir.path().to_str().unwrap(), ShardSpec::new(3, Metric::L2), Options::default())?;
//! shard.upsert(vec![
//!     Point::new(1u64, vec![0.0, 0.0, 1.0]).with("color", Value::Str("red".into())),
//!     Point::new("b", vec![0.0, 1.0, 0.0]).with("color", Value::Str("blue".into())),
//! ])?;
//! let mut req = SearchRequest::new(vec![0.0, 0.1, 0.9], 10);
//! req.filter = Some(Filter::parse_str(r#"{"field": "color", "eq": "red"}"#)?);
//! let hits = shard.search(&req)?;
//! assert_eq!(hits.len(), 1);
//! assert_eq!(hits[0].key, 1u64.into());
//! shard.close()?;
//! # Ok::<(), vecshard_engine::Error>(())
//! ```

mod checkpoint;
mod commit;
mod compact;
mod count;
mod flush;
mod gc;
mod maintain;
mod open;
mod policy;
mod pool;
mod read;
mod recover;
mod refresh;
mod restore;
mod view;
mod write;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::commit::CommitStore;
use crate::error::{Error, ErrorKind, Result};
use crate::filter::Filter;
use crate::manifest::Manifest;
use crate::memtable::Memtable;
use crate::options::{Options, ShardSpec};
use crate::pk_index::PkIndex;
use crate::storage::{LockGuard, Storage};
use crate::types::{Hit, Key, Point, SearchRequest};
use crate::wal::WalWriter;
use view::View;

pub use checkpoint::CheckpointSummary;
pub use recover::{WalLoss, WalRepair};
pub use restore::{RestoreSummary, restore_checkpoint};
pub use write::Replicated;

/// A handle to one open shard. Cheap to clone; all clones share the shard. Thread-safe:
/// concurrent writers share WAL syncs (group commit) and searches never wait for writes.
#[derive(Clone)]
pub struct Shard {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("location", &self.inner.storage.location())
            .finish()
    }
}

/// Counters and sizes of a shard.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Points that a get or scan would return.
    pub live_points: u64,
    /// Immutable segments.
    pub segments: u64,
    /// Rows in memtables (active and waiting for flush).
    pub memtable_rows: u64,
    /// Bytes of segment files.
    pub segment_bytes: u64,
    /// Bytes of live WAL units.
    pub wal_bytes: u64,
    /// Current manifest version.
    pub manifest_version: u64,
    /// The writer epoch this handle holds (or last saw, read-only).
    pub epoch: u64,
    /// Highest sequence number visible to searches.
    pub visible_seq: u64,
    /// Highest sequence number stored in segments.
    pub flushed_seq: u64,
    /// Flushes and compactions done by this handle.
    pub flushes: u64,
    /// Compactions done by this handle.
    pub compactions: u64,
    /// Whether a compaction (a policy, idle or requested merge) is running now.
    pub merging: bool,
    /// Whether the handle is read-only.
    pub read_only: bool,
    /// `open`, `closed`, `fenced` or `failed`.
    pub state: &'static str,
    /// Memory block cache hits.
    pub cache_memory_hits: u64,
    /// On-disk cache hits.
    pub cache_disk_hits: u64,
    /// Reads that went to the backend.
    pub cache_misses: u64,
    /// Bytes fetched from the backend by this handle.
    pub bytes_fetched: u64,
    /// Requests to the backend that fetched them.
    pub cache_requests: u64,
    /// Bytes the memory block cache holds now (bounded by `block_cache_bytes`).
    pub cache_resident_bytes: u64,
    /// Segments read in blocks on demand (format 2 on an object store); the others are
    /// mapped or held whole.
    pub lazy_segments: u64,
}

/// A write in progress (see `Inner::writing`): when it ends, the idle clock restarts.
struct Writing<'a>(&'a Inner);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let ms = self.0.opened.elapsed().as_millis() as u64;
        self.0.last_write_ms.fetch_max(ms, Ordering::AcqRel);
        self.0.writes_running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Opens refuse a damaged WAL.
const STRICT: recover::Recovery = recover::Recovery::Strict;

const OPEN: u8 = 0;
const CLOSED: u8 = 1;
const FENCED: u8 = 2;
const FAILED: u8 = 3;

/// The view and the sequence number searches read together.
struct Current {
    view: Arc<View>,
    seq: u64,
}

struct CommitState {
    next_seq: u64,
    active: Arc<Memtable>,
    frozen: VecDeque<Arc<Memtable>>,
}

struct ManifestState {
    version: u64,
    manifest: Manifest,
}

/// Wakes the background thread.
#[derive(Default)]
struct BgSignal {
    state: Mutex<BgState>,
    cv: Condvar,
}

#[derive(Default)]
struct BgState {
    work: bool,
    shutdown: bool,
}

struct Inner {
    storage: Arc<dyn Storage>,
    commits: Arc<dyn CommitStore>,
    spec: ShardSpec,
    opts: Options,
    read_only: bool,
    /// The writer lock; released by `close`.
    lock: Mutex<Option<Box<dyn LockGuard>>>,
    current: RwLock<Current>,
    commit: Mutex<CommitState>,
    /// Signalled when a frozen memtable is flushed (writers waiting for room).
    room: Condvar,
    wal: OnceLock<WalWriter>,
    /// Highest published sequence number; publishes happen in sequence order.
    published: Mutex<u64>,
    published_cv: Condvar,
    pk: RwLock<PkIndex>,
    /// What a reader's key index is built from on first use ([`Inner::keys`]); set (and
    /// `pk` empty) from a read-only open or refresh until then. `keys_pending` tells
    /// whether it is set; both change under its lock.
    pending_keys: Mutex<Option<open::PendingKeys>>,
    keys_pending: std::sync::atomic::AtomicBool,
    manifest: Mutex<ManifestState>,
    flush_lock: Mutex<()>,
    compact_lock: Mutex<()>,
    next_container: AtomicU32,
    next_segment: AtomicU64,
    epoch: AtomicU64,
    /// Current manifest version and its `flushed_seq`, readable without the manifest lock
    /// (which is held across a commit's I/O).
    manifest_version: AtomicU64,
    flushed_seq: AtomicU64,
    status: AtomicU8,
    failure: Mutex<Option<Error>>,
    bg: Arc<BgSignal>,
    bg_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    flushes: AtomicU64,
    compactions: AtomicU64,
    /// Set while a compaction runs (for `Stats::merging`).
    merging: std::sync::atomic::AtomicBool,
    /// When the handle opened, when the last write since then ended (ms after `opened`),
    /// and how many run now: the idle merge waits for `Options::idle_merge_after` without
    /// writes.
    opened: std::time::Instant,
    last_write_ms: AtomicU64,
    writes_running: std::sync::atomic::AtomicUsize,
    /// Segment files running checkpoints still copy (kept from garbage collection).
    pins: Mutex<checkpoint::Pins>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let mut st = self.bg.state.lock();
        st.shutdown = true;
        self.bg.cv.notify_all();
    }
}

impl Inner {
    /// The primary-key index, built first when a read-only open or refresh left it to the
    /// first use.
    fn keys(&self) -> Result<parking_lot::RwLockReadGuard<'_, PkIndex>> {
        loop {
            let pk = self.pk.read();
            if !self.keys_pending.load(Ordering::Acquire) {
                return Ok(pk);
            }
            drop(pk);
            let mut pending = self.pending_keys.lock();
            if let Some(keys) = pending.as_ref() {
                // A failed read leaves it pending, for the next call.
                let built = keys.build()?;
                *pending = None;
                *self.pk.write() = built;
                self.keys_pending.store(false, Ordering::Release);
            }
        }
    }

    /// Live points: the key index's length, or what a pending one will hold.
    fn live_points(&self) -> u64 {
        if self.keys_pending.load(Ordering::Acquire)
            && let Some(keys) = self.pending_keys.lock().as_ref()
        {
            return keys.live;
        }
        self.pk.read().len() as u64
    }

    fn snapshot(&self) -> (Arc<View>, u64) {
        let c = self.current.read();
        (c.view.clone(), c.seq)
    }

    /// The error a write gets in the current state, if any.
    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::read_only());
        }
        self.check_open()
    }

    fn check_open(&self) -> Result<()> {
        match self.status.load(Ordering::Acquire) {
            OPEN => Ok(()),
            CLOSED => Err(Error::closed()),
            _ => Err(self.failure.lock().clone().unwrap_or_else(Error::closed)),
        }
    }

    /// Stop taking writes for good: `Fenced` when another writer took over, `Failed` on an
    /// error that leaves the WAL or manifest in an unknown state.
    fn fail(&self, err: &Error) {
        let status = if err.kind() == ErrorKind::Fenced {
            FENCED
        } else {
            FAILED
        };
        {
            let mut f = self.failure.lock();
            if f.is_none() {
                *f = Some(err.clone());
            }
        }
        let _ = self
            .status
            .compare_exchange(OPEN, status, Ordering::AcqRel, Ordering::Acquire);
        tracing::error!(location = self.storage.location(), error = %err, "shard stops taking writes");
        // Wake everyone waiting on a publish or for room; they re-check the status.
        drop(self.published.lock());
        self.published_cv.notify_all();
        drop(self.commit.lock());
        self.room.notify_all();
    }

    fn status_name(&self) -> &'static str {
        match self.status.load(Ordering::Acquire) {
            OPEN => "open",
            CLOSED => "closed",
            FENCED => "fenced",
            _ => "failed",
        }
    }

    /// Count a write as running until the guard drops (for the idle merge).
    fn writing(&self) -> Writing<'_> {
        self.writes_running.fetch_add(1, Ordering::AcqRel);
        Writing(self)
    }

    /// How long no write has run (since the open if none did; zero while one runs).
    fn idle_for(&self) -> std::time::Duration {
        if self.writes_running.load(Ordering::Acquire) > 0 {
            return std::time::Duration::ZERO;
        }
        let last = std::time::Duration::from_millis(self.last_write_ms.load(Ordering::Acquire));
        self.opened.elapsed().saturating_sub(last)
    }

    fn wake_background(&self) {
        let mut st = self.bg.state.lock();
        st.work = true;
        self.bg.cv.notify_all();
    }
}

impl Shard {
    /// Create a new shard at `location` (a directory, or with the `object-store` feature an
    /// object-store URL). Fails with `AlreadyExists` if a shard is there.
    pub fn create(location: &str, spec: ShardSpec, opts: Options) -> Result<Shard> {
        open::open(location, Some(spec), open::Mode::Create, opts, STRICT).map(|(s, _)| s)
    }

    /// Open an existing shard; its dimension and metric come from its manifest.
    pub fn open(location: &str, opts: Options) -> Result<Shard> {
        open::open(location, None, open::Mode::Open, opts, STRICT).map(|(s, _)| s)
    }

    /// Open an existing shard for writing, keeping every WAL record before the first
    /// damaged one and **dropping everything after it** where a plain [`Shard::open`]
    /// fails with `Corrupt`: the rest of the damaged file and every later WAL file. The
    /// operator's escape hatch when no intact copy of the WAL exists.
    ///
    /// The loss is logged (ERROR), returned file by file, and made durable before this
    /// returns (the kept records are flushed and the manifest moves past the dropped
    /// files), so later opens succeed. With an intact WAL it is a plain open (plus a
    /// flush) and the report is empty.
    pub fn open_accepting_wal_loss(location: &str, opts: Options) -> Result<(Shard, WalRepair)> {
        let recovery = recover::Recovery::AcceptWalLoss;
        open::open(location, None, open::Mode::Open, opts, recovery)
    }

    /// Open the shard at `location`, creating it with `spec` if there is none. An existing
    /// shard with another dimension or metric is an `InvalidArgument` error.
    pub fn open_or_create(location: &str, spec: ShardSpec, opts: Options) -> Result<Shard> {
        open::open(location, Some(spec), open::Mode::OpenOrCreate, opts, STRICT).map(|(s, _)| s)
    }

    /// Open a shard on a storage (and optionally a commit store) built by the caller: a
    /// wrapped store for fault injection, a store shared with other code. With `spec` the
    /// shard is created if missing (as [`Shard::open_or_create`]).
    pub fn open_with(
        storage: Arc<dyn Storage>,
        commits: Option<Arc<dyn CommitStore>>,
        spec: Option<ShardSpec>,
        opts: Options,
    ) -> Result<Shard> {
        let commits = commits
            .unwrap_or_else(|| Arc::new(crate::commit::StorageCommitStore::new(storage.clone())));
        let mode = if spec.is_some() {
            open::Mode::OpenOrCreate
        } else {
            open::Mode::Open
        };
        open::open_on(storage, commits, spec, mode, opts, STRICT).map(|(s, _)| s)
    }

    /// The shard's dimension, metric and index parameters.
    pub fn spec(&self) -> ShardSpec {
        self.inner.spec
    }

    /// Whether a read of the current data may wait on remote storage: some segment is
    /// read lazily from an object store, so a search, get or scan can miss the caches and
    /// wait for requests (seconds on a slow or failing store), however narrow it is. Such
    /// a read does not belong on a thread that also serves other work (an async
    /// runtime's); mapped, local and whole-downloaded segments never wait.
    pub fn reads_may_wait(&self) -> bool {
        self.inner.snapshot().0.segments().any(|s| s.is_lazy())
    }

    /// Where the shard lives.
    pub fn location(&self) -> &str {
        self.inner.storage.location()
    }

    /// Insert or replace points (by key). Returns once the batch is durable and visible; the
    /// value is the batch's last sequence number.
    pub fn upsert(&self, points: Vec<Point>) -> Result<u64> {
        self.inner.upsert(points)
    }

    /// Delete points by key (missing keys are fine). Returns once durable and visible.
    pub fn delete(&self, keys: Vec<Key>) -> Result<u64> {
        self.inner.delete(keys)
    }

    /// A follower of a replicated shard applies a write its primary sequenced from
    /// `first_seq` (`docs/design/014-replication.md`): the same checks and the same path as
    /// a local write (WAL with group commit, memtable, publish in order), but with the
    /// primary's sequence numbers, so the follower's log is the primary's. `first_seq`
    /// must be [`Shard::next_seq`]: a gap or a repeat is `InvalidArgument` naming both and
    /// changes nothing. Returns the batch's last sequence number once it is durable and
    /// visible. Epochs (who may send frames) are the caller's business.
    pub fn apply_replicated(&self, first_seq: u64, write: Replicated) -> Result<u64> {
        self.inner.apply_replicated(first_seq, write)
    }

    /// The sequence number the next write takes (one past the last assigned).
    pub fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }

    /// The point stored under `key`.
    pub fn get(&self, key: &Key) -> Result<Option<Point>> {
        self.inner.get(key)
    }

    /// Up to `limit` live points with keys after `after` (all keys when `None`), in key
    /// order (integer keys first). Page through a shard by passing the last key back.
    pub fn scan(&self, after: Option<&Key>, limit: usize) -> Result<Vec<Point>> {
        self.inner.scan(after, limit)
    }

    /// The `k` nearest live points to the request's vector, best first, ties by key.
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<Hit>> {
        self.inner.search(req, read::Plan::Shared)
    }

    /// [`Shard::search`] with every segment and memtable walked on its own with the full
    /// `ef` and the lists merged, instead of sharing the k-th best distance and `ef`
    /// across them: the path before issue 14, kept so benches and tests can compare the
    /// two on the same shard. Exact, filtered and deletion-aware like `search`.
    #[doc(hidden)]
    pub fn search_separately(&self, req: &SearchRequest) -> Result<Vec<Hit>> {
        self.inner.search(req, read::Plan::Separate)
    }

    /// How many live points match `filter` (all live points when `None`), counted from
    /// the segments' filter indexes and the memtable without reading any vector.
    pub fn count(&self, filter: Option<&Filter>) -> Result<u64> {
        self.inner.count(filter)
    }

    /// Write every memtable to a segment now and wait for it.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    /// Merge all segments into one, dropping deleted and superseded points. Runs on the
    /// background pool (see [`crate::Options::background_threads`]); the caller waits for it.
    pub fn compact(&self) -> Result<()> {
        let inner = &self.inner;
        pool::run(inner.opts.background_threads, || {
            inner.compact(true).map(|_| ())
        })
    }

    /// Run one round of the merge policy now, as the background thread does after a
    /// flush: merge the segments the policy picks (see `engine/src/shard/policy.rs`), if
    /// any. Returns whether it merged; call again until `false` to settle.
    pub fn compact_by_policy(&self) -> Result<bool> {
        let inner = &self.inner;
        pool::run(inner.opts.background_threads, || inner.compact(false))
    }

    /// Write a consistent point-in-time copy of the shard to `dest` (a directory or an
    /// object-store URL where no shard is); opening `dest` restores it as a shard of its
    /// own. A writer flushes first, so the copy holds every write acknowledged before this
    /// call (and maybe some during it, whole batches only); a read-only handle copies what
    /// its manifest covers. Writes, flushes and compactions go on meanwhile; the files the
    /// copy needs are kept from garbage collection until it ends. Files are hard-linked on
    /// one local file system and copied server-side within one object store. The manifest
    /// is written last: a location without it does not open.
    /// See `docs/design/007-checkpoints.md`.
    pub fn checkpoint(&self, dest: &str) -> Result<CheckpointSummary> {
        self.inner.checkpoint(dest)
    }

    /// Read-only handles: load a newer manifest if there is one (`true` if it moved).
    /// Writers: a no-op returning `false`.
    pub fn refresh(&self) -> Result<bool> {
        self.inner.refresh()
    }

    /// Sizes and counters.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Flush (writers) and stop background work. Later calls on any clone fail with
    /// `Closed`.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }
}
