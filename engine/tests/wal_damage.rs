//! Damage inside the WAL is a `Corrupt` error naming the file and byte offset, and the WAL
//! is left exactly as it was; only an operator's explicit
//! [`Shard::open_accepting_wal_loss`] drops what follows the damage, and reports it.
//! (A torn tail, which a crash can leave, is still dropped: `corruption.rs`.)

#[cfg(feature = "object-store")]
mod object_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vecshard_engine::{ErrorKind, Key, Metric, Options, Point, Shard, ShardSpec};
use vecshard_test_support::model::point4 as point;

fn opts() -> Options {
    Options {
        background: false,
        ..Options::default()
    }
}

fn spec() -> ShardSpec {
    ShardSpec::new(4, Metric::L2)
}

fn points(range: std::ops::Range<u64>) -> Vec<Point> {
    range.map(point).collect()
}

/// Every key in `range` is there with exactly the value written.
fn assert_points(shard: &Shard, range: std::ops::Range<u64>) {
    for i in range {
        assert_eq!(shard.get(&Key::Int(i)).unwrap(), Some(point(i)), "key {i}");
    }
}

fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Every WAL file and its bytes.
fn wal_snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    wal_files(dir)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

/// Byte offsets where the WAL frames of a file start (header 32 bytes, then
/// `[len u32][crc u32][len bytes]`).
fn frame_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = 32;
    while pos + 8 <= bytes.len() {
        out.push(pos);
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 8 + len;
    }
    out
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x5a;
    std::fs::write(path, b).unwrap();
}

/// A local shard whose one WAL file holds three batches (0..10, 10..20, 20..30), left
/// unflushed as a crash would.
fn three_batches() -> (tempfile::TempDir, PathBuf, Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Shard::create(dir.path().to_str().unwrap(), spec(), opts()).unwrap();
    for b in 0..3 {
        s.upsert(points(b * 10..b * 10 + 10)).unwrap();
    }
    drop(s);
    let wal = wal_files(dir.path()).pop().unwrap();
    let offsets = frame_offsets(&std::fs::read(&wal).unwrap());
    assert_eq!(offsets.len(), 3);
    (dir, wal, offsets)
}

#[test]
fn a_flipped_byte_in_a_local_unit_is_corrupt_and_changes_nothing() {
    // In the first, the middle and the (complete) last batch.
    for batch in 0..3 {
        let (dir, wal, offsets) = three_batches();
        let loc = dir.path().to_str().unwrap();
        flip(&wal, offsets[batch] + 20);
        let before = wal_snapshot(dir.path());
        for _ in 0..2 {
            let err = Shard::open(loc, opts()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
            let msg = err.to_string();
            assert!(msg.contains(&wal.display().to_string()), "{msg}");
            assert!(
                msg.contains(&format!("byte offset {}", offsets[batch])),
                "{msg}"
            );
            assert_eq!(
                wal_snapshot(dir.path()),
                before,
                "the WAL is left as it was"
            );
        }
    }
}

#[test]
fn accepting_the_loss_keeps_what_precedes_the_damage_and_reports_the_rest() {
    let (dir, wal, offsets) = three_batches();
    let loc = dir.path().to_str().unwrap();
    let len = std::fs::metadata(&wal).unwrap().len();
    flip(&wal, offsets[1] + 20);

    let (s, repair) = Shard::open_accepting_wal_loss(loc, opts()).unwrap();
    assert_eq!(repair.dropped.len(), 1, "{repair:?}");
    let loss = &repair.dropped[0];
    assert_eq!(loss.file, wal.display().to_string());
    assert_eq!(loss.offset, offsets[1] as u64);
    assert_eq!(loss.bytes, len - offsets[1] as u64);
    assert_eq!(
        (loss.records, loss.points),
        (1, 10),
        "batch 20..30 was readable"
    );
    assert_eq!(repair.kept_seq, 10);
    assert_eq!(s.stats().live_points, 10);
    assert_points(&s, 0..10);
    assert!(s.get(&Key::Int(10)).unwrap().is_none());

    // The loss is settled: new writes, a crash, and a plain open.
    s.upsert(points(100..105)).unwrap();
    drop(s);
    let s = Shard::open(loc, opts()).unwrap();
    assert_eq!(s.stats().live_points, 15);
    assert_points(&s, 0..10);
    assert_points(&s, 100..105);
    drop(s);

    // On an intact WAL it drops nothing.
    let (s, repair) = Shard::open_accepting_wal_loss(loc, opts()).unwrap();
    assert!(repair.is_empty(), "{repair:?}");
    assert_eq!(s.stats().live_points, 15);
}

#[test]
fn accepting_the_loss_drops_later_units_and_sequence_gaps_too() {
    // Units 0, 1 and 2 each hold one batch (every open starts a new unit).
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path().to_str().unwrap();
    let s = Shard::create(loc, spec(), opts()).unwrap();
    s.upsert(points(0..10)).unwrap();
    drop(s);
    for b in 1..3 {
        let s = Shard::open(loc, opts()).unwrap();
        s.upsert(points(b * 10..b * 10 + 10)).unwrap();
        drop(s);
    }
    let with_data: Vec<PathBuf> = wal_files(dir.path())
        .into_iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() > 32)
        .collect();
    assert_eq!(with_data.len(), 3);

    // A lost middle unit is a gap: refused, then dropped from there on when accepted.
    std::fs::remove_file(&with_data[1]).unwrap();
    let err = Shard::open(loc, opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("sequence gap"), "{err}");
    assert!(
        err.to_string()
            .contains(&with_data[2].display().to_string()),
        "{err}"
    );
    let (s, repair) = Shard::open_accepting_wal_loss(loc, opts()).unwrap();
    let files: Vec<&str> = repair.dropped.iter().map(|l| l.file.as_str()).collect();
    assert_eq!(
        files,
        vec![with_data[2].display().to_string()],
        "{repair:?}"
    );
    assert_eq!((repair.records(), repair.points()), (1, 10));
    assert_points(&s, 0..10);
    assert_eq!(s.stats().live_points, 10);
    s.upsert(points(50..52)).unwrap();
    drop(s);

    // Damage in an older unit: everything after it, in later units too, is dropped.
    let s = Shard::open(loc, opts()).unwrap();
    s.upsert(points(60..70)).unwrap();
    drop(s);
    let s = Shard::open(loc, opts()).unwrap();
    s.upsert(points(70..80)).unwrap();
    drop(s);
    let with_data: Vec<PathBuf> = wal_files(dir.path())
        .into_iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() > 32)
        .collect();
    assert_eq!(with_data.len(), 3, "{with_data:?}");
    flip(&with_data[1], 40);
    let before = wal_snapshot(dir.path());
    let err = Shard::open(loc, opts()).unwrap_err();
    assert!(
        err.to_string()
            .contains(&with_data[1].display().to_string()),
        "{err}"
    );
    assert_eq!(wal_snapshot(dir.path()), before);
    let (s, repair) = Shard::open_accepting_wal_loss(loc, opts()).unwrap();
    let files: Vec<String> = repair.dropped.iter().map(|l| l.file.clone()).collect();
    let expected: Vec<String> = with_data[1..]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(files, expected, "{repair:?}");
    assert_eq!(
        repair.points(),
        10,
        "70..80 was readable; 60..70 was damaged"
    );
    assert_points(&s, 0..10);
    assert_points(&s, 50..52);
    assert_eq!(s.stats().live_points, 12);
    drop(s);
    let s = Shard::open(loc, opts()).unwrap();
    assert_eq!(s.stats().live_points, 12);
}

