//! Checkpoints (`Shard::checkpoint`) and restore (opening the checkpoint): consistent under
//! concurrent writes, flushes and compactions; pinned files survive garbage collection; a
//! checkpoint without its manifest refuses to open; deleting it leaves the source intact.
//! Local disk always; the local S3 service with the `object-store` feature.

#[cfg(feature = "object-store")]
mod object_support;

mod batches;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use batches::{contents, point};
use vecshard_engine::failpoints::CHECKPOINT_COPY_BEFORE;
use vecshard_engine::{ErrorKind, Key, Metric, Options, Point, Shard, ShardSpec};

const DIM: usize = 4;
const KEYS: u64 = 300;

/// Fail points are process-wide: each test of this binary runs in a fail scenario of its
/// own (one at a time under `cargo test`; nextest gives each test a process anyway).
fn one_at_a_time() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}

fn spec() -> ShardSpec {
    ShardSpec::new(DIM, Metric::L2)
}

/// Small memtables (many flushes) and few segments (frequent compactions).
fn busy_opts() -> Options {
    Options {
        memtable_bytes: 64 << 10,
        max_segments: 3,
        ..Options::default()
    }
}

/// One acknowledged write: its last sequence number, its keys, and `Some(batch)` for an
/// upsert (`None`: a delete).
#[derive(Debug, Clone)]
struct Acked {
    last_seq: u64,
    keys: Vec<u64>,
    batch: Option<u64>,
}

impl Acked {
    fn first_seq(&self) -> u64 {
        self.last_seq + 1 - self.keys.len() as u64
    }
}

/// Writers upserting and deleting batches of overlapping keys until `stop`.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn start_load(shard: &Shard, writers: u64) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let next_batch = Arc::new(AtomicU64::new(1));
    let threads = (0..writers)
        .map(|w| {
            let (shard, stop, acked, next) = (
                shard.clone(),
                stop.clone(),
                acked.clone(),
                next_batch.clone(),
            );
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let batch = next.fetch_add(1, Ordering::Relaxed);
                    let start = (batch * 37 + w * 101) % KEYS;
                    let keys: Vec<u64> = (0..1 + batch % 20).map(|i| (start + i) % KEYS).collect();
                    let mut keys = keys;
                    keys.sort_unstable();
                    keys.dedup();
                    n += 1;
                    let entry = if n.is_multiple_of(5) {
                        let seq = shard.delete(keys.iter().map(|k| Key::from(*k)).collect());
                        Acked {
                            last_seq: seq.unwrap(),
                            keys,
                            batch: None,
                        }
                    } else {
                        let points = keys.iter().map(|k| point(*k, batch)).collect();
                        Acked {
                            last_seq: shard.upsert(points).unwrap(),
                            keys,
                            batch: Some(batch),
                        }
                    };
                    acked.lock().unwrap().push(entry);
                }
            })
        })
        .collect();
    Load {
        stop,
        acked,
        threads,
    }
}

impl Load {
    /// Wait until at least `n` writes are acknowledged (polling, no sleeping).
    fn wait_for(&self, n: usize) {
        while self.acked.lock().unwrap().len() < n {
            std::thread::yield_now();
        }
    }

    fn snapshot(&self) -> Vec<Acked> {
        self.acked.lock().unwrap().clone()
    }

    fn finish(self) -> Vec<Acked> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}

/// The shard's content after applying, in sequence order, every write up to `seq`.
fn model(acked: &[Acked], seq: u64) -> BTreeMap<u64, u64> {
    let mut ops: Vec<&Acked> = acked.iter().filter(|a| a.last_seq <= seq).collect();
    ops.sort_by_key(|a| a.last_seq);
    let mut m = BTreeMap::new();
    for a in ops {
        for k in &a.keys {
            match a.batch {
                Some(b) => m.insert(*k, b),
                None => m.remove(k),
            };
        }
    }
    m
}

