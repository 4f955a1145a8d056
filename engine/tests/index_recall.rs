//! Recall of the memtable graph and the segment index on seeded clustered data, for
//! every metric, at the default search width.

#[path = "index_util.rs"]
mod util;

use vecshard_engine::Metric;
use vecshard_engine::index::{FrozenIndex, IndexParams, MemIndex, SliceVectors};

const N: usize = 5_000;
const NQ: usize = 100;
const DIM: usize = 32;
const K: usize = 10;

fn params() -> IndexParams {
    IndexParams {
        m: 12,
        ef_construction: 80,
        ..IndexParams::default()
    }
}

/// Build a memtable graph row by row, freeze it, and check both against brute force.
fn check(metric: Metric, seed: u64) {
    let data = util::clustered(seed, N + NQ, DIM, 50, metric);
    let (base, queries) = data.split_at(N * DIM);
    let vectors = SliceVectors {
        data: base,
        dim: DIM,
    };
    let mem = MemIndex::new(params(), metric, DIM, N);
    for r in 0..N as u32 {
        mem.insert(r, &vectors);
    }
    assert_eq!(mem.len(), N);
    let all = |_: u32| true;
    let truth = util::truth(metric, &vectors, queries, N as u32, K, &all);
    let ef = params().ef_search;

    let found: Vec<_> = queries
        .chunks_exact(DIM)
        .map(|q| mem.search(&vectors, q, K, ef, &all))
        .collect();
    assert!(found.iter().all(|f| f.len() == K && util::well_formed(f)));
    let mem_recall = util::recall(&found, &truth);
    assert!(
        mem_recall >= 0.95,
        "{metric:?} memtable recall {mem_recall}"
    );

    let bytes = mem.to_bytes(N as u32, &vectors);
    let frozen = FrozenIndex::open(&bytes.graph, &bytes.codes, metric, DIM, N as u32)
        .expect("open what to_bytes wrote");
    let found: Vec<_> = queries
        .chunks_exact(DIM)
        .map(|q| frozen.search(&bytes.graph, &bytes.codes, &vectors, q, K, ef, &all, 1.0))
        .collect();
    assert!(found.iter().all(|f| f.len() == K && util::well_formed(f)));
    let frozen_recall = util::recall(&found, &truth);
    assert!(
        frozen_recall >= 0.95,
        "{metric:?} segment recall {frozen_recall}"
    );
    // Exact rescoring: the reported distances are the true ones.
    for (f, t) in found.iter().zip(&truth) {
        if f[0].row == t[0].row {
            assert_eq!(f[0].dist, t[0].dist);
        }
    }
}

#[test]
fn l2_recall_at_default_ef() {
    check(Metric::L2, 11);
}

#[test]
fn cosine_recall_at_default_ef() {
    check(Metric::Cosine, 12);
}

#[test]
fn dot_recall_at_default_ef() {
    check(Metric::Dot, 13);
}

#[test]
fn tiny_and_empty_indexes() {
    let data = util::clustered(5, 3, 4, 1, Metric::L2);
    let vectors = SliceVectors {
        data: &data,
        dim: 4,
    };
    let all = |_: u32| true;
    let mem = MemIndex::new(params(), Metric::L2, 4, 8);
    assert!(mem.search(&vectors, &data[..4], 5, 16, &all).is_empty());
    let empty = mem.to_bytes(0, &vectors);
    let frozen = FrozenIndex::open(&empty.graph, &empty.codes, Metric::L2, 4, 0).unwrap();
    let hits = frozen.search(
        &empty.graph,
        &empty.codes,
        &vectors,
        &data[..4],
        5,
        16,
        &all,
        1.0,
    );
    assert!(hits.is_empty());

    for r in 0..3 {
        mem.insert(r, &vectors);
    }
    let hits = mem.search(&vectors, &data[4..8], 5, 16, &all);
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].row, 1);
    let bytes = mem.to_bytes(3, &vectors);
    let frozen = FrozenIndex::open(&bytes.graph, &bytes.codes, Metric::L2, 4, 3).unwrap();
    let hits = frozen.search(
        &bytes.graph,
        &bytes.codes,
        &vectors,
        &data[4..8],
        5,
        16,
        &all,
        1.0,
    );
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].row, 1);
    assert!(mem.search(&vectors, &data[4..8], 0, 16, &all).is_empty());
}
