//! Random and mutated requests against a live router and node (in this process, over
//! sockets on 127.0.0.1): REST bodies from valid seeds with bytes flipped, cut, spliced
//! with hostile JSON; gRPC messages with random vectors (NaN, ∞, wrong lengths), k, keys,
//! payloads and filters (structured and JSON, valid and broken); random and missing API
//! keys. No answer may be a 5xx other than the declared 503/504 (gRPC: no INTERNAL,
//! UNKNOWN, DATA_LOSS, UNIMPLEMENTED), and afterwards both still serve.
//!
//! Short mode: 10,000 requests (under a minute). `VECSHARD_FUZZ_REQUESTS=N` for a long
//! run, `VECSHARD_FUZZ_SEED=S` to replay one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value as J, json};
use tonic::Code;
use tonic::transport::Channel;
use vecshard_proto::v1 as pb;
use vecshard_proto::v1::vec_shard_client::VecShardClient;

const KEY: &str = "fuzz-admin-key-0123456789";
const DIM: usize = 4;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Valid REST requests to mutate.
fn seeds() -> Vec<(&'static str, &'static str, J)> {
    vec![
        (
            "POST",
            "/v1/collections/f/points",
            json!({"points": [
            {"id": 1, "vector": [0.1, 0.2, 0.3, 0.4], "metadata": {"color": "red", "price": 12, "tags": ["a", "b"], "ok": true}, "payload": {"t": "x"}},
            {"id": "k-2", "vector": [0.4, 0.3, 0.2, 0.1], "metadata": {"price": 1.5}}]}),
        ),
        (
            "POST",
            "/v1/collections/f/search",
            json!({"vector": [0.1, 0.2, 0.3, 0.4], "k": 3,
            "filter": {"and": [{"field": "color", "eq": "red"}, {"not": {"field": "price", "range": {"gte": 10, "lt": 20}}},
                               {"or": [{"field": "tags", "in": ["a", "z"]}, {"field": "ok", "exists": true}]}]},
            "ef": 32, "with_metadata": true, "with_payload": true, "with_vector": true, "allow_partial": true}),
        ),
        (
            "POST",
            "/v1/collections/f/points/get",
            json!({"ids": [1, "k-2", 99]}),
        ),
        (
            "POST",
            "/v1/collections/f/points/delete",
            json!({"ids": [77, "nope"]}),
        ),
        ("GET", "/v1/collections/f/points?limit=5", J::Null),
        ("GET", "/v1/collections/f", J::Null),
        ("GET", "/v1/collections", J::Null),
        ("GET", "/v1/cluster", J::Null),
        (
            "POST",
            "/v1/collections",
            json!({"name": "g", "dimension": 3, "metric": "dot", "shard_count": 1}),
        ),
        ("DELETE", "/v1/collections/g", J::Null),
        (
            "POST",
            "/v1/cluster/shards/move",
            json!({"collection": "f", "shard": 0, "to": "nobody"}),
        ),
    ]
}

const HOSTILE: &[&str] = &[
    "null",
    "[]",
    "{}",
    "1e999",
    "-1",
    "NaN",
    "\"NaN\"",
    "18446744073709551616",
    "-0",
    "\"\\u0000\"",
    "{\"and\":[",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "true",
    "\"\u{10FFFF}\"",
    "{\"field\":\"\",\"eq\":null}",
    "{\"not\":{\"not\":{\"not\":{}}}}",
    "9007199254740993",
];

fn mutate(mut b: Vec<u8>, rng: &mut SmallRng) -> Vec<u8> {
    for _ in 0..rng.random_range(1..=3) {
        if b.is_empty() {
            b.extend_from_slice(HOSTILE[rng.random_range(0..HOSTILE.len())].as_bytes());
            continue;
        }
        let at = rng.random_range(0..b.len());
        match rng.random_range(0..6) {
            0 => b[at] ^= 1 << rng.random_range(0..8),
            1 => b.truncate(at),
            2 => {
                let t = HOSTILE[rng.random_range(0..HOSTILE.len())].as_bytes();
                b.splice(at..at, t.iter().copied());
            }
            3 => {
                // Replace a token (up to the next delimiter) with a hostile one.
                let end = b[at..]
                    .iter()
                    .position(|c| b",:]}".contains(c))
                    .map_or(b.len(), |p| at + p);
                let t = HOSTILE[rng.random_range(0..HOSTILE.len())].as_bytes();
                b.splice(at..end, t.iter().copied());
            }
            4 => b = deep(rng.random_range(10..200)).into_bytes(),
            _ => {
                let n = rng.random_range(1..8);
                b.splice(at..at, (0..n).map(|_| rng.random::<u8>()));
            }
        }
    }
    b
}

