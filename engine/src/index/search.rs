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
}

/// Scratch buffers of one walk, reused across layers.
#[derive(Default)]
pub(crate) struct Scratch {
    links: Vec<u32>,
    fresh: Vec<u32>,
    candidates: BinaryHeap<Reverse<HeapItem>>,
    results: BinaryHeap<HeapItem>,
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
    let ef = ef.max(1);
    let Scratch {
        links,
        fresh,
        candidates,
        results,
    } = scratch;
    candidates.clear();
    results.clear();
    for &e in entries {
        if visited.insert(e.row) {
            candidates.push(Reverse(HeapItem(e)));
            if accept(e.row) {
                push_bounded(results, e, ef);
            }
        }
    }
    let mut bound = bound_of(results, ef);
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
        for &row in fresh.iter() {
            let dist = space.dist(row);
            if dist < bound {
                let n = Neighbor { dist, row };
                candidates.push(Reverse(HeapItem(n)));
                if accept(row) {
                    push_bounded(results, n, ef);
                    bound = bound_of(results, ef);
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
