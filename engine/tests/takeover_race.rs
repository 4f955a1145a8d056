//! Takeover race: the new writer B lists the WAL, the old writer A appends one more unit
//! before B's claim, B's claim fails and it retries. B must not delete the units it just
//! replayed (they live only in its memtable), nor replay a unit twice. B then crashes
//! unflushed; C must see every write A acknowledged.
#![cfg(feature = "object-store")]

mod object_support;

use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use vecshard_engine::storage::{
    AppendFile, Blob, CacheStats, LockGuard, ObjectInfo, Storage, open_storage,
};
use vecshard_engine::{Key, Metric, Options, Point, Result, Shard, ShardSpec};

use object_support::{fast_retries, unique};
use vecshard_test_support::model::point3 as point;

/// Where B stops until resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Before its first `put_if_absent` of a `wal/` path: its claim, after its replay.
    FirstWalCreate,
    /// Right after its first listing of `wal/` has been taken, before it reads the units.
    AfterFirstWalList,
}

/// Blocks B once, at `step`, until resumed.
#[derive(Debug)]
struct PauseOnce {
    inner: Arc<dyn Storage>,
    step: Step,
    trap: Mutex<Option<(SyncSender<()>, Receiver<()>)>>,
}

impl PauseOnce {
    fn pause_at(&self, step: Step) {
        if step != self.step {
            return;
        }
        let trap = self.trap.lock().take();
        if let Some((reached, resume)) = trap {
            reached.send(()).unwrap();
            resume.recv().unwrap();
        }
    }
}

impl Storage for PauseOnce {
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
        if p.starts_with("wal/") {
            self.pause_at(Step::FirstWalCreate);
        }
        self.inner.put_if_absent(p, d)
    }
    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        let listed = self.inner.list(dir)?;
        if dir == "wal" {
            self.pause_at(Step::AfterFirstWalList);
        }
        Ok(listed)
    }
    fn delete(&self, p: &str) -> Result<()> {
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
    fn cache_stats(&self) -> CacheStats {
        self.inner.cache_stats()
    }
}

fn points(keys: Range<u64>) -> Vec<Point> {
    keys.map(point).collect()
}

fn opts() -> Options {
    Options {
        background: false,
        ..Options::default()
    }
}

fn wal_objects(s: &dyn Storage) -> Vec<(String, u64)> {
    s.list("wal")
        .unwrap()
        .into_iter()
        .map(|o| (o.path, o.size))
        .collect()
}

#[test]
fn takeover_retry_keeps_replayed_units() {
    takeover_while_the_old_writer_appends(Step::FirstWalCreate);
}

/// A unit the old writer adds after B's listing is read in B's retry, once: reading the
/// WAL again after the listing saw it in the first round too, and the retry replayed it a
/// second time ("sequence gap").
#[test]
fn takeover_retry_replays_each_unit_once() {
    takeover_while_the_old_writer_appends(Step::AfterFirstWalList);
}

fn takeover_while_the_old_writer_appends(step: Step) {
    let spec = ShardSpec::new(3, Metric::L2);
    let base = open_storage(&format!("memory://{}", unique("race")), &fast_retries()).unwrap();

    // A: acknowledged writes, never flushed.
    let a = Shard::open_with(base.clone(), None, Some(spec), opts()).unwrap();
    a.upsert(points(0..10)).unwrap();
    a.upsert(points(10..20)).unwrap();
    println!("wal before B: {:?}", wal_objects(base.as_ref()));

    // B: opens through a wrapper that pauses it at `step` (after its WAL listing).
    let (reached_tx, reached) = sync_channel(1);
    let (resume, resume_rx) = sync_channel(1);
    let b_storage: Arc<dyn Storage> = Arc::new(PauseOnce {
        inner: base.clone(),
        step,
        trap: Mutex::new(Some((reached_tx, resume_rx))),
    });
    let opening = std::thread::spawn(move || Shard::open_with(b_storage, None, None, opts()));
    reached
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("B never reached {step:?}"));

    // A acknowledges one more write: it creates unit max_listed + 1, B's claim target.
    a.upsert(points(20..30)).unwrap();
    println!("wal after A's last write: {:?}", wal_objects(base.as_ref()));

    resume.send(()).unwrap();
    let b = opening.join().unwrap().expect("B opens");
    println!("wal after B opened: {:?}", wal_objects(base.as_ref()));
    for k in 0..30 {
        assert_eq!(
            b.get(&Key::Int(k)).unwrap(),
            Some(point(k)),
            "B sees key {k}"
        );
    }

    // B crashes without flushing (Drop does not flush); A is gone too.
    drop(b);
    drop(a);

    // C must see every write A acknowledged.
    let c = Shard::open_with(base.clone(), None, None, opts())
        .unwrap_or_else(|e| panic!("C failed to open: {e} ({:?})", e.kind()));
    let missing: Vec<u64> = (0..30)
        .filter(|k| c.get(&Key::Int(*k)).unwrap() != Some(point(*k)))
        .collect();
    assert!(missing.is_empty(), "C lost acknowledged keys {missing:?}");
}
