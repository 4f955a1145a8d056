//! A router that calls nodes of its own process directly (`attach_local_node`, as in
//! `vecshard dev`) answers exactly like one that calls them over gRPC: the same results
//! (checked against brute force), the same errors, and the node's epoch checks still
//! apply to calls that never touch a socket.

use std::time::Duration;

use tonic::Code;
use vecshard_cluster::{Cluster, Spec, node_config};
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::v1 as pb;
use vecshard_proto::v1::vec_shard_client::VecShardClient;
use vecshard_test_support::eventually;

const DIM: usize = 8;
const POINTS: u64 = 600;

fn vector(i: u64) -> Vec<f32> {
    (0..DIM)
        .map(|d| ((i * 31 + d as u64 * 17) % 97) as f32 / 97.0)
        .collect()
}

fn key(i: u64) -> Option<pb::Key> {
    Some(pb::Key {
        kind: Some(pb::key::Kind::Int(i)),
    })
}

fn key_of(h: &pb::Hit) -> u64 {
    match h.key.as_ref().and_then(|k| k.kind.as_ref()) {
        Some(pb::key::Kind::Int(v)) => *v,
        other => panic!("unexpected key {other:?}"),
    }
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The `k` nearest keys by brute force (ties by lower key), over keys `alive`.
fn brute_force(q: &[f32], alive: impl Iterator<Item = u64>, k: usize) -> Vec<u64> {
    let mut all: Vec<(f32, u64)> = alive.map(|i| (l2(q, &vector(i)), i)).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|(_, i)| i).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_calling_nodes_in_its_process_answers_as_over_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = (0..2)
        .map(|i| {
            let id = format!("node-{i}");
            let mut nc = node_config(&id, dir.path().join(&id));
            nc.cluster.heartbeat_interval_ms = 100;
            nc
        })
        .collect();
    let cluster = Cluster::start(Spec {
        router: vecshard_router::RouterConfig::local(&dir.path().join("router")),
        nodes,
        local_calls: true,
        certs: None,
    })
    .await
    .unwrap();
    let router = cluster.router();
    let mut c = VecShardClient::connect(format!("http://{}", router.grpc_addr()))
        .await
        .unwrap();

    // Create once both nodes are known (the router answers UNAVAILABLE until then).
    eventually("the collection created", Duration::from_secs(30), || {
        let mut c = c.clone();
        async move {
            let req = pb::CreateCollectionRequest {
                name: "local".into(),
                dimension: DIM as u32,
                metric: pb::Metric::L2 as i32,
                shard_count: 4,
                storage: "local".into(),
                index: None,
                ..Default::default()
            };
            match c.create_collection(req).await {
                Ok(_) => Some(()),
                Err(e) if e.code() == Code::Unavailable => None,
                Err(e) => panic!("create: {e}"),
            }
        }
    })
    .await;
    let points = (0..POINTS)
        .map(|i| pb::Point {
            key: key(i),
            vector: vector(i),
            metadata: [(
                "even".to_string(),
                pb::Value {
                    kind: Some(pb::value::Kind::BoolValue(i % 2 == 0)),
                },
            )]
            .into(),
            ..Default::default()
        })
        .collect();
    c.upsert(pb::UpsertRequest {
        collection: "local".into(),
        points,
    })
    .await
    .unwrap();
    c.delete(pb::DeleteRequest {
        collection: "local".into(),
        keys: (0..POINTS).step_by(7).map(|i| key(i).unwrap()).collect(),
    })
    .await
    .unwrap();
    let alive = || (0..POINTS).filter(|i| i % 7 != 0);

    // Exact searches (read pool) and graph searches (run inline on the node) through the
    // local path; exact ones must equal brute force, graph ones must find most.
    let mut graph_found = 0;
    for qi in 0..20u64 {
        let q = vector(qi * 13 + 5);
        let want = brute_force(&q, alive(), 10);
        for exact in [true, false] {
            let hits = c
                .search(pb::SearchRequest {
                    collection: "local".into(),
                    vector: q.clone(),
                    k: 10,
                    exact,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let got: Vec<u64> = hits.hits.iter().map(key_of).collect();
            assert_eq!(hits.coverage.unwrap().shards_answered, 4);
            if exact {
                assert_eq!(got, want, "query {qi}");
            } else {
                graph_found += got.iter().filter(|k| want.contains(k)).count();
            }
        }
        // A filtered search: only even keys.
        let hits = c
            .search(pb::SearchRequest {
                collection: "local".into(),
                vector: q.clone(),
                k: 5,
                exact: true,
                filter_spec: Some(pb::search_request::FilterSpec::FilterJson(
                    r#"{"field": "even", "eq": true}"#.into(),
                )),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let got: Vec<u64> = hits.hits.iter().map(key_of).collect();
        assert_eq!(
            got,
            brute_force(&q, alive().filter(|i| i % 2 == 0), 5),
            "filtered query {qi}"
        );
    }
    assert!(
        graph_found >= 190,
        "graph searches found {graph_found} of 200"
    );

    // Gets: a deleted key is absent, a live one comes back with its vector.
    let got = c
        .get(pb::GetRequest {
            collection: "local".into(),
            keys: vec![key(7).unwrap(), key(8).unwrap()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.points.len(), 1);
    assert_eq!(got.points[0].vector, vector(8));

    // Bad input is refused with the same code as over the network.
    let err = c
        .search(pb::SearchRequest {
            collection: "local".into(),
            vector: vec![0.0; DIM + 1],
            k: 3,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");

    // The node's own checks hold on the direct path: a call with a stale epoch is
    // refused with "not owner", exactly as over gRPC.
    let mut held = None;
    for n in cluster.nodes() {
        let mut direct = pi::node_client::NodeClient::new(n.service());
        let status = direct
            .node_status(pi::NodeStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        if let Some(s) = status.shards.into_iter().next() {
            held = Some((direct, s));
            break;
        }
    }
    let (mut direct, held) = held.expect("a node holds a shard");
    let err = direct
        .search(pi::SearchRequest {
            target: Some(pi::ShardTarget {
                collection: held.collection.clone(),
                shard: held.shard,
                epoch: held.epoch + 1,
            }),
            vector: vector(1),
            k: 3,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");

    cluster.shutdown().await;
}

/// A restarted node comes back on the same address with its data; an index past the last
/// node is an error, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_serves_its_shards_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut nc = node_config("only", dir.path().join("only"));
    nc.cluster.heartbeat_interval_ms = 100;
    let mut cluster = Cluster::start(Spec {
        router: vecshard_router::RouterConfig::local(&dir.path().join("router")),
        nodes: vec![nc],
        local_calls: false,
        certs: None,
    })
    .await
    .unwrap();
    let mut c = cluster.client().await.unwrap();
    eventually("the collection created", Duration::from_secs(30), || {
        let mut c = c.clone();
        async move {
            let req = pb::CreateCollectionRequest {
                name: "r".into(),
                dimension: DIM as u32,
                metric: pb::Metric::L2 as i32,
                shard_count: 2,
                storage: "local".into(),
                index: None,
                ..Default::default()
            };
            match c.create_collection(req).await {
                Ok(_) => Some(()),
                Err(e) if e.code() == Code::Unavailable => None,
                Err(e) => panic!("create: {e}"),
            }
        }
    })
    .await;
    vecshard_test_support::api::wait_serving(&mut c, "r").await;
    let points = (0..50)
        .map(|i| pb::Point {
            key: key(i),
            vector: vector(i),
            ..Default::default()
        })
        .collect();
    c.upsert(pb::UpsertRequest {
        collection: "r".into(),
        points,
    })
    .await
    .unwrap();
    let before = cluster.nodes()[0].grpc_addr();

    cluster.restart_node(0).await.unwrap();
    assert_eq!(cluster.nodes()[0].grpc_addr(), before);
    // The router learns of the restart from the node; until then a call may fail.
    eventually("every point back", Duration::from_secs(30), || {
        let mut c = c.clone();
        async move {
            let req = pb::GetRequest {
                collection: "r".into(),
                keys: (0..50).map(|i| key(i).unwrap()).collect(),
            };
            let got = c.get(req).await.ok()?.into_inner();
            (got.points.len() == 50).then_some(())
        }
    })
    .await;

    let err = cluster.restart_node(1).await.unwrap_err();
    assert_eq!(err.to_string(), "no node 1 (the cluster has 1)");
    cluster.shutdown().await;
}
