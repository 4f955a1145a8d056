//! Two nodes, one object-store shard (on the local S3 service): a newer
//! assignment on another node fences the old writer. The old node refuses writes with
//! "not owner" (FENCED), reports FENCED, and nothing it acknowledged is lost. Also: a
//! READER refuses writes and is promoted by a higher epoch; a writer deletes a dropped
//! shard's objects.

mod common;

use common::*;
use tonic::Code;
use vecshard_proto::internal::v1 as pb;

fn assign_url(url: &str, epoch: u64, role: pb::Role) -> pb::AssignShardRequest {
    pb::AssignShardRequest {
        storage: url.into(),
        ..assign_req("f", 0, epoch, role, 4)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_writer_fences_the_old_one() {
    let prefix = s3_prefix("fencing");
    let url = &format!("{prefix}/f/0");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut cfg_a = config(dir_a.path());
    cfg_a.cluster.allowed_storage = vec![prefix.clone()];
    let mut cfg_b = config(dir_b.path());
    cfg_b.node.id = "node-b".into();
    cfg_b.node.reader_refresh_ms = 20;
    cfg_b.cluster.allowed_storage = vec![prefix.clone()];
    let a = vecshard_node::start(cfg_a).await.unwrap();
    let b = vecshard_node::start(cfg_b).await.unwrap();
    let (mut ca, mut cb) = (connect(&a).await, connect(&b).await);

    ca.assign_shard(assign_url(url, 1, pb::Role::Writer))
        .await
        .unwrap();
    wait_state(&mut ca, "f", 0, 1, pb::ShardState::Serving).await;
    ca.upsert(pb::UpsertRequest {
        target: target("f", 0, 1),
        points: (0..10).map(p4).collect(),
    })
    .await
    .unwrap();

    // Node B holds the shard as a READER first.
    cb.assign_shard(assign_url(url, 1, pb::Role::Reader))
        .await
        .unwrap();
    wait_state(&mut cb, "f", 0, 1, pb::ShardState::Serving).await;
    let err = cb
        .upsert(pb::UpsertRequest {
            target: target("f", 0, 1),
            points: vec![p4(1)],
        })
        .await
        .unwrap_err();
    assert_eq!(not_owner(&err).reason(), pb::NotOwnerReason::NotWriter);

    // The router moves the shard to B at epoch 2: B claims it in storage.
    cb.assign_shard(assign_url(url, 2, pb::Role::Writer))
        .await
        .unwrap();
    wait_state(&mut cb, "f", 0, 2, pb::ShardState::Serving).await;
    let got = cb
        .get(pb::GetRequest {
            target: target("f", 0, 2),
            keys: (0..10).map(int_key).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys_of(&got.points), (0..10).collect::<Vec<u64>>());

    // A still believes it owns epoch 1: its next write is fenced, never acknowledged.
    let err = ca
        .upsert(pb::UpsertRequest {
            target: target("f", 0, 1),
            points: vec![p4(100)],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let d = not_owner(&err);
    assert_eq!(d.reason(), pb::NotOwnerReason::Fenced);
    assert_eq!((d.caller_epoch, d.node_epoch), (1, Some(1)));
    let s = wait_state(&mut ca, "f", 0, 1, pb::ShardState::Fenced).await;
    assert!(!s.error.is_empty());
    // Every later call on A is refused the same way, reads included.
    let err = ca
        .search(pb::SearchRequest {
            target: target("f", 0, 1),
            vector: vec![0.0; 4],
            k: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(not_owner(&err).reason(), pb::NotOwnerReason::Fenced);
    // Re-sending the old assignment does not revive it.
    let again = ca
        .assign_shard(assign_url(url, 1, pb::Role::Writer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.state(), pb::ShardState::Fenced);

    // The fenced write never became visible; B keeps writing.
    let got = cb
        .get(pb::GetRequest {
            target: target("f", 0, 2),
            keys: vec![int_key(100)],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(got.points.is_empty());
    cb.upsert(pb::UpsertRequest {
        target: target("f", 0, 2),
        points: vec![p4(11)],
    })
    .await
    .unwrap();

    // A opening at a stale epoch is fenced at open.
    ca.release_shard(pb::ReleaseShardRequest {
        collection: "f".into(),
        shard: 0,
        epoch: 1,
        delete_data: false,
        ..Default::default()
    })
    .await
    .unwrap();
    ca.assign_shard(assign_url(url, 1, pb::Role::Writer))
        .await
        .unwrap();
    let s = wait_state(&mut ca, "f", 0, 1, pb::ShardState::Fenced).await;
    assert!(s.error.contains("stale"), "{}", s.error);

    // Dropping the collection: the writer deletes the shard's objects.
    cb.release_shard(pb::ReleaseShardRequest {
        collection: "f".into(),
        shard: 0,
        epoch: 2,
        delete_data: true,
        ..Default::default()
    })
    .await
    .unwrap();
    ca.release_shard(pb::ReleaseShardRequest {
        collection: "f".into(),
        shard: 0,
        epoch: 1,
        delete_data: false,
        ..Default::default()
    })
    .await
    .unwrap();
    ca.assign_shard(assign_url(url, 3, pb::Role::Reader))
        .await
        .unwrap();
    let s = wait_state(&mut ca, "f", 0, 3, pb::ShardState::Failed).await;
    assert!(s.error.contains("no shard"), "{}", s.error);
    a.shutdown().await;
    b.shutdown().await;
}
