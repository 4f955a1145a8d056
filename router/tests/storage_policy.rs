//! Which storage a collection may use: `local`, or an object-store URL under a prefix the
//! cluster allows (`router.allowed_storage`). Anything else is refused before anything is
//! placed — INVALID_ARGUMENT over gRPC, 400 over REST — with a message naming the field
//! and the allowed values. Nothing reaches a node.

mod common;

use common::fake_node::{FakeNode, ObjectStore};
use common::*;
use serde_json::json;
use tonic::Code;
use vecshard_proto::v1 as pb;
use vecshard_router::{RouterConfig, RouterHandle};

async fn start(cfg: RouterConfig) -> (RouterHandle, FakeNode) {
    let router = vecshard_router::start(cfg).await.unwrap();
    let node = FakeNode::start(
        "n0",
        vec![router.internal_addr().to_string()],
        ObjectStore::default(),
    )
    .await;
    let mut c = client(&router).await;
    wait_alive(&mut c, 1).await;
    (router, node)
}

fn create_req(name: &str, storage: &str) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        name: name.into(),
        dimension: 4,
        metric: pb::Metric::L2 as i32,
        shard_count: 1,
        storage: storage.into(),
        index: None,
        ..Default::default()
    }
}

/// Create over gRPC and REST; both must refuse with a message containing every needle.
async fn assert_refused(router: &RouterHandle, storage: &str, needles: &[&str]) {
    let mut c = client(router).await;
    let e = c
        .create_collection(create_req("refused", storage))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{storage}: {e:?}");
    for n in needles {
        assert!(e.message().contains(n), "{storage}: {n:?} not in {e:?}");
    }
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/collections", router.http_addr()))
        .json(&json!({"name": "refused", "dimension": 4, "metric": "l2", "storage": storage}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "{storage}");
    let v: serde_json::Value = r.json().await.unwrap();
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    for n in needles {
        assert!(msg.contains(n), "{storage}: {n:?} not in {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_allow_list_only_local_storage_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path(), 1);
    cfg.allowed_storage.clear();
    let (router, node) = start(cfg).await;
    for bad in [
        "memory://bucket",
        "file:///tmp/anywhere",
        "file:///etc",
        "s3://bucket/prefix",
        "gs://bucket/prefix",
    ] {
        assert_refused(
            &router,
            bad,
            &["storage", bad, "\"local\"", "router.allowed_storage"],
        )
        .await;
    }
    let mut c = client(&router).await;
    let listed = c
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(listed.collections.is_empty(), "{listed:?}");
    assert!(
        node.held().is_empty(),
        "a node was asked to open {:?}",
        node.held()
    );

    // `local` (and the empty default) still work.
    c.create_collection(create_req("ok", "local"))
        .await
        .unwrap();
    wait_serving(&mut c, "ok").await;
    node.kill();
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_stores_are_accepted_under_an_allowed_prefix_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path(), 1);
    cfg.allowed_storage = vec!["s3://vecshard/tenant-a/".into()];
    let (router, node) = start(cfg).await;
    for bad in [
        "s3://vecshard/tenant-ab",
        "s3://vecshard",
        "s3://vecshard/tenant-a/../tenant-b",
        "s3://other/tenant-a",
        "memory://vecshard/tenant-a",
    ] {
        assert_refused(
            &router,
            bad,
            &[
                "storage",
                bad,
                "router.allowed_storage",
                "s3://vecshard/tenant-a",
            ],
        )
        .await;
    }
    let mut c = client(&router).await;
    let created = c
        .create_collection(create_req("docs", "s3://vecshard/tenant-a/docs/"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.spec.unwrap().storage, "s3://vecshard/tenant-a/docs");
    wait_serving(&mut c, "docs").await;
    assert_eq!(node.held().len(), 1);
    node.kill();
    router.shutdown().await;
}

#[test]
fn a_bad_allow_list_entry_is_named_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("router.toml");
    std::fs::write(
        &f,
        "[router]\nallowed_storage = [\"s3://vecshard/a\", \"memory://anything\"]\n",
    )
    .unwrap();
    let e = vecshard_router::load_config(Some(&f)).unwrap_err();
    assert!(
        e.message().contains("router.allowed_storage[1]") && e.message().contains("memory://"),
        "{e}"
    );
}
