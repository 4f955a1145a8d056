//! Searching a format-2 index whose hop blocks and vectors are read on demand (a segment
//! on an object store): the walk of [`super::FrozenIndex`] over a space that fetches, per
//! round, the blocks the next distances need.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use crossbeam_epoch as epoch;
use parking_lot::Mutex;

use super::format::NONE;
use super::frozen::{Shape, Within, query_code, rescore_count};
use super::hop::HopIndex;
use super::search::{Limit, Space, prefetch_address};
use super::sq8::{CodesView, code_distance};
use super::{Neighbor, sort_neighbors};
use crate::distance::distance;
use crate::storage::Resident;

/// How a lazy search trades bytes read for rounds of reads (each round costs a
/// first-byte latency of the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAhead {
    /// Each round also reads the blocks of the neighbours of this many of the nearest
    /// nodes not yet expanded (the walk's likely next steps). Answers are unchanged.
    pub lookahead: usize,
    /// Candidates the walk expands per round (1: the mapped walk, same answers; more:
    /// fewer rounds, a wider walk whose answers may differ a little).
    pub batch: usize,
    /// Expand `batch` candidates only in rounds that must read blocks (a neighbour of
    /// the expanded node is in no block table and not read by this query), one in the
    /// others: a warm search (every block in the tables) walks as the mapped one and
    /// gives its answers, a cold one takes the wider walk's fewer rounds.
    pub adaptive: bool,
}

impl Default for ReadAhead {
    fn default() -> Self {
        ReadAhead::EXACT
    }
}

impl ReadAhead {
    /// Read what the walk needs, one expansion per round: the mapped search's answers.
    pub const EXACT: ReadAhead = ReadAhead {
        lookahead: 0,
        batch: 1,
        adaptive: false,
    };

    /// Expand `batch` candidates per round that must read blocks, one per round that
    /// finds every block in memory (see [`ReadAhead::adaptive`]).
    pub const fn adaptive(batch: usize) -> ReadAhead {
        ReadAhead {
            lookahead: 0,
            batch,
            adaptive: true,
        }
    }
}

/// Where a lazy search reads what a format-2 segment does not keep in memory (the hop
/// blocks and the vectors), e.g. ranged reads of an object through its block cache.
pub trait LazySource: Sync {
    /// Hop blocks `ids` (ascending, distinct), each checksummed and checked with
    /// [`HopIndex::check_block`], in that order.
    fn hop_blocks(&self, ids: &[usize]) -> crate::error::Result<Vec<Bytes>>;
    /// The vectors of `rows`, concatenated in that order.
    fn vectors(&self, rows: &[u32]) -> crate::error::Result<Vec<f32>>;
    /// The checked hop blocks a memory cache holds now, by block number, when the source
    /// keeps them in a [`BlockTable`]: a search reads those without calling
    /// [`LazySource::hop_blocks`].
    fn hop_table(&self) -> Option<&BlockTable> {
        None
    }
    /// `n` reads were served by the [`BlockTable`]s: count them as memory-cache hits.
    fn table_hits(&self, _n: u64) {}
}

/// Owner maps of a [`BlockTable`]: keeps and releases of different blocks rarely wait
/// for each other.
const OWNER_SHARDS: usize = 64;

