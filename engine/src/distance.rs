//! Distance kernels (simsimd: AVX2 / AVX-512 / NEON, chosen at run time).
//!
//! Internally every metric is a *distance*: lower is better. Cosine shards store unit
//! vectors, so cosine distance is `1 - dot`.

use simsimd::SpatialSimilarity;

use crate::types::Metric;

/// Squared Euclidean distance.
#[inline]
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    f32::l2sq(a, b).unwrap_or(f64::INFINITY) as f32
}

/// Inner product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    f32::dot(a, b).unwrap_or(f64::NEG_INFINITY) as f32
}

/// The distance between two stored (cosine: already normalised) vectors under `metric`.
/// Zero is always `+0.0`, so ordering by `total_cmp` treats equal distances as equal.
#[inline]
pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    let d = match metric {
        Metric::L2 => l2sq(a, b),
        Metric::Cosine => 1.0 - dot(a, b),
        Metric::Dot => -dot(a, b),
    };
    d + 0.0
}

/// Scale `v` to unit length in place; `false` if it has zero (or non-finite) length. The
/// model's rule ([`vecshard_model::validate::normalize`]), so what validation accepts always
/// normalises.
pub fn normalize(v: &mut [f32]) -> bool {
    vecshard_model::validate::normalize(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_naive_loops() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive_l2: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        let naive_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((l2sq(&a, &b) - naive_l2).abs() < 1e-4);
        assert!((dot(&a, &b) - naive_dot).abs() < 1e-4);
        assert!((distance(Metric::Dot, &a, &b) + naive_dot).abs() < 1e-4);
    }

    #[test]
    fn normalize_rejects_zero() {
        let mut z = vec![0.0f32; 4];
        assert!(!normalize(&mut z));
        let mut v = vec![3.0f32, 4.0];
        assert!(normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    }
}
