//! One table of bad inputs, sent through every surface that takes them: the router's REST
//! API, the router's gRPC API, a node's gRPC service directly, and the embedded engine.
//! Each surface must answer with the same class (invalid argument / not found) and a
//! message naming the same problem — the rules live once, in `vecshard-model`.

use std::time::{Duration, Instant};

use tonic::Code;
use vecshard_engine::{
    Filter, Key, Metric, Options, Point, SearchRequest, Shard, ShardSpec, Value,
};
use vecshard_model::proto as model_pb;
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::internal::v1::node_client::NodeClient;
use vecshard_proto::v1 as pb;
use vecshard_proto::v1::vec_shard_client::VecShardClient;

const DIM: usize = 4;
const PATIENCE: Duration = Duration::from_secs(30);

/// What a surface answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Invalid,
    NotFound,
    Other,
}

#[derive(Debug)]
struct Answer {
    class: Class,
    message: String,
}

fn grpc(s: tonic::Status) -> Answer {
    let class = match s.code() {
        Code::InvalidArgument => Class::Invalid,
        Code::NotFound => Class::NotFound,
        _ => Class::Other,
    };
    Answer {
        class,
        message: format!("{:?}: {}", s.code(), s.message()),
    }
}

fn engine(e: vecshard_engine::Error) -> Answer {
    let class = match e.kind() {
        vecshard_engine::ErrorKind::InvalidArgument => Class::Invalid,
        vecshard_engine::ErrorKind::NotFound => Class::NotFound,
        _ => Class::Other,
    };
    Answer {
        class,
        message: e.to_string(),
    }
}

