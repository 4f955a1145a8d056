//! What a shard is (its spec, fixed at creation) and how a handle runs (options).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::index::{IndexParams, ReadAhead};
use crate::types::Metric;

/// A shard's fixed properties, stored in its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// Vector dimension.
    pub dim: usize,
    /// Distance metric.
    pub metric: Metric,
    /// Index parameters.
    #[serde(default)]
    pub index: IndexParams,
}

impl ShardSpec {
    /// A spec with default index parameters.
    pub fn new(dim: usize, metric: Metric) -> Self {
        ShardSpec {
            dim,
            metric,
            index: IndexParams::default(),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        vecshard_model::validate::dimension(self.dim)?;
        vecshard_model::validate::index_params(&self.index)?;
        Ok(())
    }
}

/// The file format new segments are written in (every format is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentFormat {
    /// Format 2 on object stores (read lazily, in blocks), format 1 on local disk (whose
    /// mmap gains nothing from it). Builds older than 2026-12 cannot read format 2.
    Auto,
    /// Format 1: whole sections with one checksum each, read whole at open (the default
    /// until a lazy warm search costs about what a mapped one does: design note 015).
    #[default]
    V1,
    /// Format 2: 4 KiB blocks with a checksum each and a directory at the tail; layer-0
    /// links stored next to the codes of the same rows (design note 015). Readable by
    /// builds from 2026-12 on only.
    V2,
}

/// What an object-store shard reads into its caches at open, beyond the headers and
/// directories a lazy open always reads (design note 015). Local shards map their files
/// and ignore it; format-1 segments are downloaded whole anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prefetch {
    /// Nothing: every block is read when a search first needs it.
    None,
    /// In the background, the layer-0 hop blocks of the rows on layer 2 and above and of
    /// the entry point — where descents through the upper layers (kept in memory with the
    /// directory) land — about rows / 256 blocks at M 16 (3 MB at 200k × 128).
    #[default]
    UpperLayers,
    /// In the background, every hop, vector and payload block while the shard already serves:
    /// into the disk cache when `cache_dir` is set (the whole file), else into the memory
    /// block cache up to its bound.
    All,
}

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// After its WAL record is fsynced (local) or its WAL object exists (object store).
    /// Concurrent writers share one fsync. Never loses an acknowledged write.
    #[default]
    Sync,
    /// Local disk only: after the WAL record reaches the OS (no fsync per write; fsync on
    /// rotation, flush and close). A machine crash (not a process crash) can lose the last
    /// writes. Object stores always behave as `Sync`.
    Buffered,
}

/// How a shard handle runs. Every field has a default that suits a first try.
#[derive(Debug, Clone)]
pub struct Options {
    /// Open without writing anything: every write fails with `ReadOnly`; the handle can
    /// [`crate::Shard::refresh`] to newer manifests.
    pub read_only: bool,
    /// Memtable size limit in bytes (default 64 MiB). A larger memtable means fewer, larger
    /// segments (faster search) and longer WAL replay after a crash.
    pub memtable_bytes: usize,
    /// How many full memtables may wait for their flush before writers are held back
    /// (default 2).
    pub max_frozen_memtables: usize,
    /// Write acknowledgement (default `Sync`).
    pub durability: Durability,
    /// Merge policy (rules in `engine/src/shard/policy.rs`): at most this many
    /// segments once background compaction catches up (default 3). Every search walks every
    /// segment, so a lower cap means faster searches; the price is write amplification
    /// (rows rewritten by merges): with a cap of 3 and the tier defaults, 50 equal flushes
    /// rewrite each row about 5 times, 10 flushes about 2.6 times.
    pub max_segments: usize,
    /// Segments whose live rows are within this factor of each other form a tier, and a
    /// tier of `min_merge_width` segments is merged (default 3.0). Larger: fewer, more
    /// lopsided merges (large segments are rewritten more often to absorb small ones);
    /// smaller: merges wait for truly similar sizes, leaning on the cap.
    pub merge_ratio: f64,
    /// Fewest similar-sized segments merged as a tier (default 3, at least 2). 2 merges
    /// pairs as soon as they appear (most rewriting, fewest segments); larger values
    /// rewrite less but leave more segments until the cap forces a merge.
    pub min_merge_width: usize,
    /// A segment (of 1024 rows or more) whose deleted or superseded share exceeds this is
    /// rewritten alone to drop them (default 0.3). Lower: less space and search time lost
    /// to dead rows, more rewriting under update-heavy loads.
    pub max_deleted_ratio: f64,
    /// Once no write has arrived for this long, the background thread flushes the memtable
    /// and merges every segment into one (default 10 s; `None`: never), so a shard that
    /// went quiet is searched as one graph instead of several (searching 3 segments costs
    /// about twice one at equal recall). The merge extends the largest segment's graph with
    /// the other rows instead of rebuilding it. To bound rewriting under a trickle of
    /// writes, the segments are merged when the largest holds under 95 % of the rows, or
    /// once the shard has been idle ten times this long (rules in
    /// `engine/src/shard/policy.rs`).
    pub idle_merge_after: Option<Duration>,
    /// The idle merge (see `idle_merge_after`) only merges shards of at most this many live
    /// rows (default 2,000,000): a merge holds a copy of all their vectors in memory
    /// (rows × dim × 4 bytes) plus the graph it extends.
    pub idle_merge_max_rows: u64,
    /// Run flushes and compactions on a background thread (default true). When false they
    /// run only through [`crate::Shard::flush`] / [`crate::Shard::compact`].
    pub background: bool,
    /// Threads for background flushes and compactions, in a pool shared by every shard of
    /// the process that asks for the same size, running at a lower scheduling priority than
    /// searches (default 0: all cores but one, at least one).
    pub background_threads: usize,
    /// How long a file no manifest references is kept before the writer deletes it, so
    /// readers that still use it keep working (default: 0 on local disk, 10 minutes on
    /// object stores).
    pub gc_grace: Option<Duration>,
    /// A writer epoch to claim at open (the cluster passes the epoch it assigned). The open
    /// fails with `Fenced` if the shard already carries a higher one; the same one is the
    /// same assignment reopening (it still fences any older process). `None`: current + 1.
    pub epoch: Option<u64>,
    /// Read-only handles re-read the manifest this often (default: never; call `refresh`).
    pub refresh_interval: Option<Duration>,
    /// Memory bound of the object-store block cache (default 256 MiB).
    pub block_cache_bytes: u64,
    /// Optional on-disk cache directory for object-store data.
    pub cache_dir: Option<PathBuf>,
    /// Size bound of `cache_dir` (default 10 GiB).
    pub cache_dir_bytes: u64,
    /// Ranged GETs to the object store in flight at once per shard, and idle connections
    /// kept (default 64; [`crate::storage::StorageOptions::max_requests`]).
    pub object_requests: usize,
    /// Commit store for manifests: `None` (conditional puts on the storage itself) or
    /// `dynamodb:TABLE`. WAL units always need conditional creates from the storage.
    pub commit_store: Option<String>,
    /// Format of the segments this handle writes (default `V1`; `Auto` writes format 2,
    /// read lazily, on object stores and format 1 on local disk).
    pub segment_format: SegmentFormat,
    /// What object-store shards warm at open (default `UpperLayers`, see [`Prefetch`]).
    pub prefetch: Prefetch,
    /// How searches of format-2 segments on an object store trade bytes for rounds of
    /// reads (default [`ReadAhead::EXACT`]: the local search's answers, one round per
    /// expanded node; `batch: 4` takes about a third of the rounds for a slightly wider
    /// walk whose answers may differ from the local ones — design note 015).
    pub read_ahead: ReadAhead,
}

