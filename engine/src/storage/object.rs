//! A shard on an object store (S3 and S3-compatible stores, `file://`, `memory://`) through
//! `object_store`, behind the synchronous [`Storage`] trait.
//!
//! - Every request runs on the engine's own I/O runtime ([`runtime`]), so the engine may be
//!   called from inside a tokio or actix thread.
//! - Transient failures are retried with backoff ([`retry`]); a create-once write that was
//!   retried checks whether the object it then finds is its own.
//! - Ranged reads go through a bounded memory [`BlockCache`]; with a cache directory, `map`
//!   downloads whole objects once into a [`DiskCache`] and memory-maps them, and ranged reads
//!   of objects there are served from disk. Both caches assume what they hold is immutable
//!   (segments); `get` is never cached, so manifests and WAL objects are always read fresh.
//! - No appendable files and no lock: concurrent writers are kept apart by fencing
//!   (conditional creates of manifest versions and WAL objects).

mod block_cache;
mod disk_cache;
pub(crate) mod retry;
pub(crate) mod runtime;
mod slab;

use std::collections::BTreeMap;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};
use tokio::io::AsyncWriteExt;

pub use block_cache::BlockCache;
pub use disk_cache::DiskCache;

use super::{
    AppendFile, Blob, CacheStats, Fetched, LockGuard, NativeFile, ObjectInfo, Storage,
    StorageOptions,
};
use crate::error::{Error, ErrorKind, Result};
use crate::paths;
use crate::storage::RetrySettings;
use block_cache::{CachedBlock, blocks_of, parts_of, runs_of};
use retry::{Backoff, is_transient};

/// Files of one shard as objects under a key prefix of an object store.
#[derive(Debug)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    /// Key prefix without leading or trailing `/` (may be empty).
    prefix: String,
    /// `s3://bucket/prefix`, for messages and cache keys.
    location: String,
    /// The location without the prefix (`s3://bucket`): objects of two storages with the
    /// same `store_id` can be copied server-side.
    store_id: String,
    retry: RetrySettings,
    blocks: Arc<BlockCache>,
    disk: Option<Arc<DiskCache>>,
    stats: Stats,
    /// Largest ranged GET ([`StorageOptions::part_bytes`]).
    part_bytes: u64,
    /// Slots for ranged GETs in flight ([`StorageOptions::max_requests`]).
    requests: Arc<tokio::sync::Semaphore>,
    /// A prefetch's share of them: a quarter. Its GETs take one of these before one of
    /// `requests`, so searches never queue behind a prefetch of thousands of blocks.
    background: Arc<tokio::sync::Semaphore>,
    /// Bytes one round of [`Storage::warm`] asks for: one `part_bytes` part per GET the
    /// prefetch may have in flight, or [`WARM_ROUND_BYTES`] when reads are not split.
    warm_round_bytes: u64,
}

/// GETs a prefetch may have in flight: a quarter of `max_requests`, at least one.
fn background_requests(o: &StorageOptions) -> usize {
    (o.max_requests / 4).max(1)
}

/// Who a ranged read is for: a caller waiting on it, or a prefetch in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Foreground,
    Background,
}

#[derive(Debug, Default)]
struct Stats {
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    misses: AtomicU64,
    requests: AtomicU64,
    bytes_fetched: AtomicU64,
}

/// Bytes one round of [`Storage::warm`] asks for when reads are not split into parts
/// (`part_bytes` 0).
const WARM_ROUND_BYTES: u64 = 32 << 20;

impl Stats {
    /// `blocks` (or whole objects) fetched in `requests` GETs.
    fn fetched(&self, blocks: u64, requests: u64, bytes: u64) {
        self.misses.fetch_add(blocks, Ordering::Relaxed);
        self.requests.fetch_add(requests, Ordering::Relaxed);
        self.bytes_fetched.fetch_add(bytes, Ordering::Relaxed);
        crate::malloc::note_churn(bytes);
    }
}

