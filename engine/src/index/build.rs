//! Building a segment's index from scratch (compaction), on all cores.

use rayon::prelude::*;

use super::{IndexBytes, IndexParams, MemIndex, Vectors};
use crate::types::Metric;

/// Build a segment index from scratch (compaction), using all cores of the current rayon
/// pool. Inserting rows in parallel makes the graph depend on thread timing; in a pool of
/// one thread the result is the same bytes on every run.
pub fn build(
    params: IndexParams,
    metric: Metric,
    dim: usize,
    rows: u32,
    vectors: &dyn Vectors,
) -> IndexBytes {
    let index = MemIndex::new(params, metric, dim, rows as usize);
    (0..rows)
        .into_par_iter()
        .for_each(|row| index.insert(row, vectors));
    index.to_bytes(rows, vectors)
}