/// A checkpoint taken under concurrent writes (and the flushes and compactions they cause)
/// holds exactly the writes up to the sequence number it reports: all acknowledged before
/// it started, whole batches only, deletes deleted; the source keeps going.
fn checkpoint_under_writes(src: &str, dest: &str) {
    let shard = Shard::create(src, spec(), busy_opts()).unwrap();
    let load = start_load(&shard, 2);
    load.wait_for(300);
    let before = load.snapshot();
    let summary = shard.checkpoint(dest).unwrap();
    let during = load.snapshot().len();
    load.wait_for(during + 50);
    let acked = load.finish();

    let acked_before = before.iter().map(|a| a.last_seq).max().unwrap();
    assert!(
        summary.seq >= acked_before,
        "checkpoint covers {} but {acked_before} was acknowledged before it started",
        summary.seq
    );
    // No batch straddles the checkpoint's sequence number.
    for a in &acked {
        assert!(
            a.last_seq <= summary.seq || a.first_seq() > summary.seq,
            "batch {a:?} straddles checkpoint seq {}",
            summary.seq
        );
    }
    let expected = model(&acked, summary.seq);
    assert!(
        expected.len() > 10,
        "the test wrote too little: {expected:?}"
    );

    let restored = Shard::open(dest, Options::default()).unwrap();
    assert_eq!(contents(&restored), expected);
    assert_eq!(summary.points, expected.len() as u64);
    assert_eq!(restored.stats().flushed_seq, summary.seq);
    assert!(summary.segments >= 1 && summary.bytes > 0, "{summary:?}");
    // The restore is a writer of its own: it takes writes without touching the source.
    assert!(restored.stats().epoch > 0);
    restored.upsert(vec![point(KEYS + 1, 0)]).unwrap();
    restored.close().unwrap();

    let all = model(&acked, u64::MAX);
    assert_eq!(contents(&shard), all);
    assert!(shard.get(&Key::from(KEYS + 1)).unwrap().is_none());
    shard.close().unwrap();
    let reopened = Shard::open(src, Options::default()).unwrap();
    assert_eq!(contents(&reopened), all);
    reopened.close().unwrap();
}

#[test]
fn local_checkpoint_under_concurrent_writes() {
    let _fp = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let dest = dir.path().join("ckpt");
    checkpoint_under_writes(src.to_str().unwrap(), dest.to_str().unwrap());
}

/// Every manifest version holds exactly the writes up to its `flushed_seq`, so a compaction
/// must keep rows that only unflushed writes (memtable + WAL) overwrote or deleted. It once
/// dropped them: a checkpoint (or a read-only reader) of that manifest then missed writes it
/// claimed to cover, the cause of lost batches under concurrent writes.
#[test]
fn compaction_keeps_rows_superseded_only_by_unflushed_writes() {
    let _fp = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let src = src.to_str().unwrap();
    let opts = Options {
        background: false,
        ..Options::default()
    };
    let shard = Shard::create(src, spec(), opts).unwrap();
    shard
        .upsert((0..10).map(|k| point(k, 1)).collect())
        .unwrap();
    shard.flush().unwrap();
    shard
        .upsert((10..20).map(|k| point(k, 2)).collect())
        .unwrap();
    shard.flush().unwrap();
    let flushed: BTreeMap<u64, u64> = (0..20).map(|k| (k, 1 + k / 10)).collect();
    // Not flushed: only in the memtable and the WAL.
    shard.upsert(vec![point(3, 3)]).unwrap();
    shard.delete(vec![Key::from(12u64)]).unwrap();
    shard.compact().unwrap();
    assert_eq!(shard.stats().segments, 1);
    let mut newest = flushed.clone();
    newest.insert(3, 3);
    newest.remove(&12);
    assert_eq!(contents(&shard), newest);

    // What the manifest covers: the flushed writes, with nothing of the later ones.
    let reader = Shard::open(src, Options::read_only()).unwrap();
    assert_eq!(contents(&reader), flushed);
    let dest = dir.path().join("ckpt");
    let summary = reader.checkpoint(dest.to_str().unwrap()).unwrap();
    assert_eq!(summary.points, flushed.len() as u64);
    let restored = Shard::open(dest.to_str().unwrap(), Options::default()).unwrap();
    assert_eq!(contents(&restored), flushed);
    restored.close().unwrap();
    reader.close().unwrap();

    // The writer's own restart replays the WAL on top: the newest values.
    shard.close().unwrap();
    let reopened = Shard::open(src, Options::default()).unwrap();
    assert_eq!(contents(&reopened), newest);
    reopened.close().unwrap();
}