/// Builds an [`ObjectStorage`] over any `object_store` store.
#[derive(Debug)]
pub struct ObjectStorageBuilder {
    store: Arc<dyn ObjectStore>,
    location: String,
    prefix: String,
    options: StorageOptions,
    block_cache: Option<Arc<BlockCache>>,
}

impl ObjectStorageBuilder {
    /// Keys live under `prefix` (`a/b`; empty for the store's root).
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.trim_matches('/').to_string();
        self
    }

    /// Cache sizes, cache directory and retries.
    pub fn options(mut self, options: &StorageOptions) -> Self {
        self.options = options.clone();
        self
    }

    /// Use a block cache shared with other storages (a node with many shards keeps one
    /// bound for all of them) instead of one of `block_cache_bytes` for this storage.
    pub fn block_cache(mut self, cache: Arc<BlockCache>) -> Self {
        self.block_cache = Some(cache);
        self
    }

    /// The storage.
    pub fn build(self) -> Result<ObjectStorage> {
        let o = &self.options;
        let blocks = self
            .block_cache
            .unwrap_or_else(|| Arc::new(BlockCache::new(o.block_cache_bytes, o.block_size_bytes)));
        let disk = match &o.cache_dir {
            Some(dir) => Some(DiskCache::shared(dir, o.cache_dir_bytes)?),
            None => None,
        };
        let location = self.location.trim_end_matches('/').to_string();
        let store_id = match self.prefix.is_empty() {
            true => location.clone(),
            false => location
                .strip_suffix(&format!("/{}", self.prefix))
                .unwrap_or(&location)
                .to_string(),
        };
        Ok(ObjectStorage {
            store: self.store,
            prefix: self.prefix,
            location,
            store_id,
            retry: o.retry.clone(),
            part_bytes: o.part_bytes,
            requests: Arc::new(tokio::sync::Semaphore::new(o.max_requests.max(1))),
            background: Arc::new(tokio::sync::Semaphore::new(background_requests(o))),
            warm_round_bytes: match o.part_bytes {
                0 => WARM_ROUND_BYTES,
                part => part.saturating_mul(background_requests(o) as u64),
            },
            blocks,
            disk,
            stats: Stats::default(),
        })
    }
}

impl ObjectStorage {
    /// A builder over `store`; `location` names it in messages and cache keys
    /// (`s3://bucket/prefix`) and must be unique per store and prefix.
    ///
    /// Retries and the check of a retried create happen here, so `store` should not retry
    /// conditional creates on its own (see [`crate::storage::open_storage`], which turns
    /// object_store's retries off).
    pub fn builder(
        store: Arc<dyn ObjectStore>,
        location: impl Into<String>,
    ) -> ObjectStorageBuilder {
        ObjectStorageBuilder {
            store,
            location: location.into(),
            prefix: String::new(),
            options: StorageOptions::default(),
            block_cache: None,
        }
    }

    /// The memory block cache.
    pub fn block_cache(&self) -> &Arc<BlockCache> {
        &self.blocks
    }

    /// The on-disk cache, when a cache directory is set.
    pub fn disk_cache(&self) -> Option<&Arc<DiskCache>> {
        self.disk.as_ref()
    }

    /// The full name of `path` for messages: `s3://bucket/prefix/segments/…`.
    fn display(&self, path: &str) -> String {
        format!("{}/{}", self.location, path)
    }

