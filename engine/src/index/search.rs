//! The two graph walks every HNSW search is made of — a greedy descent through an upper
//! layer and a best-first beam search — written once over a [`Space`], so the memtable
//! graph (exact f32 distances) and the segment graph (SQ8 codes) share them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::visited::Visited;
use super::{HeapItem, Neighbor};

/// A graph plus a query: what the walks need to know.
pub(crate) trait Space {
    /// Replace `out` with the neighbours of `node` on `level` (empty when it has none).
    fn neighbors(&self, node: u32, level: usize, out: &mut Vec<u32>);
    /// Distance from the query to `node`, lower is better.
    fn dist(&self, node: u32) -> f32;
    /// Hint that `dist(node)` comes soon.
    #[inline]
    fn prefetch(&self, _node: u32) {}
    /// Hint that `neighbors(node, 0)` comes soon.
    #[inline]
    fn prefetch_links(&self, _node: u32) {}
    /// `dist` of these layer-0 nodes comes next: a space that reads its data on demand (a
    /// lazy segment) fetches what it lacks for all of them in one round. The upper layers
    /// are never fetched for: a lazy space keeps them in memory.
    #[inline]
    fn fetch(&self, _nodes: &[u32]) {}
    /// Candidates the beam expands per [`Space::fetch`] round: 1 (the plain best-first
    /// walk) unless reads are so slow that expanding the next best few at once pays.
    #[inline]
    fn batch(&self) -> usize {
        1
    }
}

/// Scratch buffers of one walk, reused across layers.
#[derive(Default)]
pub(crate) struct Scratch {
    links: Vec<u32>,
    fresh: Vec<u32>,
    candidates: BinaryHeap<Reverse<HeapItem>>,
    results: BinaryHeap<HeapItem>,
    best: BinaryHeap<HeapItem>,
}

/// A bound from outside one walk: the distance (in the walk's own distance space) that
/// results must beat to matter, e.g. the k-th best found in other segments of the shard.
///
/// Once the walk holds `keep` accepted results of its own, it stops expanding (and
/// queueing) candidates farther than both `bound` and its own `keep`-th best, instead of
/// only once its frontier is past its `ef`-th best. The `keep` results let it first reach
/// its own nearest neighbourhood from the entry point (as a beam of width `keep` would),
/// so a segment whose closest rows lie a little past the bound still returns them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limit {
    /// Distance a result must beat; `f32::INFINITY` for none.
    pub bound: f32,
    /// Own results the walk keeps looking for regardless of `bound` (at least 1).
    pub keep: usize,
}

impl Limit {
    /// No outside bound: a plain beam search.
    pub(crate) const NONE: Limit = Limit {
        bound: f32::INFINITY,
        keep: 1,
    };
}

/// Follow strictly improving neighbours on `level` until none improves.
pub(crate) fn greedy<S: Space>(
    space: &S,
    mut cur: Neighbor,
    level: usize,
    scratch: &mut Scratch,
) -> Neighbor {
    loop {
        space.neighbors(cur.row, level, &mut scratch.links);
        for &nb in &scratch.links {
            space.prefetch(nb);
        }
        let before = cur.row;
        for &nb in &scratch.links {
            let dist = space.dist(nb);
            if dist < cur.dist {
                cur = Neighbor { dist, row: nb };
            }
        }
        if cur.row == before {
            return cur;
        }
    }
}

/// Best-first search of `level` from `entries` (distances already known). Every reached
/// node is traversed, but only rows `accept` allows enter the result set of size `ef`.
/// Returns the results sorted by (dist, row). `visited` must be reset by the caller.
pub(crate) fn beam<S: Space>(
    space: &S,
    visited: &mut Visited,
    scratch: &mut Scratch,
    entries: &[Neighbor],
    level: usize,
    ef: usize,
    accept: impl Fn(u32) -> bool,
) -> Vec<Neighbor> {
    beam_within(
        space,
        visited,
        scratch,
        entries,
        level,
        ef,
        Limit::NONE,
        accept,
    )
}

/// [`beam`] that also stops at an outside [`Limit`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn beam_within<S: Space>(
    space: &S,
    visited: &mut Visited,
    scratch: &mut Scratch,
    entries: &[Neighbor],
    level: usize,
    ef: usize,
    limit: Limit,
    accept: impl Fn(u32) -> bool,
) -> Vec<Neighbor> {
    let ef = ef.max(1);
    let Scratch {
        links,
        fresh,
        candidates,
        results,
        best,
    } = scratch;
    candidates.clear();
    results.clear();
    best.clear();
    // With an outside bound, the `keep` best results are tracked too; the walk's bound is
    // then the nearer of its ef-th best and the farther of `limit.bound` and its keep-th.
    let limited = limit.bound < f32::INFINITY;
    let keep = limit.keep.clamp(1, ef);
    let bound_now = |results: &BinaryHeap<HeapItem>, best: &BinaryHeap<HeapItem>| {
        let own = bound_of(results, ef);
        if limited {
            own.min(limit.bound.max(bound_of(best, keep)))
        } else {
            own
        }
    };
    for &e in entries {
        if visited.insert(e.row) {
            candidates.push(Reverse(HeapItem(e)));
            if accept(e.row) {
                push_bounded(results, e, ef);
                if limited {
                    push_bounded(best, e, keep);
                }
            }
        }
    }
    let mut bound = bound_now(results, best);
    while let Some(Reverse(HeapItem(cur))) = candidates.pop() {
        if cur.dist > bound {
            break;
        }
        if let Some(next) = candidates.peek() {
            space.prefetch_links(next.0.0.row);
        }
        space.neighbors(cur.row, level, links);
        fresh.clear();
        for &nb in links.iter() {
            if visited.insert(nb) {
                space.prefetch(nb);
                fresh.push(nb);
            }
        }
        for _ in 1..space.batch() {
            // Also expand the next best candidates within the bound in this round.
            match candidates.peek() {
                Some(Reverse(HeapItem(n))) if n.dist <= bound => {}
                _ => break,
            }
            let Some(Reverse(HeapItem(more))) = candidates.pop() else {
                break;
            };
            space.neighbors(more.row, level, links);
            fresh.extend(links.iter().copied().filter(|&nb| visited.insert(nb)));
        }
        space.fetch(fresh);
        for &row in fresh.iter() {
            let dist = space.dist(row);
            if dist < bound {
                let n = Neighbor { dist, row };
                candidates.push(Reverse(HeapItem(n)));
                if accept(row) {
                    push_bounded(results, n, ef);
                    if limited {
                        push_bounded(best, n, keep);
                    }
                    bound = bound_now(results, best);
                }
            }
        }
    }
    let mut out: Vec<Neighbor> = results.drain().map(|h| h.0).collect();
    super::sort_neighbors(&mut out);
    if candidates.capacity() > KEEP_CANDIDATES {
        // A very selective walk may have queued most of the graph: do not keep that
        // memory in the thread's scratch.
        *candidates = BinaryHeap::new();
    }
    out
}