/// A filter nested `n` levels deep.
fn deep(n: usize) -> String {
    let mut s = String::from("{\"vector\":[0,0,0,0],\"k\":1,\"filter\":");
    s.push_str(&"{\"not\":".repeat(n));
    s.push_str("{\"field\":\"a\",\"eq\":1}");
    s.push_str(&"}".repeat(n));
    s.push('}');
    s
}

fn float(rng: &mut SmallRng) -> f32 {
    match rng.random_range(0..10) {
        0 => f32::NAN,
        1 => f32::INFINITY,
        2 => f32::MAX,
        3 => -0.0,
        _ => rng.random_range(-10.0..10.0),
    }
}

fn vector(rng: &mut SmallRng) -> Vec<f32> {
    let len = if rng.random_bool(0.8) {
        DIM
    } else {
        rng.random_range(0..9)
    };
    (0..len).map(|_| float(rng)).collect()
}

fn value(rng: &mut SmallRng) -> pb::Value {
    use pb::value::Kind;
    let kind = match rng.random_range(0..6) {
        0 => Kind::IntValue(rng.random()),
        1 => Kind::FloatValue(float(rng) as f64),
        2 => Kind::StringValue(text(rng)),
        3 => Kind::BoolValue(rng.random()),
        4 => Kind::StringListValue(pb::StringList {
            values: (0..rng.random_range(0..4)).map(|_| text(rng)).collect(),
        }),
        _ => return pb::Value { kind: None },
    };
    pb::Value { kind: Some(kind) }
}

fn text(rng: &mut SmallRng) -> String {
    let pool = [
        "", "color", "a", "f", "é", "\u{0}", "x y", "%2F", "../..", "price",
    ];
    let mut s = pool[rng.random_range(0..pool.len())].to_string();
    if rng.random_bool(0.05) {
        s = "z".repeat(rng.random_range(100..100_000));
    }
    s
}

fn key(rng: &mut SmallRng) -> pb::Key {
    use pb::key::Kind;
    let kind = match rng.random_range(0..3) {
        0 => Some(Kind::Int(rng.random_range(0..50))),
        1 => Some(Kind::Str(text(rng))),
        _ => None,
    };
    pb::Key { kind }
}

fn filter(rng: &mut SmallRng, depth: u32) -> pb::Filter {
    use pb::filter::Kind;
    let list = |rng: &mut SmallRng| pb::FilterList {
        filters: (0..rng.random_range(0..4))
            .map(|_| filter(rng, depth + 1))
            .collect(),
    };
    let kind = match rng.random_range(0..if depth > 6 { 1 } else { 5 }) {
        0 => {
            use pb::condition::Op;
            let op = match rng.random_range(0..6) {
                0 => Some(Op::Eq(value(rng))),
                1 => Some(Op::Ne(value(rng))),
                2 => Some(Op::In(pb::ValueList {
                    values: (0..rng.random_range(0..2000)).map(|_| value(rng)).collect(),
                })),
                3 => Some(Op::Range(pb::Range {
                    gt: rng.random_bool(0.5).then(|| value(rng)),
                    lte: rng.random_bool(0.5).then(|| value(rng)),
                    ..Default::default()
                })),
                4 => Some(Op::Exists(rng.random())),
                _ => None,
            };
            Some(Kind::Condition(pb::Condition {
                field: text(rng),
                op,
            }))
        }
        1 => Some(Kind::And(list(rng))),
        2 => Some(Kind::Or(list(rng))),
        3 => Some(Kind::Not(Box::new(filter(rng, depth + 1)))),
        _ => None,
    };
    pb::Filter { kind }
}

fn collection(rng: &mut SmallRng) -> String {
    if rng.random_bool(0.8) {
        "f".into()
    } else {
        text(rng)
    }
}