/// A compaction that makes the checkpoint's segments obsolete while it copies them (local
/// disk deletes obsolete files at once): the pins keep them until the checkpoint ends, and
/// the next commit after it deletes them.
#[test]
fn compaction_during_checkpoint_keeps_its_files_until_it_ends() {
    let _fp = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let slot: Arc<OnceLock<Shard>> = Arc::new(OnceLock::new());
    let compacted = Arc::new(AtomicBool::new(false));
    {
        let (slot, compacted) = (slot.clone(), compacted.clone());
        fail::cfg_callback(CHECKPOINT_COPY_BEFORE, move || {
            let shard = slot.get().unwrap();
            shard.upsert(vec![point(0, 999)]).unwrap();
            shard.flush().unwrap();
            shard.compact().unwrap();
            compacted.store(true, Ordering::Relaxed);
        })
        .unwrap();
    }
    let opts = Options {
        background: false,
        ..Options::default()
    };
    let shard = Shard::create(src.to_str().unwrap(), spec(), opts).unwrap();
    slot.set(shard.clone()).unwrap();
    for batch in 1..=4 {
        shard
            .upsert((0..50).map(|k| point(k, batch)).collect())
            .unwrap();
        shard.flush().unwrap();
    }
    shard.delete(vec![Key::from(7u64)]).unwrap();
    let segments_before = list(&src.join("segments"));
    assert!(segments_before.len() >= 4, "{segments_before:?}");

    let dest = dir.path().join("ckpt");
    let summary = shard.checkpoint(dest.to_str().unwrap()).unwrap();
    assert!(compacted.load(Ordering::Relaxed));
    // The compaction's inputs are still there (pinned while the checkpoint ran) ...
    for f in &segments_before {
        assert!(src.join("segments").join(f).exists(), "{f} was deleted");
    }
    // ... and go at the next commit.
    shard.upsert(vec![point(1, 1000)]).unwrap();
    shard.flush().unwrap();
    for f in &segments_before {
        assert!(
            !src.join("segments").join(f).exists(),
            "{f} outlived the checkpoint"
        );
    }

    let restored = Shard::open(dest.to_str().unwrap(), Options::default()).unwrap();
    let expected: BTreeMap<u64, u64> = (0..50).filter(|k| *k != 7).map(|k| (k, 4)).collect();
    assert_eq!(contents(&restored), expected);
    assert_eq!(summary.points, 49);
    // The four flushes and the checkpoint's own (the delete).
    assert_eq!(summary.segments, segments_before.len() as u64 + 1);
    assert_eq!(
        summary.linked, summary.segments,
        "local files are hard-linked"
    );
    restored.close().unwrap();
    shard.close().unwrap();
}