    fn key(&self, path: &str) -> Result<Path> {
        let path = path.trim_matches('/');
        let joined = match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{path}", self.prefix),
        };
        Path::parse(&joined)
            .map_err(|e| Error::invalid(format!("invalid object key {}: {e}", self.display(path))))
    }

    fn err(&self, op: &str, path: &str, e: object_store::Error) -> Error {
        let kind = match e {
            object_store::Error::NotFound { .. } => ErrorKind::NotFound,
            _ => ErrorKind::Io,
        };
        Error::new(kind, format!("{op} {}: {e}", self.display(path))).with_source(e)
    }

    /// Drop cached copies of `path` before it is replaced or deleted.
    fn invalidate(&self, path: &str) {
        let full = self.display(path);
        self.blocks.invalidate(&full);
        if let Some(disk) = &self.disk {
            let name = DiskCache::file_name(&full);
            disk.remove(&name);
            disk.remove_blocks(&name);
        }
    }

    /// Whole object, uncached, with retries.
    fn fetch(&self, path: &str) -> Result<Bytes> {
        let (store, key, settings) = (self.store.clone(), self.key(path)?, self.retry.clone());
        let got = runtime::run(async move {
            retry::retry(&settings, is_transient, || async {
                store.get(&key).await?.bytes().await
            })
            .await
        })?;
        let bytes = got.map_err(|e| self.err("read", path, e))?;
        self.stats.fetched(1, 1, bytes.len() as u64);
        Ok(bytes)
    }

    /// The given byte ranges of one object, fetched concurrently (at most
    /// `max_requests` of this storage's GETs at once, a quarter of them for the
    /// background lane), each with retries. A range may run past the end of the object;
    /// what exists is returned.
    fn fetch_ranges(&self, path: &str, ranges: Vec<Range<u64>>, lane: Lane) -> Result<Vec<Bytes>> {
        let (store, key, settings) = (self.store.clone(), self.key(path)?, self.retry.clone());
        let slots = self.requests.clone();
        let share = (lane == Lane::Background).then(|| self.background.clone());
        let got = runtime::run(async move {
            let fetches = ranges.into_iter().map(|r| {
                let (store, key, settings, slots) = (&store, &key, &settings, &slots);
                let share = share.as_ref();
                async move {
                    // Never closed: `acquire` only fails on a closed semaphore.
                    let _share = match share {
                        Some(share) => share.acquire().await.ok(),
                        None => None,
                    };
                    let _slot = slots.acquire().await.ok();
                    retry::retry(settings, is_transient, || {
                        let options =
                            GetOptions::new().with_range(Some(GetRange::Bounded(r.clone())));
                        async move { store.get_opts(key, options).await?.bytes().await }
                    })
                    .await
                }
            });
            futures::future::try_join_all(fetches).await
        })?;
        got.map_err(|e| self.err("read", path, e))
    }

    /// An error naming a range that ends before it starts.
    fn check_ranges(&self, path: &str, ranges: &[Range<u64>]) -> Result<()> {
        match ranges.iter().find(|r| r.start > r.end) {
            Some(r) => Err(Error::invalid(format!(
                "read {}: bad range {}..{}",
                self.display(path),
                r.start,
                r.end
            ))),
            None => Ok(()),
        }
    }

    /// [`Storage::get_blocks`] for `lane`.
    fn read_blocks(&self, path: &str, ranges: &[Range<u64>], lane: Lane) -> Result<Vec<Fetched>> {
        self.check_ranges(path, ranges)?;
        let object: Arc<str> = Arc::from(self.display(path));
        let bs = self.blocks.block_size();
        let mut wanted: BTreeMap<u64, Option<CachedBlock>> = BTreeMap::new();
        for r in ranges {
            for b in blocks_of(r, bs) {
                wanted.entry(b).or_insert(None);
            }
        }
        let mut missing = Vec::new();
        for (b, slot) in wanted.iter_mut() {
            *slot = self.blocks.get(&object, *b);
            if slot.is_none() {
                missing.push(*b);
            }
        }
        let hits = (wanted.len() - missing.len()) as u64;
        self.stats.memory_hits.fetch_add(hits, Ordering::Relaxed);
        let runs = runs_of(&missing);
        if !runs.is_empty() {
            for (b, block) in self.read_missing(path, &object, &missing, &runs, lane)? {
                let entry = if block.is_empty() {
                    None
                } else {
                    Some(self.blocks.insert(&object, b, block))
                };
                wanted.insert(b, entry);
            }
        }
        ranges
            .iter()
            .map(|range| {
                if range.is_empty() {
                    return Ok(Fetched {
                        bytes: Bytes::new(),
                        checked: None,
                        resident: None,
                    });
                }
                let span = blocks_of(range, bs);
                let blocks: Vec<Option<Bytes>> = span
                    .clone()
                    .map(|b| wanted.get(&b).cloned().flatten().map(|c| c.bytes))
                    .collect();
                let bytes = assemble(&blocks, span.start, bs, range).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Io,
                        format!(
                            "read {} bytes {}..{}: past the end of the object",
                            object, range.start, range.end
                        ),
                    )
                })?;
                // One whole cached block: its mark goes with it; the start of one (the
                // last block of a section): its residence only.
                let (checked, resident) = match wanted.get(&span.start) {
                    Some(Some(c))
                        if span.end - span.start == 1 && range.start == span.start * bs =>
                    {
                        let whole = bytes.len() == c.bytes.len();
                        (whole.then(|| c.checked.clone()), Some(c.resident.clone()))
                    }
                    _ => (None, None),
                };
                Ok(Fetched {
                    bytes,
                    checked,
                    resident,
                })
            })
            .collect()
    }

    /// Blocks `runs` of `path` from the disk cache when it holds the whole object.
    fn read_disk_runs(&self, path: &str, runs: &[Range<u64>]) -> Result<Option<Vec<Bytes>>> {
        let Some(disk) = &self.disk else {
            return Ok(None);
        };
        let Some(file) = disk.open_file(&DiskCache::file_name(&self.display(path)))? else {
            return Ok(None);
        };
        let ctx = || format!("read cached {}", self.display(path));
        let size = file.metadata().map_err(|e| Error::io(ctx(), e))?.len();
        let bs = self.blocks.block_size();
        let mut out = Vec::with_capacity(runs.len());
        for run in runs {
            let start = (run.start * bs).min(size);
            let end = (run.end * bs).min(size);
            let mut buf = vec![0u8; (end - start) as usize];
            file.read_exact_at(&mut buf, start)
                .map_err(|e| Error::io(ctx(), e))?;
            out.push(Bytes::from(buf));
        }
        Ok(Some(out))
    }

    /// Blocks `missing` (ascending; `runs` of them) of `path`, each its own allocation (so
    /// an evicted neighbour frees memory): from the disk cache's whole copy of the object,
    /// else from its block files, else fetched (adjacent blocks in one ranged GET, the GETs
    /// in parallel) and then written there as block files, so a restart finds them.
    fn read_missing(
        &self,
        path: &str,
        object: &str,
        missing: &[u64],
        runs: &[Range<u64>],
        lane: Lane,
    ) -> Result<Vec<(u64, Bytes)>> {
        let bs = self.blocks.block_size();
        // Every block is copied into memory of its own, a one-block run too: an HTTP
        // client's answer is a slice of its connection's read buffer (8 KiB and up), which
        // a cached block would otherwise keep alive — for a cache of 4 KiB blocks, twice
        // the memory it counts or more. The copies go to the cache's slab, apart from the
        // request's short-lived allocations (see `BlockSlab`).
        let split = |runs: &[Range<u64>], data: Vec<Bytes>, out: &mut Vec<(u64, Bytes)>| {
            for (run, data) in runs.iter().zip(data) {
                for b in run.clone() {
                    let off = ((b - run.start) * bs).min(data.len() as u64) as usize;
                    let end = ((b - run.start + 1) * bs).min(data.len() as u64) as usize;
                    out.push((b, self.blocks.copy_block(&data[off..end])));
                }
            }
        };
        let mut out = Vec::with_capacity(missing.len());
        if let Some(whole) = self.read_disk_runs(path, runs)? {
            self.stats
                .disk_hits
                .fetch_add(missing.len() as u64, Ordering::Relaxed);
            split(runs, whole, &mut out);
            return Ok(out);
        }
        let disk = self
            .disk
            .as_ref()
            .map(|d| (d, DiskCache::file_name(object)));
        let mut fetch = Vec::new();
        for &b in missing {
            let cached = match &disk {
                Some((d, name)) => d.read_block(&DiskCache::block_name(name, b))?,
                None => None,
            };
            match cached {
                Some(data) => out.push((b, self.blocks.copy_block(&data))),
                None => fetch.push(b),
            }
        }
        self.stats
            .disk_hits
            .fetch_add((missing.len() - fetch.len()) as u64, Ordering::Relaxed);
        // A long run is read in parts of at most `part_bytes`, side by side.
        let runs = match self.part_bytes {
            0 => runs_of(&fetch),
            part => parts_of(runs_of(&fetch), part / bs),
        };
        if runs.is_empty() {
            return Ok(out);
        }
        let byte_ranges = runs.iter().map(|r| r.start * bs..r.end * bs).collect();
        let got = self.fetch_ranges(path, byte_ranges, lane)?;
        let bytes = got.iter().map(|b| b.len() as u64).sum();
        self.stats
            .fetched(fetch.len() as u64, runs.len() as u64, bytes);
        let first = out.len();
        split(&runs, got, &mut out);
        if let Some((d, name)) = &disk {
            for (b, data) in &out[first..] {
                if data.is_empty() {
                    continue;
                }
                // Best effort: a full or failing cache directory costs a fetch later.
                if let Err(e) = d.insert_block(&DiskCache::block_name(name, *b), data) {
                    tracing::warn!(error = %e, "cannot cache a block on disk");
                }
            }
        }
        out.sort_unstable_by_key(|(b, _)| *b);
        Ok(out)
    }

    /// Download `path` into the disk cache and map it; an object too large for the cache
    /// is returned as owned bytes instead.
    fn download_and_map(&self, disk: &Arc<DiskCache>, path: &str) -> Result<Blob> {
        let name = DiskCache::file_name(&self.display(path));
        let (store, key, settings) = (self.store.clone(), self.key(path)?, self.retry.clone());
        let cache = disk.clone();
        let got = runtime::run(async move {
            retry::retry(&settings, is_transient, || download(&store, &key, &cache)).await
        })?;
        match got.map_err(|e| self.err("download", path, e))? {
            Download::TooLarge(bytes) => {
                self.stats.fetched(1, 1, bytes.len() as u64);
                Ok(Blob::Owned(bytes))
            }
            Download::Staged(tmp, file, size) => {
                self.stats.fetched(1, 1, size);
                disk.commit(&tmp, file, &name)?;
                match disk.map(&name)? {
                    Some(map) => Ok(Blob::Mapped(Arc::new(map))),
                    // Evicted at once by concurrent downloads: serve it from memory.
                    None => Ok(Blob::Owned(self.fetch(path)?)),
                }
            }
        }
    }
}

