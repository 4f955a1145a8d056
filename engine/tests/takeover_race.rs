//! Takeover race: the new writer B lists the WAL, the old writer A appends one more unit
//! before B's claim, B's claim fails and it retries. B must not delete the units it just
//! replayed (they live only in its memtable). B then crashes unflushed; C must see every
//! write A acknowledged.
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

/// Blocks the first `put_if_absent` on a `wal/` path until resumed.
#[derive(Debug)]
struct PauseFirstWalCreate {
    inner: Arc<dyn Storage>,
    trap: Mutex<Option<(SyncSender<()>, Receiver<()>)>>,
}

impl Storage for PauseFirstWalCreate {
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
            let trap = self.trap.lock().take();
            if let Some((reached, resume)) = trap {
                reached.send(()).unwrap();
                resume.recv().unwrap();
            }
        }
        self.inner.put_if_absent(p, d)
    }
    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        self.inner.list(dir)
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
    keys.map(|k| Point::new(k, vec![k as f32, 1.0, 2.0]))
        .collect()
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
    let spec = ShardSpec::new(3, Metric::L2);
    let base = open_storage(&format!("memory://{}", unique("race")), &fast_retries()).unwrap();

    // A: acknowledged writes, never flushed.
    let a = Shard::open_with(base.clone(), None, Some(spec), opts()).unwrap();
    a.upsert(points(0..10)).unwrap();
    a.upsert(points(10..20)).unwrap();
    println!("wal before B: {:?}", wal_objects(base.as_ref()));

    // B: opens through a wrapper that pauses its WAL claim (after its LIST and replay).
    let (reached_tx, reached) = sync_channel(1);
    let (resume, resume_rx) = sync_channel(1);
    let b_storage: Arc<dyn Storage> = Arc::new(PauseFirstWalCreate {
        inner: base.clone(),
        trap: Mutex::new(Some((reached_tx, resume_rx))),
    });
    let opening = std::thread::spawn(move || Shard::open_with(b_storage, None, None, opts()));
    reached
        .recv_timeout(Duration::from_secs(60))
        .expect("B never reached its WAL claim");

    // A acknowledges one more write: it creates unit max_listed + 1, B's claim target.
    a.upsert(points(20..30)).unwrap();
    println!("wal after A's last write: {:?}", wal_objects(base.as_ref()));

    resume.send(()).unwrap();
    let b = opening.join().unwrap().expect("B opens");
    println!("wal after B opened: {:?}", wal_objects(base.as_ref()));
    for k in 0..30 {
        assert!(b.get(&Key::Int(k)).unwrap().is_some(), "B sees key {k}");
    }

    // B crashes without flushing (Drop does not flush); A is gone too.
    drop(b);
    drop(a);

    // C must see every write A acknowledged.
    let c = Shard::open_with(base.clone(), None, None, opts())
        .unwrap_or_else(|e| panic!("C failed to open: {e} ({:?})", e.kind()));
    let missing: Vec<u64> = (0..30)
        .filter(|k| c.get(&Key::Int(*k)).unwrap().is_none())
        .collect();
    assert!(missing.is_empty(), "C lost acknowledged keys {missing:?}");
}
