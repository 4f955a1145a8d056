//! A segment's index: the graph and SQ8 codes sections, validated once at open and then
//! searched in place (zero-copy) over the caller's bytes.

use super::format::{GraphLayout, GraphView, NONE};
use super::planner::widened_ef;
use super::search::{Scratch, Space, beam, greedy, prefetch_slice};
use super::sq8::{CodesLayout, CodesView, code_distance};
use super::visited::with_visited;
use super::{Neighbor, Vectors, brute_force, sort_neighbors};
use crate::distance::distance;
use crate::types::Metric;

/// A segment's index, validated at open; searched over the segment's mapped sections.
#[derive(Debug)]
pub struct FrozenIndex {
    metric: Metric,
    dim: usize,
    rows: u32,
    graph: GraphLayout,
    codes: CodesLayout,
}

impl FrozenIndex {
    /// Validate the sections written by [`super::MemIndex::to_bytes`] or [`super::build`].
    /// The error says what is wrong; the caller names the file. Both sections must start
    /// 4-byte aligned (a segment file aligns them to 64 bytes).
    pub fn open(
        graph: &[u8],
        codes: &[u8],
        metric: Metric,
        dim: usize,
        rows: u32,
    ) -> Result<Self, String> {
        let graph = GraphView::open(graph, rows)?;
        let codes = CodesView::open(codes, metric, dim, rows)?;
        Ok(FrozenIndex {
            metric,
            dim,
            rows,
            graph,
            codes,
        })
    }

    /// Rows in the segment.
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// The `k` best accepted rows. `selectivity` estimates the fraction of rows `accept`
    /// allows (1.0 when unfiltered). `graph` and `codes` must be the sections given to
    /// [`FrozenIndex::open`].
    #[allow(clippy::too_many_arguments)]
    pub fn search(
        &self,
        graph: &[u8],
        codes: &[u8],
        vectors: &dyn Vectors,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
        selectivity: f32,
    ) -> Vec<Neighbor> {
        if k == 0 || self.rows == 0 {
            return Vec::new();
        }
        let views = GraphView::at(graph, &self.graph)
            .and_then(|g| CodesView::at(codes, &self.codes).map(|c| (g, c)));
        let (g, c) = match views {
            Ok(views) if query.len() == self.dim => views,
            Ok(_) => return Vec::new(),
            Err(e) => {
                tracing::error!(error = %e, "index sections differ from the opened ones; scanning");
                return self.exact(vectors, query, k, accept);
            }
        };
        let qcode = c.encode_query(query);
        let space = CodeSpace {
            graph: g,
            codes: c,
            query: &qcode,
            prefetch_lines: self.dim.div_ceil(64),
        };
        let ef = widened_ef(ef.max(k), selectivity);
        let mut scratch = Scratch::default();
        let entry = self.graph.entry;
        let mut cur = Neighbor {
            dist: space.dist(entry),
            row: entry,
        };
        for level in (1..=self.graph.max_level as usize).rev() {
            cur = greedy(&space, cur, level, &mut scratch);
        }
        let found = with_visited(self.rows as usize, |visited| {
            beam(&space, visited, &mut scratch, &[cur], 0, ef, accept)
        });
        if found.len() < k {
            // Too few accepted rows reached (a very selective filter): answer exactly.
            return self.exact(vectors, query, k, accept);
        }
        let mut out: Vec<Neighbor> = found
            .iter()
            .map(|n| Neighbor {
                dist: distance(self.metric, query, vectors.get(n.row)),
                row: n.row,
            })
            .collect();
        sort_neighbors(&mut out);
        out.truncate(k);
        out
    }

    fn exact(
        &self,
        vectors: &dyn Vectors,
        query: &[f32],
        k: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<Neighbor> {
        brute_force(self.metric, vectors, query, 0..self.rows, k, accept)
    }
}

/// A segment graph seen from one query, with code-space distances.
struct CodeSpace<'a> {
    graph: GraphView<'a>,
    codes: CodesView<'a>,
    query: &'a [i8],
    prefetch_lines: usize,
}

impl Space for CodeSpace<'_> {
    #[inline]
    fn neighbors(&self, node: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        out.extend(
            self.graph
                .links(node, level)
                .iter()
                .copied()
                .take_while(|&nb| nb != NONE),
        );
    }

    #[inline]
    fn dist(&self, node: u32) -> f32 {
        code_distance(self.codes.kind, self.query, self.codes.code(node))
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        prefetch_slice(self.codes.code(node), self.prefetch_lines);
    }

    #[inline]
    fn prefetch_links(&self, node: u32) {
        prefetch_slice(self.graph.links(node, 0), 2);
    }
}
