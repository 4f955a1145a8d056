//! Filtered search against exact brute force at 50 %, 10 %, 1 % and 0.1 % selectivity,
//! with the planner choosing between a filtered walk and a scan of the matching rows.

#[path = "index_util.rs"]
mod util;

use vecshard_engine::Metric;
use vecshard_engine::index::{
    FrozenIndex, IndexParams, MemIndex, SliceVectors, brute_force, build, use_brute_force,
};

const N: usize = 12_000;
const NQ: usize = 50;
const DIM: usize = 24;
const K: usize = 10;

fn params() -> IndexParams {
    IndexParams {
        m: 12,
        ef_construction: 64,
        ..IndexParams::default()
    }
}

/// A deterministic pseudo-random subset of about `s` of the rows.
fn matches(row: u32, s: f64) -> bool {
    let h = (u64::from(row) ^ 0x5151_5151).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let h = (h ^ (h >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    ((h >> 11) as f64 / (1u64 << 53) as f64) < s
}

#[test]
fn segment_filtered_search_keeps_recall_at_every_selectivity() {
    let metric = Metric::L2;
    let data = util::clustered(51, N + NQ, DIM, 60, metric);
    let (base, queries) = data.split_at(N * DIM);
    let vectors = SliceVectors {
        data: base,
        dim: DIM,
    };
    let bytes = build(params(), metric, DIM, N as u32, &vectors);
    let frozen = FrozenIndex::open(&bytes.graph, &bytes.codes, metric, DIM, N as u32).unwrap();
    let ef = params().ef_search;
    for s in [0.5, 0.1, 0.01, 0.001] {
        let accept = |r: u32| matches(r, s);
        let matching: Vec<u32> = (0..N as u32).filter(|&r| accept(r)).collect();
        assert!(
            matching.len() >= K,
            "{s}: only {} rows match",
            matching.len()
        );
        let selectivity = matching.len() as f32 / N as f32;
        let scan = use_brute_force(N, matching.len(), K, ef);
        let truth = util::truth(metric, &vectors, queries, N as u32, K, &accept);
        let found: Vec<_> = queries
            .chunks_exact(DIM)
            .map(|q| {
                if scan {
                    brute_force(metric, &vectors, q, matching.iter().copied(), K, &accept)
                } else {
                    let (g, c) = (&bytes.graph, &bytes.codes);
                    frozen.search(g, c, &vectors, q, K, ef, &accept, selectivity)
                }
            })
            .collect();
        for f in &found {
            assert_eq!(f.len(), K, "selectivity {s}");
            assert!(util::well_formed(f) && f.iter().all(|n| accept(n.row)));
        }
        let recall = util::recall(&found, &truth);
        assert!(
            recall >= 0.95,
            "selectivity {s} (scan: {scan}): recall {recall}"
        );
    }
}

#[test]
fn memtable_filtered_search_returns_k_accepted_rows() {
    let metric = Metric::Cosine;
    let n = 3_000;
    let data = util::clustered(52, n + NQ, DIM, 30, metric);
    let (base, queries) = data.split_at(n * DIM);
    let vectors = SliceVectors {
        data: base,
        dim: DIM,
    };
    let mem = MemIndex::new(params(), metric, DIM, n);
    for r in 0..n as u32 {
        mem.insert(r, &vectors);
    }
    for s in [0.5, 0.1, 0.01, 0.002] {
        let accept = |r: u32| matches(r, s);
        let matching = (0..n as u32).filter(|&r| accept(r)).count();
        let truth = util::truth(metric, &vectors, queries, n as u32, K, &accept);
        let found: Vec<_> = queries
            .chunks_exact(DIM)
            .map(|q| mem.search(&vectors, q, K, 64, &accept))
            .collect();
        for f in &found {
            assert_eq!(f.len(), K.min(matching), "selectivity {s}");
            assert!(util::well_formed(f) && f.iter().all(|n| accept(n.row)));
        }
        let recall = util::recall(&found, &truth);
        assert!(recall >= 0.95, "selectivity {s}: recall {recall}");
    }
}
