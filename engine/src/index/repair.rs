//! Every row reachable before a graph is written (a memtable's flush, a compaction's build).
//!
//! HNSW links a new row to its neighbours and back, pruning the neighbours' lists with the
//! diversity heuristic. The pruning can drop the only link into a row, more often when
//! rows are inserted concurrently (hnswlib has the same property). A row with no way in
//! is stored and served by gets, scans and exact or filtered searches, but no graph walk
//! reaches it: an approximate search for its own vector misses it. Before the graph is
//! written, [`link_unreachable`] finds the rows a walk from the entry point cannot reach
//! on layer 0 and links each from its nearest reachable rows.

use super::format::GraphParts;

/// Repair passes at most: a replaced link can cut off a row whose other way in came from
/// a row that was itself cut off, so a pass can leave a little to the next one.
const PASSES: usize = 4;

/// Link every row of `parts` that a layer-0 walk from the entry point cannot reach, from
/// a reachable row near it: one with room in its list takes it; else the farthest link of
/// a full list whose target has another way in gives its slot. `nearest(row, reachable)`
/// gives reachable rows near `row`, nearest first; `dist(a, b)` is the distance of two
/// rows. Returns how many rows were linked. Deterministic for deterministic inputs.
pub(crate) fn link_unreachable(
    parts: &mut GraphParts,
    nearest: impl Fn(u32, &[bool]) -> Vec<u32>,
    dist: impl Fn(u32, u32) -> f32,
) -> usize {
    let Some(entry) = parts.entry() else {
        return 0;
    };
    let rows = parts.rows;
    let mut linked = 0;
    for _ in 0..PASSES {
        let mut reach = vec![false; rows as usize];
        mark_from(parts, entry, &mut reach);
        if reach.iter().all(|&r| r) {
            break;
        }
        let mut in_links = vec![0u32; rows as usize];
        for r in 0..rows {
            for &nb in parts.links0(r) {
                in_links[nb as usize] += 1;
            }
        }
        let mut progress = false;
        for row in 0..rows {
            if reach[row as usize] {
                continue;
            }
            let near = nearest(row, &reach);
            let Some((from, dropped)) = slot_for(parts, &near, &in_links, &dist) else {
                continue;
            };
            let mut list = parts.links0(from).to_vec();
            match dropped {
                Some(at) => {
                    in_links[list[at] as usize] -= 1;
                    list[at] = row;
                }
                None => list.push(row),
            }
            in_links[row as usize] += 1;
            parts.set_links(from, 0, &list);
            mark_from(parts, row, &mut reach);
            linked += 1;
            progress = true;
        }
        if !progress {
            break;
        }
    }
    linked
}

/// The reachable row (of `near`) to link from, and which of its links to replace (`None`:
/// it has room).
fn slot_for(
    parts: &GraphParts,
    near: &[u32],
    in_links: &[u32],
    dist: &impl Fn(u32, u32) -> f32,
) -> Option<(u32, Option<usize>)> {
    if let Some(&from) = near.iter().find(|&&nb| parts.links0(nb).len() < parts.m0()) {
        return Some((from, None));
    }
    near.iter().find_map(|&from| {
        let list = parts.links0(from);
        let farthest = list
            .iter()
            .enumerate()
            .filter(|(_, nb)| in_links[**nb as usize] >= 2)
            .max_by(|a, b| dist(from, *a.1).total_cmp(&dist(from, *b.1)))?;
        Some((from, Some(farthest.0)))
    })
}

/// Mark every row reachable on layer 0 from `start`.
fn mark_from(parts: &GraphParts, start: u32, reach: &mut [bool]) {
    if reach[start as usize] {
        return;
    }
    reach[start as usize] = true;
    let mut stack = vec![start];
    while let Some(r) = stack.pop() {
        for &nb in parts.links0(r) {
            if !reach[nb as usize] {
                reach[nb as usize] = true;
                stack.push(nb);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows on a line at the given positions, all on layer 0, entry row 0.
    fn line(m0: u32, lists: &[&[u32]]) -> GraphParts {
        let mut parts = GraphParts::new(1, m0, vec![0; lists.len()]);
        for (r, list) in lists.iter().enumerate() {
            parts.set_links(r as u32, 0, list);
        }
        parts.set_entry(Some(0));
        parts
    }

    fn reachable(parts: &GraphParts) -> Vec<bool> {
        let mut reach = vec![false; parts.rows as usize];
        mark_from(parts, 0, &mut reach);
        reach
    }

    /// Brute force over reachable rows, position = row number.
    fn nearest(row: u32, reach: &[bool]) -> Vec<u32> {
        let mut near: Vec<u32> = (0..reach.len() as u32)
            .filter(|&r| reach[r as usize])
            .collect();
        near.sort_by_key(|&r| (r.abs_diff(row), r));
        near
    }

    fn dist(a: u32, b: u32) -> f32 {
        a.abs_diff(b) as f32
    }

    #[test]
    fn an_orphan_and_an_island_are_linked_from_a_reachable_row_with_room() {
        // 0 ↔ 1 ↔ 2; 3 ↔ 4 only link each other; 5 links into the rest, nothing into it.
        let mut parts = line(4, &[&[1], &[0, 2], &[1], &[4], &[3], &[2]]);
        assert_eq!(reachable(&parts), [true, true, true, false, false, false]);
        assert_eq!(link_unreachable(&mut parts, nearest, dist), 2);
        assert!(reachable(&parts).iter().all(|&r| r));
        assert_eq!(parts.links0(2), [1, 3], "3 hangs off its nearest, 2");
        assert_eq!(parts.links0(4), [3, 5], "and 5 off 4, reachable by then");
        assert_eq!(link_unreachable(&mut parts, nearest, dist), 0);
    }

    #[test]
    fn a_full_list_gives_up_its_farthest_link_whose_target_has_another_way_in() {
        // m0 2, every list full, nothing links to row 4. Its nearest reachable row, 3,
        // links 0 (3 away, also linked from 1 and 4) and 2 (1 away, also linked from 1).
        let mut parts = line(2, &[&[1, 3], &[0, 2], &[1, 3], &[0, 2], &[3, 0]]);
        assert!(!reachable(&parts)[4]);
        assert_eq!(link_unreachable(&mut parts, nearest, dist), 1);
        assert!(reachable(&parts).iter().all(|&r| r));
        assert_eq!(parts.links0(3), [4, 2], "the farther link gave its slot");
    }

    #[test]
    fn no_slot_no_change() {
        // m0 1: 0 → 1 → 0 are each the other's only way in, and row 2 links nowhere.
        let mut parts = line(1, &[&[1], &[0], &[]]);
        assert_eq!(link_unreachable(&mut parts, nearest, dist), 0);
        assert_eq!(reachable(&parts), [true, true, false]);
        assert_eq!(parts.links0(0), [1]);
        assert_eq!(parts.links0(1), [0]);
    }
}