enum Download {
    /// Larger than the disk cache: the bytes.
    TooLarge(Bytes),
    /// Written and flushed to a temporary file of this size in the cache directory.
    Staged(std::path::PathBuf, std::fs::File, u64),
}

/// One attempt at streaming an object into a temporary file of the disk cache.
async fn download(
    store: &Arc<dyn ObjectStore>,
    key: &Path,
    disk: &DiskCache,
) -> std::result::Result<Download, object_store::Error> {
    let got = store.get(key).await?;
    if !disk.admits(got.meta.size) {
        return Ok(Download::TooLarge(got.bytes().await?));
    }
    let local = |e: Error| object_store::Error::Generic {
        store: "disk cache",
        source: Box::new(e),
    };
    let io = |e: std::io::Error| object_store::Error::Generic {
        store: "disk cache",
        source: Box::new(e),
    };
    let (tmp, file) = disk.temp_file().map_err(local)?;
    let mut out = tokio::fs::File::from_std(file);
    let mut stream = got.into_stream();
    let mut size = 0u64;
    let written = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(io)?;
        }
        out.flush().await.map_err(io)
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    Ok(Download::Staged(tmp, out.into_std().await, size))
}

/// Create `key` unless it exists. After an attempt that failed in a way that may have
/// written the object (a timeout, a dropped connection, a 5xx), an "already exists" is
/// checked: the object is read back and counts as ours if its bytes are `data`.
async fn create(
    store: &Arc<dyn ObjectStore>,
    key: &Path,
    data: &Bytes,
    settings: &RetrySettings,
) -> std::result::Result<bool, object_store::Error> {
    use object_store::Error as E;
    let mut backoff = Backoff::new(settings);
    let mut maybe_written = false;
    loop {
        let options = PutOptions::from(PutMode::Create);
        let attempt = store
            .put_opts(key, PutPayload::from(data.clone()), options)
            .await;
        match attempt {
            Ok(_) => return Ok(true),
            Err(E::AlreadyExists { .. } | E::Precondition { .. }) if !maybe_written => {
                return Ok(false);
            }
            Err(E::AlreadyExists { .. } | E::Precondition { .. }) => {
                let existing = retry::retry(settings, is_transient, || async {
                    store.get(key).await?.bytes().await
                })
                .await;
                return match existing {
                    Ok(existing) => Ok(existing == *data),
                    Err(E::NotFound { .. }) => Ok(false),
                    Err(e) => Err(e),
                };
            }
            Err(e) if is_transient(&e) && backoff.wait().await => {
                tracing::debug!(%key, error = %e, "create failed; retrying and checking");
                maybe_written = true;
            }
            Err(e) => return Err(e),
        }
    }
}

