//! Corrupt, truncated or mismatched sections must make `FrozenIndex::open` fail, never
//! panic.

#[path = "index_util.rs"]
mod util;

use proptest::prelude::*;
use vecshard_engine::Metric;
use vecshard_engine::index::{FrozenIndex, IndexBytes, IndexParams, MemIndex, SliceVectors};

const N: u32 = 300;
const DIM: usize = 8;

/// Built once; every test clones what it damages.
fn sections() -> &'static IndexBytes {
    static SECTIONS: std::sync::LazyLock<IndexBytes> = std::sync::LazyLock::new(build);
    &SECTIONS
}

fn build() -> IndexBytes {
    let data = util::clustered(31, N as usize, DIM, 5, Metric::L2);
    let vectors = SliceVectors {
        data: &data,
        dim: DIM,
    };
    let mem = MemIndex::new(IndexParams::default(), Metric::L2, DIM, N as usize);
    for r in 0..N {
        mem.insert(r, &vectors);
    }
    mem.to_bytes(N, &vectors)
}

fn open(graph: &[u8], codes: &[u8]) -> Result<FrozenIndex, String> {
    FrozenIndex::open(graph, codes, Metric::L2, DIM, N)
}

/// Rewrite the CRC-32C field at `at` so only the structural checks can object.
fn reseal(section: &mut [u8], at: usize) {
    section[at..at + 4].fill(0);
    let crc = crc32c::crc32c(section);
    section[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn intact_sections_open() {
    let s = sections();
    open(&s.graph, &s.codes).unwrap();
}

#[test]
fn mismatched_shape_is_an_error() {
    let s = sections();
    assert!(FrozenIndex::open(&s.graph, &s.codes, Metric::L2, DIM, N - 1).is_err());
    assert!(FrozenIndex::open(&s.graph, &s.codes, Metric::L2, DIM + 1, N).is_err());
    assert!(FrozenIndex::open(&s.graph, &s.codes, Metric::Dot, DIM, N).is_err());
    assert!(open(&s.codes, &s.graph).is_err(), "sections swapped");
    assert!(open(&[], &[]).is_err());
}

#[test]
fn truncations_are_errors() {
    let s = sections();
    for cut in [0, 1, 63, 64, s.graph.len() / 2, s.graph.len() - 1] {
        assert!(
            open(&s.graph[..cut], &s.codes).is_err(),
            "graph cut at {cut}"
        );
    }
    for cut in [0, 8, 64, s.codes.len() / 2, s.codes.len() - 1] {
        assert!(
            open(&s.graph, &s.codes[..cut]).is_err(),
            "codes cut at {cut}"
        );
    }
    let mut longer = s.graph.clone();
    longer.extend_from_slice(&[0; 64]);
    assert!(open(&longer, &s.codes).is_err());
}

#[test]
fn misaligned_sections_are_errors() {
    let s = sections();
    let mut shifted = vec![0u8; s.graph.len() + 1];
    shifted[1..].copy_from_slice(&s.graph);
    // A Vec's buffer is at least 4-byte aligned, so offset 1 is not.
    assert!(open(&shifted[1..], &s.codes).is_err());
}

#[test]
fn structural_damage_behind_a_valid_checksum_is_caught() {
    let s = sections();
    let graph_crc = 36;
    // Layer-0 slot 0 of row 0 (right after the 64-byte header): out of range, then self.
    for bad in [N, N + 1000, 0] {
        let mut g = s.graph.clone();
        g[64..68].copy_from_slice(&bad.to_le_bytes());
        reseal(&mut g, graph_crc);
        assert!(open(&g, &s.codes).is_err(), "link {bad}");
    }
    // The entry row (header offset 28) out of range.
    let mut g = s.graph.clone();
    g[28..32].copy_from_slice(&N.to_le_bytes());
    reseal(&mut g, graph_crc);
    assert!(open(&g, &s.codes).is_err());
    // A zero scale in the codes section (scales start at byte 64 + 64 for dim 8).
    let mut c = s.codes.clone();
    c[128..132].copy_from_slice(&0f32.to_le_bytes());
    reseal(&mut c, 24);
    assert!(open(&s.graph, &c).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_flipped_graph_byte_is_an_error(pos in 0usize..1_000_000, mask in 1u8..=255) {
        let s = sections();
        let mut g = s.graph.clone();
        let at = pos % g.len();
        g[at] ^= mask;
        prop_assert!(open(&g, &s.codes).is_err());
    }

    #[test]
    fn any_flipped_codes_byte_is_an_error(pos in 0usize..1_000_000, mask in 1u8..=255) {
        let s = sections();
        let mut c = s.codes.clone();
        let at = pos % c.len();
        c[at] ^= mask;
        prop_assert!(open(&s.graph, &c).is_err());
    }
}
