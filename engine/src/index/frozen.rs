//! A segment's index: the graph and SQ8 codes sections, validated once at open and then
//! searched in place (zero-copy) over the caller's bytes.

use super::format::{GraphLayout, GraphView, NONE};
use super::planner::{use_brute_force, widened_ef};
use super::search::{Limit, Space, beam_within, greedy, prefetch_slice};
use super::sq8::{CodesLayout, CodesView, code_distance};
use super::visited::with_workspace;
use super::{Neighbor, Vectors, brute_force, sort_neighbors};
use crate::distance::{distance, normalize};
use crate::types::Metric;

/// Code-space candidates rescored with exact distances, per result asked for: SQ8
/// ranks well enough that the true top k sit in the top 2k (recall@10 on clustered-128
/// is the same as rescoring all `ef` candidates, and 1.5k is already enough).
const RESCORE: usize = 2;

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
    /// allows (1.0 when unfiltered); when it promises fewer accepted rows than `ef`, the
    /// rows are scanned instead of walked (callers with a bitmap of the matching rows
    /// should ask [`super::use_brute_force`] first and scan just those). `graph` and
    /// `codes` must be the sections given to [`FrozenIndex::open`] (other bytes are
    /// answered by an exact scan, and logged). A query of the wrong dimension gets no rows.
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
        let within = Within::NONE;
        self.search_within(
            graph,
            codes,
            vectors,
            query,
            k,
            ef,
            accept,
            selectivity,
            within,
        )
    }

    /// [`FrozenIndex::search`] for one of several containers searched together: the walk
    /// stops early once it cannot beat `within.dist`, the k-th best distance already found
    /// elsewhere (see [`Within`]). Exact scans ignore it.
    #[allow(clippy::too_many_arguments)]
    pub fn search_within(
        &self,
        graph: &[u8],
        codes: &[u8],
        vectors: &dyn Vectors,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
        selectivity: f32,
        within: Within,
    ) -> Vec<Neighbor> {
        if k == 0 || self.rows == 0 {
            return Vec::new();
        }
        let (g, c) = match self.views(graph, codes) {
            Ok(views) => views,
            Err(e) => {
                tracing::error!(error = %e, "index sections differ from the opened ones; scanning");
                return exact(self.metric, self.rows, vectors, query, k, accept);
            }
        };
        let shape = Shape {
            metric: self.metric,
            dim: self.dim,
            rows: self.rows,
            entry: self.graph.entry,
            max_level: self.graph.max_level,
        };
        let make = |query: &[f32]| {
            let space = CodeSpace {
                graph: g,
                codes: c,
                query: query_code(self.metric, &c, query),
                prefetch_lines: self.dim.div_ceil(64),
            };
            (space, c.bound(self.metric, within.dist))
        };
        shape.search(make, vectors, query, k, ef, accept, selectivity, within)
    }

    /// The graph section opened with this index, borrowed, and its layout.
    pub(crate) fn graph<'a>(
        &self,
        graph: &'a [u8],
    ) -> Result<(GraphView<'a>, &GraphLayout), String> {
        Ok((GraphView::at(graph, &self.graph)?, &self.graph))
    }

    /// Borrow both sections with the layouts checked at open.
    fn views<'a>(
        &self,
        graph: &'a [u8],
        codes: &'a [u8],
    ) -> Result<(GraphView<'a>, CodesView<'a>), String> {
        Ok((
            GraphView::at(graph, &self.graph)?,
            CodesView::at(codes, &self.codes)?,
        ))
    }
}

/// The encoded query for a code space (cosine codes rank by L2 between unit vectors).
pub(super) fn query_code(metric: Metric, codes: &CodesView<'_>, query: &[f32]) -> Vec<i8> {
    if metric == Metric::Cosine {
        let mut unit = query.to_vec();
        normalize(&mut unit);
        codes.encode_query(&unit)
    } else {
        codes.encode_query(query)
    }
}

/// What a frozen search needs to know of an index, whatever its layout.
pub(super) struct Shape {
    pub metric: Metric,
    pub dim: usize,
    pub rows: u32,
    pub entry: u32,
    pub max_level: u32,
}

impl Shape {
    /// The ef a search walks with, or `None` when it should scan instead.
    pub(super) fn plan(&self, k: usize, ef: usize, selectivity: f32) -> Option<usize> {
        let selectivity = if selectivity.is_nan() {
            1.0
        } else {
            selectivity.clamp(0.0, 1.0)
        };
        let ef = widened_ef(ef.max(k), selectivity);
        let expected = (f64::from(selectivity) * f64::from(self.rows)).ceil() as usize;
        (!(expected < ef && use_brute_force(self.rows as usize, expected, k, ef))).then_some(ef)
    }