/// The blocks of one section that a memory cache holds, by block number: a warm search
/// reads a cached block with one atomic load, no lock and no reference count, instead of
/// looking it up in the cache (a hash of the object's name, a shard lock, reference
/// counts) and pinning it.
/// A block is kept here only while its cache holds it ([`BlockTable::keep`] registers a
/// [`Resident`] watcher that removes it when the cache drops it), so the table shares the
/// cache's bytes and adds an address (8 bytes) per block of the section and an owner
/// entry (about 50 bytes) per block it holds.
/// Only checked blocks are kept.
///
/// Reads are epoch-protected (crossbeam-epoch): a search pins once ([`BlockTable::pin`],
/// one fence per search) and then reads a block with a plain load of its address
/// ([`BlockTable::read`]). A block the cache drops leaves the table at once (the address
/// becomes 0, so no later read and no [`BlockTable::held`] sees it), but its bytes are
/// freed only after every search pinned at that moment has ended: a search that loaded
/// the old address keeps reading valid, unchanged bytes (a block of an immutable
/// segment), as a search that pinned the block after a miss would. Those bytes are
/// outside the cache's bound for the length of a search, like a search's pinned misses.
pub struct BlockTable {
    /// Per block, where its held bytes are (0: not held): set after `owners` holds them,
    /// cleared before `owners` lets go of them; read without a lock, under an epoch pin
    /// when the bytes are dereferenced. Dense (8 blocks per cache line, 8 bytes per 4 KiB
    /// block) and written only when a block comes or goes, so a warm walk's loads of
    /// scattered blocks' addresses mostly hit the CPU's caches.
    addrs: Box<[AtomicUsize]>,
    /// Per held block, the reference that keeps its bytes alive, in [`OWNER_SHARDS`]
    /// maps by block number (a slot per block of the section cost 40 bytes each: 7.5 MB
    /// for the 190k blocks of a 1M-row segment, most never held): taken by
    /// [`BlockTable::keep`], [`BlockTable::release`] and [`BlockTable::get`] only, never
    /// by a warm read.
    owners: Box<[Mutex<HashMap<usize, Bytes>>]>,
    /// Bytes per block, and of the section (the last block may be shorter).
    block_len: usize,
    len: usize,
}

/// A search's pin of every [`BlockTable`]: bytes read from a table under it stay valid
/// until it is dropped (see [`BlockTable`]). Pin once per search, not per read. A pinned
/// search delays freeing what the cache evicts meanwhile until it ends; a lazy walk holds
/// its pin through its rounds of block reads too, so a cold search's evicted blocks may
/// outlive the cache's bound by that search's length (its own misses are pinned as long).
pub struct TablePin {
    _guard: epoch::Guard,
}

impl std::fmt::Debug for BlockTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockTable")
            .field("blocks", &self.addrs.len())
            .field("held", &self.held())
            .finish()
    }
}

impl BlockTable {
    /// An empty table of `blocks` blocks of a section of `len` bytes, `block_len` bytes
    /// each (the last one shorter when `len` is not a multiple).
    pub fn new(blocks: usize, block_len: usize, len: usize) -> Arc<BlockTable> {
        Arc::new(BlockTable {
            addrs: (0..blocks).map(|_| AtomicUsize::new(0)).collect(),
            owners: (0..OWNER_SHARDS.min(blocks.max(1)))
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            block_len,
            len,
        })
    }

    /// Pin the tables for one search (see [`TablePin`]).
    #[inline]
    pub fn pin() -> TablePin {
        TablePin {
            _guard: epoch::pin(),
        }
    }

    /// The length of block `b` (every copy of it has this length).
    #[inline]
    fn len_of(&self, b: usize) -> usize {
        self.len
            .saturating_sub(b.saturating_mul(self.block_len))
            .min(self.block_len)
    }

    /// Whether block `b` is (very likely) held.
    #[inline]
    pub fn holds(&self, b: usize) -> bool {
        self.addrs
            .get(b)
            .is_some_and(|a| a.load(Ordering::Relaxed) != 0)
    }

    /// Hint the CPU to load `len` bytes at `offset` of block `b`, if it is held.
    #[inline]
    pub fn prefetch(&self, b: usize, offset: usize, len: usize) {
        if let Some(a) = self.addrs.get(b) {
            let at = a.load(Ordering::Relaxed);
            if at != 0 {
                prefetch_address(at + offset, len);
            }
        }
    }

