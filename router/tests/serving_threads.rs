//! `router.serving_threads`: client connections served on threads of their own. Several
//! gRPC and REST clients at once (connections spread over the threads) get the same exact
//! answers as on the process's runtime, writes and admin calls work from them, a
//! stopped router refuses new connections, and the setting is validated.

mod common;

use common::fake_node::{FakeNode, ObjectStore};
use common::*;
use serde_json::{Value as J, json};
use vecshard_proto::v1 as pb;

const DIM: usize = 4;
const N: u64 = 40;
const SHARDS: u32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_threads_answer_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path(), 1);
    cfg.serving_threads = 2;
    let router = vecshard_router::start(cfg).await.unwrap();
    let _node = FakeNode::start(
        "n0",
        vec![router.internal_addr().to_string()],
        ObjectStore::default(),
    )
    .await;
    // Admin and writes over a connection served by a serving thread.
    let mut c = client(&router).await;
    wait_alive(&mut c, 1).await;
    c.create_collection(pb::CreateCollectionRequest {
        name: "c".into(),
        dimension: DIM as u32,
        metric: pb::Metric::L2 as i32,
        shard_count: SHARDS,
        ..Default::default()
    })
    .await
    .unwrap();
    wait_serving(&mut c, "c").await;
    c.upsert(pb::UpsertRequest {
        collection: "c".into(),
        points: (0..N).map(|i| point(i, DIM)).collect(),
    })
    .await
    .unwrap();

    // Three gRPC connections (more than threads) searching at once: exact answers.
    let mut searches = Vec::new();
    for conn in 0..3u64 {
        let mut c = client(&router).await;
        searches.push(tokio::spawn(async move {
            for i in 0..10u64 {
                let q = vector(conn * 100 + i, DIM);
                let got = c
                    .search(pb::SearchRequest {
                        collection: "c".into(),
                        vector: q.clone(),
                        k: 5,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(hit_ids(&got), exact_top_k(&q, 0..N, DIM, 5), "query {i}");
            }
        }));
    }
    // Two REST clients (each its own keep-alive connection) meanwhile.
    for conn in 0..2u64 {
        let url = format!("http://{}/v1/collections/c/search", router.http_addr());
        searches.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0..10u64 {
                let q = vector(conn * 1000 + i, DIM);
                let r = http
                    .post(&url)
                    .json(&json!({"vector": q, "k": 5}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
                let b: J = r.json().await.unwrap();
                let ids: Vec<u64> = b["hits"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["id"].as_u64().unwrap())
                    .collect();
                assert_eq!(ids, exact_top_k(&q, 0..N, DIM, 5), "REST query {i}: {b}");
            }
        }));
    }
    for s in searches {
        s.await.unwrap();
    }

    // A stopped router's ports refuse new connections (gRPC and REST).
    let (grpc, http) = (router.grpc_addr(), router.http_addr());
    router.shutdown().await;
    eventually(
        "the stopped router refuses connections",
        std::time::Duration::from_secs(10),
        || async move {
            let refused = |a| async move { tokio::net::TcpStream::connect(a).await.is_err() };
            (refused(grpc).await && refused(http).await).then_some(())
        },
    )
    .await;
}

#[test]
fn serving_threads_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path(), 1);
    cfg.serving_threads = 2000;
    let e = cfg.validate().unwrap_err();
    assert_eq!(e.kind(), vecshard_router::ErrorKind::InvalidArgument);
    assert!(
        e.message().contains("router.serving_threads") && e.message().contains("2000"),
        "{e}"
    );
}