    /// Plan, walk and rescore: `make` builds the code space and the walk's code-space
    /// bound for the query once the plan says to walk.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn search<S: Space>(
        &self,
        make: impl FnOnce(&[f32]) -> (S, f32),
        vectors: &dyn Vectors,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
        selectivity: f32,
        within: Within,
    ) -> Vec<Neighbor> {
        if k == 0 || self.rows == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let Some(ef) = self.plan(k, ef, selectivity) else {
            // Fewer accepted rows than the walk's width: it would visit every row anyway.
            return exact(self.metric, self.rows, vectors, query, k, accept);
        };
        let (space, bound) = make(query);
        let limit = Limit {
            bound,
            keep: within.keep,
        };
        let found = self.walk(&space, ef, limit, accept);
        if found.len() < within.needed(k) {
            // Too few accepted rows reached (a very selective filter): answer exactly.
            return exact(self.metric, self.rows, vectors, query, k, accept);
        }
        rescore(self.metric, &found, vectors, query, k)
    }

    /// Descend the upper layers greedily, then beam-search layer 0 in code space.
    pub(super) fn walk<S: Space>(
        &self,
        space: &S,
        ef: usize,
        limit: Limit,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<Neighbor> {
        let entry = self.entry;
        with_workspace(self.rows as usize, |visited, scratch| {
            if self.max_level == 0 {
                // No upper layers: the entry's code is in its block.
                space.fetch(&[entry]);
            }
            let mut cur = Neighbor {
                dist: space.dist(entry),
                row: entry,
            };
            for level in (1..=self.max_level as usize).rev() {
                cur = greedy(space, cur, level, scratch);
            }
            beam_within(space, visited, scratch, &[cur], 0, ef, limit, accept)
        })
    }
}

/// The code-space candidates a search rescores with exact distances.
pub(super) fn rescore_count(found: usize, k: usize) -> usize {
    found.min(RESCORE.saturating_mul(k))
}

/// Exact distances for the best code-space candidates; the best `k` of them.
pub(super) fn rescore(
    metric: Metric,
    found: &[Neighbor],
    vectors: &dyn Vectors,
    query: &[f32],
    k: usize,
) -> Vec<Neighbor> {
    let best = &found[..rescore_count(found.len(), k)];
    for n in best {
        prefetch_slice(vectors.get(n.row), 16);
    }
    let mut out: Vec<Neighbor> = best
        .iter()
        .map(|n| Neighbor {
            dist: distance(metric, query, vectors.get(n.row)),
            row: n.row,
        })
        .collect();
    sort_neighbors(&mut out);
    out.truncate(k);
    out
}

pub(super) fn exact(
    metric: Metric,
    rows: u32,
    vectors: &dyn Vectors,
    query: &[f32],
    k: usize,
    accept: &dyn Fn(u32) -> bool,
) -> Vec<Neighbor> {
    brute_force(metric, vectors, query, 0..rows, k, accept)
}
/// An outside bound for one search among several (segments and memtables of one shard,
/// searched one after another): `dist` is the k-th best exact distance found so far
/// (`INFINITY` when none), and `keep` how many of its own best rows the walk looks for
/// before that bound may stop it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Within {
    /// The distance a row must beat to enter the caller's top k.
    pub dist: f32,
    /// Own results the walk finds regardless of `dist` (at least 1).
    pub keep: usize,
}

impl Within {
    /// No bound: a search on its own.
    pub const NONE: Within = Within {
        dist: f32::INFINITY,
        keep: 1,
    };

    /// How many results a walk must return for a search of the best `k`: `k` without a
    /// bound; with one, the walk may stop sooner (its other rows cannot enter the top k)
    /// but must have found its `keep` best, or it ran out of accepted rows to reach.
    pub fn needed(&self, k: usize) -> usize {
        if self.dist < f32::INFINITY {
            k.min(self.keep.max(1))
        } else {
            k
        }
    }
}

/// A segment graph seen from one query, with code-space distances.
struct CodeSpace<'a> {
    graph: GraphView<'a>,
    codes: CodesView<'a>,
    query: Vec<i8>,
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
        code_distance(self.codes.kind, &self.query, self.codes.code(node))
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
