//! `engine.commit_store = "dynamodb:TABLE"`: a node opens its object-store shards with
//! their manifest versions in DynamoDB (the local moto service), and reopens them from
//! there at a higher epoch with every acknowledged write.
#![cfg(feature = "dynamodb")]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use vecshard_engine::commit::CommitStore;
use vecshard_engine::commit::dynamo::{DynamoCommitStore, create_table_if_missing};
use vecshard_engine::storage::{StorageOptions, open_storage};
use vecshard_proto::internal::v1 as pb;

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// The test DynamoDB endpoint; fails (never skips) without it.
fn dynamodb_endpoint() -> String {
    match std::env::var("VECSHARD_TEST_DYNAMODB_ENDPOINT") {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "VECSHARD_TEST_DYNAMODB_ENDPOINT is not set: start the local S3/DynamoDB service \
             first: eval \"$(scripts/test-services.sh start)\" (from the repository root)"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_commits_object_store_shards_to_dynamodb() {
    let endpoint = dynamodb_endpoint();
    assert_eq!(
        std::env::var("AWS_ENDPOINT_URL").ok().as_deref(),
        Some(endpoint.as_str()),
        "the node's DynamoDB client must reach the test service, never AWS"
    );
    let table = unique("node-commits");
    let created = {
        let (table, endpoint) = (table.clone(), endpoint.clone());
        tokio::task::spawn_blocking(move || create_table_if_missing(&table, Some(&endpoint)))
    };
    assert!(created.await.unwrap().unwrap());

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.engine.commit_store = format!("dynamodb:{table}");
    let prefix = s3_prefix("node-ddb");
    cfg.cluster.allowed_storage = vec![prefix.clone()];
    let cfg = cfg.validated().unwrap();
    let node = vecshard_node::start(cfg).await.unwrap();
    let mut client = connect(&node).await;

    let url = format!("{prefix}/c/0");
    let assign = |epoch| pb::AssignShardRequest {
        storage: url.clone(),
        ..assign_req("c", 0, epoch, pb::Role::Writer, 4)
    };
    client.assign_shard(assign(1)).await.unwrap();
    wait_state(&mut client, "c", 0, 1, pb::ShardState::Serving).await;
    client
        .upsert(pb::UpsertRequest {
            target: target("c", 0, 1),
            points: (0..10).map(p4).collect(),
        })
        .await
        .unwrap();

    // The manifest versions are items in the table, not objects in the store.
    let (versions, manifest_objects) = {
        let (table, url, endpoint) = (table.clone(), url.clone(), endpoint.clone());
        tokio::task::spawn_blocking(move || {
            let storage = open_storage(&url, &StorageOptions::default()).unwrap();
            let store = DynamoCommitStore::builder(&table, &url, storage.clone())
                .endpoint(endpoint)
                .build()
                .unwrap();
            (store.versions().unwrap(), storage.list("manifest").unwrap())
        })
        .await
        .unwrap()
    };
    assert!(versions.len() >= 2, "created and claimed: {versions:?}");
    assert!(manifest_objects.is_empty(), "{manifest_objects:?}");

    // A newer assignment reopens the shard from the table, WAL replayed.
    client.assign_shard(assign(2)).await.unwrap();
    wait_state(&mut client, "c", 0, 2, pb::ShardState::Serving).await;
    let got = client
        .get(pb::GetRequest {
            target: target("c", 0, 2),
            keys: (0..10).map(int_key).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys_of(&got.points), (0..10).collect::<Vec<u64>>());
    for p in &got.points {
        let k = keys_of(std::slice::from_ref(p))[0];
        assert_eq!(p.vector, p4(k).vector, "key {k}");
    }
    node.shutdown().await;
}
