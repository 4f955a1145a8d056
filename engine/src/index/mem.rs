//! The memtable's HNSW graph: rows are inserted concurrently (distinct rows from many
//! threads) while other threads search it.
//!
//! Concurrency: every node has its own mutex, taken only by writers changing that node's
//! links (never two at once, so no lock order to get wrong). Links live in atomics, so a
//! reader never locks: it loads a list's length (acquire) and then its slots. A reader
//! racing a rewrite may see a mix of the old and new list; every slot always holds a row
//! that was being inserted, so the walk stays valid. The entry point is one atomic word;
//! a short mutex serialises the rare inserts that raise the top layer.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::format::{GraphLayout, GraphParts, GraphView, NONE};
use super::frozen::Within;
use super::level::random_level;
use super::search::{Limit, Space, beam, beam_within, greedy, prefetch_slice};
use super::select::select_neighbors;
use super::visited::with_workspace;
use super::{IndexBytes, IndexParams, Neighbor, Vectors, brute_force, sq8};
use crate::chunked::Chunked;
use crate::distance::distance;
use crate::types::Metric;

const EMPTY: u64 = u64::MAX;
const FREE: u8 = 0;
const INSERTING: u8 = 1;
const DONE: u8 = 2;

/// The memtable's index: accepts concurrent inserts of distinct rows while being searched.
pub struct MemIndex {
    params: IndexParams,
    metric: Metric,
    dim: usize,
    /// Links per node on the upper layers.
    m: usize,
    /// Links per node on layer 0.
    m0: usize,
    /// Layer 0, `m0 + 1` words per row: the length, then the slots. Like every per-row
    /// array here it grows in chunks as rows are inserted.
    links0: Chunked<AtomicU32>,
    /// Layers `1..=level` of rows above layer 0, `m + 1` words per layer.
    upper: Chunked<OnceLock<Box<[AtomicU32]>>>,
    levels: Chunked<AtomicU8>,
    state: Chunked<AtomicU8>,
    locks: Chunked<Mutex<()>>,
    /// One past the highest row whose insert began: searches size their visited set by it.
    high: AtomicUsize,
    /// `level << 32 | row` of the entry point, or [`EMPTY`].
    entry: AtomicU64,
    entry_lock: Mutex<()>,
    len: AtomicUsize,
}

impl std::fmt::Debug for MemIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemIndex")
            .field("metric", &self.metric)
            .field("dim", &self.dim)
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish()
    }
}

fn atomics(n: usize) -> Box<[AtomicU32]> {
    (0..n).map(|_| AtomicU32::new(0)).collect()
}

impl MemIndex {
    /// An empty index for up to `capacity` rows.
    pub fn new(params: IndexParams, metric: Metric, dim: usize, capacity: usize) -> Self {
        let m = params.m.clamp(2, 256);
        let m0 = 2 * m;
        MemIndex {
            params,
            metric,
            dim,
            m,
            m0,
            links0: Chunked::new(capacity, m0 + 1, || AtomicU32::new(0)),
            upper: Chunked::new(capacity, 1, OnceLock::new),
            levels: Chunked::new(capacity, 1, || AtomicU8::new(0)),
            state: Chunked::new(capacity, 1, || AtomicU8::new(FREE)),
            locks: Chunked::new(capacity, 1, || Mutex::new(())),
            high: AtomicUsize::new(0),
            entry: AtomicU64::new(EMPTY),
            entry_lock: Mutex::new(()),
            len: AtomicUsize::new(0),
        }
    }

