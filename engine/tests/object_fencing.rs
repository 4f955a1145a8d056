//! Two writers on one object-store prefix, interleaved at every step of the commit
//! protocol: writer A is paused just before its WAL object, its segment or its manifest
//! version is created; writer B takes the shard over meanwhile. Exactly one wins; A is
//! fenced for good; every write A acknowledged before the takeover survives; nothing A does
//! afterwards becomes visible. Runs against `memory://`, the local S3 endpoint, and the
//! DynamoDB commit store.
#![cfg(feature = "object-store")]

mod object_support;

use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use bytes::Bytes;
use parking_lot::Mutex;
use vecshard_engine::commit::CommitStore;
use vecshard_engine::storage::{
    AppendFile, Blob, CacheStats, LockGuard, ObjectInfo, Storage, open_storage,
};
use vecshard_engine::{ErrorKind, Key, Metric, Options, Point, Result, Shard, ShardSpec};

use object_support::{fast_retries, unique};

/// Pauses the first create or put of a path with a given prefix until released.
#[derive(Debug)]
struct Pausing {
    inner: Arc<dyn Storage>,
    trap: Mutex<Option<Trap>>,
}

#[derive(Debug)]
struct Trap {
    prefix: &'static str,
    reached: SyncSender<()>,
    resume: Receiver<()>,
}

impl Pausing {
    /// Arm the trap; returns (reached, resume).
    fn arm(&self, prefix: &'static str) -> (Receiver<()>, SyncSender<()>) {
        let (reached_tx, reached_rx) = sync_channel(1);
        let (resume_tx, resume_rx) = sync_channel(1);
        *self.trap.lock() = Some(Trap {
            prefix,
            reached: reached_tx,
            resume: resume_rx,
        });
        (reached_rx, resume_tx)
    }

    fn maybe_pause(&self, path: &str) {
        let trap = {
            let mut t = self.trap.lock();
            match t.as_ref() {
                Some(trap) if path.starts_with(trap.prefix) => t.take(),
                _ => None,
            }
        };
        if let Some(trap) = trap {
            trap.reached.send(()).unwrap();
            trap.resume.recv().unwrap();
        }
    }
}

impl Storage for Pausing {
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn get(&self, path: &str) -> Result<Bytes> {
        self.inner.get(path)
    }
    fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes> {
        self.inner.get_range(path, range)
    }
    fn map(&self, path: &str) -> Result<Blob> {
        self.inner.map(path)
    }
    fn put(&self, path: &str, data: Bytes) -> Result<()> {
        self.maybe_pause(path);
        self.inner.put(path, data)
    }
    fn put_if_absent(&self, path: &str, data: Bytes) -> Result<bool> {
        self.maybe_pause(path);
        self.inner.put_if_absent(path, data)
    }
    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        self.inner.list(dir)
    }
    fn delete(&self, path: &str) -> Result<()> {
        self.inner.delete(path)
    }
    fn supports_append(&self) -> bool {
        self.inner.supports_append()
    }
    fn create_append(&self, path: &str) -> Result<Box<dyn AppendFile>> {
        self.inner.create_append(path)
    }
    fn lock_exclusive(&self) -> Result<Option<Box<dyn LockGuard>>> {
        self.inner.lock_exclusive()
    }
    fn cache_stats(&self) -> CacheStats {
        self.inner.cache_stats()
    }
}

/// A commit store whose creates pass through the same trap (as `manifest/<version>`), for
/// commit stores that do not write manifests through the storage (DynamoDB).
#[derive(Debug)]
struct PausingCommits {
    inner: Arc<dyn CommitStore>,
    pausing: Arc<Pausing>,
}

impl CommitStore for PausingCommits {
    fn latest_version(&self) -> Result<Option<u64>> {
        self.inner.latest_version()
    }
    fn read(&self, version: u64) -> Result<Bytes> {
        self.inner.read(version)
    }
    fn create(&self, version: u64, bytes: Bytes) -> Result<bool> {
        self.pausing
            .maybe_pause(&vecshard_engine::paths::manifest(version));
        self.inner.create(version, bytes)
    }
    fn versions(&self) -> Result<Vec<u64>> {
        self.inner.versions()
    }
    fn delete(&self, version: u64) -> Result<()> {
        self.inner.delete(version)
    }
}

fn points(keys: Range<u64>) -> Vec<Point> {
    keys.map(|k| Point::new(k, vec![k as f32, 1.0, 2.0]))
        .collect()
}

fn opts() -> Options {
    Options {
        background: false,
        ..Options::default()
    }
}