impl Storage for ObjectStorage {
    fn location(&self) -> &str {
        &self.location
    }

    fn get(&self, path: &str) -> Result<Bytes> {
        self.fetch(path)
    }

    fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes> {
        let mut got = self.get_ranges(path, std::slice::from_ref(&range))?;
        Ok(got.pop().unwrap_or_default())
    }

    fn get_ranges(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let got = self.get_blocks(path, ranges)?;
        Ok(got.into_iter().map(|f| f.bytes).collect())
    }

    /// With a cache directory as any read (a restart then reads them from disk); without,
    /// straight from the store: each range in parts of at most `part_bytes`, all parts
    /// side by side in one round, joined per range.
    fn get_ranges_uncached(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if self.disk.is_some() {
            return self.get_ranges(path, ranges);
        }
        self.check_ranges(path, ranges)?;
        let bs = self.blocks.block_size();
        let part = match self.part_bytes {
            0 => u64::MAX,
            p => (p / bs).max(1) * bs,
        };
        let mut parts = Vec::new();
        let mut of_range = Vec::new();
        for (i, r) in ranges.iter().enumerate() {
            let mut at = r.start;
            while at < r.end {
                let end = r.end.min(at.saturating_add(part));
                parts.push(at..end);
                of_range.push(i);
                at = end;
            }
        }
        let got = match parts.is_empty() {
            true => Vec::new(),
            false => self.fetch_ranges(path, parts.clone(), Lane::Foreground)?,
        };
        let bytes: u64 = got.iter().map(|b| b.len() as u64).sum();
        let blocks: u64 = parts.iter().map(|p| blocks_of(p, bs).count() as u64).sum();
        self.stats.fetched(blocks, parts.len() as u64, bytes);
        let mut pieces: Vec<Vec<Bytes>> = vec![Vec::new(); ranges.len()];
        for (i, b) in of_range.into_iter().zip(got) {
            pieces[i].push(b);
        }
        Ok(pieces
            .into_iter()
            .map(|mut p| match p.len() {
                0 => Bytes::new(),
                1 => p.pop().unwrap_or_default(),
                _ => Bytes::from(p.concat()),
            })
            .collect())
    }

