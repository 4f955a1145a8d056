//! Three routers in one Raft group (in-process, real tonic on 127.0.0.1) with fake data
//! nodes: forwarding to the leader, leader loss, restart and catch-up, a router joining
//! from a snapshot.

mod common;

use std::time::Duration;

use common::fake_node::{FakeNode, ObjectStore};
use common::*;
use vecshard_proto::v1 as pb;
use vecshard_router::RouterHandle;

const DIM: usize = 4;

async fn leader_of(routers: &[&RouterHandle]) -> usize {
    eventually("a leader", Duration::from_secs(20), || async {
        routers.iter().position(|r| r.is_leader())
    })
    .await
}

async fn collections(r: &RouterHandle) -> Vec<String> {
    let mut c = client(r).await;
    let l = c
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner();
    l.collections.into_iter().map(|s| s.name).collect()
}

fn create_req(name: &str) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        name: name.into(),
        dimension: DIM as u32,
        metric: pb::Metric::L2 as i32,
        shard_count: 3,
        storage: "s3://bucket/g".into(),
        index: None,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_survives_leader_loss_and_restarts() {
    let root = tempfile::tempdir().unwrap();
    let mut configs = group_configs(root.path(), 3);
    for c in &mut configs {
        // Snapshots early, so a joining router installs one.
        c.raft.snapshot_every = 5;
        c.raft.logs_to_keep = 2;
    }
    let mut routers = Vec::new();
    for c in &configs {
        routers.push(Some(vecshard_router::start(c.clone()).await.unwrap()));
    }
    let live = |rs: &Vec<Option<RouterHandle>>| -> Vec<usize> {
        (0..rs.len()).filter(|i| rs[*i].is_some()).collect()
    };
    let all: Vec<&RouterHandle> = routers.iter().flatten().collect();
    let leader = leader_of(&all).await;
    let follower = (leader + 1) % 3;

    let store = ObjectStore::default();
    let internals: Vec<String> = routers
        .iter()
        .flatten()
        .map(|r| r.internal_addr().to_string())
        .collect();
    let mut nodes = Vec::new();
    for (i, internal) in internals.iter().take(2).enumerate() {
        // Each node knows one router; it learns the others from heartbeat answers.
        let known = vec![internal.clone()];
        nodes.push(FakeNode::start(&format!("n{i}"), known, store.clone()).await);
    }
    let mut fc = client(routers[follower].as_ref().unwrap()).await;
    wait_alive(&mut fc, 2).await;

    // A change sent to a follower is forwarded to the leader.
    fc.create_collection(create_req("a")).await.unwrap();
    let dup = fc.create_collection(create_req("a")).await.unwrap_err();
    assert_eq!(dup.code(), tonic::Code::AlreadyExists);
    wait_serving(&mut fc, "a").await;
    let points: Vec<pb::Point> = (0..50).map(|i| point(i, DIM)).collect();
    fc.upsert(pb::UpsertRequest {
        collection: "a".into(),
        points,
    })
    .await
    .unwrap();
    for r in routers.iter().flatten() {
        eventually("replicated", Duration::from_secs(10), || async {
            (collections(r).await == ["a"]).then_some(())
        })
        .await;
    }

    // Lose the leader: another takes over with the map intact.
    let old = routers[leader].take().unwrap();
    let old_version = old.shard_map_version();
    old.shutdown().await;
    let rest: Vec<&RouterHandle> = routers.iter().flatten().collect();
    let new_leader = leader_of(&rest).await;
    let nl = rest[new_leader];
    assert!(nl.shard_map_version() >= old_version);
    let mut lc = client(nl).await;
    lc.create_collection(create_req("b")).await.unwrap();
    wait_serving(&mut lc, "b").await;
    let r = lc
        .search(pb::SearchRequest {
            collection: "a".into(),
            vector: vector(3, DIM),
            k: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hit_ids(&r), exact_top_k(&vector(3, DIM), 0..50, DIM, 5));

    // The old leader restarts from its disk and catches up.
    let restarted = vecshard_router::start(configs[leader].clone())
        .await
        .unwrap();
    eventually("caught up", Duration::from_secs(20), || async {
        (collections(&restarted).await == ["a", "b"]).then_some(())
    })
    .await;
    routers[leader] = Some(restarted);
    assert_eq!(live(&routers).len(), 3);

    // A fourth router joins through any member (from a snapshot: logs were compacted).
    let mut extra = test_config(&root.path().join("router-4"), 4);
    extra.members = configs[0].members.clone();
    let r4 = vecshard_router::start(extra).await.unwrap();
    let http = reqwest::Client::new();
    let body = serde_json::json!({
        "id": 4,
        "grpc": r4.grpc_addr().to_string(),
        "internal": r4.internal_addr().to_string(),
        "http": r4.http_addr().to_string(),
    });
    let any = routers[follower].as_ref().unwrap();
    let resp = http
        .post(format!("http://{}/v1/cluster/routers", any.http_addr()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    eventually("router 4 has the map", Duration::from_secs(20), || async {
        (collections(&r4).await == ["a", "b"]).then_some(())
    })
    .await;
    assert!(
        root.path().join("router-4/snapshot.json").exists(),
        "router 4 installed a snapshot"
    );
    // The map can arrive (snapshot) before the membership change that adds router 4 is
    // applied there: wait for the membership, then check it.
    eventually(
        "router 4 sees 4 routers",
        Duration::from_secs(20),
        || async {
            let s = client(&r4)
                .await
                .cluster_status(pb::ClusterStatusRequest {})
                .await
                .ok()?
                .into_inner();
            (s.routers.len() == 4).then_some(())
        },
    )
    .await;
    let s = client(&r4)
        .await
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.routers.len(), 4);
    assert_eq!(s.routers.iter().filter(|r| r.leader).count(), 1);

    r4.shutdown().await;
    for r in routers.into_iter().flatten() {
        r.shutdown().await;
    }
    for n in nodes {
        n.kill();
    }
}