    /// Block `b`'s bytes, when the table holds it: valid while `pin` lives.
    #[inline]
    pub fn read<'g>(&'g self, b: usize, _pin: &'g TablePin) -> Option<&'g [u8]> {
        let at = self.addrs.get(b)?.load(Ordering::Acquire);
        if at == 0 {
            return None;
        }
        // SAFETY: a non-zero address is the start of a `Bytes` of `len_of(b)` bytes (`keep`
        // checks the length) that `keep` stored (Release) after putting that `Bytes` in
        // its owner map, so the Acquire load makes its contents visible here. The `Bytes`
        // stays alive while the table holds it; `release` clears the address first and
        // then hands the `Bytes` to the epoch collector (`Guard::defer`), which drops it
        // only after every thread pinned when the address could still be loaded has
        // unpinned. This thread is pinned by `pin` for all of `'g`, and `'g` also borrows
        // the table (whose drop would drop the `Bytes` at once), so the bytes are neither
        // freed nor changed (`Bytes` is immutable) while the slice lives.
        Some(unsafe { std::slice::from_raw_parts(at as *const u8, self.len_of(b)) })
    }

    /// The owner map of block `b`.
    fn owner(&self, b: usize) -> &Mutex<HashMap<usize, Bytes>> {
        &self.owners[b % self.owners.len()]
    }

    /// Block `b`, when the table holds it.
    pub fn get(&self, b: usize) -> Option<Bytes> {
        self.owner(b).lock().get(&b).cloned()
    }