    /// An index for up to `capacity` rows that starts as a copy of a segment's graph and
    /// takes more rows with [`MemIndex::insert`]: a merge extends the largest input's graph
    /// with the other rows instead of rebuilding it. `kept` lists the graph's rows that
    /// stay (ascending): the i-th of them becomes row i, with its layers and links. A row
    /// that linked to a dropped one is repaired as in hnswlib: the dropped neighbour's
    /// links become candidates and the neighbour heuristic picks the row's list again
    /// (distances through `vectors`, which holds the new rows). The entry point moves to
    /// a kept row on the highest remaining layer if it was dropped. `None` when the graph
    /// does not fit: other degrees than `params` give, more rows than `capacity`, `kept`
    /// not ascending or past the graph.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_graph(
        params: IndexParams,
        metric: Metric,
        dim: usize,
        capacity: usize,
        graph: &GraphView<'_>,
        layout: &GraphLayout,
        kept: &[u32],
        vectors: &dyn Vectors,
    ) -> Option<Self> {
        let index = MemIndex::new(params, metric, dim, capacity);
        let old_rows = layout.rows as usize;
        let fits = index.m == graph.m
            && index.m0 == graph.m0
            && kept.len() <= capacity
            && kept.windows(2).all(|w| w[0] < w[1])
            && kept.last().is_none_or(|&r| (r as usize) < old_rows);
        if !fits {
            return None;
        }
        let mut new_of = vec![NONE; old_rows];
        for (new, &old) in kept.iter().enumerate() {
            new_of[old as usize] = new as u32;
        }
        let mut list = Vec::with_capacity(index.m0);
        let mut cands: Vec<u32> = Vec::new();
        for (new, &old) in kept.iter().enumerate() {
            let row = new as u32;
            let level = graph.levels[old as usize] as usize;
            index.levels.at(row).store(level as u8, Ordering::Relaxed);
            if level > 0 {
                index
                    .upper
                    .at(row)
                    .get_or_init(|| atomics(level * (index.m + 1)));
            }
            for l in 0..=level {
                let links = || graph.links(old, l).iter().take_while(|&&nb| nb != NONE);
                list.clear();
                list.extend(
                    links()
                        .map(|&nb| new_of[nb as usize])
                        .filter(|&nb| nb != NONE),
                );
                if list.len() < links().count() {
                    // Repair: the dropped neighbours' kept links are candidates too.
                    cands.clear();
                    cands.extend_from_slice(&list);
                    for &gone in links().filter(|&&nb| new_of[nb as usize] == NONE) {
                        cands.extend(
                            graph
                                .links(gone, l)
                                .iter()
                                .take_while(|&&nb| nb != NONE)
                                .map(|&nb| new_of[nb as usize])
                                .filter(|&nb| nb != NONE && nb != row),
                        );
                    }
                    cands.sort_unstable();
                    cands.dedup();
                    let base = vectors.get(row);
                    let mut scored: Vec<Neighbor> = cands
                        .iter()
                        .map(|&r| Neighbor {
                            dist: distance(metric, base, vectors.get(r)),
                            row: r,
                        })
                        .collect();
                    super::sort_neighbors(&mut scored);
                    let cap = if l == 0 { index.m0 } else { index.m };
                    let pair = |a: u32, b: u32| distance(metric, vectors.get(a), vectors.get(b));
                    list = select_neighbors(&scored, cap, pair);
                }
                write_list(index.slots_alloc(row, l)?, &list);
            }
            index.state.at(row).store(DONE, Ordering::Relaxed);
        }
        index.high.store(kept.len(), Ordering::Release);
        index.len.store(kept.len(), Ordering::Release);
        let entry = match new_of.get(layout.entry as usize) {
            Some(&new) if new != NONE => Some((new, layout.max_level as usize)),
            _ => kept
                .iter()
                .enumerate()
                .max_by_key(|(i, old)| (graph.levels[**old as usize], std::cmp::Reverse(*i)))
                .map(|(i, old)| (i as u32, graph.levels[*old as usize] as usize)),
        };
        if let Some((row, level)) = entry {
            index.entry.store(pack(row, level), Ordering::Release);
        }
        Some(index)
    }

    /// How many rows the index was sized for.
    pub fn capacity(&self) -> usize {
        self.state.capacity()
    }

    /// Rows a walk can meet now (one past the highest row whose insert began).
    fn high(&self) -> usize {
        self.high.load(Ordering::Acquire)
    }

    /// How many rows are fully inserted.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether no row is inserted yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Insert `row`, whose vector is readable through `vectors`. Thread-safe for distinct rows.
    /// A row past the capacity or inserted twice is ignored (and logged).
    pub fn insert(&self, row: u32, vectors: &dyn Vectors) {
        let Some(state) = self.state.get(row).map(|s| &s[0]) else {
            tracing::error!(
                row,
                capacity = self.capacity(),
                "index insert past capacity"
            );
            return;
        };
        if state
            .compare_exchange(FREE, INSERTING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            tracing::error!(row, "index insert of a row already inserted");
            return;
        }
        // Allocate the row's layer-0 list before any walk can reach the row.
        if self.links0.get(row).is_none() {
            return;
        }
        self.high.fetch_max(row as usize + 1, Ordering::AcqRel);
        let level = random_level(self.params.seed, row, self.m);
        self.levels.at(row).store(level as u8, Ordering::Release);
        if level > 0 {
            self.upper
                .at(row)
                .get_or_init(|| atomics(level * (self.m + 1)));
        }
        self.link(row, level, vectors);
        state.store(DONE, Ordering::Release);
        self.len.fetch_add(1, Ordering::AcqRel);
    }

    /// Connect a new row into every layer up to `level`.
    fn link(&self, row: u32, level: usize, vectors: &dyn Vectors) {
        let mut raising = None;
        let mut ep = self.entry.load(Ordering::Acquire);
        if ep == EMPTY || level > unpack(ep).1 {
            let guard = self.entry_lock.lock();
            ep = self.entry.load(Ordering::Acquire);
            if ep == EMPTY {
                self.entry.store(pack(row, level), Ordering::Release);
                return;
            }
            if level > unpack(ep).1 {
                raising = Some(guard);
            }
        }
        let (ep_row, top) = unpack(ep);
        let space = MemSpace {
            index: self,
            vectors,
            query: vectors.get(row),
        };
        let ef = self.params.ef_construction.max(self.m);
        let found: Vec<Vec<Neighbor>> = with_workspace(self.high(), |visited, scratch| {
            let mut cur = Neighbor {
                dist: space.dist(ep_row),
                row: ep_row,
            };
            for l in (level + 1..=top).rev() {
                cur = greedy(&space, cur, l, scratch);
            }
            let start = [cur];
            let mut found: Vec<Vec<Neighbor>> = Vec::new();
            for l in (0..=level.min(top)).rev() {
                visited.reset(self.high());
                let entries = found.last().map_or(&start[..], |f| &f[..]);
                let next = beam(&space, visited, scratch, entries, l, ef, |r| r != row);
                found.push(next);
            }
            found
        });
        // Link bottom-up: once `row` is reachable on a layer, its lists on the layers
        // below are already filled, so a walk never reaches it and finds a dead end.
        for (l, found) in found.iter().rev().enumerate() {
            self.connect(row, l, found, vectors);
        }
        if raising.is_some() {
            self.entry.store(pack(row, level), Ordering::Release);
        }
    }

    /// Link `row` to the best diverse subset of `found` on `level`, and back.
    fn connect(&self, row: u32, level: usize, found: &[Neighbor], vectors: &dyn Vectors) {
        let pair = |a: u32, b: u32| distance(self.metric, vectors.get(a), vectors.get(b));
        let chosen = select_neighbors(found, self.m, pair);
        // Concurrent inserts may already have linked themselves to `row` on this layer
        // (they found it on a layer above): merge, never overwrite.
        self.add_links(row, level, &chosen, vectors);
        for &nb in &chosen {
            self.add_links(nb, level, &[row], vectors);
        }
    }

    /// Add `new` to the links of `node` on `level`, pruning with the heuristic when the
    /// list overflows.
    fn add_links(&self, node: u32, level: usize, new: &[u32], vectors: &dyn Vectors) {
        let cap = if level == 0 { self.m0 } else { self.m };
        let Some(lock) = self.locks.get(node) else {
            return;
        };
        let _guard = lock[0].lock();
        let Some(slots) = self.slots(node, level) else {
            return;
        };
        let mut list = Vec::with_capacity(cap + new.len());
        read_list(slots, &mut list);
        let before = list.len();
        for &r in new {
            if r != node && !list.contains(&r) {
                list.push(r);
            }
        }
        if list.len() == before {
            return;
        }
        if list.len() <= cap {
            for (slot, &r) in slots[before + 1..].iter().zip(&list[before..]) {
                slot.store(r, Ordering::Relaxed);
            }
            slots[0].store(list.len() as u32, Ordering::Release);
            return;
        }
        let base = vectors.get(node);
        let mut cands: Vec<Neighbor> = list
            .iter()
            .map(|&r| Neighbor {
                dist: distance(self.metric, base, vectors.get(r)),
                row: r,
            })
            .collect();
        super::sort_neighbors(&mut cands);
        let pair = |a: u32, b: u32| distance(self.metric, vectors.get(a), vectors.get(b));
        write_list(slots, &select_neighbors(&cands, cap, pair));
    }

    /// [`MemIndex::slots`], allocating the layer-0 chunk of `row` if needed.
    fn slots_alloc(&self, row: u32, level: usize) -> Option<&[AtomicU32]> {
        if level == 0 {
            return self.links0.get(row);
        }
        self.slots(row, level)
    }

    /// The length word and slots of `row`'s list on `level`, if it has one.
    fn slots(&self, row: u32, level: usize) -> Option<&[AtomicU32]> {
        if level == 0 {
            return self.links0.peek(row);
        }
        let upper = self.upper.peek(row)?[0].get()?;
        let stride = self.m + 1;
        upper.get((level - 1) * stride..level * stride)
    }

    /// The `k` best accepted rows, searching with width `ef`.
    pub fn search(
        &self,
        vectors: &dyn Vectors,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<Neighbor> {
        self.search_within(vectors, query, k, ef, accept, Within::NONE)
    }

    /// [`MemIndex::search`] that stops early once it cannot beat `within.dist` (see
    /// [`Within`]).
    pub fn search_within(
        &self,
        vectors: &dyn Vectors,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
        within: Within,
    ) -> Vec<Neighbor> {
        let limit = Limit {
            bound: within.dist,
            keep: within.keep,
        };
        let ep = self.entry.load(Ordering::Acquire);
        if k == 0 || ep == EMPTY {
            return Vec::new();
        }
        let (ep_row, top) = unpack(ep);
        let space = MemSpace {
            index: self,
            vectors,
            query,
        };
        let high = self.high();
        let mut found = with_workspace(high, |visited, scratch| {
            let mut cur = Neighbor {
                dist: space.dist(ep_row),
                row: ep_row,
            };
            for l in (1..=top).rev() {
                cur = greedy(&space, cur, l, scratch);
            }
            beam_within(
                &space,
                visited,
                scratch,
                &[cur],
                0,
                ef.max(k),
                limit,
                accept,
            )
        });
        if found.len() < within.needed(k) {
            // Too few accepted rows reached (a very selective filter): answer exactly.
            let done = (0..high as u32).filter(|&r| {
                self.state
                    .peek(r)
                    .is_some_and(|s| s[0].load(Ordering::Acquire) == DONE)
            });
            return brute_force(self.metric, vectors, query, done, k, accept);
        }
        found.truncate(k);
        found
    }

    /// Serialize the index of rows `0..rows` for a segment (no rebuild), every row
    /// reachable from the entry point (see [`super::repair`]).
    pub fn to_bytes(&self, rows: u32, vectors: &dyn Vectors) -> IndexBytes {
        let mut graph = self.graph_parts(rows.min(self.capacity() as u32));
        let ef = self.params.ef_construction.max(self.m0);
        let nearest = |row: u32, reach: &[bool]| -> Vec<u32> {
            let accept = |r: u32| reach.get(r as usize).copied().unwrap_or(false);
            self.search(vectors, vectors.get(row), self.m0, ef, &accept)
                .into_iter()
                .map(|n| n.row)
                .collect()
        };
        let pair = |a: u32, b: u32| distance(self.metric, vectors.get(a), vectors.get(b));
        let linked = super::repair::link_unreachable(&mut graph, nearest, pair);
        if linked > 0 {
            tracing::debug!(
                linked,
                rows = graph.rows,
                "linked rows no graph walk reached"
            );
        }
        let codes = sq8::encode_section(self.metric, self.dim, graph.rows, vectors);
        IndexBytes {
            graph: graph.encode(),
            codes,
        }
    }

    /// Snapshot the links of rows `0..rows`, dropping links to rows outside that range.
    fn graph_parts(&self, rows: u32) -> GraphParts {
        let levels: Vec<u8> = (0..rows)
            .map(|r| {
                let level = self
                    .levels
                    .peek(r)
                    .map_or(0, |l| l[0].load(Ordering::Acquire));
                let has_upper = self.upper.peek(r).is_some_and(|u| u[0].get().is_some());
                if has_upper { level } else { 0 }
            })
            .collect();
        let mut parts = GraphParts::new(self.m as u32, self.m0 as u32, levels.clone());
        let mut list = Vec::with_capacity(self.m0);
        for r in 0..rows {
            let level = levels[r as usize] as usize;
            for l in 0..=level {
                list.clear();
                if let Some(slots) = self.slots(r, l) {
                    read_list(slots, &mut list);
                }
                list.retain(|&nb| nb < rows && levels[nb as usize] as usize >= l && nb != r);
                parts.set_links(r, l, &list);
            }
        }
        let max_level = levels.iter().copied().max().unwrap_or(0);
        let current = self.entry.load(Ordering::Acquire);
        let entry = match current {
            e if e != EMPTY && unpack(e).0 < rows && levels[unpack(e).0 as usize] == max_level => {
                Some(unpack(e).0)
            }
            _ => levels
                .iter()
                .position(|&l| l == max_level)
                .map(|r| r as u32),
        };
        parts.set_entry(entry);
        parts
    }
}

