//! Neighbour selection: the heuristic of the HNSW paper (Malkov & Yashunin, algorithm 4),
//! which keeps a candidate only if it is closer to the base node than to every neighbour
//! already kept, so links spread in all directions instead of piling into one cluster.

use super::Neighbor;

/// Choose up to `m` of `candidates` (sorted by distance to the base node, closest first).
/// `dist(a, b)` is the distance between two rows.
pub(crate) fn select_neighbors(
    candidates: &[Neighbor],
    m: usize,
    dist: impl Fn(u32, u32) -> f32,
) -> Vec<u32> {
    if candidates.len() <= m {
        return candidates.iter().map(|c| c.row).collect();
    }
    let mut kept: Vec<u32> = Vec::with_capacity(m);
    for c in candidates {
        if kept.len() >= m {
            break;
        }
        if kept.iter().all(|&k| dist(c.row, k) >= c.dist) {
            kept.push(c.row);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_diverse_directions() {
        // Base at 0 on a line; candidates at 1, 2 (behind 1) and -1.5 (other side).
        let pos = [0.0f32, 1.0, 2.0, -1.5];
        let d = |a: u32, b: u32| (pos[a as usize] - pos[b as usize]).abs();
        let cands = [
            Neighbor { dist: 1.0, row: 1 },
            Neighbor { dist: 1.5, row: 3 },
            Neighbor { dist: 2.0, row: 2 },
        ];
        assert_eq!(select_neighbors(&cands, 2, d), vec![1, 3]);
        assert_eq!(select_neighbors(&cands, 3, d), vec![1, 3, 2]);
    }
}