    /// Every block the ranges touch is looked up in the memory cache; the missing ones,
    /// adjacent ones coalesced, come from the disk cache or in one round of parallel GETs.
    fn get_blocks(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Fetched>> {
        self.read_blocks(path, ranges, Lane::Foreground)
    }

    fn reads_in_blocks(&self) -> bool {
        true
    }

    /// With a cache directory: the whole object, downloaded there once (later ranged
    /// reads of it are served from disk). Without: the ranges through the block cache,
    /// at most its capacity, in rounds of what the prefetch's GETs fetch side by side
    /// (one `part_bytes` part each), asking `keep_going` before each round: a dropped
    /// segment's prefetch stops within a round.
    fn warm(&self, path: &str, ranges: &[Range<u64>], keep_going: &dyn Fn() -> bool) -> Result<()> {
        if !keep_going() {
            return Ok(());
        }
        if let Some(disk) = &self.disk {
            if disk
                .map(&DiskCache::file_name(&self.display(path)))?
                .is_none()
            {
                self.download_and_map(disk, path)?;
            }
            return Ok(());
        }
        let mut budget = self.blocks.capacity_bytes();
        let mut round: Vec<Range<u64>> = Vec::new();
        let mut round_bytes = 0;
        for r in ranges {
            let len = r.end.saturating_sub(r.start);
            if len > budget {
                break;
            }
            budget -= len;
            round.push(r.clone());
            round_bytes += len;
            if round_bytes >= self.warm_round_bytes {
                self.read_blocks(path, &round, Lane::Background)?;
                round.clear();
                round_bytes = 0;
                if !keep_going() {
                    return Ok(());
                }
            }
        }
        if !round.is_empty() {
            self.read_blocks(path, &round, Lane::Background)?;
        }
        Ok(())
    }

    fn map(&self, path: &str) -> Result<Blob> {
        let Some(disk) = &self.disk else {
            return Ok(Blob::Owned(self.fetch(path)?));
        };
        if let Some(map) = disk.map(&DiskCache::file_name(&self.display(path)))? {
            self.stats.disk_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Blob::Mapped(Arc::new(map)));
        }
        self.download_and_map(disk, path)
    }

