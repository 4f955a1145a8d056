//! Rows no graph walk reaches: HNSW's neighbour pruning can drop every link into a row,
//! most easily among near-duplicate vectors. The live graph of a memtable may hold such
//! rows; a segment's graph (written by `MemIndex::to_bytes`, at flush and compaction)
//! links each of them in, so a search for a row's own vector wide enough to visit every
//! reachable row finds it.

#[path = "index_util.rs"]
mod util;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use vecshard_engine::Metric;
use vecshard_engine::index::{FrozenIndex, IndexParams, MemIndex, SliceVectors};

const DIM: usize = 8;
const CLUSTERS: usize = 40;
const COPIES: usize = 50;
const N: usize = CLUSTERS * COPIES;
const K: usize = 2 * COPIES;

#[test]
fn a_segments_graph_reaches_every_row_even_among_near_duplicates() {
    let metric = Metric::L2;
    // Tight clusters of near-duplicates: each row is still its own unique nearest.
    let centers = util::clustered(7, CLUSTERS, DIM, CLUSTERS, metric);
    let mut rng = SmallRng::seed_from_u64(9);
    let data: Vec<f32> = (0..N)
        .flat_map(|i| {
            let c = &centers[(i % CLUSTERS) * DIM..][..DIM];
            c.iter()
                .map(|x| x + rng.random_range(-1e-3..1e-3))
                .collect::<Vec<_>>()
        })
        .collect();
    let vectors = SliceVectors {
        data: &data,
        dim: DIM,
    };
    let params = IndexParams {
        m: 4,
        ef_construction: 16,
        ..IndexParams::default()
    };
    let mem = MemIndex::new(params, metric, DIM, N);
    for row in 0..N as u32 {
        mem.insert(row, &vectors);
    }
    let all = |_: u32| true;
    // A row's own cluster is in its top K: a walk that reaches the row returns it (the
    // segment's walk ranks by SQ8 codes, which do not tell near-duplicates apart, and
    // rescores the best K).
    let in_graph = |row: u32, ef: usize| {
        let q = &data[row as usize * DIM..][..DIM];
        mem.search(&vectors, q, K, ef, &all)
            .iter()
            .any(|h| h.row == row)
    };
    let lost: Vec<u32> = (0..N as u32)
        .filter(|&r| !in_graph(r, 64) && !in_graph(r, N))
        .collect();
    eprintln!("{} of {N} rows unreachable in the live graph", lost.len());
    let bytes = mem.to_bytes(N as u32, &vectors);
    let frozen = FrozenIndex::open(&bytes.graph, &bytes.codes, metric, DIM, N as u32).unwrap();
    let in_segment = |row: u32, ef: usize| {
        let q = &data[row as usize * DIM..][..DIM];
        frozen
            .search(&bytes.graph, &bytes.codes, &vectors, q, K, ef, &all, 1.0)
            .iter()
            .any(|h| h.row == row)
    };
    let lost_in_segment: Vec<u32> = (0..N as u32)
        .filter(|&r| !in_segment(r, 64) && !in_segment(r, N))
        .collect();
    assert!(
        lost_in_segment.is_empty(),
        "rows {lost_in_segment:?} unreachable in the segment ({} in the live graph)",
        lost.len()
    );
    assert!(
        !lost.is_empty(),
        "the live graph reached every row: this set no longer tests the repair"
    );
}
