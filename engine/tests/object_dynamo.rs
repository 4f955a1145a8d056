//! The DynamoDB commit store against the local moto service.
#![cfg(feature = "dynamodb")]

mod object_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use object_support::{dynamodb_endpoint, fast_retries, unique};
use vecshard_engine::ErrorKind;
use vecshard_engine::commit::CommitStore;
use vecshard_engine::commit::dynamo::aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use vecshard_engine::commit::dynamo::aws_sdk_dynamodb::config::{
    ConfigBag, Intercept, RuntimeComponents, SharedInterceptor,
};
use vecshard_engine::commit::dynamo::aws_sdk_dynamodb::error::BoxError;
use vecshard_engine::commit::dynamo::{
    DynamoCommitStore, DynamoCommitStoreBuilder, INLINE_MANIFEST_MAX, create_table_if_missing,
};
use vecshard_engine::storage::{Storage, open_commit_store, open_storage};

/// One table for this test process, created once.
fn table() -> &'static str {
    static TABLE: OnceLock<String> = OnceLock::new();
    TABLE.get_or_init(|| {
        let name = unique("vecshard-commits");
        let endpoint = dynamodb_endpoint();
        assert!(
            create_table_if_missing(&name, Some(&endpoint)).unwrap(),
            "created"
        );
        assert!(
            !create_table_if_missing(&name, Some(&endpoint)).unwrap(),
            "exists"
        );
        name
    })
}

/// A store for a fresh shard (its own base URI and memory:// storage).
fn shard(test: &str) -> (Arc<dyn Storage>, DynamoCommitStoreBuilder) {
    let base_uri = format!("memory://{}", unique(test));
    let storage = open_storage(&base_uri, &fast_retries()).unwrap();
    let builder = DynamoCommitStore::builder(table(), &base_uri, storage.clone())
        .endpoint(dynamodb_endpoint())
        .retry(&fast_retries().retry);
    (storage, builder)
}