    fn put(&self, path: &str, data: Bytes) -> Result<()> {
        self.invalidate(path);
        let (store, key, settings) = (self.store.clone(), self.key(path)?, self.retry.clone());
        let done = runtime::run(async move {
            retry::retry(&settings, is_transient, || {
                store.put(&key, PutPayload::from(data.clone()))
            })
            .await
        })?;
        // Again: a concurrent read may have cached the old bytes while the put ran.
        self.invalidate(path);
        done.map(|_| ()).map_err(|e| self.err("write", path, e))
    }

    fn put_if_absent(&self, path: &str, data: Bytes) -> Result<bool> {
        let (store, key, settings) = (self.store.clone(), self.key(path)?, self.retry.clone());
        let created = runtime::run(async move { create(&store, &key, &data, &settings).await })?;
        created.map_err(|e| self.err("create", path, e))
    }

    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        let (store, key, settings) = (self.store.clone(), self.key(dir)?, self.retry.clone());
        let root = key.as_ref().is_empty();
        let listed = runtime::run(async move {
            retry::retry(&settings, is_transient, || {
                store.list_with_delimiter((!root).then_some(&key))
            })
            .await
        })?;
        let listed = listed.map_err(|e| self.err("list", dir, e))?;
        let mut out: Vec<ObjectInfo> = listed
            .objects
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?.to_string();
                (!name.starts_with(paths::TEMP_PREFIX)).then(|| ObjectInfo {
                    path: paths::join(dir.trim_matches('/'), &name),
                    size: meta.size,
                })
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn delete(&self, path: &str) -> Result<()> {
        self.invalidate(path);
        let (store, key, settings) = (self.store.clone(), self.key(path)?, self.retry.clone());
        let done = runtime::run(async move {
            retry::retry(&settings, is_transient, || store.delete(&key)).await
        })?;
        match done {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete", path, e)),
        }
    }

