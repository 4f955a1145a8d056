//! Shared helpers of the index tests: seeded clustered data and exact ground truth.
//! Included by the `index_*` tests with `#[path]`; on its own it holds no tests.
#![allow(dead_code)]

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use vecshard_engine::Metric;
use vecshard_engine::index::{Neighbor, SliceVectors, brute_force};

/// `n` rows of `dim` floats: a mixture of `clusters` Gaussian blobs (unit-normal centres,
/// spread 0.35..0.75), like `shared/bench/gen_synthetic.py`. Normalised for cosine.
pub fn clustered(seed: u64, n: usize, dim: usize, clusters: usize, metric: Metric) -> Vec<f32> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let normal = |rng: &mut SmallRng| {
        // Box-Muller; u1 in (0, 1] keeps the log finite.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    };
    let centers: Vec<f32> = (0..clusters * dim).map(|_| normal(&mut rng)).collect();
    let spreads: Vec<f32> = (0..clusters)
        .map(|_| rng.random_range(0.35..0.75))
        .collect();
    let mut data = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.random_range(0..clusters);
        for d in 0..dim {
            data.push(centers[c * dim + d] + spreads[c] * normal(&mut rng));
        }
    }
    if metric == Metric::Cosine {
        data.chunks_exact_mut(dim).for_each(|v| {
            vecshard_engine::distance::normalize(v);
        });
    }
    data
}

/// Exact top-k of every query over all rows `accept` allows.
pub fn truth(
    metric: Metric,
    vectors: &SliceVectors<'_>,
    queries: &[f32],
    rows: u32,
    k: usize,
    accept: &dyn Fn(u32) -> bool,
) -> Vec<Vec<Neighbor>> {
    queries
        .chunks_exact(vectors.dim)
        .map(|q| brute_force(metric, vectors, q, 0..rows, k, accept))
        .collect()
}

/// Mean fraction of the true top-k found.
pub fn recall(found: &[Vec<Neighbor>], truth: &[Vec<Neighbor>]) -> f64 {
    let (mut hits, mut total) = (0usize, 0usize);
    for (f, t) in found.iter().zip(truth) {
        total += t.len();
        hits += t
            .iter()
            .filter(|n| f.iter().any(|g| g.row == n.row))
            .count();
    }
    hits as f64 / total.max(1) as f64
}

/// Whether results are sorted by (dist, row) and free of duplicate rows.
pub fn well_formed(results: &[Neighbor]) -> bool {
    let sorted = results
        .windows(2)
        .all(|w| (w[0].dist, w[0].row) <= (w[1].dist, w[1].row));
    let mut rows: Vec<u32> = results.iter().map(|n| n.row).collect();
    rows.sort_unstable();
    rows.dedup();
    sorted && rows.len() == results.len()
}