#[test]
fn versions_are_created_once_and_latest_follows() {
    let (_, b) = shard("latest");
    let store = b.build().unwrap();
    assert_eq!(store.latest_version().unwrap(), None);
    assert!(store.versions().unwrap().is_empty());
    assert_eq!(store.read(1).unwrap_err().kind(), ErrorKind::NotFound);

    assert!(store.create(1, Bytes::from_static(b"m1")).unwrap());
    assert!(!store.create(1, Bytes::from_static(b"other")).unwrap());
    assert_eq!(&store.read(1).unwrap()[..], b"m1");
    assert_eq!(store.latest_version().unwrap(), Some(1));

    // Numeric order, not string order: 10 > 9 > 2.
    for v in [2, 10, 9] {
        assert!(store.create(v, Bytes::from(format!("m{v}"))).unwrap());
    }
    assert_eq!(store.latest_version().unwrap(), Some(10));
    assert_eq!(store.versions().unwrap(), vec![1, 2, 9, 10]);

    store.delete(1).unwrap();
    store.delete(1).unwrap();
    assert_eq!(store.versions().unwrap(), vec![2, 9, 10]);
    assert_eq!(store.read(1).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn shards_do_not_see_each_other() {
    let (_, a) = shard("iso-a");
    let (_, b) = shard("iso-b");
    let (a, b) = (a.build().unwrap(), b.build().unwrap());
    assert!(a.create(5, Bytes::from_static(b"a")).unwrap());
    assert_eq!(b.latest_version().unwrap(), None);
    assert!(b.create(5, Bytes::from_static(b"b")).unwrap());
}

#[test]
fn racing_creates_of_one_version_have_one_winner() {
    let (storage, b) = shard("race");
    let store = Arc::new(b.build().unwrap());
    // Half the writers carry large manifests (body objects), half inline ones.
    let manifest = |i: usize| -> Bytes {
        let len = if i.is_multiple_of(2) {
            16
        } else {
            INLINE_MANIFEST_MAX + 1000
        };
        Bytes::from(vec![i as u8; len])
    };
    for round in 1..=3u64 {
        let results: Vec<(usize, bool)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let store = store.clone();
                    s.spawn(move || (i, store.create(round, manifest(i)).unwrap()))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<usize> = results.iter().filter(|r| r.1).map(|r| r.0).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        assert_eq!(store.read(round).unwrap(), manifest(winners[0]));
        assert_eq!(store.latest_version().unwrap(), Some(round));
    }
    // Losers removed their bodies: at most one body per version is left.
    let bodies = storage.list("manifest").unwrap();
    assert!(bodies.len() <= 3, "{bodies:?}");
}

#[test]
fn large_manifests_live_in_storage_behind_manifest_key() {
    let (storage, b) = shard("large");
    let store = b.build().unwrap();
    let big = Bytes::from(
        (0..INLINE_MANIFEST_MAX + 1)
            .map(|i| i as u8)
            .collect::<Vec<_>>(),
    );
    let small = Bytes::from(vec![7u8; INLINE_MANIFEST_MAX]);
    assert!(store.create(1, big.clone()).unwrap());
    assert!(store.create(2, small.clone()).unwrap());
    assert_eq!(store.read(1).unwrap(), big);
    assert_eq!(store.read(2).unwrap(), small);

    let bodies = storage.list("manifest").unwrap();
    assert_eq!(
        bodies.len(),
        1,
        "only the large one has a body object: {bodies:?}"
    );
    assert!(bodies[0].path.starts_with("manifest/00000000000000000001."));
    assert_eq!(bodies[0].size, big.len() as u64);

    store.delete(1).unwrap();
    assert!(
        storage.list("manifest").unwrap().is_empty(),
        "body deleted with it"
    );
    assert_eq!(store.read(1).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn open_commit_store_picks_dynamodb() {
    // AWS_ENDPOINT_URL (set by scripts/test-services.sh) points the SDK at moto.
    let base_uri = format!("memory://{}", unique("open"));
    let storage = open_storage(&base_uri, &fast_retries()).unwrap();
    let spec = format!("dynamodb:{}", table());
    let store = open_commit_store(Some(&spec), storage.clone(), &base_uri).unwrap();
    assert!(store.create(3, Bytes::from_static(b"x")).unwrap());
    assert_eq!(store.latest_version().unwrap(), Some(3));
    assert!(
        storage.list("manifest").unwrap().is_empty(),
        "nothing in storage"
    );

    let default = open_commit_store(None, storage.clone(), &base_uri).unwrap();
    assert!(default.create(3, Bytes::from_static(b"y")).unwrap());
    assert_eq!(storage.list("manifest").unwrap().len(), 1);
}

/// Lets the next `n` PutItem requests reach DynamoDB, then fails them on the way back, as
/// a timeout after the server committed would.
#[derive(Debug, Default)]
struct DropPutItemResponses {
    remaining: AtomicUsize,
    current_is_put: AtomicBool,
}

impl Intercept for DropPutItemResponses {
    fn name(&self) -> &'static str {
        "DropPutItemResponses"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("");
        self.current_is_put
            .store(target.ends_with(".PutItem"), Ordering::SeqCst);
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let due = self.current_is_put.load(Ordering::SeqCst)
            && self
                .remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if due {
            return Err("injected: response lost after PutItem was applied".into());
        }
        Ok(())
    }
}

#[test]
fn retried_create_recognises_its_own_item() {
    let faults = Arc::new(DropPutItemResponses::default());
    let (storage, b) = shard("retried");
    let store = b
        .interceptor(SharedInterceptor::new(ArcIntercept(faults.clone())))
        .build()
        .unwrap();
    let other = shard_store_for(&storage, &store);

    faults.remaining.store(1, Ordering::SeqCst);
    assert!(
        store.create(1, Bytes::from_static(b"mine")).unwrap(),
        "inline, ours"
    );
    assert_eq!(
        faults.remaining.load(Ordering::SeqCst),
        0,
        "the fault fired"
    );

    faults.remaining.store(1, Ordering::SeqCst);
    let big = Bytes::from(vec![1u8; INLINE_MANIFEST_MAX + 1]);
    assert!(
        store.create(2, big.clone()).unwrap(),
        "by manifest_key, ours"
    );
    assert_eq!(store.read(2).unwrap(), big);

    // Someone else holds version 3 with the same bytes: not ours without a failed attempt.
    assert!(other.create(3, Bytes::from_static(b"same")).unwrap());
    assert!(!store.create(3, Bytes::from_static(b"same")).unwrap());
}

/// A second store on the same shard without fault injection.
fn shard_store_for(storage: &Arc<dyn Storage>, _: &DynamoCommitStore) -> DynamoCommitStore {
    let base_uri = storage.location().to_string();
    DynamoCommitStore::builder(table(), &base_uri, storage.clone())
        .endpoint(dynamodb_endpoint())
        .build()
        .unwrap()
}

/// `SharedInterceptor::new` takes the interceptor by value; share the counters.
#[derive(Debug)]
struct ArcIntercept(Arc<DropPutItemResponses>);

impl Intercept for ArcIntercept {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.read_before_transmit(context, rc, cfg)
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.read_after_transmit(context, rc, cfg)
    }
}
