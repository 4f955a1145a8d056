//! Routing, scatter-gather and failover against fake data nodes over real tonic on
//! 127.0.0.1 (one router; the Raft group tests are in `raft_group.rs`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake_node::{FakeNode, ObjectStore};
use common::*;
use vecshard_model::{Clock, ManualClock};
use vecshard_proto::v1 as pb;
use vecshard_router::RouterHandle;

const DIM: usize = 8;

async fn setup(nodes: usize) -> (tempfile::TempDir, RouterHandle, Vec<FakeNode>, ObjectStore) {
    setup_on(nodes, vecshard_model::clock::system()).await
}

/// A router whose control loop and failure detection run on `clock`.
async fn setup_on(
    nodes: usize,
    clock: Arc<dyn Clock>,
) -> (tempfile::TempDir, RouterHandle, Vec<FakeNode>, ObjectStore) {
    let dir = tempfile::tempdir().unwrap();
    let router = vecshard_router::start_with_clock(test_config(dir.path(), 1), clock)
        .await
        .unwrap();
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

async fn create(c: &mut common_client::C, name: &str, shards: u32, storage: &str) {
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

mod common_client {
    pub type C = vecshard_test_support::api::Client;
}

async fn upsert(c: &mut common_client::C, name: &str, ids: std::ops::Range<u64>) {
    let points = ids.map(|i| point(i, DIM)).collect();
    c.upsert(pb::UpsertRequest {
        collection: name.into(),
        points,
    })
    .await
    .unwrap();
}

/// The epoch of every shard of `name`, by number.
async fn epochs(c: &mut common_client::C, name: &str) -> Vec<u64> {
    let d = c
        .describe_collection(pb::DescribeCollectionRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner();
    d.shards.iter().map(|s| s.epoch).collect()
}

fn search_req(name: &str, q: Vec<f32>, k: u32) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: name.into(),
        vector: q,
        k,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_spread_and_search_merges_exactly() {
    let (_dir, router, _nodes, store) = setup(3).await;
    let mut c = client(&router).await;
    create(&mut c, "docs", 4, "s3://bucket").await;
    upsert(&mut c, "docs", 0..600).await;
    assert_eq!(store.points("s3://bucket/docs-"), 600);

    // Every shard got a share.
    let d = c
        .describe_collection(pb::DescribeCollectionRequest {
            name: "docs".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.shards.len(), 4);
    let owners: std::collections::BTreeSet<_> =
        d.shards.iter().map(|s| s.owner_node.clone()).collect();
    assert_eq!(owners.len(), 3, "4 shards spread over 3 nodes");

    for q in 1000..1010u64 {
        let query = vector(q, DIM);
        let r = c
            .search(search_req("docs", query.clone(), 10))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(hit_ids(&r), exact_top_k(&query, 0..600, DIM, 10));
        let cov = r.coverage.unwrap();
        assert_eq!((cov.shards_total, cov.shards_answered), (4, 4));
    }

    // Filters pass through (JSON and structured).
    let mut r = search_req("docs", vector(5, DIM), 20);
    r.filter_spec = Some(pb::search_request::FilterSpec::FilterJson(
        r#"{"and": [{"field": "parity", "eq": "even"}, {"field": "n", "range": {"lt": 100}}]}"#
            .into(),
    ));
    r.with_metadata = true;
    let hits = c.search(r).await.unwrap().into_inner();
    assert_eq!(hits.hits.len(), 20);
    assert!(
        hit_ids(&hits)
            .iter()
            .all(|i| i.is_multiple_of(2) && *i < 100)
    );
    let evens = (0..100).filter(|i: &u64| i.is_multiple_of(2));
    assert_eq!(hit_ids(&hits), exact_top_k(&vector(5, DIM), evens, DIM, 20));

    // Get in request order, missing keys left out.
    let g = c
        .get(pb::GetRequest {
            collection: "docs".into(),
            keys: vec![int_key(599), int_key(7000), int_key(3)],
        })
        .await
        .unwrap()
        .into_inner();
    let got: Vec<_> = g.points.iter().map(|p| p.key.clone().unwrap()).collect();
    assert_eq!(got, [int_key(599), int_key(3)]);

    // Scan sees every point exactly once.
    let mut cursor = String::new();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let page = c
            .scan(pb::ScanRequest {
                collection: "docs".into(),
                cursor: cursor.clone(),
                limit: 70,
            })
            .await
            .unwrap()
            .into_inner();
        for p in page.points {
            let pb::key::Kind::Int(v) = p.key.unwrap().kind.unwrap() else {
                panic!()
            };
            assert!(seen.insert(v), "key {v} twice");
        }
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(seen.len(), 600);

    // Delete.
    c.delete(pb::DeleteRequest {
        collection: "docs".into(),
        keys: (0..100).map(int_key).collect(),
    })
    .await
    .unwrap();
    assert_eq!(store.points("s3://bucket/docs-"), 500);
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_object_store_shards_move_and_acknowledged_writes_survive() {
    // Failure detection runs on a manual clock: the test moves it past the timeout.
    let clock = ManualClock::new();
    let (_dir, router, nodes, _store) = setup_on(3, Arc::new(clock.clone())).await;
    let cfg = test_config(std::path::Path::new("."), 1);
    let timeout = Duration::from_millis(cfg.failure_timeout_ms);
    let mut c = client(&router).await;
    create(&mut c, "docs", 6, "s3://bucket/b").await;
    upsert(&mut c, "docs", 0..300).await;
    let first_epoch = epochs(&mut c, "docs").await[0];
    let victim = &nodes[0];
    let held_before = victim.held().len();
    assert!(held_before > 0);
    victim.kill();
    let live: Vec<&FakeNode> = nodes[1..].iter().collect();

    // Writes during the failure are acknowledged once the shards have moved.
    let write = tokio::spawn({
        let mut c = c.clone();
        async move { upsert(&mut c, "docs", 300..400).await }
    });
    // Short of the timeout by the clock, the silent node is still alive, however long the
    // test took in real time.
    advance_with_heartbeats(&clock, &cfg, &live, timeout * 2 / 3).await;
    let s = c
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let victim_state = s.nodes.iter().find(|n| n.id == victim.id).unwrap().state;
    assert_eq!(victim_state, pb::NodeState::Alive as i32, "{s:?}");
    assert!(
        !write.is_finished(),
        "a write reached the dead node's shards"
    );
    // Past it (by a step more than needed: a heartbeat in flight at the kill may still
    // land after the first step): the node is down, its shards move, the write is
    // acknowledged.
    advance_with_heartbeats(&clock, &cfg, &live, timeout).await;
    write.await.unwrap();
    let s = c
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(s.shards.iter().all(|p| p.owner != victim.id), "{s:?}");
    assert!(s.shards.iter().any(|p| p.epoch == first_epoch + 1));
    let dead = s.nodes.iter().find(|n| n.id == victim.id).unwrap();
    assert_eq!(dead.state, pb::NodeState::Down as i32);

    for q in 0..5u64 {
        let query = vector(5000 + q, DIM);
        let r = c
            .search(search_req("docs", query.clone(), 15))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(hit_ids(&r), exact_top_k(&query, 0..400, DIM, 15));
    }
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_shards_wait_and_partial_results_report_coverage() {
    let clock = ManualClock::new();
    let (_dir, router, nodes, _store) = setup_on(2, Arc::new(clock.clone())).await;
    let mut c = client(&router).await;
    create(&mut c, "loc", 2, "local").await;
    upsert(&mut c, "loc", 0..100).await;
    let d = c
        .describe_collection(pb::DescribeCollectionRequest { name: "loc".into() })
        .await
        .unwrap()
        .into_inner();
    let victim = nodes
        .iter()
        .find(|n| n.id == d.shards[1].owner_node)
        .unwrap();
    victim.kill();
    let live: Vec<&FakeNode> = nodes.iter().filter(|n| n.id != victim.id).collect();
    let cfg = test_config(std::path::Path::new("."), 1);
    let timeout = Duration::from_millis(cfg.failure_timeout_ms);
    // A step past the timeout: a heartbeat in flight at the kill may land after the first.
    advance_with_heartbeats(&clock, &cfg, &live, timeout + timeout / 3).await;
    eventually("node down", Duration::from_secs(10), || {
        let mut c = c.clone();
        async move {
            let s = c
                .cluster_status(pb::ClusterStatusRequest {})
                .await
                .ok()?
                .into_inner();
            s.nodes
                .iter()
                .any(|n| n.state == pb::NodeState::Down as i32)
                .then_some(())
        }
    })
    .await;

    let err = c
        .search(search_req("loc", vector(1, DIM), 5))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().contains("shards [1]"), "{}", err.message());

    let mut r = search_req("loc", vector(1, DIM), 5);
    r.allow_partial = true;
    let r = c.search(r).await.unwrap().into_inner();
    let cov = r.coverage.unwrap();
    assert_eq!(
        (cov.shards_total, cov.shards_answered, cov.missing_shards),
        (2, 1, vec![1])
    );
    assert_eq!(r.hits.len(), 5);

    // The local shard stays with its node.
    let d = c
        .describe_collection(pb::DescribeCollectionRequest { name: "loc".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.shards[1].owner_node, victim.id);
    assert_eq!(d.shards[1].epoch, d.shards[0].epoch, "never moved");
    assert_eq!(d.shards[1].state, pb::ShardState::Unavailable as i32);
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_is_fenced_after_its_shard_moves() {
    let clock = ManualClock::new();
    let (_dir, router, nodes, store) = setup_on(2, Arc::new(clock.clone())).await;
    let mut c = client(&router).await;
    create(&mut c, "f", 1, "s3://bucket/fence").await;
    upsert(&mut c, "f", 0..10).await;
    let first_epoch = epochs(&mut c, "f").await[0];
    let owner = nodes.iter().find(|n| !n.held().is_empty()).unwrap();
    owner.pause();
    // The write waits for the failover (the clock run past the failure timeout) and lands
    // on the new owner at the next epoch.
    let write = tokio::spawn({
        let mut c = c.clone();
        async move { upsert(&mut c, "f", 10..20).await }
    });
    let cfg = test_config(std::path::Path::new("."), 1);
    let live: Vec<&FakeNode> = nodes.iter().filter(|n| n.id != owner.id).collect();
    let timeout = Duration::from_millis(cfg.failure_timeout_ms);
    // A step past the timeout: a heartbeat in flight at the pause may land after the first.
    advance_with_heartbeats(&clock, &cfg, &live, timeout + timeout / 3).await;
    write.await.unwrap();
    let d = c
        .describe_collection(pb::DescribeCollectionRequest { name: "f".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.shards[0].epoch, first_epoch + 1);
    assert_ne!(d.shards[0].owner_node, owner.id);

    // The old owner wakes up still believing it holds the first epoch: its write is
    // refused.
    owner.resume();
    let mut direct = vecshard_proto::internal::v1::node_client::NodeClient::connect(format!(
        "http://{}",
        owner.addr
    ))
    .await
    .unwrap();
    let stale = direct
        .upsert(vecshard_proto::internal::v1::UpsertRequest {
            target: Some(vecshard_proto::internal::v1::ShardTarget {
                collection: "f".into(),
                shard: 0,
                epoch: first_epoch,
            }),
            points: vec![point(999, DIM)],
        })
        .await;
    assert_eq!(stale.unwrap_err().code(), tonic::Code::FailedPrecondition);
    assert_eq!(store.points("s3://bucket/fence/"), 20);
    // The leader releases the stale holding.
    eventually("old owner released", Duration::from_secs(10), || async {
        owner.held().is_empty().then_some(())
    })
    .await;
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_gets_object_store_shards() {
    let (_dir, router, mut nodes, store) = setup(1).await;
    let mut c = client(&router).await;
    create(&mut c, "r", 4, "s3://bucket/rb").await;
    upsert(&mut c, "r", 0..50).await;
    let routers = vec![router.internal_addr().to_string()];
    nodes.push(FakeNode::start("late", routers, store.clone()).await);
    eventually("rebalanced", Duration::from_secs(20), || {
        let mut c = c.clone();
        async move {
            let s = c
                .cluster_status(pb::ClusterStatusRequest {})
                .await
                .ok()?
                .into_inner();
            let on_late = s.shards.iter().filter(|p| p.owner == "late").count();
            let serving = s
                .shards
                .iter()
                .all(|p| p.state == pb::ShardState::Serving as i32);
            (on_late == 2 && serving).then_some(())
        }
    })
    .await;
    let r = c
        .search(search_req("r", vector(77, DIM), 50))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.hits.len(), 50);
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_answer_for_a_stalled_owner_with_hedging() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path(), 1);
    cfg.read_replicas = 1;
    cfg.hedge_after_ms = 50;
    cfg.failure_timeout_ms = 20_000; // no failover during this test
    let router = vecshard_router::start(cfg).await.unwrap();
    let store = ObjectStore::default();
    let routers = vec![router.internal_addr().to_string()];
    let nodes = vec![
        FakeNode::start("n0", routers.clone(), store.clone()).await,
        FakeNode::start("n1", routers, store).await,
    ];
    let mut c = client(&router).await;
    wait_alive(&mut c, 2).await;
    create(&mut c, "h", 1, "s3://bucket/hedge").await;
    upsert(&mut c, "h", 0..50).await;
    let nodes = &nodes;
    let placement = eventually("a reader", Duration::from_secs(10), || {
        let mut c = c.clone();
        async move {
            let s = c
                .cluster_status(pb::ClusterStatusRequest {})
                .await
                .ok()?
                .into_inner();
            let p = s.shards.into_iter().next()?;
            let reader = nodes.iter().find(|n| p.readers.contains(&n.id))?;
            (!reader.held().is_empty()).then_some(p)
        }
    })
    .await;
    let owner = nodes.iter().find(|n| n.id == placement.owner).unwrap();
    owner.pause();
    let t = std::time::Instant::now();
    let r = c
        .search(search_req("h", vector(3, DIM), 5))
        .await
        .unwrap()
        .into_inner();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(hit_ids(&r), exact_top_k(&vector(3, DIM), 0..50, DIM, 5));
    let s = c
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        s.shards[0].owner, owner.id,
        "answered by the replica, not after a failover"
    );
    owner.resume();
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_move_shards_and_forget_dead_nodes() {
    let (_dir, router, nodes, store) = setup(2).await;
    let mut c = client(&router).await;
    create(&mut c, "m", 2, "s3://bucket/move").await;
    create(&mut c, "l", 1, "local").await;
    upsert(&mut c, "m", 0..100).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", router.http_addr());
    let d = c
        .describe_collection(pb::DescribeCollectionRequest { name: "m".into() })
        .await
        .unwrap()
        .into_inner();
    let from = d.shards[0].owner_node.clone();
    let first_epoch = d.shards[0].epoch;
    let to = nodes.iter().find(|n| n.id != from).unwrap().id.clone();
    let r = http
        .post(format!("{base}/v1/cluster/shards/move"))
        .json(&serde_json::json!({"collection": "m", "shard": 0, "to": to}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["epoch"], first_epoch + 1);
    wait_serving(&mut c, "m").await;
    let d = c
        .describe_collection(pb::DescribeCollectionRequest { name: "m".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (d.shards[0].owner_node.as_str(), d.shards[0].epoch),
        (to.as_str(), first_epoch + 1)
    );
    assert_eq!(store.points("s3://bucket/move/"), 100);
    let all = c
        .search(search_req("m", vector(9, DIM), 100))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.hits.len(), 100);

    // Refused: a local shard, an unknown node, the current owner.
    for (body, status) in [
        (
            serde_json::json!({"collection": "l", "shard": 0, "to": to}),
            412,
        ),
        (
            serde_json::json!({"collection": "m", "shard": 0, "to": "nobody"}),
            412,
        ),
        (
            serde_json::json!({"collection": "m", "shard": 0, "to": to}),
            412,
        ),
        (
            serde_json::json!({"collection": "m", "shard": 9, "to": to}),
            404,
        ),
    ] {
        let r = http
            .post(format!("{base}/v1/cluster/shards/move"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
    }

    // A live node, or one holding shards, cannot be forgotten; a dead empty one can.
    let remove = |id: String| {
        http.post(format!("{base}/v1/cluster/nodes/remove"))
            .json(&serde_json::json!({"id": id}))
            .send()
    };
    assert_eq!(remove(to.clone()).await.unwrap().status().as_u16(), 412);
    c.drop_collection(pb::DropCollectionRequest { name: "m".into() })
        .await
        .unwrap();
    c.drop_collection(pb::DropCollectionRequest { name: "l".into() })
        .await
        .unwrap();
    eventually(
        "the dropped data deleted",
        Duration::from_secs(10),
        || async { (store.points("s3://bucket/move/") == 0).then_some(()) },
    )
    .await;
    let victim = nodes.iter().find(|n| n.id == from).unwrap();
    victim.kill();
    eventually("node down", Duration::from_secs(10), || {
        let mut c = c.clone();
        let id = from.clone();
        async move {
            let s = c
                .cluster_status(pb::ClusterStatusRequest {})
                .await
                .ok()?
                .into_inner();
            s.nodes
                .iter()
                .any(|n| n.id == id && n.state == pb::NodeState::Down as i32)
                .then_some(())
        }
    })
    .await;
    assert_eq!(remove(from.clone()).await.unwrap().status().as_u16(), 200);
    let s = c
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(s.nodes.iter().all(|n| n.id != from));
    router.shutdown().await;
}

/// The Raft leader answers a node's heartbeat with a read lease of half
/// `failure_timeout_ms` covering exactly the shards the map gives that node as writer at
/// the epoch it reports: not a shard owned by another node, not a stale or future epoch,
/// not a reader's copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_leases_a_node_only_the_shards_the_map_gives_it() {
    use vecshard_proto::internal::v1 as pi;
    let (_dir, router, nodes, _store) = setup(2).await;
    let cfg = test_config(std::path::Path::new("."), 1);
    let mut c = client(&router).await;
    create(&mut c, "docs", 4, "s3://bucket/l").await;
    let s = c
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let me = &nodes[0].id;
    let status = |shard: u32, epoch: u64, role: pi::Role| pi::ShardStatus {
        collection: "docs".into(),
        shard,
        epoch,
        role: role as i32,
        state: pi::ShardState::Serving as i32,
        ..Default::default()
    };
    let mut shards = Vec::new();
    let mut expected = Vec::new();
    for p in s.shards.iter().filter(|p| p.collection == "docs") {
        shards.push(status(p.number, p.epoch, pi::Role::Writer));
        shards.push(status(p.number, p.epoch + 1, pi::Role::Writer));
        shards.push(status(p.number, p.epoch, pi::Role::Reader));
        if &p.owner == me {
            expected.push((p.number, p.epoch));
        }
    }
    assert!(!expected.is_empty() && expected.len() < 4, "{s:?}");
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", router.internal_addr()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut internal = pi::router_internal_client::RouterInternalClient::new(channel);
    let answer = internal
        .heartbeat(pi::Heartbeat {
            node_id: me.clone(),
            address: nodes[0].addr.to_string(),
            shards,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.lease_ms, cfg.failure_timeout_ms / 2);
    let mut leased: Vec<(u32, u64)> = answer
        .leased
        .iter()
        .map(|l| {
            assert_eq!(l.collection, "docs");
            (l.shard, l.epoch)
        })
        .collect();
    leased.sort();
    expected.sort();
    assert_eq!(leased, expected);
    router.shutdown().await;
}

/// A planned move hands a shard's reads over without overlap: the new owner is assigned
/// only after the old owner released the shard (the usual case, a round trip), or, when
/// the old owner does not answer, only after every read lease it was granted ran out —
/// so a router with an old map can never read the old owner's copy while the new owner
/// takes writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_shards_new_writer_waits_for_the_old_ones_release_or_lease() {
    let (_dir, router, nodes, _store) = setup(2).await;
    let mut c = client(&router).await;
    create(&mut c, "m", 2, "s3://bucket/handover").await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", router.http_addr());
    let owners = |d: &pb::DescribeCollectionResponse| -> Vec<(String, u64)> {
        d.shards
            .iter()
            .map(|s| (s.owner_node.clone(), s.epoch))
            .collect()
    };
    let describe = |mut c: common_client::C| async move {
        c.describe_collection(pb::DescribeCollectionRequest { name: "m".into() })
            .await
            .unwrap()
            .into_inner()
    };
    let before = owners(&describe(c.clone()).await);
    // Every node has had a lease answer (so each owner holds one when the move starts).
    eventually("leases granted", Duration::from_secs(10), || {
        let all = nodes.iter().all(|n| !n.leases().is_empty());
        async move { all.then_some(()) }
    })
    .await;

    for (shard, pause_old) in [(0u32, false), (1u32, true)] {
        let (from, epoch) = before[shard as usize].clone();
        let old = nodes.iter().find(|n| n.id == from).unwrap();
        let new = nodes.iter().find(|n| n.id != from).unwrap();
        if pause_old {
            old.pause();
        }
        let r = http
            .post(format!("{base}/v1/cluster/shards/move"))
            .json(&serde_json::json!({"collection": "m", "shard": shard, "to": new.id}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let assigned = format!("assign m/{shard}@{} Writer", epoch + 1);
        let at = eventually("the new owner assigned", Duration::from_secs(10), || {
            let t = new.logged(&assigned);
            async move { t }
        })
        .await;
        if pause_old {
            let last = old
                .leases()
                .into_iter()
                .map(|(sent, l)| sent + l)
                .max()
                .unwrap();
            assert!(
                at >= last,
                "assigned {:?} before the old lease ran out",
                last - at
            );
            old.resume();
        } else {
            let released = old
                .logged(&format!("release m/{shard}@{epoch}"))
                .expect("the old owner was released first");
            assert!(released <= at, "assigned before the old owner released");
        }
    }
    router.shutdown().await;
}
