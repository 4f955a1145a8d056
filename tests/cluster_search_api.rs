//! The search conveniences through real nodes over gRPC: packed vectors, batch search
//! (equal to single searches), search by key, offset, count with a filter, and gRPC
//! health on the nodes' port.

use std::time::{Duration, Instant};

use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use vecshard_proto::v1 as pb;
use vecshard_proto::v1::vec_shard_client::VecShardClient;

const DIM: usize = 8;
const POINTS: u64 = 400;

fn vector(i: u64) -> Vec<f32> {
    (0..DIM)
        .map(|d| ((i * 31 + d as u64 * 17) % 97) as f32 / 97.0)
        .collect()
}

fn packed(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn key(i: u64) -> pb::Key {
    pb::Key {
        kind: Some(pb::key::Kind::Int(i)),
    }
}

fn ids(r: &pb::SearchResponse) -> Vec<u64> {
    r.hits
        .iter()
        .map(|h| match h.key.as_ref().and_then(|k| k.kind.as_ref()) {
            Some(pb::key::Kind::Int(v)) => *v,
            other => panic!("unexpected key {other:?}"),
        })
        .collect()
}

/// The `k` nearest keys by brute force (ties by lower key).
fn brute_force(q: &[f32], k: usize) -> Vec<u64> {
    let l2 =
        |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum() };
    let mut all: Vec<(f32, u64)> = (0..POINTS).map(|i| (l2(q, &vector(i)), i)).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|(_, i)| i).collect()
}

fn exact(q: &[f32], k: u32) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: "s".into(),
        vector_f32le: packed(q),
        k,
        exact: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_by_key_offset_and_count_through_real_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let router = vecshard_router::start(vecshard_router::RouterConfig::local(
        &dir.path().join("router"),
    ))
    .await
    .unwrap();
    let mut nodes = Vec::new();
    for i in 0..2 {
        let mut nc = vecshard_node::NodeConfig::default();
        nc.node.id = format!("node-{i}");
        nc.node.grpc_addr = "127.0.0.1:0".into();
        nc.node.http_addr = "127.0.0.1:0".into();
        nc.node.data_dir = dir.path().join(format!("node-{i}"));
        nc.cluster.routers = vec![router.internal_addr().to_string()];
        nc.cluster.heartbeat_interval_ms = 100;
        nodes.push(vecshard_node::start(nc).await.unwrap());
    }

    // The nodes answer gRPC health checks.
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", nodes[0].advertise_addr()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "vecshard.internal.v1.Node"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }

    let mut c = VecShardClient::connect(format!("http://{}", router.grpc_addr()))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let req = pb::CreateCollectionRequest {
            name: "s".into(),
            dimension: DIM as u32,
            metric: pb::Metric::L2 as i32,
            shard_count: 3,
            storage: "local".into(),
            index: None,
            ..Default::default()
        };
        match c.create_collection(req).await {
            Ok(_) => break,
            Err(e) if e.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("create: {e}"),
        }
    }
    let points = (0..POINTS)
        .map(|i| pb::Point {
            key: Some(key(i)),
            vector_f32le: packed(&vector(i)),
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
    // Shards open in the background: retry while they are not serving yet.
    let upsert = pb::UpsertRequest {
        collection: "s".into(),
        points,
    };
    loop {
        match c.upsert(upsert.clone()).await {
            Ok(_) => break,
            Err(e) if e.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("upsert: {e}"),
        }
    }
    let got = c
        .get(pb::GetRequest {
            collection: "s".into(),
            keys: vec![key(5)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.points[0].vector, vector(5));

    // Batch equals singles equals brute force.
    let queries: Vec<Vec<f32>> = (0..6).map(|i| vector(1000 + i * 7)).collect();
    let batch = c
        .search_batch(pb::SearchBatchRequest {
            collection: "s".into(),
            searches: queries
                .iter()
                .map(|q| pb::SearchRequest {
                    collection: String::new(),
                    ..exact(q, 10)
                })
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.results.len(), queries.len());
    for (q, b) in queries.iter().zip(&batch.results) {
        let single = c.search(exact(q, 10)).await.unwrap().into_inner();
        assert_eq!(ids(b), ids(&single));
        assert_eq!(ids(b), brute_force(q, 10));
    }

    // Search by key leaves the point out; offset pages.
    let by_key = c
        .search(pb::SearchRequest {
            query_key: Some(key(42)),
            vector_f32le: Vec::new(),
            ..exact(&[], 5)
        })
        .await
        .unwrap()
        .into_inner();
    let want: Vec<u64> = brute_force(&vector(42), 6)
        .into_iter()
        .filter(|i| *i != 42)
        .take(5)
        .collect();
    assert_eq!(ids(&by_key), want);
    let full = brute_force(&queries[0], 20);
    let page = c
        .search(pb::SearchRequest {
            offset: 10,
            ..exact(&queries[0], 10)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&page), full[10..20]);

    // Count, all and filtered.
    let count = |filter_json: Option<&str>| {
        let mut c = c.clone();
        let req = pb::CountRequest {
            collection: "s".into(),
            filter_spec: filter_json
                .map(|f| pb::count_request::FilterSpec::FilterJson(f.to_string())),
        };
        async move { c.count(req).await.unwrap().into_inner().count }
    };
    assert_eq!(count(None).await, POINTS);
    assert_eq!(
        count(Some(r#"{"field": "even", "eq": true}"#)).await,
        POINTS / 2
    );

    for n in nodes {
        n.shutdown().await;
    }
    router.shutdown().await;
}
