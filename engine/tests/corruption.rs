//! Damaged files give their defined result: a torn WAL tail is dropped; a damaged segment
//! or manifest is a `Corrupt` error naming the file — never a panic, never wrong results.
//! (Damage inside the WAL: `wal_damage.rs`.)

use std::path::{Path, PathBuf};

use vecshard_engine::{ErrorKind, Key, Metric, Options, Point, SearchRequest, Shard, ShardSpec};

fn opts() -> Options {
    Options {
        background: false,
        ..Options::default()
    }
}

fn points(range: std::ops::Range<u64>) -> Vec<Point> {
    range
        .map(|i| {
            Point::new(i, vec![i as f32, (i % 7) as f32, 1.0, -(i as f32)])
                .with_payload(vec![i as u8; 3])
        })
        .collect()
}

fn files(dir: &Path, sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    v.sort();
    v
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    let at = at % b.len();
    b[at] ^= 0x5a;
    std::fs::write(path, b).unwrap();
}

fn answers(shard: &Shard) -> Vec<Vec<Key>> {
    [[0.0f32, 0.0, 1.0, 0.0], [50.0, 3.0, 1.0, -50.0]]
        .iter()
        .map(|q| {
            let mut r = SearchRequest::new(q.to_vec(), 5);
            r.exact = true;
            shard
                .search(&r)
                .unwrap()
                .into_iter()
                .map(|h| h.key)
                .collect()
        })
        .collect()
}

#[test]
fn damaged_segment_is_a_named_error_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path().to_str().unwrap();
    let s = Shard::create(loc, ShardSpec::new(4, Metric::L2), opts()).unwrap();
    s.upsert(points(0..200)).unwrap();
    s.close().unwrap();
    let good = answers(&Shard::open(loc, Options::read_only()).unwrap());
    let seg = files(dir.path(), "segments").pop().unwrap();
    let pristine = std::fs::read(&seg).unwrap();
    let len = pristine.len();
    let mut detected = 0;
    for at in (0..len)
        .step_by(len / 97 + 1)
        .chain([0, 8, 63, len - 1, len - 9, len - 20])
    {
        std::fs::write(&seg, &pristine).unwrap();
        flip(&seg, at);
        match Shard::open(loc, Options::read_only()) {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Corrupt, "byte {at}: {e}");
                assert!(
                    e.to_string()
                        .contains(&seg.file_name().unwrap().to_string_lossy().to_string()),
                    "{e}"
                );
                detected += 1;
            }
            // Only alignment padding is outside every checksum; flipping it changes nothing.
            Ok(s) => assert_eq!(
                answers(&s),
                good,
                "byte {at} changed results without an error"
            ),
        }
    }
    assert!(detected > 90, "only {detected} flips detected");
    // A truncated segment too.
    std::fs::write(&seg, &pristine[..len / 2]).unwrap();
    assert_eq!(
        Shard::open(loc, opts()).unwrap_err().kind(),
        ErrorKind::Corrupt
    );
}

#[test]
fn damaged_manifest_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path().to_str().unwrap();
    let s = Shard::create(loc, ShardSpec::new(4, Metric::L2), opts()).unwrap();
    s.upsert(points(0..10)).unwrap();
    s.close().unwrap();
    let latest = files(dir.path(), "manifest").pop().unwrap();
    flip(&latest, 30);
    let err = Shard::open(loc, opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(
        err.to_string()
            .contains(&latest.file_name().unwrap().to_string_lossy().to_string()),
        "{err}"
    );
}

#[test]
fn torn_wal_tail_is_dropped_and_earlier_writes_survive() {
    // A crash while appending the last batch: the file ends inside its frame, or (a file
    // extended before its data reached the disk) in zeros.
    for damage in ["truncate", "zeros"] {
        let dir = tempfile::tempdir().unwrap();
        let loc = dir.path().to_str().unwrap();
        let s = Shard::create(loc, ShardSpec::new(4, Metric::L2), opts()).unwrap();
        s.upsert(points(0..10)).unwrap();
        let first_batch_end = std::fs::metadata(files(dir.path(), "wal").pop().unwrap())
            .unwrap()
            .len() as usize;
        s.upsert(points(10..20)).unwrap();
        drop(s); // crash: nothing flushed
        let wal = files(dir.path(), "wal").pop().unwrap();
        let mut b = std::fs::read(&wal).unwrap();
        if damage == "truncate" {
            b.truncate(b.len() - 7);
        } else {
            b[first_batch_end..].fill(0);
        }
        std::fs::write(&wal, &b).unwrap();
        let s = Shard::open(loc, opts()).unwrap();
        assert_eq!(
            s.stats().live_points,
            10,
            "{damage}: the torn last batch is dropped, the first kept"
        );
        assert_eq!(s.get(&Key::Int(9)).unwrap(), Some(points(9..10).remove(0)));
        assert!(s.get(&Key::Int(10)).unwrap().is_none());
        // The shard keeps working and the reused sequence numbers stay consistent.
        s.upsert(points(30..35)).unwrap();
        drop(s);
        let s = Shard::open(loc, opts()).unwrap();
        assert_eq!(s.stats().live_points, 15);
        assert_eq!(
            s.get(&Key::Int(34)).unwrap(),
            Some(points(34..35).remove(0))
        );
    }
}

#[test]
fn damage_inside_an_older_wal_unit_is_not_silently_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path().to_str().unwrap();
    let s = Shard::create(loc, ShardSpec::new(4, Metric::L2), opts()).unwrap();
    s.upsert(points(0..10)).unwrap();
    s.upsert(points(10..20)).unwrap();
    drop(s);
    let s = Shard::open(loc, opts()).unwrap(); // replays, starts a new unit
    s.upsert(points(20..30)).unwrap();
    drop(s);
    let first_with_data = files(dir.path(), "wal")
        .into_iter()
        .find(|p| std::fs::metadata(p).unwrap().len() > 32)
        .unwrap();
    flip(&first_with_data, 40); // inside the first record: acknowledged data is gone
    let err = Shard::open(loc, opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&first_with_data.display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("byte offset 32"), "{msg}");
}
