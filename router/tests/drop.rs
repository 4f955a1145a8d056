//! Dropping a collection and creating it again under the same name: the new collection
//! starts empty every time (scan and get of the old keys), even with a fast control loop
//! and with a node down during the drop; the dropped data is deleted, on a node that was
//! down once it returns. Against fake nodes that keep local shards at the real node's
//! paths and delete by location.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::fake_node::{FakeNode, ObjectStore};
use common::*;
use vecshard_proto::v1 as pb;
use vecshard_router::RouterHandle;

const DIM: usize = 4;

type C = vecshard_test_support::api::Client;

async fn setup(nodes: usize) -> (tempfile::TempDir, RouterHandle, Vec<FakeNode>, ObjectStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path(), 1);
    cfg.control_interval_ms = 10;
    let router = vecshard_router::start(cfg).await.unwrap();
    let store = ObjectStore::default();
    let mut fakes = Vec::new();
    for i in 0..nodes {
        let routers = vec![router.internal_addr().to_string()];
        fakes.push(FakeNode::start(&format!("n{i}"), routers, store.clone()).await);
    }
    let mut c = client(&router).await;
    wait_alive(&mut c, nodes).await;
    (dir, router, fakes, store)
}

async fn create(c: &mut C, name: &str, shards: u32, storage: &str) {
    c.create_collection(pb::CreateCollectionRequest {
        name: name.into(),
        dimension: DIM as u32,
        metric: pb::Metric::L2 as i32,
        shard_count: shards,
        storage: storage.into(),
        index: None,
        ..Default::default()
    })
    .await
    .unwrap();
    wait_serving(c, name).await;
}

/// Key `i` as written in `round`.
fn round_point(i: u64, round: u64) -> pb::Point {
    let mut p = point(i + round * 1000, DIM);
    p.key = Some(int_key(i));
    p
}

/// Write keys 0..100 as in `round` and read them back with their values.
async fn write_round(c: &mut C, name: &str, round: u64) {
    let points = (0..100).map(|i| round_point(i, round)).collect();
    c.upsert(pb::UpsertRequest {
        collection: name.into(),
        points,
    })
    .await
    .unwrap();
    let got = c
        .get(pb::GetRequest {
            collection: name.into(),
            keys: (0..100).map(int_key).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.points.len(), 100);
    for (i, p) in got.points.iter().enumerate() {
        let want = round_point(i as u64, round);
        assert_eq!((&p.vector, &p.metadata), (&want.vector, &want.metadata));
    }
}

async fn assert_empty(c: &mut C, name: &str, round: u64) {
    let scan = c
        .scan(pb::ScanRequest {
            collection: name.into(),
            cursor: String::new(),
            limit: 1000,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        scan.points.is_empty(),
        "round {round}: the new collection shows {} old points",
        scan.points.len()
    );
    let got = c
        .get(pb::GetRequest {
            collection: name.into(),
            keys: (0..100).map(int_key).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(got.points.is_empty(), "round {round}: get finds old points");
}

async fn drop_collection(c: &mut C, name: &str) {
    c.drop_collection(pb::DropCollectionRequest { name: name.into() })
        .await
        .unwrap();
}

/// Local shard paths with points, over every node.
fn disks(nodes: &[FakeNode]) -> BTreeMap<String, usize> {
    nodes
        .iter()
        .flat_map(|n| {
            n.disk()
                .into_iter()
                .filter(|(_, points)| *points > 0)
                .map(|(path, points)| (format!("{}:{path}", n.id), points))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_local_collection_starts_empty_and_the_old_data_goes() {
    let (_dir, router, nodes, _store) = setup(2).await;
    let mut c = client(&router).await;
    create(&mut c, "c", 4, "local").await;
    for round in 0..6 {
        write_round(&mut c, "c", round).await;
        drop_collection(&mut c, "c").await;
        create(&mut c, "c", 4, "local").await;
        assert_empty(&mut c, "c", round).await;
    }
    write_round(&mut c, "c", 6).await;
    // Only the current incarnation's four shards hold data.
    eventually("dropped data deleted", Duration::from_secs(10), || async {
        let d = disks(&nodes);
        (d.len() == 4).then_some(())
    })
    .await;

    // A node down during the drop keeps its copy until it returns.
    let victim = &nodes[1];
    assert!(!victim.disk().is_empty());
    victim.pause();
    eventually("node down", Duration::from_secs(10), || {
        let mut c = c.clone();
        async move {
            let s = c.cluster_status(pb::ClusterStatusRequest {}).await.ok()?;
            s.into_inner()
                .nodes
                .iter()
                .any(|n| n.id == "n1" && n.state == pb::NodeState::Down as i32)
                .then_some(())
        }
    })
    .await;
    drop_collection(&mut c, "c").await;
    create(&mut c, "c", 4, "local").await;
    assert_empty(&mut c, "c", 6).await;
    write_round(&mut c, "c", 7).await;
    assert!(
        victim.disk().values().any(|points| *points > 0),
        "the victim's copy is still there while it is down"
    );
    victim.resume();
    eventually(
        "the returned node's copy deleted",
        Duration::from_secs(10),
        || async { victim.disk().is_empty().then_some(()) },
    )
    .await;
    // It takes shards of a later incarnation, empty.
    drop_collection(&mut c, "c").await;
    create(&mut c, "c", 4, "local").await;
    assert_empty(&mut c, "c", 7).await;
    assert!(!victim.held().is_empty());
    write_round(&mut c, "c", 8).await;
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_object_store_collection_starts_empty_and_the_old_objects_go() {
    let (_dir, router, nodes, store) = setup(2).await;
    let mut c = client(&router).await;
    create(&mut c, "s", 2, "s3://bucket/drop").await;
    for round in 0..4 {
        write_round(&mut c, "s", round).await;
        drop_collection(&mut c, "s").await;
        create(&mut c, "s", 2, "s3://bucket/drop").await;
        assert_empty(&mut c, "s", round).await;
    }
    eventually(
        "dropped objects deleted",
        Duration::from_secs(10),
        || async { (store.points("s3://bucket/drop/") == 0).then_some(()) },
    )
    .await;
    // With the owner of a shard down, a live node deletes its objects.
    write_round(&mut c, "s", 4).await;
    nodes[0].pause();
    drop_collection(&mut c, "s").await;
    eventually(
        "objects deleted by the live node",
        Duration::from_secs(10),
        || async { (store.points("s3://bucket/drop/") == 0).then_some(()) },
    )
    .await;
    nodes[0].resume();
    router.shutdown().await;
}