fn pack(row: u32, level: usize) -> u64 {
    (level as u64) << 32 | u64::from(row)
}

fn unpack(word: u64) -> (u32, usize) {
    (word as u32, (word >> 32) as usize)
}

fn read_list(slots: &[AtomicU32], out: &mut Vec<u32>) {
    out.clear();
    let len = (slots[0].load(Ordering::Acquire) as usize).min(slots.len() - 1);
    out.extend(slots[1..=len].iter().map(|s| s.load(Ordering::Relaxed)));
}

fn write_list(slots: &[AtomicU32], list: &[u32]) {
    let len = list.len().min(slots.len() - 1);
    for (slot, &row) in slots[1..=len].iter().zip(list) {
        slot.store(row, Ordering::Relaxed);
    }
    slots[0].store(len as u32, Ordering::Release);
}

/// The memtable graph seen from one query, with exact distances.
struct MemSpace<'a> {
    index: &'a MemIndex,
    vectors: &'a dyn Vectors,
    query: &'a [f32],
}

impl Space for MemSpace<'_> {
    #[inline]
    fn neighbors(&self, node: u32, level: usize, out: &mut Vec<u32>) {
        match self.index.slots(node, level) {
            Some(slots) => read_list(slots, out),
            None => out.clear(),
        }
    }

    #[inline]
    fn dist(&self, node: u32) -> f32 {
        distance(self.index.metric, self.query, self.vectors.get(node))
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        prefetch_slice(self.vectors.get(node), 4);
    }

    #[inline]
    fn prefetch_links(&self, node: u32) {
        if let Some(slots) = self.index.slots(node, 0) {
            prefetch_slice(slots, 3);
        }
    }
}
