//! A bounded in-memory cache of fixed-size, aligned blocks of remote objects.
//!
//! Eviction and concurrency come from `quick_cache` (weighted by bytes, S3-FIFO — scan
//! resistant, close to LRU for hot blocks). Each block has memory of its own (a slot of a
//! [`BlockSlab`]), so the cached bytes never hold on to a larger buffer and the bound is the
//! memory actually used.
//! One cache may be shared by many storages (keys carry the object's full location).

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use bytes::Bytes;
use parking_lot::Mutex;
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, Weighter};
use std::collections::HashMap;

use super::slab::BlockSlab;
use crate::storage::Resident;

/// Bookkeeping per cached block, counted against the bound with its bytes: the cache
/// entry, the check mark and residency watch, the `Bytes` sharing, and the owner entry and
/// eviction watcher of the lazy segment's block table that keeps it (every block a lazy
/// search reads is kept in one). Measured (`tests/block_cache_memory.rs`, before blocks
/// moved to slab slots, which dropped the allocator's header per block): 278–321 B beyond
/// a 4 KiB block in the cache alone, ~490 B kept in a table; 64 before, which let a full
/// 203 MB cache hold ~20 MB more than its bound.
const ENTRY_OVERHEAD: u64 = 512;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BlockKey {
    object: Arc<str>,
    block: u64,
}

#[derive(Debug, Clone)]
struct ByteWeighter;

impl Weighter<BlockKey, CachedBlock> for ByteWeighter {
    fn weight(&self, _key: &BlockKey, val: &CachedBlock) -> u64 {
        val.bytes.len() as u64 + ENTRY_OVERHEAD
    }
}

/// A cached block and its check mark: set by the first reader that verified these very
/// bytes, so later readers of the same cached copy need not verify them again. A copy
/// fetched again after eviction is a new entry with an unset mark. `resident` tells the
/// readers that keep the bytes elsewhere when the cache drops them.
#[derive(Debug, Clone)]
pub(crate) struct CachedBlock {
    pub bytes: Bytes,
    pub checked: Arc<AtomicBool>,
    pub resident: Resident,
}

/// Tells each evicted block's [`Resident`] watchers, after the cache's lock is released
/// (quick_cache drops the request state outside its locks).
#[derive(Debug, Clone, Default)]
struct NotifyEvicted;

/// Blocks one cache operation evicted.
#[derive(Default)]
struct Evicted(Vec<CachedBlock>);

impl Drop for Evicted {
    fn drop(&mut self) {
        for block in self.0.drain(..) {
            block.resident.evicted();
        }
    }
}

impl Lifecycle<BlockKey, CachedBlock> for NotifyEvicted {
    type RequestState = Evicted;

    fn on_evict(&self, state: &mut Evicted, _key: BlockKey, val: CachedBlock) {
        state.0.push(val);
    }
}

type Blocks = Cache<BlockKey, CachedBlock, ByteWeighter, DefaultHashBuilder, NotifyEvicted>;

/// Blocks of immutable objects, bounded in bytes.
pub struct BlockCache {
    cache: Option<Blocks>,
    block_size: u64,
    capacity: u64,
    /// Where the blocks' bytes live (see [`BlockSlab`]).
    slab: BlockSlab,
    /// Objects with cached blocks → one past their highest cached block, so a `put` or
    /// `delete` of an object can drop its blocks without scanning the cache.
    extents: Mutex<HashMap<Arc<str>, u64>>,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("block_size", &self.block_size)
            .field("capacity", &self.capacity)
            .field("resident", &self.resident_bytes())
            .finish()
    }
}

