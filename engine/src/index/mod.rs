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
//!
//! The graph is HNSW (Malkov & Yashunin): [`MemIndex`] is the concurrent, mutable graph
//! of a memtable with exact distances; [`MemIndex::to_bytes`] and [`build`] write it as
//! two segment sections (graph links, SQ8 codes) that [`FrozenIndex`] searches in place,
//! walking with codes and rescoring the best candidates with exact distances.
//! [`use_brute_force`] tells the engine when a filter is so selective that scanning the
//! matching rows beats walking the graph.

mod build;
mod format;
mod frozen;
mod hop;
mod lazy;
mod level;
mod mem;
mod planner;
mod repair;
mod search;
mod select;
mod sq8;
mod visited;

pub use build::{build, extend, extend_graph};
pub use frozen::{FrozenIndex, Within};
pub use hop::{HOP_BLOCK, HopIndex, HopMeta, encode_hops};
pub use lazy::{BlockTable, LazySource, ReadAhead, TablePin};
pub use mem::MemIndex;
pub use planner::use_brute_force;

use crate::distance::distance;
use crate::types::Metric;

/// Index parameters and their defaults: the model's.
pub use vecshard_model::IndexParams;

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
    let mut heap = std::collections::BinaryHeap::<HeapItem>::with_capacity(k.min(4096) + 1);
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