fn api_key(rng: &mut SmallRng) -> Option<String> {
    match rng.random_range(0..20) {
        0 => None,
        1 => Some(format!("{KEY}x")),
        2 => Some("\u{7f}bad".into()),
        _ => Some(KEY.into()),
    }
}

/// One random gRPC call; its status code, or OK.
async fn grpc_call(c: &mut VecShardClient<Channel>, rng: &mut SmallRng) -> Code {
    let api = api_key(rng);
    macro_rules! call {
        ($method:ident, $msg:expr) => {{
            let mut r = tonic::Request::new($msg);
            if let Some(v) = api
                .as_ref()
                .and_then(|k| format!("Bearer {k}").parse().ok())
            {
                r.metadata_mut().insert("authorization", v);
            }
            r.set_timeout(Duration::from_secs(10));
            match c.$method(r).await {
                Ok(_) => Code::Ok,
                // A transport failure on this side is counted apart, and is a failure: an
                // answer the client cannot read (an error message echoing a 100 KB field
                // made a `grpc-message` header over the client's limit until messages were
                // bounded at the gRPC edges) is as bad as no answer.
                Err(s)
                    if std::error::Error::source(&s)
                        .is_some_and(|e| e.downcast_ref::<tonic::transport::Error>().is_some()) =>
                {
                    Code::Aborted
                }
                Err(s) => s.code(),
            }
        }};
    }
    match rng.random_range(0..7) {
        0 | 1 => {
            let mut req = pb::SearchRequest {
                collection: collection(rng),
                vector: vector(rng),
                k: [0, 1, 10, 10_001, u32::MAX][rng.random_range(0..5)],
                ef: rng.random_bool(0.3).then(|| rng.random()),
                exact: rng.random_bool(0.2),
                with_metadata: rng.random(),
                with_payload: rng.random(),
                with_vector: rng.random(),
                allow_partial: rng.random(),
                timeout_ms: rng.random_bool(0.1).then(|| rng.random_range(0..50)),
                ..Default::default()
            };
            req.filter_spec = match rng.random_range(0..3) {
                0 => Some(pb::search_request::FilterSpec::Filter(filter(rng, 0))),
                1 => {
                    let seed = seeds()[1].2["filter"].to_string().into_bytes();
                    let bytes = mutate(seed, rng);
                    Some(pb::search_request::FilterSpec::FilterJson(
                        String::from_utf8_lossy(&bytes).into_owned(),
                    ))
                }
                _ => None,
            };
            call!(search, req)
        }
        2 => {
            let points = (0..rng.random_range(0..20))
                .map(|_| pb::Point {
                    key: Some(key(rng)),
                    vector: vector(rng),
                    metadata: (0..rng.random_range(0..3))
                        .map(|_| (text(rng), value(rng)))
                        .collect(),
                    payload: (0..rng.random_range(0..64)).map(|_| rng.random()).collect(),
                    ..Default::default()
                })
                .collect();
            call!(
                upsert,
                pb::UpsertRequest {
                    collection: collection(rng),
                    points
                }
            )
        }
        3 => {
            let keys = (0..rng.random_range(0..10)).map(|_| key(rng)).collect();
            call!(
                get,
                pb::GetRequest {
                    collection: collection(rng),
                    keys
                }
            )
        }
        4 => {
            let keys = (0..rng.random_range(0..10)).map(|_| key(rng)).collect();
            call!(
                delete,
                pb::DeleteRequest {
                    collection: collection(rng),
                    keys
                }
            )
        }
        5 => call!(
            scan,
            pb::ScanRequest {
                collection: collection(rng),
                cursor: text(rng),
                limit: rng.random(),
            }
        ),
        _ => call!(
            describe_collection,
            pb::DescribeCollectionRequest { name: text(rng) }
        ),
    }
}