    /// Blocks held now.
    pub fn held(&self) -> usize {
        self.addrs
            .iter()
            .filter(|a| a.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// Keep `bytes`, checked, as block `b` for as long as `resident`'s cache holds it.
    pub fn keep(self: &Arc<Self>, b: usize, bytes: &Bytes, resident: &Resident) {
        let Some(addr) = self.addrs.get(b) else {
            return;
        };
        if bytes.is_empty() || bytes.len() != self.len_of(b) || addr.load(Ordering::Relaxed) != 0 {
            return;
        }
        let mut held = self.owner(b).lock();
        if held.contains_key(&b) {
            return;
        }
        let table = Arc::downgrade(self);
        let release = Box::new(move || {
            if let Some(t) = table.upgrade() {
                t.release(b);
            }
        });
        // Under the block's owner lock: an eviction after `watch` waits for it, then
        // empties it.
        if resident.watch(release) {
            let at = bytes.as_ptr() as usize;
            held.insert(b, bytes.clone());
            addr.store(at, Ordering::Release);
        }
    }

    /// The cache dropped block `b` (or a copy of it): let go of it, freeing its bytes once
    /// no pinned search can be reading them.
    fn release(&self, b: usize) {
        let Some(addr) = self.addrs.get(b) else {
            return;
        };
        let guard = epoch::pin();
        let old = {
            let mut held = self.owner(b).lock();
            addr.store(0, Ordering::Release);
            held.remove(&b)
        };
        if let Some(bytes) = old {
            guard.defer(move || drop(bytes));
            // Hand it to the collector now rather than when this thread's bag fills up,
            // so an idle thread does not keep evicted blocks alive.
            guard.flush();
        }
    }
}

impl HopIndex {
    /// The entry row (`u32::MAX` when empty).
    pub fn entry(&self) -> u32 {
        self.meta.entry
    }

    /// The hop block holding `row`.
    pub fn block_of(&self, row: u32) -> usize {
        (row >> self.shift) as usize
    }

    pub(super) fn shape(&self) -> Shape {
        Shape {
            metric: self.metric,
            dim: self.dim,
            rows: self.rows,
            entry: self.meta.entry,
            max_level: self.meta.max_level,
        }
    }

    /// [`HopIndex::search_within`] reading hop blocks and vectors from `source` as the
    /// walk reaches them: each hop's missing blocks in one call, the rescored vectors in
    /// one more. The same graph and rows give the same answer as the mapped search; a
    /// failed read is an error, never a partial answer.
    /// `ahead` trades bytes for rounds (see [`ReadAhead`]).
    #[allow(clippy::too_many_arguments)]
    pub fn search_lazy(
        &self,
        source: &dyn LazySource,
        ahead: ReadAhead,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
        selectivity: f32,
        within: Within,
    ) -> crate::error::Result<Vec<Neighbor>> {
        if k == 0 || self.rows == 0 || query.len() != self.dim {
            return Ok(Vec::new());
        }
        let shape = self.shape();
        let Some(ef) = shape.plan(k, ef, selectivity) else {
            return self.exact_lazy(source, query, k, accept);
        };
        let quant = CodesView::quantizer(self.kind, &self.meta.offsets, &self.meta.scales);
        let space = LazySpace {
            index: self,
            source,
            table: source.hop_table(),
            pin: BlockTable::pin(),
            hits: Cell::new(0),
            blocks: RefCell::new(HashMap::new()),
            error: RefCell::new(None),
            query: query_code(self.metric, &quant, query),
            frontier: RefCell::new(BinaryHeap::new()),
            expanded: RefCell::new(HashSet::new()),
            lookahead: ahead.lookahead,
            batch: ahead.batch.max(1),
            adaptive: ahead.adaptive,
            missing: Cell::new(true),
        };
        let limit = Limit {
            bound: quant.bound(self.metric, within.dist),
            keep: within.keep,
        };
        let found = shape.walk(&space, ef, limit, accept);
        source.table_hits(space.hits.get());
        drop(space.pin);
        if let Some(e) = space.error.into_inner() {
            return Err(e);
        }
        if found.len() < within.needed(k) {
            return self.exact_lazy(source, query, k, accept);
        }
        let rows: Vec<u32> = found[..rescore_count(found.len(), k)]
            .iter()
            .map(|n| n.row)
            .collect();
        self.best(source, &rows, query, k)
    }

    /// Exact distances of `rows` (read from `source`); the best `k`.
    fn best(
        &self,
        source: &dyn LazySource,
        rows: &[u32],
        query: &[f32],
        k: usize,
    ) -> crate::error::Result<Vec<Neighbor>> {
        let data = source.vectors(rows)?;
        let mut out: Vec<Neighbor> = rows
            .iter()
            .zip(data.chunks_exact(self.dim))
            .map(|(&row, v)| Neighbor {
                dist: distance(self.metric, query, v),
                row,
            })
            .collect();
        sort_neighbors(&mut out);
        out.truncate(k);
        Ok(out)
    }

    fn exact_lazy(
        &self,
        source: &dyn LazySource,
        query: &[f32],
        k: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> crate::error::Result<Vec<Neighbor>> {
        let rows: Vec<u32> = (0..self.rows).filter(|&r| accept(r)).collect();
        self.best(source, &rows, query, k)
    }
}

/// A hop section read on demand, seen from one query: blocks the source's [`BlockTable`]
/// holds are read there; the others are fetched, each hop's in one round, and stay pinned
/// for the query. The first failed read stops the walk (every later distance is
/// infinite) and becomes the search's error.
struct LazySpace<'a> {
    index: &'a HopIndex,
    source: &'a dyn LazySource,
    table: Option<&'a BlockTable>,
    /// Keeps what this query reads from `table` valid (see [`BlockTable`]).
    pin: TablePin,
    /// Records read from `table` (memory-cache hits, counted once per query).
    hits: Cell<u64>,
    blocks: RefCell<HashMap<usize, Bytes>>,
    error: RefCell<Option<crate::error::Error>>,
    query: Vec<i8>,
    /// Nodes with a distance, nearest first (by [`order_key`]), and those expanded: the
    /// nearest unexpanded ones are what the walk expands next.
    frontier: RefCell<BinaryHeap<Reverse<(u32, u32)>>>,
    expanded: RefCell<HashSet<u32>>,
    lookahead: usize,
    batch: usize,
    /// [`ReadAhead::adaptive`]: widen only while `missing`, which says whether a
    /// neighbour of the node last expanded lacks its block.
    adaptive: bool,
    missing: Cell<bool>,
}

/// `f32` distances as `u32`s in the same order.
fn order_key(d: f32) -> u32 {
    let b = d.to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
}

/// The layer-0 links in a record's first `m0` slots, up to the first empty one.
#[inline]
fn push_links(record: &[u8], m0: usize, out: &mut Vec<u32>) {
    out.extend(
        record[..4 * m0]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .take_while(|&nb| nb != NONE),
    );
}

impl LazySpace<'_> {
    /// The links of the `lookahead` nearest unexpanded nodes whose blocks are read: the
    /// walk is likely to reach these next, so a round reads their blocks too.
    fn ahead(&self) -> Vec<u32> {
        let mut frontier = self.frontier.borrow_mut();
        let expanded = self.expanded.borrow();
        let mut best = Vec::with_capacity(self.lookahead);
        while best.len() < self.lookahead {
            match frontier.pop() {
                Some(Reverse(item)) if !expanded.contains(&item.1) => best.push(item),
                Some(_) => {}
                None => break,
            }
        }
        let mut out = Vec::new();
        for &item in &best {
            frontier.push(Reverse(item));
            self.links(item.1, &mut out);
        }
        out
    }

    /// Byte offset of `node`'s record in its block.
    #[inline]
    fn at(&self, node: u32) -> usize {
        let mask = (1u32 << self.index.shift) - 1;
        (node & mask) as usize * self.index.meta.record as usize
    }

    /// `f` of `node`'s record, if its block is in the table or was read by this query.
    #[inline]
    fn with_record<R>(&self, node: u32, mut f: impl FnMut(&[u8]) -> R) -> Option<R> {
        let b = self.index.block_of(node);
        let at = self.at(node);
        let record = self.index.meta.record as usize;
        if let Some(t) = self.table
            && let Some(block) = t.read(b, &self.pin)
        {
            self.hits.set(self.hits.get() + 1);
            return Some(f(&block[at..at + record]));
        }
        let local = self.blocks.borrow();
        local.get(&b).map(|block| f(&block[at..at + record]))
    }

    /// Append `node`'s layer-0 links to `out`; `false` when its block is not read.
    fn links(&self, node: u32, out: &mut Vec<u32>) -> bool {
        let m0 = self.index.meta.m0 as usize;
        self.with_record(node, |r| push_links(r, m0, out)).is_some()
    }

    /// Whether `node`'s block needs reading: neither read by this query nor (likely) in
    /// the table.
    #[inline]
    fn lacks(&self, b: usize) -> bool {
        !self.table.is_some_and(|t| t.holds(b)) && !self.blocks.borrow().contains_key(&b)
    }

    /// Read blocks `ids` (ascending, distinct) into this query's blocks.
    fn read(&self, ids: Vec<usize>) {
        match self.source.hop_blocks(&ids) {
            Ok(got) => self.blocks.borrow_mut().extend(ids.into_iter().zip(got)),
            Err(e) => *self.error.borrow_mut() = Some(e),
        }
    }

    /// Read `node`'s block now (the table's hint was stale, or a descent reached it).
    fn read_one(&self, node: u32) {
        if self.error.borrow().is_none() {
            self.read(vec![self.index.block_of(node)]);
        }
    }
}

impl Space for LazySpace<'_> {
    fn neighbors(&self, node: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        if level > 0 {
            let slots = self.index.upper_links(node, level);
            out.extend(slots.iter().copied().take_while(|&nb| nb != NONE));
            return;
        }
        if self.lookahead > 0 {
            self.expanded.borrow_mut().insert(node);
        }
        if !self.links(node, out) {
            // An upper row reached by the descent (its distance came from the directory),
            // or a block the cache dropped since the table's hint.
            self.read_one(node);
            self.links(node, out);
        }
        if self.adaptive {
            let lacks = out.iter().any(|&nb| self.lacks(self.index.block_of(nb)));
            self.missing.set(lacks);
        }
    }

