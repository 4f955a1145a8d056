//! Bad client requests get precise gRPC codes and HTTP 4xx with a clear message, and the
//! router keeps serving.

mod common;

use common::fake_node::{FakeNode, ObjectStore};
use common::*;
use serde_json::json;
use tonic::Code;
use vecshard_proto::v1 as pb;

const DIM: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path(), 1);
    cfg.max_request_bytes = 1 << 20;
    cfg.allow_replication = false;
    let router = vecshard_router::start(cfg).await.unwrap();
    let node = FakeNode::start(
        "n0",
        vec![router.internal_addr().to_string()],
        ObjectStore::default(),
    )
    .await;
    let mut c = client(&router).await;
    wait_alive(&mut c, 1).await;
    c.create_collection(pb::CreateCollectionRequest {
        name: "c".into(),
        dimension: DIM as u32,
        metric: pb::Metric::Cosine as i32,
        shard_count: 2,
        storage: String::new(),
        index: None,
        ..Default::default()
    })
    .await
    .unwrap();
    wait_serving(&mut c, "c").await;

    // A router with replication turned off refuses a factor above 1, naming the setting.
    let e = c
        .create_collection(pb::CreateCollectionRequest {
            name: "replicated".into(),
            dimension: DIM as u32,
            metric: pb::Metric::L2 as i32,
            replication_factor: 3,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("replication_factor 3 is turned off")
            && e.message().contains("router.allow_replication = false"),
        "{e:?}"
    );

    let upsert = |points: Vec<pb::Point>| pb::UpsertRequest {
        collection: "c".into(),
        points,
    };
    let mut nan = point(1, DIM);
    nan.vector[2] = f32::NAN;
    let mut zero = point(1, DIM);
    zero.vector = vec![0.0; DIM];
    let mut long_key = point(1, DIM);
    long_key.key = Some(pb::Key {
        kind: Some(pb::key::Kind::Str("k".repeat(1025))),
    });
    let mut no_key = point(1, DIM);
    no_key.key = None;
    let cases: Vec<(pb::UpsertRequest, Code, &str)> = vec![
        (
            upsert(vec![point(1, DIM + 1)]),
            Code::InvalidArgument,
            "dimension 5",
        ),
        (upsert(vec![nan]), Code::InvalidArgument, "non-finite"),
        (upsert(vec![zero]), Code::InvalidArgument, "zero vector"),
        (upsert(vec![long_key]), Code::InvalidArgument, "1025 bytes"),
        (
            upsert(vec![no_key]),
            Code::InvalidArgument,
            "key is required",
        ),
        (upsert(vec![]), Code::InvalidArgument, "empty upsert batch"),
        (
            pb::UpsertRequest {
                collection: "nope".into(),
                points: vec![point(1, DIM)],
            },
            Code::NotFound,
            "\"nope\" does not exist",
        ),
    ];
    for (req, code, needle) in cases {
        let e = c.upsert(req).await.unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
        assert!(e.message().contains(needle), "{needle}: {}", e.message());
    }

    // Oversized message: RESOURCE_EXHAUSTED.
    let big: Vec<pb::Point> = (0..5000)
        .map(|i| {
            let mut p = point(i, DIM);
            p.payload = vec![b'x'; 300];
            p
        })
        .collect();
    let e = c.upsert(upsert(big)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");

    let search = |f: &dyn Fn(&mut pb::SearchRequest)| {
        let mut r = pb::SearchRequest {
            collection: "c".into(),
            vector: vector(1, DIM),
            k: 3,
            ..Default::default()
        };
        f(&mut r);
        r
    };
    let cases: Vec<(pb::SearchRequest, Code, &str)> = vec![
        (search(&|r| r.k = 0), Code::InvalidArgument, "k: must be"),
        (
            search(&|r| r.k = 10_001),
            Code::InvalidArgument,
            "k: must be",
        ),
        (
            search(&|r| r.ef = Some(0)),
            Code::InvalidArgument,
            "ef: must be",
        ),
        (
            search(&|r| r.vector.push(1.0)),
            Code::InvalidArgument,
            "dimension",
        ),
        (
            search(&|r| r.vector[0] = f32::INFINITY),
            Code::InvalidArgument,
            "non-finite",
        ),
        (
            search(&|r| {
                r.filter_spec = Some(pb::search_request::FilterSpec::FilterJson(
                    "{\"field\":1}".into(),
                ))
            }),
            Code::InvalidArgument,
            "malformed filter",
        ),
        (
            search(&|r| {
                r.filter_spec = Some(pb::search_request::FilterSpec::Filter(pb::Filter::default()))
            }),
            Code::InvalidArgument,
            "empty filter",
        ),
        (
            search(&|r| r.collection = "x y".into()),
            Code::NotFound,
            "does not exist",
        ),
    ];
    for (req, code, needle) in cases {
        let e = c.search(req).await.unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
        assert!(e.message().contains(needle), "{needle}: {}", e.message());
    }
    // A search over router.max_request_bytes (1 MiB here): RESOURCE_EXHAUSTED, named.
    let e = c
        .search(search(&|r| r.vector = vec![0.5; 300_000]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().contains("too large") && e.message().contains("max_request_bytes"),
        "{}",
        e.message()
    );
    // Bytes that are not a SearchRequest (a ScanRequest whose 3-byte cursor lands on the
    // packed `vector` field: not whole floats): INVALID_ARGUMENT naming it. This is the
    // fast path's answer (vecshard_proto::fast_unary); tonic's decoder says INTERNAL.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", router.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw = tonic::client::Grpc::new(channel);
    raw.ready().await.unwrap();
    let e = raw
        .unary(
            tonic::Request::new(pb::ScanRequest {
                collection: "c".into(),
                cursor: "abc".into(),
                limit: 0,
            }),
            tonic::codegen::http::uri::PathAndQuery::from_static("/vecshard.v1.VecShard/Search"),
            tonic_prost::ProstCodec::<pb::ScanRequest, pb::SearchResponse>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("not a SearchRequest"),
        "{}",
        e.message()
    );
    let e = c
        .create_collection(pb::CreateCollectionRequest {
            name: "bad name!".into(),
            dimension: 3,
            metric: pb::Metric::L2 as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .scan(pb::ScanRequest {
            collection: "c".into(),
            cursor: "garbage".into(),
            limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("malformed cursor"));
    let e = c
        .describe_collection(pb::DescribeCollectionRequest { name: "zzz".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // REST: the same checks, as HTTP statuses with JSON error bodies.
    let http = reqwest::Client::new();
    let base = format!("http://{}", router.http_addr());
    let post = |path: &str, body: String| {
        http.post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "/v1/collections/c/points",
            "{not json".into(),
            400,
            "invalid JSON",
        ),
        (
            "/v1/collections/c/points",
            json!({"points": [{"id": 1, "vector": [1, 2]}]}).to_string(),
            400,
            "dimension 2",
        ),
        (
            "/v1/collections/c/points",
            json!({"points": [{"id": -1, "vector": [1, 2, 3, 4]}]}).to_string(),
            400,
            "unsigned",
        ),
        (
            "/v1/collections/c/points",
            json!({"points": [{"id": 1, "vector": [1, 2, 3, "x"]}]}).to_string(),
            400,
            "vectors hold only numbers",
        ),
        (
            "/v1/collections/c/points",
            json!({"pts": []}).to_string(),
            400,
            "unknown field",
        ),
        (
            "/v1/collections/zz/points",
            json!({"points": [{"id": 1, "vector": [1, 2, 3, 4]}]}).to_string(),
            404,
            "does not exist",
        ),
        (
            "/v1/collections/c/search",
            json!({"vector": [1, 2, 3, 4], "k": 3, "filter": {"field": "a", "like": 1}})
                .to_string(),
            400,
            "unknown operator",
        ),
        (
            "/v1/collections/c/search",
            json!({"vector": [1, 2, 3, 4], "k": 3, "filter": {"field": "a", "range": {}}})
                .to_string(),
            400,
            "at least one",
        ),
        (
            "/v1/collections/c/search",
            json!({"vector": [1, 2, 3], "k": 3}).to_string(),
            400,
            "dimension",
        ),
        (
            "/v1/collections/c/search",
            json!({"vector": [1e39, 2, 3, 4], "k": 3}).to_string(),
            400,
            "non-finite",
        ),
        (
            "/v1/collections",
            json!({"name": "x", "dimension": 3, "metric": "hamming"}).to_string(),
            400,
            "unknown metric",
        ),
        (
            "/v1/collections",
            json!({"name": "c", "dimension": 4, "metric": "l2"}).to_string(),
            409,
            "already exists",
        ),
    ];
    for (path, body, status, needle) in cases {
        let r = post(path, body).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let v: serde_json::Value = r.json().await.unwrap();
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{path}: {needle} not in {v}");
    }
    let answer =
        status_of_oversized_post(&router.http_addr().to_string(), "/v1/collections", 2 << 20).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("too large"), "{answer}");
    let r = http
        .get(format!("{base}/v1/collections/zz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = http.get(format!("{base}/nowhere")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Still serving.
    c.upsert(upsert(vec![point(1, DIM)])).await.unwrap();
    let ok = post(
        "/v1/collections/c/search",
        json!({"vector": [1, 2, 3, 4], "k": 1, "with_payload": true}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let v: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(v["hits"][0]["id"], 1);
    assert_eq!(v["hits"][0]["payload"], json!({"i": 1}));

    // The outcomes are counted.
    let m = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "vecshard_router_requests_total{op=\"upsert\",code=\"INVALID_ARGUMENT\"}",
        "vecshard_router_requests_total{op=\"search\",code=\"OK\"}",
        "vecshard_router_request_duration_seconds_count{op=\"search\"}",
        "vecshard_router_raft_leader 1",
        "vecshard_router_nodes{state=\"alive\"} 1",
        "vecshard_router_shards{state=\"serving\"} 2",
    ] {
        assert!(m.contains(needle), "{needle} not in\n{m}");
    }
    node.kill();
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_checked_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path(), 1);
    cfg.api_keys = vec!["s3cret".into()];
    let router = vecshard_router::start(cfg).await.unwrap();
    let mut c = client(&router).await;
    let e = c
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut req = tonic::Request::new(pb::ListCollectionsRequest {});
    req.metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    c.list_collections(req).await.unwrap();

    let http = reqwest::Client::new();
    let base = format!("http://{}", router.http_addr());
    let r = http
        .get(format!("{base}/v1/collections"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .get(format!("{base}/v1/collections"))
        .header("x-api-key", "s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_without_nodes_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    let router = vecshard_router::start(test_config(dir.path(), 1))
        .await
        .unwrap();
    let mut c = client(&router).await;
    let req = pb::CreateCollectionRequest {
        name: "c".into(),
        dimension: 4,
        metric: pb::Metric::L2 as i32,
        ..Default::default()
    };
    // The one router elects itself quickly; then the answer is immediate.
    let e = eventually(
        "an answer from the leader",
        std::time::Duration::from_secs(10),
        || {
            let (mut c, req) = (c.clone(), req.clone());
            async move {
                let e = c.create_collection(req).await.unwrap_err();
                e.message().contains("no live data node").then_some(e)
            }
        },
    )
    .await;
    assert_eq!(e.code(), Code::Unavailable);
    let t = std::time::Instant::now();
    let e = c.create_collection(req).await.unwrap_err();
    assert!(t.elapsed() < std::time::Duration::from_secs(1), "{e:?}");
    router.shutdown().await;
}

/// POST with a `Content-Length` beyond the limit and no body: the router answers 413 at
/// once, without waiting for the body.
async fn status_of_oversized_post(addr: &str, path: &str, len: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf));
    let n = read.await.expect("an answer before the body").unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