fn assert_holds(shard: &Shard, keys: Range<u64>, present: bool, what: &str) {
    for k in keys {
        assert_eq!(
            shard.get(&Key::Int(k)).unwrap().is_some(),
            present,
            "{what}: key {k}"
        );
    }
}

/// A writes, then is paused before creating `step` (wal/, segments/ or manifest/); B takes
/// over and writes; A resumes.
fn takeover_at(
    base: Arc<dyn Storage>,
    commits: impl Fn() -> Option<Arc<dyn CommitStore>>,
    step: &'static str,
) {
    let spec = ShardSpec::new(3, Metric::L2);
    let paused = Arc::new(Pausing {
        inner: base.clone(),
        trap: Mutex::new(None),
    });
    let a_commits = commits().map(|inner| -> Arc<dyn CommitStore> {
        Arc::new(PausingCommits {
            inner,
            pausing: paused.clone(),
        })
    });
    let a = Shard::open_with(paused.clone(), a_commits, Some(spec), opts()).unwrap();
    a.upsert(points(0..10)).unwrap();
    a.flush().unwrap();
    a.upsert(points(10..20)).unwrap(); // acknowledged, only in the WAL
    let (reached, resume) = paused.arm(step);
    let a2 = a.clone();
    let in_flight = std::thread::spawn(move || {
        if step == "wal/" {
            a2.upsert(points(20..30)).map(|_| ())
        } else {
            a2.flush()
        }
    });
    // A timeout here is a failure detector, not a wait: A must reach the trap.
    reached
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("A never reached the paused step");

    let b = Shard::open_with(base.clone(), commits(), None, opts()).unwrap();
    assert!(
        b.stats().epoch > a.stats().epoch,
        "{step}: B holds a higher epoch"
    );
    assert_holds(&b, 0..20, true, "B sees every write A acknowledged");
    b.upsert(points(100..110)).unwrap();

    resume.send(()).unwrap();
    let err = in_flight.join().unwrap().unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Fenced,
        "{step}: A's in-flight commit: {err}"
    );
    // Fenced for good: later writes fail without touching storage.
    assert_eq!(
        a.upsert(points(30..40)).unwrap_err().kind(),
        ErrorKind::Fenced,
        "{step}"
    );
    assert_eq!(
        a.delete(vec![Key::Int(1)]).unwrap_err().kind(),
        ErrorKind::Fenced,
        "{step}"
    );
    assert_eq!(a.stats().state, "fenced");

    b.flush().unwrap();
    b.compact().unwrap();
    for (who, shard) in [
        ("writer B", &b),
        (
            "a fresh reader",
            &Shard::open_with(base.clone(), commits(), None, Options::read_only()).unwrap(),
        ),
    ] {
        assert_holds(shard, 0..20, true, who);
        assert_holds(shard, 100..110, true, who);
        assert_holds(shard, 20..40, false, who);
    }
    b.close().unwrap();
    // A stale epoch cannot open for write.
    let stale = Options {
        epoch: Some(1),
        ..opts()
    };
    let err = Shard::open_with(base, commits(), None, stale).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fenced, "{err}");
}

const STEPS: [&str; 3] = ["wal/", "segments/", "manifest/"];

#[test]
fn fencing_on_memory_store() {
    for step in STEPS {
        let base = open_storage(&format!("memory://{}", unique("fence")), &fast_retries()).unwrap();
        takeover_at(base, || None, step);
    }
}

#[test]
fn fencing_on_local_s3() {
    for step in STEPS {
        let base = open_storage(&object_support::s3_location("fence"), &fast_retries()).unwrap();
        takeover_at(base, || None, step);
    }
}

#[cfg(feature = "dynamodb")]
#[test]
fn fencing_with_dynamodb_commit_store() {
    use vecshard_engine::commit::dynamo::{DynamoCommitStore, create_table_if_missing};
    let table = unique("vecshard-fence");
    create_table_if_missing(&table, Some(&object_support::dynamodb_endpoint())).unwrap();
    for step in STEPS {
        let base_uri = format!("memory://{}", unique("fence-ddb"));
        let base = open_storage(&base_uri, &fast_retries()).unwrap();
        let commits = || -> Option<Arc<dyn CommitStore>> {
            let store = DynamoCommitStore::builder(&table, &base_uri, base.clone())
                .endpoint(object_support::dynamodb_endpoint())
                .build()
                .unwrap();
            Some(Arc::new(store))
        };
        takeover_at(base.clone(), commits, step);
    }
}
