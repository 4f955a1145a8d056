//! Settings for opening a shard's storage ([`super::open_storage`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How a shard's storage is opened. Only object stores use the caches and retries; a
/// local directory ignores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageOptions {
    /// Memory for the block cache that serves ranged reads of remote objects, per opened
    /// storage. Every byte a search reads from a segment that is not cached costs a ranged
    /// GET (tens of milliseconds on S3); 256 MiB holds the hot part of a few million 128-d
    /// SQ8 codes. `0` disables the cache.
    pub block_cache_bytes: u64,
    /// Size of one cached block (default 4 KiB, the block of a format-2 segment). Ranged
    /// reads are rounded out to whole blocks and adjacent missing blocks are fetched in
    /// one GET. A lazy search reads scattered 4 KiB hop blocks: larger cache blocks fetch
    /// (and cache) that many more bytes per miss — 1 MiB blocks read 256× what a hop
    /// needs and hold a tenth as many hot blocks in the same memory.
    pub block_size_bytes: u64,
    /// Largest ranged GET (default 1 MiB): a longer read of missing blocks (a lazy
    /// segment's directory and row columns at open, a prefetch) is split into parts of at
    /// most this size, requested side by side in one round. One GET streams about
    /// 50–100 MB/s and parallel GETs add up, so small parts make a read of tens of MB
    /// cost little more than one request's first-byte latency (at 25 ms + 100 MB/s per
    /// request, a 1M-row shard's 30 MB open took 0.30 s in 8 MiB parts, 0.21 s in 1 MiB
    /// parts). Rounded down to whole blocks (at least one); `0`: never split.
    pub part_bytes: u64,
    /// Ranged GETs of one storage in flight at once (default 64; at least 1). A lazy
    /// search asks for the scattered blocks of a step side by side, tens of them per
    /// round; without a bound a few concurrent cold searches open hundreds of HTTP
    /// connections (each a socket, buffers and a task) and keep them idle in the pool.
    /// Requests past the bound wait for a free slot; idle connections kept per host are
    /// bounded by the same number.
    pub max_requests: usize,
    /// Directory for whole objects downloaded by `map` (segments), which then are
    /// memory-mapped like local files and survive restarts. `None`: objects are held in
    /// memory while mapped and fetched again after a restart. One process per directory.
    pub cache_dir: Option<PathBuf>,
    /// Bound on the bytes kept in `cache_dir`; least recently used files go first. An
    /// object larger than the bound is not cached on disk.
    pub cache_dir_bytes: u64,
    /// Retries of object-store and DynamoDB requests.
    pub retry: RetrySettings,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            block_cache_bytes: 256 << 20,
            block_size_bytes: 4 << 10,
            part_bytes: 1 << 20,
            max_requests: 64,
            cache_dir: None,
            cache_dir_bytes: 10 << 30,
            retry: RetrySettings::default(),
        }
    }
}

/// How requests to an object store or DynamoDB are retried: exponential backoff with full
/// jitter, on transient errors only (timeouts, connection errors, 5xx, throttling) — never
/// on not-found, precondition or permission errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetrySettings {
    /// Attempts per call, the first included. With the defaults a call gives up after
    /// about 3 s of backoff; a writer then sees an `Io` error and may retry the whole
    /// operation (create-once writes stay safe: a retried create recognises its own bytes).
    pub max_attempts: u32,
    /// Backoff before the first retry; each further retry doubles it (up to the max), and
    /// the actual wait is drawn uniformly from zero to that value.
    pub initial_backoff_ms: u64,
    /// Upper bound of one backoff.
    pub max_backoff_ms: u64,
    /// Timeout of one HTTP request, body included. Whole-object reads of large segments
    /// must fit in it: 60 s is 1 GiB at about 18 MB/s.
    pub request_timeout_ms: u64,
    /// Timeout to establish a connection.
    pub connect_timeout_ms: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 6,
            initial_backoff_ms: 100,
            max_backoff_ms: 2_000,
            request_timeout_ms: 60_000,
            connect_timeout_ms: 5_000,
        }
    }
}
