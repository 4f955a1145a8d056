//! Format 2 against format 1 on the same rows and the same graph, and damaged format-2
//! blocks.

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;
use crate::error::ErrorKind;
use crate::index::{MemIndex, SliceVectors};
use crate::options::SegmentFormat;
use crate::types::{Metric, Value};

const DIM: usize = 24;
const ROWS: usize = 3000;

fn data(seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let centers: Vec<f32> = (0..8 * DIM).map(|_| rng.random_range(-5.0..5.0)).collect();
    let mut out = Vec::with_capacity(ROWS * DIM);
    for r in 0..ROWS {
        let c = (r % 8) * DIM;
        for d in 0..DIM {
            out.push(centers[c + d] + rng.random_range(-1.0..1.0));
        }
    }
    out
}

fn key(r: usize) -> Key {
    if r % 5 == 0 {
        Key::Str(format!("doc-{r}"))
    } else {
        Key::Int(r as u64 * 3)
    }
}

/// The same rows and index laid out in both formats.
fn both(metric: Metric) -> (Vec<f32>, Vec<u8>, Vec<u8>) {
    let vectors = data(7);
    let view = SliceVectors {
        data: &vectors,
        dim: DIM,
    };
    let mem = MemIndex::new(IndexParams::default(), metric, DIM, ROWS);
    for r in 0..ROWS as u32 {
        mem.insert(r, &view);
    }
    let files = [SegmentFormat::V1, SegmentFormat::V2].map(|format| {
        let mut w = SegmentWriter::new(DIM, metric, ROWS);
        for r in 0..ROWS {
            let mut meta = Metadata::new();
            meta.insert("group".into(), Value::Int((r % 4) as i64));
            let payload = format!("p{r}").into_bytes();
            w.push(view.get(r as u32), r as u64 + 1, &key(r), &meta, &payload);
        }
        let index = mem.to_bytes(ROWS as u32, &view);
        w.finish(format, ROWS as u64, &[(Key::Int(1), 5)], index)
            .unwrap()
    });
    let [v1, v2] = files;
    (vectors, v1, v2)
}

fn open(bytes: &[u8], metric: Metric) -> Result<Segment> {
    let blob = aligned(Blob::Owned(Bytes::copy_from_slice(bytes)));
    Segment::from_blob(
        "mem://segments/1".into(),
        blob,
        1,
        0,
        ShardSpec::new(DIM, metric),
        None,
    )
}

#[test]
fn format_2_answers_exactly_like_format_1_on_the_same_graph() {
    for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
        let (vectors, v1, v2) = both(metric);
        assert_eq!(&v2[..8], b"VSHDSEG2");
        let (a, b) = (open(&v1, metric).unwrap(), open(&v2, metric).unwrap());
        assert_eq!((a.format_version(), b.format_version()), (1, 2));
        for row in (0..ROWS as u32).step_by(97) {
            assert_eq!(a.vector(row), b.vector(row));
            assert_eq!(a.key(row), b.key(row));
            assert_eq!(a.seq(row), b.seq(row));
            assert_eq!(a.metadata(row).unwrap(), b.metadata(row).unwrap());
            assert_eq!(a.payload(row), b.payload(row));
        }
        assert_eq!(a.tombstones(), b.tombstones());
        let filter = Filter::parse_str(r#"{"field": "group", "eq": 2}"#).unwrap();
        assert_eq!(a.matching(Some(&filter)), b.matching(Some(&filter)));
        let mut rng = StdRng::seed_from_u64(11);
        for q in 0..50 {
            let base = rng.random_range(0..ROWS) * DIM;
            let query: Vec<f32> = (0..DIM)
                .map(|d| vectors[base + d] + rng.random_range(-0.5..0.5))
                .collect();
            let accept = |r: u32| q % 3 != 0 || r % 2 == 0;
            let sel = if q % 3 == 0 { 0.5 } else { 1.0 };
            let ra = a.ann(&query, 10, 32, &accept, sel, Within::NONE);
            let rb = b.ann(&query, 10, 32, &accept, sel, Within::NONE);
            assert_eq!(ra.len(), 10);
            assert_eq!(ra, rb, "{metric:?} query {q}");
        }
    }
}

#[test]
fn a_merge_extends_a_format_2_graph_like_a_format_1_one() {
    let (vectors, v1, v2) = both(Metric::L2);
    let (a, b) = (open(&v1, Metric::L2).unwrap(), open(&v2, Metric::L2).unwrap());
    let kept: Vec<u32> = (0..ROWS as u32).filter(|r| r % 3 != 0).collect();
    let mut merged: Vec<f32> = kept.iter().flat_map(|&r| a.vector(r).to_vec()).collect();
    merged.extend_from_slice(&vectors[..100 * DIM]);
    let all = SliceVectors {
        data: &merged,
        dim: DIM,
    };
    let rows = (kept.len() + 100) as u32;
    let params = IndexParams::default();
    let ga = a.extend_index(params, &kept, rows, &all).unwrap();
    let gb = b.extend_index(params, &kept, rows, &all).unwrap();
    // The kept rows keep their layers in both (new rows are inserted in parallel, so
    // the bytes and checksums differ): same sizes, degrees, top layer and entry.
    assert_eq!(ga.graph.len(), gb.graph.len());
    assert_eq!(ga.graph[..36], gb.graph[..36]);
    // The graph rebuilt from the hop blocks is the format-1 section, byte for byte.
    let (SegIndex::Hops(hop), SegIndex::Graph(_)) = (&b.index, &a.index) else {
        panic!("formats");
    };
    let rebuilt = hop.graph_section(b.section(Section::Hops)).unwrap();
    assert_eq!(rebuilt, a.section(Section::Graph));
}

#[test]
fn a_damaged_block_is_named_when_read() {
    let (_, _, v2) = both(Metric::L2);
    let seg = open(&v2, Metric::L2).unwrap();
    let vectors = seg.sections[Section::Vectors as usize - 1].clone();
    let hops = seg.sections[Section::Hops as usize - 1].clone();
    for (at, want) in [
        (vectors.start + 3 * 4096 + 17, "section Vectors block 3 "),
        (hops.start + 5 * 4096 + 1, "section Hops block 5 "),
        (v2.len() - 40, "directory checksum"),
        (v2.len() - 3, "tail magic"),
        (20, "header checksum"),
    ] {
        let mut bad = v2.clone();
        bad[at] ^= 0x10;
        let e = open(&bad, Metric::L2).err().expect("damage found");
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        let msg = e.to_string();
        assert!(msg.contains("mem://segments/1") && msg.contains(want), "{msg}");
    }
}

#[test]
fn a_format_2_file_cut_short_is_corrupt() {
    let (_, _, v2) = both(Metric::L2);
    for len in [0, 10, 95, 4096, v2.len() / 2, v2.len() - 1] {
        let e = open(&v2[..len], Metric::L2).err().expect("cut found");
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{len}: {e}");
    }
}
