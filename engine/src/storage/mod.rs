//! Where a shard's files live. Every byte the engine reads or writes goes through the
//! [`Storage`] trait; paths are relative keys built in [`crate::paths`].
//!
//! Implementations: [`LocalStorage`] (a directory on local disk, mmap, append-only WAL
//! files, an exclusive `LOCK`) and, with the `object-store` feature, object stores
//! (S3-compatible, `file://`, `memory://`); [`LatencyStorage`] wraps any of them with an
//! injected first-byte latency and bandwidth limit. [`conformance`] is the behaviour every
//! implementation must show; each backend's tests run it.

pub mod conformance;
mod latency;
mod local;
#[cfg(feature = "object-store")]
mod object;
mod open;
mod options;
mod probe;

use std::fmt::Debug;
use std::ops::{Deref, Range};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use bytes::Bytes;

use crate::error::Result;

pub use latency::{Delay, Injected, Latency, LatencyStorage};
pub use local::LocalStorage;
#[cfg(feature = "object-store")]
pub use object::{BlockCache, DiskCache, ObjectStorage, ObjectStorageBuilder};
#[cfg(feature = "dynamodb")]
pub(crate) use object::{retry, runtime};
#[cfg(feature = "object-store")]
pub use object_store;
pub use open::{open_commit_store, open_storage};
pub use options::{RetrySettings, StorageOptions};
pub use probe::check_conditional_create;

/// One stored file or object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Relative path, e.g. `segments/00000000000000000007`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// An append-only file (local WAL segments).
pub trait AppendFile: Send {
    /// Append bytes at the end (buffered by the OS until [`AppendFile::sync`]).
    fn append(&mut self, data: &[u8]) -> Result<()>;
    /// Make everything appended so far durable (fdatasync).
    fn sync(&mut self) -> Result<()>;
}

/// Bytes of a whole file: memory-mapped locally, fetched (or cached) for remote stores.
#[derive(Clone)]
pub enum Blob {
    /// A read-only memory map.
    Mapped(Arc<memmap2::Mmap>),
    /// Bytes in memory.
    Owned(Bytes),
}

impl Deref for Blob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Blob::Mapped(m) => m,
            Blob::Owned(b) => b,
        }
    }
}

impl Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blob::Mapped(m) => write!(f, "Blob::Mapped({} bytes)", m.len()),
            Blob::Owned(b) => write!(f, "Blob::Owned({} bytes)", b.len()),
        }
    }
}

/// Where a file lives natively, so a storage of the same kind can copy it without the
/// bytes passing through this process ([`Storage::copy_from`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeFile {
    /// A file on local disk (can be hard-linked).
    Local(PathBuf),
    /// An object: `store` names the store (`s3://bucket`), `key` is the full key.
    Object {
        /// The store, without the prefix (`s3://bucket`, `memory://name`).
        store: String,
        /// The object's full key in that store.
        key: String,
    },
}

/// Copy `path` of `src` to `dst` by reading it whole and writing it (durably).
pub(crate) fn stream_copy<S: Storage + ?Sized>(
    dst: &S,
    src: &dyn Storage,
    path: &str,
) -> Result<()> {
    dst.put(path, src.get(path)?)
}

/// One range read by [`Storage::get_blocks`].
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The bytes.
    pub bytes: Bytes,
    /// When the range is exactly one block of the backend's memory cache: that cached
    /// copy's check mark. A reader that verified the bytes (a checksum) sets it, and later
    /// readers of the same copy may skip the check; a copy fetched again after eviction
    /// comes with a new, unset mark. `None`: check every time.
    pub checked: Option<Arc<AtomicBool>>,
    /// When the range is one block (or the start of one) the backend's memory cache holds: a handle that
    /// lets a reader keep the same bytes in a table of its own for as long as the cache
    /// keeps them ([`Resident::watch`]), so the cache's bound still counts them.
    pub resident: Option<Resident>,
}

/// What to call when a cached block leaves its cache.
type OnEvict = Box<dyn FnOnce() + Send>;

/// A block as long as a memory cache holds it: [`Resident::watch`] registers a call made
/// when the cache evicts or drops it (at once, after the cache's locks are released).
/// A reader that keeps the block's bytes in a table of its own registers the removal
/// from that table, so the bytes live no longer than the cache holds them.
#[derive(Clone, Default)]
pub struct Resident(Arc<parking_lot::Mutex<Option<Vec<OnEvict>>>>);

impl Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Resident(cached: {})", self.is_cached())
    }
}

impl Resident {
    /// A block just put in a cache (a backend with a memory cache makes one per cached
    /// block and calls [`Resident::evicted`] when it drops the block).
    pub fn cached() -> Resident {
        Resident(Arc::new(parking_lot::Mutex::new(Some(Vec::new()))))
    }

    /// Whether the cache still holds the block.
    pub fn is_cached(&self) -> bool {
        self.0.lock().is_some()
    }

    /// Call `on_evict` when the cache drops the block; `false` (and no call) when it
    /// already has. The call runs on the thread that evicts, holding no cache lock, so
    /// it may take locks of its own (never the lock held around this `watch`).
    pub fn watch(&self, on_evict: Box<dyn FnOnce() + Send>) -> bool {
        match &mut *self.0.lock() {
            Some(watchers) => {
                watchers.push(on_evict);
                true
            }
            None => false,
        }
    }

    /// The cache dropped the block: run the watchers (once). Call it holding no lock a
    /// watcher might take.
    pub fn evicted(&self) {
        let watchers = self.0.lock().take();
        for w in watchers.into_iter().flatten() {
            w();
        }
    }
}

