//! Deleting a dropped collection's shard data: by location (local paths carry the
//! collection's incarnation), whether or not the node still holds the shard, never
//! touching a newer incarnation of the same name, and only under the allowed storage.

mod common;

use common::*;
use tonic::Code;
use vecshard_proto::internal::v1 as pb;

fn assign_inc(
    collection: &str,
    shard: u32,
    incarnation: u64,
    epoch: u64,
) -> pb::AssignShardRequest {
    pb::AssignShardRequest {
        incarnation,
        ..assign_req(collection, shard, epoch, pb::Role::Writer, 4)
    }
}

fn delete_req(
    collection: &str,
    shard: u32,
    incarnation: u64,
    epoch: u64,
    storage: &str,
) -> pb::ReleaseShardRequest {
    pb::ReleaseShardRequest {
        collection: collection.into(),
        shard,
        epoch,
        delete_data: true,
        storage: storage.into(),
        incarnation,
    }
}

async fn write(
    c: &mut Client,
    collection: &str,
    shard: u32,
    epoch: u64,
    keys: std::ops::Range<u64>,
) {
    c.upsert(pb::UpsertRequest {
        target: target(collection, shard, epoch),
        points: keys.map(p4).collect(),
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_shard_data_is_deleted_by_location() {
    let dir = tempfile::tempdir().unwrap();
    let node = vecshard_node::start(config(dir.path())).await.unwrap();
    let mut c = connect(&node).await;
    let old_dir = dir.path().join("c-7").join("shard-0000");

    // Incarnation 7 of "c": its shard lives under c-7/.
    c.assign_shard(assign_inc("c", 0, 7, 7)).await.unwrap();
    wait_state(&mut c, "c", 0, 7, pb::ShardState::Serving).await;
    write(&mut c, "c", 0, 7, 0..20).await;
    assert!(old_dir.join("wal").is_dir(), "{}", old_dir.display());

    // Released without deleting first (the reconciler got there before the drop).
    c.release_shard(pb::ReleaseShardRequest {
        collection: "c".into(),
        shard: 0,
        epoch: 7,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(old_dir.is_dir());

    // Incarnation 9 of "c" opens elsewhere, empty, on the same node.
    c.assign_shard(assign_inc("c", 0, 9, 9)).await.unwrap();
    wait_state(&mut c, "c", 0, 9, pb::ShardState::Serving).await;
    let got = c
        .get(pb::GetRequest {
            target: target("c", 0, 9),
            keys: (0..20).map(int_key).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(got.points.is_empty(), "old points in the new incarnation");
    write(&mut c, "c", 0, 9, 100..110).await;

    // The drop's delete of incarnation 7 still finds its files, and leaves 9 alone.
    c.release_shard(delete_req("c", 0, 7, 7, "local"))
        .await
        .unwrap();
    assert!(!old_dir.exists(), "{} survived", old_dir.display());
    assert!(!dir.path().join("c-7").exists());
    let got = c
        .get(pb::GetRequest {
            target: target("c", 0, 9),
            keys: (100..110).map(int_key).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys_of(&got.points), (100..110).collect::<Vec<u64>>());

    // Deleting the incarnation held closes it first; a stale epoch is refused.
    let e = c
        .release_shard(delete_req("c", 0, 9, 8, "local"))
        .await
        .unwrap_err();
    assert_eq!(not_owner(&e).reason(), pb::NotOwnerReason::StaleCaller);
    assert!(dir.path().join("c-9").is_dir());
    c.release_shard(delete_req("c", 0, 9, 9, "local"))
        .await
        .unwrap();
    assert!(!dir.path().join("c-9").exists());
    let status = c
        .node_status(pb::NodeStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        status
            .shards
            .iter()
            .all(|s| s.state() == pb::ShardState::Closed),
        "{status:?}"
    );

    // Collections from before incarnations keep <collection>/<shard>.
    c.assign_shard(assign_inc("old", 2, 0, 1)).await.unwrap();
    wait_state(&mut c, "old", 2, 1, pb::ShardState::Serving).await;
    assert!(dir.path().join("old").join("2").is_dir());
    c.release_shard(delete_req("old", 2, 0, 1, "local"))
        .await
        .unwrap();
    assert!(!dir.path().join("old").exists());

    // Never outside the allowed storage.
    let e = c
        .release_shard(delete_req(
            "c",
            0,
            7,
            7,
            "memory://elsewhere/c-7/shard-0000",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("cluster.allowed_storage"), "{e:?}");
    node.shutdown().await;
}
