//! A shard written by an earlier build (format version 1: manifest, compacted segment with
//! its graph and SQ8 codes, tombstones, a WAL with unflushed writes) must keep opening and
//! answering exactly. The files in `tests/data/shard-v1` are frozen; regenerate them only
//! with a new format version (`examples/write_golden.rs`). `tests/data/shard-v2` is the
//! same shard with format-2 segments (hop blocks, block checksums, tail directory).

mod golden;

use std::path::Path;

use vecshard_engine::{Filter, Key, Options, SearchRequest, Shard, distance};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn frozen_copy(version: u32) -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shard");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/shard-v{version}")),
        &dir,
    );
    (tmp, dir.to_str().unwrap().to_string())
}

/// Check every point; `with_wal`: the WAL-only writes (points 120.. and one delete) apply.
fn check(shard: &Shard, with_wal: bool) {
    let upto = if with_wal { 150 } else { 120 };
    let live = |i: u64| i < upto && golden::live(i, with_wal);
    for i in 0..150 {
        let got = shard.get(&golden::key(i)).unwrap();
        if !live(i) {
            assert!(got.is_none(), "key {} should be absent", golden::key(i));
            continue;
        }
        let got = got.unwrap_or_else(|| panic!("key {} missing", golden::key(i)));
        let mut want = golden::point(i);
        assert!(distance::normalize(&mut want.vector));
        assert_eq!(got.metadata, want.metadata);
        assert_eq!(got.payload, want.payload);
        for (a, b) in got.vector.iter().zip(&want.vector) {
            assert!(
                (a - b).abs() < 1e-6,
                "key {}: vector differs",
                golden::key(i)
            );
        }
    }
    assert_eq!(
        shard.stats().live_points,
        (0..150).filter(|i| live(*i)).count() as u64
    );
    // Searching a stored vector finds every point with that vector (42 repeats every 11
    // points) at distance 0, in key order; filters use the frozen metadata.
    let same: Vec<Key> = (0..150)
        .filter(|i| live(*i) && i % 11 == 42 % 11)
        .map(golden::key)
        .collect();
    let mut want = same.clone();
    want.sort();
    for exact in [true, false] {
        let mut q = SearchRequest::new(golden::point(42).vector, same.len());
        q.exact = exact;
        let hits = shard.search(&q).unwrap();
        assert!(
            hits.iter().all(|h| h.distance.abs() < 1e-5),
            "exact={exact}: {hits:?}"
        );
        assert_eq!(
            hits.into_iter().map(|h| h.key).collect::<Vec<_>>(),
            want,
            "exact={exact}"
        );
    }
    let mut q = SearchRequest::new(golden::point(42).vector, 200);
    q.filter = Some(Filter::parse_str(r#"{"field": "tags", "eq": "t1"}"#).unwrap());
    let hits = shard.search(&q).unwrap();
    assert_eq!(
        hits.len(),
        (0..150).filter(|i| live(*i) && i % 3 == 1).count()
    );
}

fn reopens_for_writing_with_its_wal(version: u32) {
    let (_tmp, dir) = frozen_copy(version);
    let shard = Shard::open(&dir, Options::default()).unwrap();
    check(&shard, true);
    shard.close().unwrap();
    let shard = Shard::open(&dir, Options::default()).unwrap();
    check(&shard, true);
}

fn reopens_read_only(version: u32) {
    let (_tmp, dir) = frozen_copy(version);
    // Read-only handles see what was flushed: the first 120 points.
    check(&Shard::open(&dir, Options::read_only()).unwrap(), false);
}

#[test]
fn version_1_shard_reopens_for_writing_with_its_wal() {
    reopens_for_writing_with_its_wal(1);
}

#[test]
fn version_1_shard_reopens_read_only() {
    reopens_read_only(1);
}

#[test]
fn version_2_shard_reopens_for_writing_with_its_wal() {
    reopens_for_writing_with_its_wal(2);
}

#[test]
fn version_2_shard_reopens_read_only() {
    reopens_read_only(2);
}

#[test]
fn version_2_segments_are_format_2() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/shard-v2/segments");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert_eq!(&bytes[..8], b"VSHDSEG2");
        n += 1;
    }
    assert_eq!(n, 1, "one compacted segment");
}

/// The frozen shards through the object-store layer (`file://`): format 1 is fetched
/// whole, format 2 read lazily; both answer as on local disk.
#[cfg(feature = "object-store")]
fn reopens_read_only_from_an_object_store(version: u32, lazy: u64) {
    let (_tmp, dir) = frozen_copy(version);
    let opts = Options {
        prefetch: vecshard_engine::Prefetch::None,
        ..Options::read_only()
    };
    let shard = Shard::open(&format!("file://{dir}"), opts).unwrap();
    assert_eq!(shard.stats().lazy_segments, lazy);
    check(&shard, false);
}

#[cfg(feature = "object-store")]
#[test]
fn version_1_shard_reopens_read_only_from_an_object_store_whole() {
    reopens_read_only_from_an_object_store(1, 0);
}

#[cfg(feature = "object-store")]
#[test]
fn version_2_shard_reopens_read_only_from_an_object_store_lazily() {
    reopens_read_only_from_an_object_store(2, 1);
}