impl BlockCache {
    /// A cache of up to `capacity_bytes` (blocks plus a small per-block overhead) in blocks
    /// of `block_size` bytes. `capacity_bytes == 0` caches nothing.
    pub fn new(capacity_bytes: u64, block_size: u64) -> Self {
        let block_size = block_size.max(1);
        let blocks = capacity_bytes / (block_size + ENTRY_OVERHEAD);
        let cache = (blocks > 0).then(|| {
            // Each shard holds capacity/shards: keep room for at least 8 blocks per shard,
            // or a block could never be admitted.
            let shards = (blocks / 8).clamp(1, 16) as usize;
            let options = quick_cache::OptionsBuilder::new()
                .estimated_items_capacity(blocks as usize)
                .weight_capacity(capacity_bytes)
                .shards(shards)
                .build()
                .expect("estimated_items_capacity and weight_capacity are set");
            Cache::with_options(
                options,
                ByteWeighter,
                Default::default(),
                Default::default(),
            )
        });
        BlockCache {
            cache,
            slab: BlockSlab::new(block_size),
            block_size,
            capacity: capacity_bytes,
            extents: Mutex::new(HashMap::new()),
        }
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// `data` (at most one block) in memory of its own, apart from the general heap, to be
    /// cached: see [`BlockSlab`].
    pub(crate) fn copy_block(&self, data: &[u8]) -> Bytes {
        self.slab.copy(data)
    }

    /// The configured bound in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity
    }

    /// Bytes held now (blocks plus overhead); never above [`BlockCache::capacity_bytes`].
    pub fn resident_bytes(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weight())
    }

    pub(crate) fn get(&self, object: &Arc<str>, block: u64) -> Option<CachedBlock> {
        let key = BlockKey {
            object: object.clone(),
            block,
        };
        self.cache.as_ref()?.get(&key)
    }

    /// Cache `data` as block `block` of `object` unless the cache holds that block
    /// already; the entry the cache holds (a new one with its unset mark), or, when
    /// nothing is cached, an entry whose [`Resident`] is already evicted.
    pub(crate) fn insert(&self, object: &Arc<str>, block: u64, data: Bytes) -> CachedBlock {
        let entry = CachedBlock {
            bytes: data,
            checked: Arc::new(AtomicBool::new(false)),
            resident: Resident::cached(),
        };
        let Some(cache) = &self.cache else {
            entry.resident.evicted();
            return entry;
        };
        {
            let mut extents = self.extents.lock();
            let end = extents.entry(object.clone()).or_insert(0);
            *end = (*end).max(block + 1);
        }
        let key = BlockKey {
            object: object.clone(),
            block,
        };
        // Never replace a cached copy: a reader may keep the old one in a table of its own,
        // and only an eviction (not a replacement) tells it to let go.
        cache
            .get_or_insert_with(&key, || Ok::<_, std::convert::Infallible>(entry))
            .unwrap_or_else(|never| match never {})
    }

    /// Drop every cached block of `object` (it was replaced or deleted).
    pub(crate) fn invalidate(&self, object: &str) {
        let Some(cache) = &self.cache else { return };
        let Some((object, end)) = self.extents.lock().remove_entry(object) else {
            return;
        };
        for block in 0..end {
            let removed = cache.remove(&BlockKey {
                object: object.clone(),
                block,
            });
            if let Some((_, entry)) = removed {
                entry.resident.evicted();
            }
        }
    }
}

/// The blocks `range` touches, as block indices.
pub(crate) fn blocks_of(range: &Range<u64>, block_size: u64) -> Range<u64> {
    if range.is_empty() {
        return 0..0;
    }
    range.start / block_size..(range.end - 1) / block_size + 1
}

/// Runs of consecutive blocks in `ids` (ascending): each run becomes one ranged GET.
pub(crate) fn runs_of(ids: &[u64]) -> Vec<Range<u64>> {
    let mut runs: Vec<Range<u64>> = Vec::new();
    for &b in ids {
        match runs.last_mut() {
            Some(run) if run.end == b => run.end = b + 1,
            _ => runs.push(b..b + 1),
        }
    }
    runs
}

