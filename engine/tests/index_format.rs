//! Segment sections written by an earlier build must keep opening and answering: these
//! bytes were produced by `MemIndex::to_bytes` (format version 1) and are frozen here.

use vecshard_engine::Metric;
use vecshard_engine::index::{FrozenIndex, IndexParams, MemIndex, SliceVectors, brute_force};

const ROWS: u32 = 16;
const DIM: usize = 4;

/// The rows the frozen sections index: a fixed formula, no RNG.
fn rows() -> Vec<f32> {
    (0..ROWS as usize * DIM)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 4.0)
        .collect()
}

const GRAPH_V1: &str = "\
    565347524150480001000000100000000200000004000000030000000b000000\
    0d0000000da58daa000000000000000000000000000000000000000000000000\
    0100000002000000030000000700000004000000050000000600000008000000\
    090000000b000000ffffffffffffffff0a00000005000000070000000c000000\
    0d000000ffffffffffffffffffffffff03000000010000000c000000ffffffff\
    0d000000080000000a0000000f00000000000000030000000b0000000e000000\
    01000000060000000f000000ffffffff0200000004000000ffffffffffffffff\
    03000000060000000e000000ffffffff0200000007000000ffffffffffffffff\
    0500000003000000ffffffffffffffff0600000004000000ffffffffffffffff\
    070000000a000000ffffffffffffffff0800000006000000ffffffffffffffff\
    00000000ffffffffffffffffffffffffffffffff0100000003000000ffffffff\
    04000000ffffffffffffffff06000000090000000b000000ffffffffffffffff\
    0b000000050000000c000000ffffffff0c000000ffffffff080000000d000000\
    060000000c0000000d0000000c00000000000000080000000800000005000000\
    ffffffffffffffff0500000008000000050000000800000006000000ffffffff\
    08000000ffffffff000000000000000000000000000000000000000000000000\
    0100000000020100020000030202000000000000000000000000000000000000\
    0000000000000000000000000000000000000000000000000000000000000000";

const CODES_V1: &str = "\
    565353513800000001000000100000000400000000000000eb5eb01f00000000\
    0000000000000000000000000000000000000000000000000000000000000000\
    000000be0000003e00000000000000be00000000000000000000000000000000\
    0000000000000000000000000000000000000000000000000000000000000000\
    c662b13cc662b13cc662b13cc662b13c00000000000000000000000000000000\
    0000000000000000000000000000000000000000000000000000000000000000\
    871dbb62fa872ecc6efa983fd86e0ca94bd87f1db54be98728b55cfa9228c66e\
    06923ad87906a44be37917b557e38128c157f49234c168069e34d279119e45e3";

#[test]
fn version_1_sections_still_open_and_answer() {
    let data = rows();
    let vectors = SliceVectors {
        data: &data,
        dim: DIM,
    };
    let (graph, codes) = (unhex(GRAPH_V1), unhex(CODES_V1));
    let frozen = FrozenIndex::open(&graph, &codes, Metric::L2, DIM, ROWS).expect("open v1");
    let all = |_: u32| true;
    for row in 0..ROWS {
        let q = &data[row as usize * DIM..][..DIM];
        let hits = frozen.search(&graph, &codes, &vectors, q, 5, 16, &all, 1.0);
        let exact = brute_force(Metric::L2, &vectors, q, 0..ROWS, 5, &all);
        assert_eq!(hits, exact, "row {row}");
    }
}

#[test]
fn the_writer_still_writes_version_1() {
    let data = rows();
    let vectors = SliceVectors {
        data: &data,
        dim: DIM,
    };
    let mem = MemIndex::new(IndexParams::default(), Metric::L2, DIM, ROWS as usize);
    for r in 0..ROWS {
        mem.insert(r, &vectors);
    }
    let bytes = mem.to_bytes(ROWS, &vectors);
    // Magic and version; a new version needs new golden sections above, kept beside these.
    assert_eq!(bytes.graph[..12], unhex(GRAPH_V1)[..12]);
    assert_eq!(bytes.codes[..12], unhex(CODES_V1)[..12]);
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
