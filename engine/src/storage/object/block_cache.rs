//! A bounded in-memory cache of fixed-size, aligned blocks of remote objects.
//!
//! Eviction and concurrency come from `quick_cache` (weighted by bytes, S3-FIFO — scan
//! resistant, close to LRU for hot blocks). Each block is its own allocation, so the cached
//! bytes never hold on to a larger buffer and the bound is the memory actually used.
//! One cache may be shared by many storages (keys carry the object's full location).

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use bytes::Bytes;
use parking_lot::Mutex;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use std::collections::HashMap;

/// Bookkeeping per cached block, counted against the bound with its bytes.
const ENTRY_OVERHEAD: u64 = 64;

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
/// fetched again after eviction is a new entry with an unset mark.
#[derive(Debug, Clone)]
pub(crate) struct CachedBlock {
    pub bytes: Bytes,
    pub checked: Arc<AtomicBool>,
}

/// Blocks of immutable objects, bounded in bytes.
pub struct BlockCache {
    cache: Option<Cache<BlockKey, CachedBlock, ByteWeighter>>,
    block_size: u64,
    capacity: u64,
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
            block_size,
            capacity: capacity_bytes,
            extents: Mutex::new(HashMap::new()),
        }
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u64 {
        self.block_size
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

    /// Cache `data` as block `block` of `object`; the entry (with its unset mark).
    pub(crate) fn insert(&self, object: &Arc<str>, block: u64, data: Bytes) -> CachedBlock {
        let entry = CachedBlock {
            bytes: data,
            checked: Arc::new(AtomicBool::new(false)),
        };
        let Some(cache) = &self.cache else {
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
        cache.insert(key, entry.clone());
        entry
    }

    /// Drop every cached block of `object` (it was replaced or deleted).
    pub(crate) fn invalidate(&self, object: &str) {
        let Some(cache) = &self.cache else { return };
        let Some((object, end)) = self.extents.lock().remove_entry(object) else {
            return;
        };
        for block in 0..end {
            cache.remove(&BlockKey {
                object: object.clone(),
                block,
            });
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
    fn zero_capacity_caches_nothing() {
        let cache = BlockCache::new(0, 1024);
        let obj: Arc<str> = Arc::from("o");
        cache.insert(&obj, 0, Bytes::from_static(b"x"));
        assert!(cache.get(&obj, 0).is_none());
        assert_eq!(cache.resident_bytes(), 0);
    }
}