fn list(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// A small shard with two segments, a delete and an overwrite, flushed.
fn small_shard(location: &str) -> Shard {
    let shard = Shard::create(location, spec(), Options::default()).unwrap();
    shard
        .upsert((0..20).map(|k| point(k, 1)).collect())
        .unwrap();
    shard.flush().unwrap();
    shard
        .upsert((10..30).map(|k| point(k, 2)).collect())
        .unwrap();
    shard.delete(vec![Key::from(3u64)]).unwrap();
    shard
}

fn small_expected() -> BTreeMap<u64, u64> {
    (0..30)
        .filter(|k| *k != 3)
        .map(|k| (k, if k < 10 { 1 } else { 2 }))
        .collect()
}

#[test]
fn deleting_a_checkpoint_leaves_the_shard_intact() {
    let _fp = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let dest = dir.path().join("ckpt");
    let shard = small_shard(src.to_str().unwrap());
    shard.checkpoint(dest.to_str().unwrap()).unwrap();
    let restored = Shard::open(dest.to_str().unwrap(), Options::default()).unwrap();
    assert_eq!(contents(&restored), small_expected());
    restored.close().unwrap();
    std::fs::remove_dir_all(&dest).unwrap();

    assert_eq!(contents(&shard), small_expected());
    shard.close().unwrap();
    let reopened = Shard::open(src.to_str().unwrap(), Options::default()).unwrap();
    assert_eq!(contents(&reopened), small_expected());
    reopened.close().unwrap();
}

#[test]
fn a_checkpoint_without_its_manifest_does_not_open() {
    let _fp = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let dest = dir.path().join("ckpt");
    let shard = small_shard(src.to_str().unwrap());
    shard.checkpoint(dest.to_str().unwrap()).unwrap();
    std::fs::remove_dir_all(dest.join("manifest")).unwrap();
    let d = dest.to_str().unwrap();
    for err in [
        Shard::open(d, Options::default()).unwrap_err(),
        Shard::open(d, Options::read_only()).unwrap_err(),
        Shard::open_or_create(d, spec(), Options::default()).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        let msg = err.to_string();
        assert!(msg.contains(d) && msg.contains("no manifest"), "{msg}");
    }
    shard.close().unwrap();
}

#[test]
fn a_checkpoint_goes_only_where_no_shard_is() {
    let _fp = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let dest = dir.path().join("ckpt");
    let shard = small_shard(src.to_str().unwrap());
    shard.checkpoint(dest.to_str().unwrap()).unwrap();
    let err = shard.checkpoint(dest.to_str().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    let err = shard.checkpoint(src.to_str().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let err = shard.checkpoint("").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    shard.close().unwrap();
}

/// `restore_checkpoint` copies a checkpoint into a new location that then opens as the
/// checkpoint's shard; it checks the recorded CRC32C, finishes an interrupted copy, leaves
/// a location with a manifest alone, and names a missing checkpoint.
#[test]
fn restore_checkpoint_copies_checks_and_resumes() {
    use vecshard_engine::restore_checkpoint;
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let shard = small_shard(&path("src"));
    let c = shard.checkpoint(&path("ckpt")).unwrap();
    shard.close().unwrap();
    let err =
        restore_checkpoint(&path("ckpt"), &path("bad"), Some(c.manifest_crc32c ^ 1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("CRC32C"), "{err}");
    assert!(
        list(&dir.path().join("bad"))
            .iter()
            .all(|d| d != "manifest")
    );
    // An interrupted restore (segments, no manifest) is finished by the next one.
    let r = restore_checkpoint(&path("ckpt"), &path("new"), Some(c.manifest_crc32c)).unwrap();
    assert_eq!(
        (r.segments, r.bytes, r.already_there),
        (c.segments, c.bytes, false)
    );
    std::fs::remove_dir_all(dir.path().join("new/manifest")).unwrap();
    let r = restore_checkpoint(&path("ckpt"), &path("new"), Some(c.manifest_crc32c)).unwrap();
    assert!(!r.already_there);
    let restored = Shard::open(&path("new"), Options::default()).unwrap();
    assert_eq!(contents(&restored), small_expected());
    restored.upsert(vec![point(100, 3)]).unwrap();
    restored.close().unwrap();
    // Once the shard exists, a repeated restore leaves it alone.
    let r = restore_checkpoint(&path("ckpt"), &path("new"), Some(c.manifest_crc32c)).unwrap();
    assert!(r.already_there);
    let reopened = Shard::open(&path("new"), Options::default()).unwrap();
    assert_eq!(contents(&reopened).len(), small_expected().len() + 1);
    reopened.close().unwrap();
    let err = restore_checkpoint(&path("nothing"), &path("other"), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("nothing"), "{err}");
}

/// A read-only handle checkpoints what its manifest covers: the flushed writes.
#[test]
fn read_only_checkpoint_covers_flushed_writes() {
    let _fp = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let dest = dir.path().join("ckpt");
    let shard = small_shard(src.to_str().unwrap());
    let reader = Shard::open(src.to_str().unwrap(), Options::read_only()).unwrap();
    let summary = reader.checkpoint(dest.to_str().unwrap()).unwrap();
    let flushed: BTreeMap<u64, u64> = (0..20).map(|k| (k, 1)).collect();
    assert_eq!(summary.points, 20);
    let restored = Shard::open(dest.to_str().unwrap(), Options::default()).unwrap();
    assert_eq!(contents(&restored), flushed);
    restored.close().unwrap();
    shard.close().unwrap();
}

/// Checkpoint throughput of a shard of about `mb` MB from `src` to `dest` (printed; run with
/// `--ignored --nocapture`).
fn measure(src: &str, dest: &str, mb: usize) {
    // A cheap graph: this measures the copy, not the build.
    let mut spec = ShardSpec::new(128, Metric::L2);
    spec.index.m = 8;
    spec.index.ef_construction = 32;
    let shard = Shard::create(src, spec, Options::default()).unwrap();
    let points = mb * (1 << 20) / (128 * 4 + 200);
    for chunk in (0..points as u64).collect::<Vec<_>>().chunks(5000) {
        let batch = chunk
            .iter()
            .map(|k| Point::new(*k, (0..128).map(|i| ((k * 31 + i) % 97) as f32).collect()))
            .collect();
        shard.upsert(batch).unwrap();
    }
    shard.flush().unwrap();
    let started = Instant::now();
    let s = shard.checkpoint(dest).unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "checkpoint {src} -> {dest}: {} points, {} segments, {:.1} MB in {secs:.2} s = {:.0} MB/s ({} linked or server-side)",
        s.points,
        s.segments,
        s.bytes as f64 / 1e6,
        s.bytes as f64 / 1e6 / secs,
        s.linked
    );
    assert_eq!(s.points, points as u64);
    shard.close().unwrap();
}

#[test]
#[ignore = "a measurement: cargo test --release --test checkpoint -- --ignored --nocapture"]
fn measure_local_throughput() {
    let _fp = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    measure(
        src.to_str().unwrap(),
        dir.path().join("ckpt").to_str().unwrap(),
        100,
    );
    // Across storages: every byte read and written (no links).
    measure(
        dir.path().join("src2").to_str().unwrap(),
        &format!("file://{}", dir.path().join("ckpt2").display()),
        100,
    );
}

#[cfg(feature = "object-store")]
mod object {
    use super::*;
    use object_support::s3_location;

    #[test]
    fn s3_checkpoint_under_concurrent_writes() {
        checkpoint_under_writes(&s3_location("ckpt-src"), &s3_location("ckpt-dest"));
    }

    /// Local shard to S3 and back: bytes streamed both ways.
    #[test]
    fn local_to_s3_and_back() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let shard = small_shard(src.to_str().unwrap());
        let remote = s3_location("ckpt-remote");
        let s = shard.checkpoint(&remote).unwrap();
        assert_eq!((s.points, s.linked), (30 - 1, 0));
        let restored = Shard::open(&remote, Options::default()).unwrap();
        assert_eq!(contents(&restored), small_expected());
        let back = dir.path().join("back");
        restored.checkpoint(back.to_str().unwrap()).unwrap();
        restored.close().unwrap();
        let local = Shard::open(back.to_str().unwrap(), Options::default()).unwrap();
        assert_eq!(contents(&local), small_expected());
        local.close().unwrap();
        shard.close().unwrap();
    }

    #[test]
    fn s3_checkpoint_without_manifest_does_not_open() {
        let src = s3_location("ckpt-src");
        let dest = s3_location("ckpt-dest");
        let shard = small_shard(&src);
        let s = shard.checkpoint(&dest).unwrap();
        assert_eq!(s.linked, s.segments, "server-side copies within one bucket");
        let storage = vecshard_engine::storage::open_storage(&dest, &Default::default()).unwrap();
        for m in storage.list("manifest").unwrap() {
            storage.delete(&m.path).unwrap();
        }
        let err = Shard::open(&dest, Options::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        assert!(err.to_string().contains("no manifest"), "{err}");
        shard.close().unwrap();
    }

    #[test]
    #[ignore = "a measurement: needs the local S3 service; --ignored --nocapture"]
    fn measure_s3_throughput() {
        let src = s3_location("ckpt-measure");
        measure(&src, &s3_location("ckpt-measure-dest"), 100);
        let dir = tempfile::tempdir().unwrap();
        measure(
            dir.path().join("src").to_str().unwrap(),
            &s3_location("ckpt-measure-up"),
            100,
        );
    }
}
