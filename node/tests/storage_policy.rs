//! A node opens object-store shards only under the prefixes its own configuration allows
//! (`cluster.allowed_storage`), whatever a caller asks: anything else is refused with
//! INVALID_ARGUMENT naming the storage and the allowed values, and nothing is opened or
//! created.

mod common;

use std::collections::HashMap;

use common::*;
use tonic::Code;
use vecshard_proto::internal::v1 as pb;

fn assign_at(storage: &str) -> pb::AssignShardRequest {
    pb::AssignShardRequest {
        storage: storage.into(),
        ..assign_req("p", 0, 1, pb::Role::Writer, 4)
    }
}

async fn assert_refused(c: &mut Client, storage: &str, needles: &[&str]) {
    let e = c.assign_shard(assign_at(storage)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{storage}: {e:?}");
    for n in needles {
        assert!(e.message().contains(n), "{storage}: {n:?} not in {e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_urls_outside_the_allow_list_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let node = vecshard_node::start(config(dir.path())).await.unwrap();
    let mut c = connect(&node).await;
    let file_url = format!("file://{}/shard", outside.path().display());
    for bad in [
        "memory://anything/p/0",
        file_url.as_str(),
        "s3://bucket/p/0",
    ] {
        assert_refused(
            &mut c,
            bad,
            &["storage", bad, "cluster.allowed_storage", "empty"],
        )
        .await;
    }
    let status = c
        .node_status(pb::NodeStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(status.shards.is_empty(), "{status:?}");
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "the node created files outside its data directory"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_urls_under_an_allowed_prefix_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.cluster.allowed_storage = vec!["s3://vecshard/tenant-a/".into()];
    let node = vecshard_node::start(cfg).await.unwrap();
    let mut c = connect(&node).await;
    for bad in [
        "s3://vecshard/tenant-ab/p/0",
        "s3://vecshard/tenant-a/../tenant-b/p/0",
        "s3://vecshard/tenant-a//p/0",
        "s3://vecshard",
        "memory://vecshard/tenant-a/p/0",
    ] {
        assert_refused(
            &mut c,
            bad,
            &[
                "storage",
                bad,
                "cluster.allowed_storage",
                "s3://vecshard/tenant-a",
            ],
        )
        .await;
    }
    node.shutdown().await;
}

#[test]
fn a_bad_allow_list_entry_is_named() {
    let env: HashMap<String, String> = [
        ("VECSHARD__NODE__ID", "n"),
        (
            "VECSHARD__CLUSTER__ALLOWED_STORAGE",
            "s3://vecshard/a,file:///data",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let e = vecshard_node::load_config_with_env(None, env).unwrap_err();
    assert_eq!(e.key(), Some("cluster.allowed_storage[1]"), "{e}");
    assert!(e.to_string().contains("file:///data"), "{e}");
}