/// `runs` cut into parts of at most `max` blocks (at least one), in order: one large read
/// becomes parallel ranged requests of one round, as S3 clients split downloads.
pub(crate) fn parts_of(runs: Vec<Range<u64>>, max: u64) -> Vec<Range<u64>> {
    let max = max.max(1);
    let mut out = Vec::with_capacity(runs.len());
    for run in runs {
        let mut at = run.start;
        while at < run.end {
            let end = run.end.min(at + max);
            out.push(at..end);
            at = end;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_ranges() {
        assert_eq!(blocks_of(&(0..1), 10), 0..1);
        assert_eq!(blocks_of(&(9..11), 10), 0..2);
        assert_eq!(blocks_of(&(10..20), 10), 1..2);
        assert_eq!(blocks_of(&(5..5), 10), 0..0);
    }

    #[test]
    fn runs_coalesce_adjacent_missing_blocks() {
        assert_eq!(runs_of(&[4, 5, 7, 10, 11, 12]), vec![4..6, 7..8, 10..13]);
        assert!(runs_of(&[]).is_empty());
        assert_eq!(
            parts_of(vec![0..10, 12..13, 20..24], 4),
            vec![0..4, 4..8, 8..10, 12..13, 20..24]
        );
        assert_eq!(
            parts_of(std::iter::once(3..5).collect(), 0),
            vec![3..4, 4..5]
        );
        assert!(parts_of(Vec::new(), 4).is_empty());
    }

    #[test]
    fn bound_is_respected_and_invalidation_drops_blocks() {
        let cache = BlockCache::new(10 * 1024, 1024);
        let obj: Arc<str> = Arc::from("mem://x/a");
        for b in 0..100 {
            cache.insert(&obj, b, Bytes::from(vec![b as u8; 1024]));
            assert!(cache.resident_bytes() <= cache.capacity_bytes());
        }
        assert!(cache.resident_bytes() > 0);
        let other: Arc<str> = Arc::from("mem://x/b");
        cache.insert(&other, 0, Bytes::from_static(b"keep"));
        cache.invalidate("mem://x/a");
        assert!((0..100).all(|b| cache.get(&obj, b).is_none()));
        assert_eq!(&cache.get(&other, 0).unwrap().bytes[..], b"keep");
    }

    #[test]
    fn watchers_hear_of_evictions_and_invalidations_and_copies_are_not_replaced() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let obj: Arc<str> = Arc::from("mem://x/a");
        // A second copy of a cached block is not cached: the first stays.
        let big = BlockCache::new(1 << 20, 1024);
        let first = big.insert(&obj, 0, Bytes::from(vec![1u8; 1024]));
        let second = big.insert(&obj, 0, Bytes::from(vec![2u8; 1024]));
        assert_eq!((first.bytes[0], second.bytes[0]), (1, 1));
        assert!(Arc::ptr_eq(&first.checked, &second.checked));

        let cache = BlockCache::new(4 * (1024 + ENTRY_OVERHEAD), 1024);
        let gone = Arc::new(AtomicUsize::new(0));
        let watch = |entry: &CachedBlock| {
            let gone = gone.clone();
            entry.resident.watch(Box::new(move || {
                gone.fetch_add(1, Ordering::SeqCst);
            }))
        };
        // Fill the cache, watching every block: exactly the evicted ones are heard of.
        let entries: Vec<CachedBlock> = (0..64)
            .map(|b| {
                let entry = cache.insert(&obj, b, Bytes::from(vec![b as u8; 1024]));
                assert!(watch(&entry));
                entry
            })
            .collect();
        let cached: Vec<bool> = (0..64).map(|b| cache.get(&obj, b).is_some()).collect();
        let evicted = cached.iter().filter(|c| !**c).count();
        assert!(evicted >= 60, "{evicted} of 64 evicted");
        assert_eq!(gone.load(Ordering::SeqCst), evicted);
        for (entry, cached) in entries.iter().zip(&cached) {
            assert_eq!(entry.resident.is_cached(), *cached);
        }
        let first = entries.iter().find(|e| !e.resident.is_cached()).unwrap();
        assert!(!watch(first), "an evicted block takes no watcher");
        let before = gone.load(Ordering::SeqCst);
        // Invalidation tells the watchers of what it drops.
        let last = cache.insert(&obj, 100, Bytes::from(vec![3u8; 1024]));
        assert!(watch(&last));
        cache.invalidate("mem://x/a");
        let still: usize = cached.iter().filter(|c| **c).count();
        assert_eq!(gone.load(Ordering::SeqCst), before + still + 1);
        // Nothing cached: the entry comes back already evicted.
        let none = BlockCache::new(0, 1024).insert(&obj, 0, Bytes::from_static(b"x"));
        assert!(!none.resident.is_cached());
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = BlockCache::new(0, 1024);
        let obj: Arc<str> = Arc::from("o");
        cache.insert(&obj, 0, Bytes::from_static(b"x"));
        assert!(cache.get(&obj, 0).is_none());
        assert_eq!(cache.resident_bytes(), 0);
    }
}