    fn native(&self, path: &str) -> Option<NativeFile> {
        Some(NativeFile::Object {
            store: self.store_id.clone(),
            key: self.key(path).ok()?.to_string(),
        })
    }

    /// A server-side copy from the same store, else get + put.
    fn copy_from(&self, src: &dyn Storage, path: &str) -> Result<bool> {
        let from = match src.native(path) {
            Some(NativeFile::Object { store, key }) if store == self.store_id => key,
            _ => return super::stream_copy(self, src, path).map(|_| false),
        };
        self.invalidate(path);
        let (store, to, settings) = (self.store.clone(), self.key(path)?, self.retry.clone());
        let from = Path::from(from);
        let done = runtime::run(async move {
            retry::retry(&settings, is_transient, || store.copy(&from, &to)).await
        })?;
        done.map_err(|e| self.err("copy to", path, e))?;
        Ok(true)
    }

    fn supports_append(&self) -> bool {
        false
    }

    fn create_append(&self, path: &str) -> Result<Box<dyn AppendFile>> {
        Err(Error::invalid(format!(
            "create append file {}: object stores have no appendable files; \
             write one object per WAL commit",
            self.display(path)
        )))
    }

    fn lock_exclusive(&self) -> Result<Option<Box<dyn LockGuard>>> {
        Ok(None)
    }

    fn cache_resident_bytes(&self) -> u64 {
        self.blocks.resident_bytes()
    }

    fn count_memory_hits(&self, n: u64) {
        self.stats.memory_hits.fetch_add(n, Ordering::Relaxed);
    }

    fn cache_stats(&self) -> CacheStats {
        let s = &self.stats;
        CacheStats {
            memory_hits: s.memory_hits.load(Ordering::Relaxed),
            disk_hits: s.disk_hits.load(Ordering::Relaxed),
            misses: s.misses.load(Ordering::Relaxed),
            requests: s.requests.load(Ordering::Relaxed),
            bytes_fetched: s.bytes_fetched.load(Ordering::Relaxed),
        }
    }
}

/// The bytes of `range` from consecutive blocks starting at block `first`; `None` when a
/// block ends before the range does (the range runs past the end of the object).
fn assemble(blocks: &[Option<Bytes>], first: u64, bs: u64, range: &Range<u64>) -> Option<Bytes> {
    let slice = |i: usize, block: &Bytes| -> Option<Bytes> {
        let start = (first + i as u64) * bs;
        let from = range.start.max(start) - start;
        let to = range.end.min(start + bs) - start;
        (to <= block.len() as u64).then(|| block.slice(from as usize..to as usize))
    };
    if let [Some(only)] = blocks {
        return slice(0, only);
    }
    let mut out = BytesMut::with_capacity((range.end - range.start) as usize);
    for (i, block) in blocks.iter().enumerate() {
        out.extend_from_slice(&slice(i, block.as_ref()?)?);
    }
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assemble_slices_across_blocks() {
        let blocks = vec![
            Some(Bytes::from_static(b"0123")),
            Some(Bytes::from_static(b"4567")),
            Some(Bytes::from_static(b"89")),
        ];
        assert_eq!(&assemble(&blocks, 0, 4, &(2..10)).unwrap()[..], b"23456789");
        assert_eq!(&assemble(&blocks[1..2], 1, 4, &(5..6)).unwrap()[..], b"5");
        assert!(assemble(&blocks, 0, 4, &(2..11)).is_none(), "past the end");
    }
}