    fn dist(&self, node: u32) -> f32 {
        let d = self.dist_now(node);
        if self.lookahead > 0 && d < f32::INFINITY {
            self.frontier
                .borrow_mut()
                .push(Reverse((order_key(d), node)));
        }
        d
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        if let Some(t) = self.table {
            let m0 = self.index.meta.m0 as usize * 4;
            t.prefetch(
                self.index.block_of(node),
                self.at(node) + m0,
                self.index.dim,
            );
        }
    }

    #[inline]
    fn prefetch_links(&self, node: u32) {
        if let Some(t) = self.table {
            let m0 = self.index.meta.m0 as usize * 4;
            t.prefetch(self.index.block_of(node), self.at(node), m0);
        }
    }

    fn batch(&self) -> usize {
        if self.adaptive && !self.missing.get() {
            1
        } else {
            self.batch
        }
    }

    fn fetch(&self, nodes: &[u32]) {
        if self.error.borrow().is_some() {
            return;
        }
        let ahead = if self.lookahead > 0 {
            self.ahead()
        } else {
            Vec::new()
        };
        let mut ids: Vec<usize> = nodes
            .iter()
            .chain(&ahead)
            .map(|&n| self.index.block_of(n))
            .filter(|&b| self.lacks(b))
            .collect();
        if ids.is_empty() {
            return;
        }
        ids.sort_unstable();
        ids.dedup();
        self.read(ids);
    }
}