/// Candidate-queue capacity a thread keeps between walks.
const KEEP_CANDIDATES: usize = 1 << 16;

#[inline]
fn push_bounded(results: &mut BinaryHeap<HeapItem>, n: Neighbor, ef: usize) {
    results.push(HeapItem(n));
    if results.len() > ef {
        results.pop();
    }
}

#[inline]
fn bound_of(results: &BinaryHeap<HeapItem>, ef: usize) -> f32 {
    match results.peek() {
        Some(top) if results.len() >= ef => top.0.dist,
        _ => f32::INFINITY,
    }
}

/// Ask the CPU to start loading the `len` bytes at address `at` (any address: a prefetch of
/// memory that is not mapped, or no longer allocated, is ignored).
#[inline]
pub(crate) fn prefetch_address(at: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut line = at & !63;
        while line < at + len {
            // SAFETY: a prefetch never faults, reads into registers or changes memory, at
            // any address; it is only a cache hint. The pointer is never dereferenced.
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                    line as *const i8,
                );
            }
            line += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (at, len);
    }
}

/// Ask the CPU to start loading the cache lines of `data` (at most `max_lines` of them).
#[inline]
pub(crate) fn prefetch_slice<T>(data: &[T], max_lines: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = std::mem::size_of_val(data);
        let base = data.as_ptr().cast::<i8>();
        let mut offset = 0;
        while offset < bytes && offset < max_lines * 64 {
            // SAFETY: `base + offset` lies inside `data` (offset < its byte length), and a
            // prefetch never faults or changes memory; it is only a cache hint.
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                    base.add(offset),
                );
            }
            offset += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (data, max_lines);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// Nodes 0..n on a line at x = node, each linked to its two neighbours; counts the
    /// distances computed.
    struct Line {
        n: u32,
        query: f32,
        dists: Cell<usize>,
    }

    impl Space for Line {
        fn neighbors(&self, node: u32, _level: usize, out: &mut Vec<u32>) {
            out.clear();
            out.extend(
                [node.wrapping_sub(1), node + 1]
                    .into_iter()
                    .filter(|&x| x < self.n),
            );
        }
        fn dist(&self, node: u32) -> f32 {
            self.dists.set(self.dists.get() + 1);
            (node as f32 - self.query).abs()
        }
    }

    fn walk(query: f32, entry: u32, ef: usize, limit: Limit) -> (Vec<Neighbor>, usize) {
        let space = Line {
            n: 1000,
            query,
            dists: Cell::new(0),
        };
        let mut visited = Visited::new();
        visited.reset(1000);
        let e = Neighbor {
            dist: space.dist(entry),
            row: entry,
        };
        let found = beam_within(
            &space,
            &mut visited,
            &mut Scratch::default(),
            &[e],
            0,
            ef,
            limit,
            |_| true,
        );
        (found, space.dists.get())
    }

    #[test]
    fn an_outside_bound_stops_the_walk_early() {
        let (plain, plain_cost) = walk(500.0, 500, 50, Limit::NONE);
        assert_eq!(plain.len(), 50);
        let bound = Limit {
            bound: 5.5,
            keep: 2,
        };
        let (bounded, cost) = walk(500.0, 500, 50, bound);
        // Everything within the bound, in the same order as the plain walk found it.
        assert_eq!(bounded[..], plain[..bounded.len()]);
        assert_eq!(bounded.len(), 11, "rows 495..=505");
        assert!(cost * 3 < plain_cost, "{cost} vs {plain_cost} distances");
    }

    #[test]
    fn a_bounded_walk_still_reaches_its_own_nearest_rows() {
        // The bound is below every row: the walk still goes from the entry (row 0) to the
        // query's neighbourhood and returns its `keep` best, then stops.
        let limit = Limit {
            bound: -1.0,
            keep: 3,
        };
        let (found, cost) = walk(300.0, 0, 50, limit);
        let rows: Vec<u32> = found.iter().take(3).map(|n| n.row).collect();
        assert_eq!(rows, vec![300, 299, 301]);
        let (_, plain_cost) = walk(300.0, 0, 50, Limit::NONE);
        assert!(cost < plain_cost, "{cost} vs {plain_cost} distances");
    }
}
