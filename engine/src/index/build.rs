//! Building a segment's index (compaction), on all cores: from scratch, or by extending
//! the graph of the largest merged segment with the other rows.

use rayon::prelude::*;

use super::format::{GraphLayout, GraphView};
use super::{FrozenIndex, IndexBytes, IndexParams, MemIndex, Vectors};
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

/// Build the index of rows `0..rows` by extending the graph of `base`, a segment index,
/// with rows `kept.len()..rows`: `kept` lists the base rows that stay (ascending), and
/// rows `0..kept.len()` of `vectors` must be exactly those rows' vectors, in that order.
/// The kept rows keep their layers and links (links to dropped rows are repaired, see
/// [`MemIndex::from_graph`]) and the new rows are inserted as into a memtable, so the
/// cost is that of inserting the new rows only (a from-scratch [`build`] inserts them
/// all). Recall: `tests/index_extend.rs`.
///
/// `base_graph` is the graph section `base` was opened with. Errors (the caller can fall
/// back to [`build`]): other bytes than the opened section, other degrees than `params`
/// give, `kept` not ascending or past the base, fewer rows than `kept`.
#[allow(clippy::too_many_arguments)]
pub fn extend(
    params: IndexParams,
    metric: Metric,
    dim: usize,
    base: &FrozenIndex,
    base_graph: &[u8],
    kept: &[u32],
    rows: u32,
    vectors: &dyn Vectors,
) -> Result<IndexBytes, String> {
    let (view, layout) = base.graph(base_graph)?;
    extend_view(params, metric, dim, &view, layout, kept, rows, vectors)
}

/// [`extend`] from a graph section alone (validated here), such as the one a format-2
/// segment rebuilds from its hop blocks.
#[allow(clippy::too_many_arguments)]
pub fn extend_graph(
    params: IndexParams,
    metric: Metric,
    dim: usize,
    base_graph: &[u8],
    base_rows: u32,
    kept: &[u32],
    rows: u32,
    vectors: &dyn Vectors,
) -> Result<IndexBytes, String> {
    let layout = GraphView::open(base_graph, base_rows)?;
    let view = GraphView::at(base_graph, &layout)?;
    extend_view(params, metric, dim, &view, &layout, kept, rows, vectors)
}

#[allow(clippy::too_many_arguments)]
fn extend_view(
    params: IndexParams,
    metric: Metric,
    dim: usize,
    view: &GraphView<'_>,
    layout: &GraphLayout,
    kept: &[u32],
    rows: u32,
    vectors: &dyn Vectors,
) -> Result<IndexBytes, String> {
    let base_rows = layout.rows;
    if (rows as usize) < kept.len() {
        return Err(format!(
            "cannot extend a graph keeping {} rows to {rows}",
            kept.len()
        ));
    }
    let index = MemIndex::from_graph(params, metric, dim, rows as usize, view, layout, kept, vectors)
        .ok_or_else(|| {
            format!(
                "the graph (degrees {} and {}, {} rows) does not fit: index parameters m {}, {} kept rows ascending",
                view.m, view.m0, base_rows, params.m, kept.len()
            )
        })?;
    (kept.len() as u32..rows)
        .into_par_iter()
        .for_each(|row| index.insert(row, vectors));
    Ok(index.to_bytes(rows, vectors))
}