/// A bad input, in the form each surface takes.
enum Input {
    Upsert(Point),
    Search(Vec<f32>, BadFilter),
    Create(&'static str),
    UnknownCollection,
}

/// Filters: JSON text for the APIs that take text, a model filter (never validated
/// on construction) for the node's proto form and the engine.
#[derive(Clone)]
enum BadFilter {
    None,
    Json(&'static str),
    Built(Filter),
}

fn p(vector: Vec<f32>) -> Point {
    Point::new(1u64, vector)
}

fn nested(depth: usize) -> Filter {
    (1..depth).fold(Filter::Exists("a".into()), |f, _| Filter::Not(Box::new(f)))
}

fn rows() -> Vec<(&'static str, Input, Class, &'static [&'static str])> {
    let ok = vec![1.0, 0.0, 0.0, 0.0];
    vec![
        (
            "wrong dimension",
            Input::Upsert(p(vec![1.0, 0.0, 0.0])),
            Class::Invalid,
            &["vector", "dimension 3", "dimension 4"],
        ),
        (
            "NaN",
            Input::Upsert(p(vec![1.0, f32::NAN, 0.0, 0.0])),
            Class::Invalid,
            &["vector", "non-finite", "index 1"],
        ),
        (
            "infinity",
            Input::Upsert(p(vec![f32::INFINITY, 0.0, 0.0, 0.0])),
            Class::Invalid,
            &["vector", "non-finite", "index 0"],
        ),
        (
            "zero vector with cosine",
            Input::Upsert(p(vec![0.0; DIM])),
            Class::Invalid,
            &["vector", "zero vector", "cosine"],
        ),
        (
            "too-long key",
            Input::Upsert(Point::new("k".repeat(1025), ok.clone())),
            Class::Invalid,
            &["key", "1025 bytes", "limit is 1024"],
        ),
        (
            "oversized payload",
            Input::Upsert(p(ok.clone()).with_payload(vec![b'x'; (1 << 20) + 1])),
            Class::Invalid,
            &["payload", "limit is 1048576"],
        ),
        (
            "oversized metadata",
            Input::Upsert(p(ok.clone()).with("s", Value::Str("x".repeat(64 << 10)))),
            Class::Invalid,
            &["metadata", "limit is 65536"],
        ),
        (
            "query of wrong dimension",
            Input::Search(vec![1.0], BadFilter::None),
            Class::Invalid,
            &["vector", "dimension 1"],
        ),
        (
            "malformed filter",
            Input::Search(ok.clone(), BadFilter::Json(r#"{"field":"color"}"#)),
            Class::Invalid,
            &["malformed filter"],
        ),
        (
            "too-deep filter",
            Input::Search(ok.clone(), BadFilter::Built(nested(33))),
            Class::Invalid,
            &["filter", "deeper than 32"],
        ),
        (
            "too-broad filter",
            Input::Search(
                ok.clone(),
                BadFilter::Built(Filter::Or(vec![Filter::Exists("a".into()); 1025])),
            ),
            Class::Invalid,
            &["filter.or", "1025 sub-filters", "limit is 1024"],
        ),
        (
            "too-long in-list",
            Input::Search(
                ok.clone(),
                BadFilter::Built(Filter::In("a".into(), vec![Value::Int(1); 10_001])),
            ),
            Class::Invalid,
            &["filter.in", "10001 values", "limit is 10000"],
        ),
        (
            "bad collection name",
            Input::Create("a b"),
            Class::Invalid,
            &["collection name", "' '"],
        ),
        (
            "unknown collection",
            Input::UnknownCollection,
            Class::NotFound,
            &["nope"],
        ),
    ]
}

/// A JSON number for an f32, with non-finite values as numbers that overflow f32 (JSON has
/// no NaN; the REST surface sees the same class of input as a value that is not finite).
fn json_vector(v: &[f32]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|x| {
            if x.is_finite() {
                format!("{x}")
            } else {
                "1e39".into()
            }
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn json_filter(f: &BadFilter) -> Option<String> {
    match f {
        BadFilter::None => None,
        BadFilter::Json(t) => Some(t.to_string()),
        BadFilter::Built(f) => Some(f.to_json().to_string()),
    }
}

struct Surfaces {
    http: reqwest::Client,
    rest: String,
    router: VecShardClient<tonic::transport::Channel>,
    node: NodeClient<tonic::transport::Channel>,
    shard: Shard,
    dir: tempfile::TempDir,
}

impl Surfaces {
    async fn rest(&self, input: &Input) -> Option<Answer> {
        let (path, body) = match input {
            Input::Upsert(pt) => {
                let mut j = vecshard_model::json::point_to_json(pt);
                j["vector"] = serde_json::Value::Null;
                let text = j.to_string().replace(
                    "\"vector\":null",
                    &format!("\"vector\":{}", json_vector(&pt.vector)),
                );
                (
                    "collections/v/points".to_string(),
                    format!("{{\"points\":[{text}]}}"),
                )
            }
            Input::Search(q, f) => {
                let filter = json_filter(f)
                    .map(|t| format!(",\"filter\":{t}"))
                    .unwrap_or_default();
                (
                    "collections/v/search".into(),
                    format!("{{\"vector\":{},\"k\":3{filter}}}", json_vector(q)),
                )
            }
            Input::Create(name) => (
                "collections".into(),
                serde_json::json!({"name": name, "dimension": 4, "metric": "l2"}).to_string(),
            ),
            Input::UnknownCollection => (
                "collections/nope/search".into(),
                r#"{"vector":[1,0,0,0],"k":3}"#.into(),
            ),
        };
        let r = self
            .http
            .post(format!("{}/v1/{path}", self.rest))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let class = match r.status().as_u16() {
            400 => Class::Invalid,
            404 => Class::NotFound,
            _ => Class::Other,
        };
        let status = r.status();
        Some(Answer {
            class,
            message: format!("{status}: {}", r.text().await.unwrap()),
        })
    }

    async fn grpc(&mut self, input: &Input) -> Option<Answer> {
        let r = match input {
            Input::Upsert(pt) => self
                .router
                .upsert(pb::UpsertRequest {
                    collection: "v".into(),
                    points: vec![model_pb::point_to_proto(pt.clone())],
                })
                .await
                .map(|_| ()),
            Input::Search(q, f) => {
                let filter_spec = json_filter(f).map(pb::search_request::FilterSpec::FilterJson);
                self.router
                    .search(pb::SearchRequest {
                        collection: "v".into(),
                        vector: q.clone(),
                        k: 3,
                        filter_spec,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            }
            Input::Create(name) => self
                .router
                .create_collection(pb::CreateCollectionRequest {
                    name: name.to_string(),
                    dimension: 4,
                    metric: pb::Metric::L2 as i32,
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            Input::UnknownCollection => self
                .router
                .search(pb::SearchRequest {
                    collection: "nope".into(),
                    vector: vec![1.0, 0.0, 0.0, 0.0],
                    k: 3,
                    ..Default::default()
                })
                .await
                .map(|_| ()),
        };
        Some(r.map_or_else(grpc, |()| Answer {
            class: Class::Other,
            message: "accepted".into(),
        }))
    }

    async fn node(&mut self, input: &Input) -> Option<Answer> {
        let target = Some(pi::ShardTarget {
            collection: "d".into(),
            shard: 0,
            epoch: 1,
        });
        let r = match input {
            Input::Upsert(pt) => self
                .node
                .upsert(pi::UpsertRequest {
                    target,
                    points: vec![model_pb::point_to_proto(pt.clone())],
                })
                .await
                .map(|_| ()),
            Input::Search(q, f) => {
                let filter = match f {
                    BadFilter::None => None,
                    // The wire's malformed filter: a condition without an operator.
                    BadFilter::Json(_) => Some(pb::Filter {
                        kind: Some(pb::filter::Kind::Condition(pb::Condition {
                            field: "color".into(),
                            op: None,
                        })),
                    }),
                    BadFilter::Built(f) => Some(model_pb::filter_to_proto(f)),
                };
                self.node
                    .search(pi::SearchRequest {
                        target,
                        vector: q.clone(),
                        k: 3,
                        filter,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            }
            Input::Create(name) => {
                let mut r = assign("d");
                r.collection = name.to_string();
                self.node.assign_shard(r).await.map(|_| ())
            }
            // A node knows shards, not collections: an unknown one is "not the owner",
            // which the router turns into a refresh; there is no node-level equivalent.
            Input::UnknownCollection => return None,
        };
        Some(r.map_or_else(grpc, |()| Answer {
            class: Class::Other,
            message: "accepted".into(),
        }))
    }

    fn engine(&self, input: &Input) -> Option<Answer> {
        let r = match input {
            Input::Upsert(pt) => self.shard.upsert(vec![pt.clone()]).map(|_| ()),
            Input::Search(q, f) => {
                let mut req = SearchRequest::new(q.clone(), 3);
                req.filter = match f {
                    BadFilter::None => None,
                    BadFilter::Json(t) => match Filter::parse_str(t) {
                        Ok(f) => Some(f),
                        Err(e) => return Some(engine(e.into())),
                    },
                    BadFilter::Built(f) => Some(f.clone()),
                };
                self.shard.search(&req).map(|_| ())
            }
            // The engine has no collections or names: a shard is a location.
            Input::Create(_) => return None,
            Input::UnknownCollection => {
                let missing = self.dir.path().join("nope");
                Shard::open(missing.to_str().unwrap(), Options::default()).map(|_| ())
            }
        };
        Some(r.map_or_else(engine, |()| Answer {
            class: Class::Other,
            message: "accepted".into(),
        }))
    }
}

fn assign(collection: &str) -> pi::AssignShardRequest {
    pi::AssignShardRequest {
        collection: collection.into(),
        shard: 0,
        epoch: 1,
        role: pi::Role::Writer as i32,
        storage: "local".into(),
        dimension: DIM as u32,
        metric: pb::Metric::Cosine as i32,
        index: None,
        incarnation: 0,
        restore: None,
        replication: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_surface_gives_the_same_answer_to_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    // A router with one node of its process, and a collection `v` (cosine, 4-d).
    let router = vecshard_router::start(vecshard_router::RouterConfig::local(
        &dir.path().join("router"),
    ))
    .await
    .unwrap();
    let mut nc = vecshard_node::NodeConfig::default();
    nc.node.id = "node-0".into();
    nc.node.grpc_addr = "127.0.0.1:0".into();
    nc.node.http_addr = "127.0.0.1:0".into();
    nc.node.data_dir = dir.path().join("node-0");
    nc.cluster.routers = vec![router.internal_addr().to_string()];
    nc.cluster.heartbeat_interval_ms = 100;
    let node = vecshard_node::start(nc).await.unwrap();
    router.attach_local_node(node.advertise_addr(), node.service());
    let mut c = VecShardClient::connect(format!("http://{}", router.grpc_addr()))
        .await
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let req = pb::CreateCollectionRequest {
            name: "v".into(),
            dimension: DIM as u32,
            metric: pb::Metric::Cosine as i32,
            shard_count: 1,
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
    // The collection serves once a good upsert goes through.
    let good = pb::UpsertRequest {
        collection: "v".into(),
        points: vec![model_pb::point_to_proto(p(vec![1.0, 0.0, 0.0, 0.0]))],
    };
    loop {
        match c.upsert(good.clone()).await {
            Ok(_) => break,
            Err(e) if e.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("good upsert: {e}"),
        }
    }

    // A second node, standalone, with shard `d` assigned directly.
    let mut dc = vecshard_node::NodeConfig::default();
    dc.node.id = "direct".into();
    dc.node.grpc_addr = "127.0.0.1:0".into();
    dc.node.http_addr = "127.0.0.1:0".into();
    dc.node.data_dir = dir.path().join("direct");
    let direct = vecshard_node::start(dc).await.unwrap();
    let mut n = NodeClient::connect(format!("http://{}", direct.grpc_addr()))
        .await
        .unwrap();
    n.assign_shard(assign("d")).await.unwrap();
    let good = pi::UpsertRequest {
        target: Some(pi::ShardTarget {
            collection: "d".into(),
            shard: 0,
            epoch: 1,
        }),
        points: vec![model_pb::point_to_proto(p(vec![1.0, 0.0, 0.0, 0.0]))],
    };
    loop {
        match n.upsert(good.clone()).await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                assert_ne!(e.code(), Code::InvalidArgument, "{e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the direct shard never served: {e}"),
        }
    }

    let engine_dir = tempfile::tempdir().unwrap();
    let shard = Shard::create(
        engine_dir.path().join("e").to_str().unwrap(),
        ShardSpec::new(DIM, Metric::Cosine),
        Options::default(),
    )
    .unwrap();
    shard
        .upsert(vec![Point::new(Key::Int(1), vec![1.0, 0.0, 0.0, 0.0])])
        .unwrap();

    let mut s = Surfaces {
        http: reqwest::Client::new(),
        rest: format!("http://{}", router.http_addr()),
        router: c,
        node: n,
        shard,
        dir: engine_dir,
    };
    let mut failures = Vec::new();
    for (name, input, class, words) in rows() {
        let answers = [
            ("rest", s.rest(&input).await),
            ("grpc", s.grpc(&input).await),
            ("node", s.node(&input).await),
            ("engine", s.engine(&input)),
        ];
        for (surface, answer) in answers {
            let Some(a) = answer else { continue };
            let missing: Vec<_> = words.iter().filter(|w| !a.message.contains(*w)).collect();
            if a.class != class || !missing.is_empty() {
                failures.push(format!(
                    "{name} via {surface}: {a:?} (want {class:?}, words {words:?})"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Nothing bad got in: each surface still holds only its one good point.
    assert_eq!(s.shard.stats().live_points, 1);
}