/// One mutated REST call; its HTTP status (0 when the connection failed).
async fn rest_call(http: &reqwest::Client, base: &str, rng: &mut SmallRng) -> u16 {
    let all = seeds();
    let (method, path, body) = &all[rng.random_range(0..all.len())];
    let mut path = path.to_string();
    if rng.random_bool(0.1) {
        path = path.replace(
            "/f",
            &format!("/{}", text(rng).replace(['/', '?', '#'], "")),
        );
    }
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let bytes = if rng.random_bool(0.9) {
        mutate(bytes, rng)
    } else {
        bytes
    };
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = http
        .request(method, format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(bytes);
    if let Some(k) = api_key(rng) {
        r = r.header("x-api-key", k);
    }
    match r.send().await {
        Ok(resp) => resp.status().as_u16(),
        // The client refused to send it (a header value it will not encode): no request.
        Err(e) if e.is_builder() => 1,
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_requests_never_crash_or_fail_internally() {
    let total: usize = env_or("VECSHARD_FUZZ_REQUESTS", 10_000);
    let seed: u64 = env_or("VECSHARD_FUZZ_SEED", 1);
    let dir = tempfile::tempdir().unwrap();
    let mut rc = vecshard_router::RouterConfig::local(&dir.path().join("router"));
    rc.api_keys = vec![KEY.into()];
    rc.control_interval_ms = 100;
    let router = vecshard_router::start(rc).await.unwrap();
    let mut nc = vecshard_node::NodeConfig::default();
    nc.node.id = "fuzz-node".into();
    nc.node.grpc_addr = "127.0.0.1:0".into();
    nc.node.http_addr = "127.0.0.1:0".into();
    nc.node.data_dir = dir.path().join("node");
    nc.cluster.routers = vec![router.internal_addr().to_string()];
    nc.cluster.heartbeat_interval_ms = 200;
    nc.engine.memtable_bytes = 1 << 20;
    let node = vecshard_node::start(nc).await.unwrap();

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let base = format!("http://{}", router.http_addr());
    let create = json!({"name": "f", "dimension": DIM, "metric": "l2", "shard_count": 2});
    let works = |http: reqwest::Client, base: String| async move {
        let r = http
            .post(format!("{base}/v1/collections/f/search"))
            .header("x-api-key", KEY)
            .json(&json!({"vector": [0.1, 0.2, 0.3, 0.4], "k": 3}))
            .send()
            .await
            .ok()?;
        (r.status().as_u16() == 200).then_some(())
    };
    let end = Instant::now() + Duration::from_secs(30);
    while works(http.clone(), base.clone()).await.is_none() {
        let _ = http
            .post(format!("{base}/v1/collections"))
            .header("x-api-key", KEY)
            .json(&create)
            .send()
            .await;
        assert!(Instant::now() < end, "the collection never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let channel = Channel::from_shared(format!("http://{}", router.grpc_addr()))
        .unwrap()
        .connect_lazy();
    let grpc = VecShardClient::new(channel).max_decoding_message_size(64 << 20);

    let started = Instant::now();
    let outcomes: Vec<(bool, String)> = futures::stream::iter(0..total)
        .map(|i| {
            let (http, base, mut grpc) = (http.clone(), base.clone(), grpc.clone());
            async move {
                let mut rng = SmallRng::seed_from_u64(seed.wrapping_mul(1_000_003) ^ i as u64);
                if rng.random_bool(0.55) {
                    let s = rest_call(&http, &base, &mut rng).await;
                    let bad = s == 0 || (s >= 500 && s != 503 && s != 504);
                    (bad, format!("REST {s}"))
                } else {
                    let c = grpc_call(&mut grpc, &mut rng).await;
                    let bad = matches!(
                        c,
                        Code::Internal
                            | Code::Unknown
                            | Code::DataLoss
                            | Code::Unimplemented
                            | Code::Aborted
                    );
                    let what = if c == Code::Aborted {
                        "gRPC client-side transport failure".to_string()
                    } else {
                        format!("gRPC {c:?}")
                    };
                    (bad, what)
                }
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut counts = BTreeMap::<String, usize>::new();
    for (_, what) in &outcomes {
        *counts.entry(what.clone()).or_default() += 1;
    }
    let bad: Vec<_> = outcomes.iter().filter(|(b, _)| *b).collect();
    eprintln!(
        "{total} requests (seed {seed}) in {:.1?}: {counts:?}",
        started.elapsed()
    );
    assert!(
        bad.is_empty(),
        "seed {seed}: {} bad answers: {counts:?}",
        bad.len()
    );

    // Both still serve.
    assert!(
        works(http.clone(), base.clone()).await.is_some(),
        "the router stopped serving"
    );
    assert!(node.is_ready(), "the node is no longer ready");
    router.shutdown().await;
    node.shutdown().await;
}