impl LazySpace<'_> {
    fn dist_now(&self, node: u32) -> f32 {
        let (kind, query) = (self.index.kind, &self.query[..]);
        let (m0, dim) = (self.index.meta.m0 as usize * 4, self.index.dim);
        let code = |r: &[u8]| code_distance(kind, query, bytemuck::cast_slice(&r[m0..m0 + dim]));
        if let Some(d) = self.with_record(node, code) {
            return d;
        }
        if let Ok(i) = self.index.meta.upper_rows.binary_search(&node) {
            // An upper row (the descent): its code is in the directory.
            let code = &self.index.meta.upper_codes[i * dim..(i + 1) * dim];
            return code_distance(kind, query, code);
        }
        // The cache dropped the block since the table's hint: read it now.
        self.read_one(node);
        // Unread (a failed read stopped the walk): never closer than anything.
        self.with_record(node, code).unwrap_or(f32::INFINITY)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    use super::*;

    /// Bytes that say when they are freed.
    struct Watched(Vec<u8>, Arc<AtomicBool>);

    impl AsRef<[u8]> for Watched {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }

    impl Drop for Watched {
        fn drop(&mut self) {
            self.1.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_dropped_block_leaves_the_table_at_once_and_is_freed_after_its_readers() {
        // Three blocks of 8, 8 and 4 bytes.
        let table = BlockTable::new(3, 8, 20);
        let freed = Arc::new(AtomicBool::new(false));
        let bytes = Bytes::from_owner(Watched((0..8).collect(), freed.clone()));
        let resident = Resident::cached();
        table.keep(2, &bytes, &resident);
        assert!(!table.holds(2), "a block of another length is not kept");
        table.keep(1, &bytes, &resident);
        drop(bytes);
        assert!(table.holds(1) && table.held() == 1);
        assert_eq!(table.get(1).as_deref(), Some(&[0, 1, 2, 3, 4, 5, 6, 7][..]));

        let pin = BlockTable::pin();
        let seen = table.read(1, &pin).unwrap();
        // The cache drops the block: the table lets go at once...
        resident.evicted();
        assert!(!table.holds(1) && table.held() == 0);
        assert!(table.read(1, &pin).is_none() && table.get(1).is_none());
        // ...but a search pinned before still reads the same bytes, which stay allocated.
        assert_eq!(seen, &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(!freed.load(Ordering::SeqCst));
        drop(pin);
        // Freed once no search pinned then remains (other tests' pins may delay it: poll).
        let deadline = Instant::now() + Duration::from_secs(30);
        while !freed.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the released block was never freed"
            );
            epoch::pin().flush();
            std::thread::yield_now();
        }
        // A block its cache no longer holds is not kept.
        table.keep(1, &Bytes::from(vec![9u8; 8]), &resident);
        assert!(!table.holds(1));
    }
}
