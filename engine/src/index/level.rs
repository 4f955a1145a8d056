//! Layer assignment: each row's top layer is drawn from a geometric-like distribution
//! with a generator seeded by (seed, row), so a graph's shape does not depend on the
//! order or the threads rows were inserted with.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Highest layer any row may get; far above what 2^32 rows need at any sane `m`.
pub(crate) const MAX_LEVEL: usize = 24;

/// The top layer of `row`: `floor(-ln(u) / ln(m))` for a uniform `u` in (0, 1].
pub(crate) fn random_level(seed: u64, row: u32, m: usize) -> usize {
    let mix = seed ^ u64::from(row).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rng = SmallRng::seed_from_u64(mix);
    let u: f64 = 1.0 - rng.random::<f64>();
    let mult = 1.0 / (m.max(2) as f64).ln();
    ((-u.ln() * mult) as usize).min(MAX_LEVEL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_reproducible_and_geometric() {
        let levels: Vec<usize> = (0..100_000).map(|r| random_level(7, r, 16)).collect();
        let again: Vec<usize> = (0..100_000).map(|r| random_level(7, r, 16)).collect();
        assert_eq!(levels, again);
        let above0 = levels.iter().filter(|&&l| l > 0).count() as f64 / 1e5;
        assert!((above0 - 1.0 / 16.0).abs() < 0.01, "{above0}");
    }
}