#[cfg(feature = "object-store")]
mod object {
    use std::sync::Arc;

    use bytes::Bytes;
    use vecshard_engine::storage::{Storage, open_storage};

    use super::object_support::{fast_retries, unique};
    use super::*;

    /// A `memory://` shard with three batches, each its own WAL object, unflushed.
    fn three_units() -> (String, Arc<dyn Storage>, Vec<String>) {
        let loc = format!("memory://{}", unique("wal-damage"));
        let s = Shard::create(&loc, spec(), opts()).unwrap();
        for b in 0..3 {
            s.upsert(points(b * 10..b * 10 + 10)).unwrap();
        }
        drop(s);
        let storage = open_storage(&loc, &fast_retries()).unwrap();
        let units: Vec<String> = storage
            .list("wal")
            .unwrap()
            .into_iter()
            .filter(|o| o.size > 32)
            .map(|o| o.path)
            .collect();
        assert_eq!(units.len(), 3);
        (loc, storage, units)
    }

    fn snapshot(storage: &dyn Storage) -> Vec<(String, Bytes)> {
        let listed = storage.list("wal").unwrap();
        listed
            .into_iter()
            .map(|o| {
                let b = storage.get(&o.path).unwrap();
                (o.path, b)
            })
            .collect()
    }

    #[test]
    fn a_flipped_byte_or_a_cut_in_an_object_unit_is_corrupt_and_changes_nothing() {
        for damage in ["flip", "cut"] {
            let (loc, storage, units) = three_units();
            let unit = &units[1];
            let mut b = storage.get(unit).unwrap().to_vec();
            let len = b.len();
            if damage == "flip" {
                b[len / 2] ^= 0x5a;
            } else {
                // On local disk a torn tail; an object is written whole, so never.
                b.truncate(len - 7);
            }
            storage.put(unit, Bytes::from(b)).unwrap();
            let before = snapshot(storage.as_ref());
            let err = Shard::open(&loc, opts()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{damage}: {err}");
            let msg = err.to_string();
            assert!(msg.contains(&format!("{loc}/{unit}")), "{msg}");
            assert!(msg.contains("byte offset 32"), "{msg}");
            assert_eq!(snapshot(storage.as_ref()), before, "{damage}");

            let (s, repair) = Shard::open_accepting_wal_loss(&loc, opts()).unwrap();
            let files: Vec<String> = repair.dropped.iter().map(|l| l.file.clone()).collect();
            let expected = vec![format!("{loc}/{}", units[1]), format!("{loc}/{}", units[2])];
            assert_eq!(files, expected, "{damage}: {repair:?}");
            assert_eq!(repair.points(), 10, "{damage}: batch 20..30 was readable");
            assert_points(&s, 0..10);
            assert_eq!(s.stats().live_points, 10);
            s.upsert(points(40..45)).unwrap();
            drop(s);
            let s = Shard::open(&loc, opts()).unwrap();
            assert_points(&s, 0..10);
            assert_points(&s, 40..45);
            assert_eq!(s.stats().live_points, 15);
        }
    }
}
