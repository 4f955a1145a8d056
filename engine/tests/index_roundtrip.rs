//! Segment round trip: `to_bytes` → `FrozenIndex::open`, compaction `build`, determinism.

#[path = "index_util.rs"]
mod util;

use vecshard_engine::Metric;
use vecshard_engine::index::{
    FrozenIndex, IndexBytes, IndexParams, MemIndex, Neighbor, SliceVectors, build,
};

const N: usize = 4_000;
const NQ: usize = 100;
const DIM: usize = 24;
const K: usize = 10;

fn params() -> IndexParams {
    IndexParams {
        m: 12,
        ef_construction: 80,
        ..IndexParams::default()
    }
}

fn search_all(
    frozen: &FrozenIndex,
    bytes: &IndexBytes,
    vectors: &SliceVectors<'_>,
    queries: &[f32],
) -> Vec<Vec<Neighbor>> {
    let all = |_: u32| true;
    queries
        .chunks_exact(DIM)
        .map(|q| frozen.search(&bytes.graph, &bytes.codes, vectors, q, K, 64, &all, 1.0))
        .collect()
}

fn sequential(data: &[f32], metric: Metric) -> MemIndex {
    let vectors = SliceVectors { data, dim: DIM };
    let mem = MemIndex::new(params(), metric, DIM, data.len() / DIM);
    for r in 0..(data.len() / DIM) as u32 {
        mem.insert(r, &vectors);
    }
    mem
}

#[test]
fn two_opens_agree_and_keep_the_memtable_recall() {
    let metric = Metric::L2;
    let data = util::clustered(21, N + NQ, DIM, 40, metric);
    let (base, queries) = data.split_at(N * DIM);
    let vectors = SliceVectors {
        data: base,
        dim: DIM,
    };
    let mem = sequential(base, metric);
    let all = |_: u32| true;
    let truth = util::truth(metric, &vectors, queries, N as u32, K, &all);
    let mem_found: Vec<_> = queries
        .chunks_exact(DIM)
        .map(|q| mem.search(&vectors, q, K, 64, &all))
        .collect();

    let bytes = mem.to_bytes(N as u32, &vectors);
    let copy = IndexBytes {
        graph: bytes.graph.clone(),
        codes: bytes.codes.clone(),
    };
    let a = FrozenIndex::open(&bytes.graph, &bytes.codes, metric, DIM, N as u32).unwrap();
    let b = FrozenIndex::open(&copy.graph, &copy.codes, metric, DIM, N as u32).unwrap();
    let found_a = search_all(&a, &bytes, &vectors, queries);
    let found_b = search_all(&b, &copy, &vectors, queries);
    assert_eq!(found_a, found_b);
    let (mem_recall, frozen_recall) = (
        util::recall(&mem_found, &truth),
        util::recall(&found_a, &truth),
    );
    assert!(
        frozen_recall >= mem_recall - 0.02,
        "segment {frozen_recall} vs memtable {mem_recall}"
    );
}

#[test]
fn serializing_a_prefix_keeps_only_its_rows() {
    let metric = Metric::Cosine;
    let data = util::clustered(22, N, DIM, 40, metric);
    let vectors = SliceVectors {
        data: &data,
        dim: DIM,
    };
    let mem = sequential(&data, metric);
    let rows = (N / 2) as u32;
    let bytes = mem.to_bytes(rows, &vectors);
    let frozen = FrozenIndex::open(&bytes.graph, &bytes.codes, metric, DIM, rows).unwrap();
    let all = |_: u32| true;
    let truth = util::truth(metric, &vectors, &data[..50 * DIM], rows, K, &all);
    let found: Vec<_> = data[..50 * DIM]
        .chunks_exact(DIM)
        .map(|q| frozen.search(&bytes.graph, &bytes.codes, &vectors, q, K, 64, &all, 1.0))
        .collect();
    assert!(found.iter().flatten().all(|n| n.row < rows));
    assert!(util::recall(&found, &truth) >= 0.95);
}

#[test]
fn parallel_build_recall() {
    let metric = Metric::L2;
    let data = util::clustered(23, N + NQ, DIM, 40, metric);
    let (base, queries) = data.split_at(N * DIM);
    let vectors = SliceVectors {
        data: base,
        dim: DIM,
    };
    let bytes = build(params(), metric, DIM, N as u32, &vectors);
    let frozen = FrozenIndex::open(&bytes.graph, &bytes.codes, metric, DIM, N as u32).unwrap();
    let truth = util::truth(metric, &vectors, queries, N as u32, K, &|_| true);
    let found = search_all(&frozen, &bytes, &vectors, queries);
    let recall = util::recall(&found, &truth);
    assert!(recall >= 0.95, "parallel build recall {recall}");
}

#[test]
fn builds_on_one_thread_are_reproducible() {
    let metric = Metric::Dot;
    let data = util::clustered(24, 1_500, DIM, 20, metric);
    let vectors = SliceVectors {
        data: &data,
        dim: DIM,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let first = pool.install(|| build(params(), metric, DIM, 1_500, &vectors));
    let second = pool.install(|| build(params(), metric, DIM, 1_500, &vectors));
    assert_eq!(first.graph, second.graph);
    assert_eq!(first.codes, second.codes);
    let again = sequential(&data, metric).to_bytes(1_500, &vectors);
    assert_eq!(
        first.graph, again.graph,
        "build = sequential inserts + to_bytes"
    );
}