/// Keeps the shard's exclusive lock while alive.
pub trait LockGuard: Send + Sync {}

/// Cache hit/miss counters of a backend (zero for local disk).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads served from the memory block cache.
    pub memory_hits: u64,
    /// Reads served from the on-disk cache directory.
    pub disk_hits: u64,
    /// Blocks that went to the backend.
    pub misses: u64,
    /// Requests those blocks took (adjacent missing blocks share one ranged GET).
    pub requests: u64,
    /// Bytes fetched from the backend.
    pub bytes_fetched: u64,
}

/// A flat namespace of immutable-or-replaced files under one root.
///
/// Semantics every implementation keeps (checked by [`conformance`]):
/// - `get` of a missing path is a `NotFound` error naming the path;
/// - `put` replaces atomically: readers see the old or the new bytes, never a mix;
///   when it returns, the bytes are durable;
/// - `put_if_absent` creates only if nothing is there and says which happened; a retried
///   create that finds its own bytes already there counts as created;
/// - `list(dir)` returns the files directly under `dir`, sorted by path;
/// - `delete` of a missing path succeeds.
pub trait Storage: Send + Sync + Debug {
    /// Where this storage points, for messages (`/data/s0`, `s3://bucket/prefix`).
    fn location(&self) -> &str;
    /// Whole file.
    fn get(&self, path: &str) -> Result<Bytes>;
    /// A byte range of a file.
    fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes>;
    /// Several byte ranges of one file, in order: what is not cached is fetched in one
    /// round of parallel requests (object stores), so a search step costs one first-byte
    /// latency however many blocks it needs. The default reads them one by one.
    fn get_ranges(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        ranges
            .iter()
            .map(|r| self.get_range(path, r.clone()))
            .collect()
    }
    /// As [`Storage::get_ranges`], for bytes read once into memory the caller keeps (a lazy
    /// segment's directory and row columns at open): an object store without a cache
    /// directory reads them past its memory block cache, which would otherwise hold a
    /// second copy of them, evict hot blocks for them and cost a copy per block and one
    /// more to join the blocks. The default is [`Storage::get_ranges`].
    fn get_ranges_uncached(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.get_ranges(path, ranges)
    }
    /// As [`Storage::get_ranges`], with the check mark of each range that is one cached
    /// block (see [`Fetched`]). The default has no marks.
    fn get_blocks(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Fetched>> {
        Ok(self
            .get_ranges(path, ranges)?
            .into_iter()
            .map(|bytes| Fetched {
                bytes,
                checked: None,
                resident: None,
            })
            .collect())
    }
    /// Whether segments are better read in blocks on demand ([`Storage::get_ranges`])
    /// than mapped whole at open: `true` for object stores, `false` for local disk
    /// (whose mmap is free until touched).
    fn reads_in_blocks(&self) -> bool {
        false
    }
    /// Fill the caches with `ranges` of `path` ahead of use (the prefetch policy): with a
    /// cache directory the whole object is downloaded there; otherwise the ranges go
    /// through the memory block cache (and are evicted under its bound like any read).
    /// `keep_going` is asked before each round of requests; once it says no the warm
    /// stops (its segment is gone) and returns `Ok`.
    fn warm(&self, path: &str, ranges: &[Range<u64>], keep_going: &dyn Fn() -> bool) -> Result<()> {
        if !keep_going() {
            return Ok(());
        }
        self.get_ranges(path, ranges).map(|_| ())
    }
    /// The whole file for long-lived reading (mmap where possible).
    fn map(&self, path: &str) -> Result<Blob>;
    /// Durably create or replace a file.
    fn put(&self, path: &str, data: Bytes) -> Result<()>;
    /// Durably create a file unless one exists; `Ok(false)` if one did.
    fn put_if_absent(&self, path: &str, data: Bytes) -> Result<bool>;
    /// Files directly under `dir`, sorted by path.
    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>>;
    /// Remove a file; missing files are fine.
    fn delete(&self, path: &str) -> Result<()>;
    /// Whether [`Storage::create_append`] works (local files). Object stores write one
    /// object per WAL commit instead.
    fn supports_append(&self) -> bool;
    /// Create a new append-only file (fails if it exists).
    fn create_append(&self, path: &str) -> Result<Box<dyn AppendFile>>;
    /// Take the exclusive writer lock where the backend has one (`None`: it has none and
    /// relies on fencing).
    fn lock_exclusive(&self) -> Result<Option<Box<dyn LockGuard>>>;
    /// Where `path` lives natively (`None`: only through this trait).
    fn native(&self, _path: &str) -> Option<NativeFile> {
        None
    }
    /// Durably copy `path` of `src` to the same path here, replacing what is there.
    /// `Ok(true)` when the bytes did not pass through this process (a hard link, a
    /// server-side copy); the default reads and writes them.
    fn copy_from(&self, src: &dyn Storage, path: &str) -> Result<bool> {
        self.put(path, src.get(path)?).map(|_| false)
    }
    /// Cache counters.
    fn cache_stats(&self) -> CacheStats {
        CacheStats::default()
    }
    /// Count `n` reads of blocks this storage's memory cache holds that were served
    /// without a lookup (a lazy segment's block tables share the cache's blocks) as
    /// [`CacheStats::memory_hits`]. Backends without a memory cache ignore it.
    fn count_memory_hits(&self, _n: u64) {}
    /// Bytes the memory block cache holds now (never above its bound).
    fn cache_resident_bytes(&self) -> u64 {
        0
    }
}