impl SegmentFormat {
    /// The format to write on a storage that does (object stores) or does not read
    /// segments in blocks.
    pub fn resolve(self, reads_in_blocks: bool) -> SegmentFormat {
        match (self, reads_in_blocks) {
            (SegmentFormat::Auto, true) => SegmentFormat::V2,
            (SegmentFormat::Auto, false) => SegmentFormat::V1,
            (f, _) => f,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            read_only: false,
            memtable_bytes: 64 << 20,
            max_frozen_memtables: 2,
            durability: Durability::Sync,
            max_segments: 3,
            merge_ratio: 3.0,
            min_merge_width: 3,
            max_deleted_ratio: 0.3,
            idle_merge_after: Some(Duration::from_secs(10)),
            idle_merge_max_rows: 2_000_000,
            background: true,
            background_threads: 0,
            gc_grace: None,
            epoch: None,
            refresh_interval: None,
            block_cache_bytes: 256 << 20,
            cache_dir: None,
            cache_dir_bytes: 10 << 30,
            object_requests: 64,
            commit_store: None,
            segment_format: SegmentFormat::V1,
            prefetch: Prefetch::UpperLayers,
            read_ahead: ReadAhead::EXACT,
        }
    }
}

impl Options {
    /// Options for a read-only handle.
    pub fn read_only() -> Self {
        Options {
            read_only: true,
            ..Default::default()
        }
    }

    /// How [`crate::Shard::open`] opens the storage of a location with these options:
    /// caches, cache directory and the bound on requests in flight.
    pub fn storage_options(&self) -> crate::storage::StorageOptions {
        crate::storage::StorageOptions {
            block_cache_bytes: self.block_cache_bytes,
            cache_dir: self.cache_dir.clone(),
            cache_dir_bytes: self.cache_dir_bytes,
            max_requests: self.object_requests,
            ..Default::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.memtable_bytes < 64 << 10 {
            return Err(Error::invalid(format!(
                "memtable_bytes {} is below the minimum of 64 KiB",
                self.memtable_bytes
            )));
        }
        if self.object_requests == 0 {
            return Err(Error::invalid(
                "object_requests must be ≥ 1 (ranged GETs in flight per shard)",
            ));
        }
        if self.max_frozen_memtables == 0 || self.max_segments < 2 {
            return Err(Error::invalid(
                "max_frozen_memtables must be ≥ 1 and max_segments ≥ 2",
            ));
        }
        if !(self.merge_ratio >= 1.0 && self.merge_ratio.is_finite()) {
            return Err(Error::invalid(format!(
                "merge_ratio {} must be a finite number ≥ 1",
                self.merge_ratio
            )));
        }
        if self.min_merge_width < 2 {
            return Err(Error::invalid(format!(
                "min_merge_width {} must be ≥ 2",
                self.min_merge_width
            )));
        }
        if !(0.0..=1.0).contains(&self.max_deleted_ratio) {
            return Err(Error::invalid(format!(
                "max_deleted_ratio {} must be in 0..=1",
                self.max_deleted_ratio
            )));
        }
        Ok(())
    }
}
