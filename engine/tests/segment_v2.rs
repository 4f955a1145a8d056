//! Shards writing format-2 segments: flushes, a merge that extends a format-2 graph, mixed
//! formats in one shard, and damaged blocks named when the segment is read.

#[cfg(feature = "object-store")]
mod object_support;

use std::path::{Path, PathBuf};

use vecshard_engine::{
    ErrorKind, Key, Metric, Options, Point, SearchRequest, SegmentFormat, Shard, ShardSpec,
};

const DIM: usize = 16;

fn opts(format: SegmentFormat) -> Options {
    Options {
        background: false,
        segment_format: format,
        ..Options::default()
    }
}

fn vector(i: u64) -> Vec<f32> {
    (0..DIM as u64)
        .map(|d| ((i * 31 + d * 17) % 97) as f32 / 10.0 + (i % 5) as f32)
        .collect()
}

fn points(range: std::ops::Range<u64>) -> Vec<Point> {
    range
        .map(|i| Point::new(i, vector(i)).with_payload(format!("p{i}").into_bytes()))
        .collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    v.sort();
    v
}

/// Every key's stored values, and recall@10 of the index against exact search.
fn check(shard: &Shard, n: u64) -> f64 {
    for i in (0..n).step_by(7) {
        let got = shard.get(&Key::Int(i)).unwrap().expect("present");
        assert_eq!(got.vector, vector(i), "key {i}");
        assert_eq!(got.payload, format!("p{i}").into_bytes(), "key {i}");
    }
    let mut found = 0;
    for q in 0..30 {
        let mut req = SearchRequest::new(vector(q * 13 + 1), 10);
        let ann: Vec<Key> = shard
            .search(&req)
            .unwrap()
            .into_iter()
            .map(|h| h.key)
            .collect();
        req.exact = true;
        let exact: Vec<Key> = shard
            .search(&req)
            .unwrap()
            .into_iter()
            .map(|h| h.key)
            .collect();
        found += ann.iter().filter(|k| exact.contains(k)).count();
    }
    found as f64 / 300.0
}

#[test]
fn format_2_flushes_and_merges_then_reopen_in_either_format() {
    let tmp = tempfile::tempdir().unwrap();
    let loc = tmp.path().to_str().unwrap();
    let shard = Shard::create(
        loc,
        ShardSpec::new(DIM, Metric::L2),
        opts(SegmentFormat::V2),
    )
    .unwrap();
    for part in 0..3 {
        shard.upsert(points(part * 700..(part + 1) * 700)).unwrap();
        shard.flush().unwrap();
    }
    for seg in segments(tmp.path()) {
        assert_eq!(&std::fs::read(&seg).unwrap()[..8], b"VSHDSEG2", "{seg:?}");
    }
    assert!(check(&shard, 2100) >= 0.9);
    // The merge extends the largest input's graph, read back from its hop blocks.
    shard.compact().unwrap();
    assert_eq!(shard.stats().segments, 1);
    assert!(check(&shard, 2100) >= 0.9);
    shard.close().unwrap();
    // A format-1 writer adds a format-1 segment next to the format-2 one.
    let shard = Shard::open(loc, opts(SegmentFormat::V1)).unwrap();
    shard.upsert(points(2100..2500)).unwrap();
    shard.flush().unwrap();
    let magics: Vec<Vec<u8>> = segments(tmp.path())
        .iter()
        .map(|p| std::fs::read(p).unwrap()[..8].to_vec())
        .collect();
    assert!(magics.contains(&b"VSHDSEG1".to_vec()) && magics.contains(&b"VSHDSEG2".to_vec()));
    assert!(check(&shard, 2500) >= 0.9);
    shard.close().unwrap();
    let reader = Shard::open(loc, Options::read_only()).unwrap();
    assert_eq!(reader.stats().live_points, 2500);
    assert!(check(&reader, 2500) >= 0.9);
}

#[test]
fn a_damaged_format_2_block_is_a_named_error() {
    let tmp = tempfile::tempdir().unwrap();
    let loc = tmp.path().to_str().unwrap();
    let shard = Shard::create(
        loc,
        ShardSpec::new(DIM, Metric::L2),
        opts(SegmentFormat::V2),
    )
    .unwrap();
    shard.upsert(points(0..1500)).unwrap();
    shard.close().unwrap();
    let seg = segments(tmp.path()).pop().unwrap();
    let pristine = std::fs::read(&seg).unwrap();
    let name = seg.file_name().unwrap().to_string_lossy().to_string();
    // Every 4 KiB block but the padding between sections carries a checksum.
    let mut detected = 0;
    for at in (4096..pristine.len() - 64).step_by(4096 * 3 + 123) {
        let mut bad = pristine.clone();
        bad[at] ^= 0x21;
        std::fs::write(&seg, &bad).unwrap();
        match Shard::open(loc, Options::read_only()) {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Corrupt, "byte {at}: {e}");
                let msg = e.to_string();
                assert!(msg.contains(&name), "byte {at}: {msg}");
                assert!(
                    msg.contains("block") || msg.contains("directory"),
                    "byte {at}: {msg}"
                );
                detected += 1;
            }
            Ok(s) => {
                // Only section padding is unchecked; it is never read.
                assert!(check(&s, 1500) >= 0.9, "byte {at}");
            }
        }
    }
    assert!(detected >= 5, "{detected} damaged blocks found");
    std::fs::write(&seg, &pristine).unwrap();
    assert!(check(&Shard::open(loc, Options::read_only()).unwrap(), 1500) >= 0.9);
}

/// On S3 (the local service): a format-2 writer, then a reader, answer alike.
#[cfg(feature = "object-store")]
#[test]
fn format_2_segments_on_local_s3() {
    let loc = object_support::s3_location("segment-v2");
    let shard = Shard::create(
        &loc,
        ShardSpec::new(DIM, Metric::L2),
        opts(SegmentFormat::V2),
    )
    .unwrap();
    shard.upsert(points(0..900)).unwrap();
    shard.flush().unwrap();
    shard.upsert(points(900..1500)).unwrap();
    shard.flush().unwrap();
    shard.compact().unwrap();
    assert!(check(&shard, 1500) >= 0.9);
    shard.close().unwrap();
    let reader = Shard::open(&loc, Options::read_only()).unwrap();
    assert_eq!(reader.stats().live_points, 1500);
    assert!(check(&reader, 1500) >= 0.9);
}
