//! Searching a format-2 index whose hop blocks and vectors are read on demand (a segment
//! on an object store): the walk of [`super::FrozenIndex`] over a space that fetches, per
//! round, the blocks the next distances need.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use bytes::Bytes;

use super::format::NONE;
use super::frozen::{Shape, Within, query_code, rescore_count};
use super::hop::HopIndex;
use super::search::{Limit, Space};
use super::sq8::{CodesView, code_distance};
use super::{Neighbor, sort_neighbors};
use crate::distance::distance;

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
    };
}

/// Where a lazy search reads what a format-2 segment does not keep in memory (the hop
/// blocks and the vectors), e.g. ranged reads of an object through its block cache.
pub trait LazySource: Sync {
    /// Hop blocks `ids` (ascending, distinct), each checksummed and checked with
    /// [`HopIndex::check_block`], in that order.
    fn hop_blocks(&self, ids: &[usize]) -> crate::error::Result<Vec<Bytes>>;
    /// The vectors of `rows`, concatenated in that order.
    fn vectors(&self, rows: &[u32]) -> crate::error::Result<Vec<f32>>;
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
            blocks: RefCell::new(HashMap::new()),
            error: RefCell::new(None),
            query: query_code(self.metric, &quant, query),
            frontier: RefCell::new(BinaryHeap::new()),
            expanded: RefCell::new(HashSet::new()),
            lookahead: ahead.lookahead,
            batch: ahead.batch.max(1),
        };
        let limit = Limit {
            bound: quant.bound(self.metric, within.dist),
            keep: within.keep,
        };
        let found = shape.walk(&space, ef, limit, accept);
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

/// A hop section read on demand, seen from one query: the blocks it fetched stay pinned
/// for the query; the first failed read stops the walk (every later distance is
/// infinite) and becomes the search's error.
struct LazySpace<'a> {
    index: &'a HopIndex,
    source: &'a dyn LazySource,
    blocks: RefCell<HashMap<usize, Bytes>>,
    error: RefCell<Option<crate::error::Error>>,
    query: Vec<i8>,
    /// Nodes with a distance, nearest first (by [`order_key`]), and those expanded: the
    /// nearest unexpanded ones are what the walk expands next.
    frontier: RefCell<BinaryHeap<Reverse<(u32, u32)>>>,
    expanded: RefCell<HashSet<u32>>,
    lookahead: usize,
    batch: usize,
}

/// `f32` distances as `u32`s in the same order.
fn order_key(d: f32) -> u32 {
    let b = d.to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
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
            if let Some((block, at)) = self.record(item.1) {
                let m0 = self.index.meta.m0 as usize;
                out.extend(
                    block[at..at + 4 * m0]
                        .chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .take_while(|&nb| nb != NONE),
                );
            }
        }
        out
    }

    /// The record of `node`, if its block was read.
    fn record(&self, node: u32) -> Option<(Bytes, usize)> {
        let mask = (1u32 << self.index.shift) - 1;
        let at = (node & mask) as usize * self.index.meta.record as usize;
        let block = self
            .blocks
            .borrow()
            .get(&self.index.block_of(node))
            .cloned()?;
        Some((block, at))
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
        self.expanded.borrow_mut().insert(node);
        if self.record(node).is_none() {
            // An upper row reached by the descent: its distance came from the directory.
            self.fetch(&[node]);
        }
        let Some((block, at)) = self.record(node) else {
            return;
        };
        let m0 = self.index.meta.m0 as usize;
        out.extend(
            block[at..at + 4 * m0]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .take_while(|&nb| nb != NONE),
        );
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

    fn batch(&self) -> usize {
        self.batch
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
        let mut ids: Vec<usize> = {
            let have = self.blocks.borrow();
            nodes
                .iter()
                .chain(&ahead)
                .map(|&n| self.index.block_of(n))
                .filter(|b| !have.contains_key(b))
                .collect()
        };
        if ids.is_empty() {
            return;
        }
        ids.sort_unstable();
        ids.dedup();
        match self.source.hop_blocks(&ids) {
            Ok(got) => self.blocks.borrow_mut().extend(ids.into_iter().zip(got)),
            Err(e) => *self.error.borrow_mut() = Some(e),
        }
    }
}

impl LazySpace<'_> {
    fn dist_now(&self, node: u32) -> f32 {
        let Some((block, at)) = self.record(node) else {
            return match self.index.meta.upper_rows.binary_search(&node) {
                Ok(i) => {
                    let code =
                        &self.index.meta.upper_codes[i * self.index.dim..(i + 1) * self.index.dim];
                    code_distance(self.index.kind, &self.query, code)
                }
                // Unread (a failed read stopped the walk): never closer than anything.
                Err(_) => f32::INFINITY,
            };
        };
        let at = at + self.index.meta.m0 as usize * 4;
        let code: &[i8] = bytemuck::cast_slice(&block[at..at + self.index.dim]);
        code_distance(self.index.kind, &self.query, code)
    }
}
