//! Clean-up after a manifest commit (old versions, covered WAL units) can fail; the commit
//! has happened all the same. The flush must report success and must never commit the same
//! memtable a second time.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use vecshard_engine::commit::{CommitStore, StorageCommitStore};
use vecshard_engine::storage::{AppendFile, Blob, LocalStorage, LockGuard, ObjectInfo, Storage};
use vecshard_engine::{Error, ErrorKind, Key, Metric, Options, Point, Result, Shard, ShardSpec};

/// Take one from a counter of scripted failures; whether one was due.
fn due(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn injected(what: &str) -> Error {
    Error::new(ErrorKind::Io, format!("injected failure: {what}"))
}

/// Manifest versions whose listing or deletion fails on demand.
#[derive(Debug)]
struct FlakyCleanup {
    inner: StorageCommitStore,
    fail_versions: AtomicUsize,
    fail_deletes: AtomicUsize,
}

impl CommitStore for FlakyCleanup {
    fn latest_version(&self) -> Result<Option<u64>> {
        self.inner.latest_version()
    }
    fn read(&self, version: u64) -> Result<Bytes> {
        self.inner.read(version)
    }
    fn create(&self, version: u64, bytes: Bytes) -> Result<bool> {
        self.inner.create(version, bytes)
    }
    fn versions(&self) -> Result<Vec<u64>> {
        if due(&self.fail_versions) {
            return Err(injected("list manifest versions"));
        }
        self.inner.versions()
    }
    fn delete(&self, version: u64) -> Result<()> {
        if due(&self.fail_deletes) {
            return Err(injected(&format!("delete manifest version {version}")));
        }
        self.inner.delete(version)
    }
}

/// Local storage whose deletes of WAL units fail on demand.
#[derive(Debug)]
struct FlakyWalDeletes {
    inner: LocalStorage,
    fail: AtomicUsize,
}

impl Storage for FlakyWalDeletes {
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn get(&self, p: &str) -> Result<Bytes> {
        self.inner.get(p)
    }
    fn get_range(&self, p: &str, r: Range<u64>) -> Result<Bytes> {
        self.inner.get_range(p, r)
    }
    fn map(&self, p: &str) -> Result<Blob> {
        self.inner.map(p)
    }
    fn put(&self, p: &str, d: Bytes) -> Result<()> {
        self.inner.put(p, d)
    }
    fn put_if_absent(&self, p: &str, d: Bytes) -> Result<bool> {
        self.inner.put_if_absent(p, d)
    }
    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        self.inner.list(dir)
    }
    fn delete(&self, p: &str) -> Result<()> {
        if p.starts_with("wal/") && due(&self.fail) {
            return Err(injected(&format!("delete {p}")));
        }
        self.inner.delete(p)
    }
    fn supports_append(&self) -> bool {
        self.inner.supports_append()
    }
    fn create_append(&self, p: &str) -> Result<Box<dyn AppendFile>> {
        self.inner.create_append(p)
    }
    fn lock_exclusive(&self) -> Result<Option<Box<dyn LockGuard>>> {
        self.inner.lock_exclusive()
    }
}

const FLUSHES: u64 = 40;

fn point(i: u64) -> Point {
    Point::new(i, vec![i as f32, 1.0, -(i as f32)]).with_payload(vec![i as u8; 2])
}

fn opts() -> Options {
    Options {
        background: false,
        memtable_bytes: 64 << 10,
        ..Options::default()
    }
}

/// One point and one flush at a time, past manifest version 32 (where old versions are
/// deleted); a flush that reports an error is retried, as a caller would. Then: every flush
/// succeeded, each memtable became exactly one segment, every point is there once.
fn flush_one_by_one(dir: &std::path::Path, shard: &Shard) {
    let mut errors = Vec::new();
    for i in 0..FLUSHES {
        shard.upsert(vec![point(i)]).unwrap();
        if let Err(e) = shard.flush() {
            errors.push(e.to_string());
            shard.flush().unwrap();
        }
    }
    assert!(
        errors.is_empty(),
        "flushes failed after committing: {errors:?}"
    );
    let segment_files = std::fs::read_dir(dir.join("segments")).unwrap().count() as u64;
    assert_eq!(segment_files, FLUSHES, "one segment file per flush");
    shard.close().unwrap();

    let s = Shard::open(dir.to_str().unwrap(), opts()).unwrap();
    let stats = s.stats();
    assert_eq!(
        stats.segments, FLUSHES,
        "each flush committed once: {stats:?}"
    );
    assert_eq!(stats.live_points, FLUSHES);
    let all = s.scan(None, 1000).unwrap();
    assert_eq!(all, (0..FLUSHES).map(point).collect::<Vec<_>>());
    assert_eq!(s.get(&Key::Int(7)).unwrap(), Some(point(7)));
}

#[test]
fn failed_manifest_clean_up_does_not_commit_a_segment_twice() {
    for (fail_versions, fail_deletes) in [(1, 0), (0, 1)] {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()).unwrap());
        let commits = Arc::new(FlakyCleanup {
            inner: StorageCommitStore::new(storage.clone()),
            fail_versions: AtomicUsize::new(0),
            fail_deletes: AtomicUsize::new(0),
        });
        let spec = ShardSpec::new(3, Metric::L2);
        let shard = Shard::open_with(storage, Some(commits.clone()), Some(spec), opts()).unwrap();
        commits.fail_versions.store(fail_versions, Ordering::SeqCst);
        commits.fail_deletes.store(fail_deletes, Ordering::SeqCst);
        flush_one_by_one(dir.path(), &shard);
        assert_eq!(
            commits.fail_versions.load(Ordering::SeqCst)
                + commits.fail_deletes.load(Ordering::SeqCst),
            0,
            "the injected failure happened"
        );
    }
}

#[test]
fn failed_wal_clean_up_does_not_commit_a_segment_twice() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FlakyWalDeletes {
        inner: LocalStorage::new(dir.path()).unwrap(),
        fail: AtomicUsize::new(0),
    });
    let spec = ShardSpec::new(3, Metric::L2);
    let shard = Shard::open_with(storage.clone(), None, Some(spec), opts()).unwrap();
    storage.fail.store(3, Ordering::SeqCst);
    flush_one_by_one(dir.path(), &shard);
    assert_eq!(
        storage.fail.load(Ordering::SeqCst),
        0,
        "the injected failures happened"
    );
}
