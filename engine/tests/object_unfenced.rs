//! A store whose conditional creates overwrite (it ignores `If-None-Match`) cannot fence
//! writers: a deposed writer's next WAL unit would replace the new owner's claim and still
//! be acknowledged. A DynamoDB commit store fences manifest versions, not WAL units. So a
//! writer on such a store is refused with a message saying why; readers still open.
#![cfg(feature = "object-store")]

mod object_support;

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use vecshard_engine::commit::CommitStore;
use vecshard_engine::storage::object_store::ObjectStore;
use vecshard_engine::storage::object_store::memory::InMemory;
use vecshard_engine::storage::{
    AppendFile, Blob, CacheStats, LockGuard, ObjectInfo, ObjectStorage, Storage, open_storage,
};
use vecshard_engine::{Error, ErrorKind, Key, Metric, Options, Result, Shard, ShardSpec};

use object_support::{fast_retries, unique};
use vecshard_test_support::model::point3 as point;

/// A store without conditional writes: `put_if_absent` replaces whatever is there.
#[derive(Debug)]
struct Overwriting {
    inner: Arc<dyn Storage>,
}

impl Storage for Overwriting {
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
        self.inner.put(p, d)?;
        Ok(true)
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

fn opts() -> Options {
    Options {
        background: false,
        ..Options::default()
    }
}

/// Every key in an in-memory object store, temporary ones included.
fn all_keys(raw: &Arc<InMemory>) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let listed: Vec<_> = rt.block_on(raw.list(None).collect());
    listed
        .into_iter()
        .map(|m| m.unwrap().location.to_string())
        .collect()
}

/// A shard with points 0..5, written on the real (conditional) store; returns that store
/// and the store without conditional writes over the same objects.
fn existing_shard(raw: &Arc<InMemory>, location: &str) -> (Arc<dyn Storage>, Arc<dyn Storage>) {
    let good: Arc<dyn Storage> = Arc::new(
        ObjectStorage::builder(raw.clone(), location)
            .options(&fast_retries())
            .build()
            .unwrap(),
    );
    let s = Shard::open_with(
        good.clone(),
        None,
        Some(ShardSpec::new(3, Metric::L2)),
        opts(),
    )
    .unwrap();
    s.upsert((0..5).map(point).collect()).unwrap();
    s.close().unwrap();
    let no_cas: Arc<dyn Storage> = Arc::new(Overwriting {
        inner: good.clone(),
    });
    (good, no_cas)
}

fn assert_refused(err: &Error, location: &str) {
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let msg = err.to_string();
    for needle in [
        location,
        "cannot fence writers",
        "If-None-Match",
        "read-only",
    ] {
        assert!(msg.contains(needle), "`{needle}` missing from: {msg}");
    }
}

/// Readers do not need fencing: a read-only open on the same store sees the data.
fn assert_readable(no_cas: Arc<dyn Storage>, commits: Option<Arc<dyn CommitStore>>) {
    let ro = Options {
        read_only: true,
        ..opts()
    };
    let r = Shard::open_with(no_cas, commits, None, ro).unwrap();
    for k in 0..5 {
        assert_eq!(r.get(&Key::Int(k)).unwrap(), Some(point(k)));
    }
}

#[test]
fn a_writer_is_refused_on_a_store_whose_creates_overwrite() {
    let location = format!("memory://{}", unique("no-cas"));
    let raw = Arc::new(InMemory::new());
    let (good, no_cas) = existing_shard(&raw, &location);
    let wal_before = good.list("wal").unwrap();
    let err = Shard::open_with(no_cas.clone(), None, None, opts()).unwrap_err();
    assert_refused(&err, &location);
    assert_eq!(
        good.list("wal").unwrap(),
        wal_before,
        "no WAL unit was claimed"
    );
    let keys = all_keys(&raw);
    assert!(
        keys.iter().all(|k| !k.contains("probe")),
        "the probe is deleted: {keys:?}"
    );
    let spec = Some(ShardSpec::new(3, Metric::L2));
    let fresh = format!("memory://{}", unique("no-cas-new"));
    let fresh: Arc<dyn Storage> = Arc::new(Overwriting {
        inner: open_storage(&fresh, &fast_retries()).unwrap(),
    });
    let err = Shard::open_with(fresh.clone(), None, spec, opts()).unwrap_err();
    assert_refused(&err, fresh.location());
    assert_readable(no_cas, None);
}

#[cfg(feature = "dynamodb")]
#[test]
fn the_dynamodb_commit_store_does_not_make_such_a_store_safe_for_writers() {
    use vecshard_engine::commit::dynamo::{DynamoCommitStore, create_table_if_missing};

    let endpoint = object_support::dynamodb_endpoint();
    let table = unique("vecshard-no-cas");
    create_table_if_missing(&table, Some(&endpoint)).unwrap();
    let location = format!("memory://{}", unique("no-cas-ddb"));
    let good = open_storage(&location, &fast_retries()).unwrap();
    let no_cas: Arc<dyn Storage> = Arc::new(Overwriting {
        inner: good.clone(),
    });
    let commits = || -> Arc<dyn CommitStore> {
        let store = DynamoCommitStore::builder(&table, &location, no_cas.clone())
            .endpoint(&endpoint)
            .retry(&fast_retries().retry)
            .build()
            .unwrap();
        Arc::new(store)
    };
    // The shard is created on the real store, with its manifests in DynamoDB.
    let s = Shard::open_with(
        good.clone(),
        Some(commits()),
        Some(ShardSpec::new(3, Metric::L2)),
        opts(),
    )
    .unwrap();
    s.upsert((0..5).map(point).collect()).unwrap();
    s.close().unwrap();

    // Before the check, writer A opened here, a new owner B took over through DynamoDB,
    // and A's next upsert replaced B's WAL claim unit and was acknowledged.
    let err = Shard::open_with(no_cas.clone(), Some(commits()), None, opts()).unwrap_err();
    assert_refused(&err, &location);
    assert!(err.to_string().contains("DynamoDB"), "{err}");
    let reader_commits = commits();
    assert_readable(no_cas, Some(reader_commits));
}
