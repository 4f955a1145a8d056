//! Helpers for the node's tests: a node on loopback with ephemeral ports and a
//! temporary data directory, a gRPC client, and small builders.
#![allow(dead_code, unused_imports)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;
use vecshard_node::{NodeConfig, NodeHandle};
use vecshard_proto::internal::v1 as pb;
use vecshard_proto::internal::v1::node_client::NodeClient;
use vecshard_proto::v1 as pb1;
pub use vecshard_test_support::api::int_key;

pub type Client = NodeClient<Channel>;

/// Upper bound for anything a test waits for; reaching it is a failure.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A standalone node configuration on 127.0.0.1 with ephemeral ports.
pub fn config(data_dir: &Path) -> NodeConfig {
    let env: HashMap<String, String> = [
        ("VECSHARD__NODE__ID", "test-node"),
        ("VECSHARD__NODE__GRPC_ADDR", "127.0.0.1:0"),
        ("VECSHARD__NODE__HTTP_ADDR", "127.0.0.1:0"),
        ("VECSHARD__NODE__DATA_DIR", data_dir.to_str().unwrap()),
        ("VECSHARD__ENGINE__MEMTABLE_BYTES", "1048576"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    vecshard_node::load_config_with_env(None, env).unwrap()
}

/// A fresh `s3://BUCKET/node-tests/<test>-<unique>` prefix on the local S3 service
/// (`eval "$(scripts/test-services.sh start)"` starts it). Fails, never skips, when the
/// service's environment is missing; refuses an `AWS_ENDPOINT_URL` other than the test
/// service's.
pub fn s3_prefix(test: &str) -> String {
    let how = "start the local S3 first: eval \"$(scripts/test-services.sh start)\"";
    let endpoint = std::env::var("VECSHARD_TEST_S3_ENDPOINT")
        .unwrap_or_else(|_| panic!("VECSHARD_TEST_S3_ENDPOINT is not set: {how}"));
    let bucket = std::env::var("VECSHARD_TEST_S3_BUCKET")
        .unwrap_or_else(|_| panic!("VECSHARD_TEST_S3_BUCKET is not set: {how}"));
    assert_eq!(
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default(),
        endpoint,
        "AWS_ENDPOINT_URL must be the test service's endpoint: {how}"
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "s3://{bucket}/node-tests/{test}-{}-{nanos}",
        std::process::id()
    )
}

pub async fn connect(node: &NodeHandle) -> Client {
    let channel = Channel::from_shared(format!("http://{}", node.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    NodeClient::new(channel)
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20)
}

pub fn target(collection: &str, shard: u32, epoch: u64) -> Option<pb::ShardTarget> {
    Some(pb::ShardTarget {
        collection: collection.into(),
        shard,
        epoch,
    })
}

pub fn point(k: u64, vector: Vec<f32>) -> pb1::Point {
    pb1::Point {
        key: Some(int_key(k)),
        vector,
        ..Default::default()
    }
}

/// A 4-d point whose vector encodes its key.
pub fn p4(k: u64) -> pb1::Point {
    point(k, vec![k as f32, 0.0, 0.0, 1.0])
}

pub fn assign_req(
    collection: &str,
    shard: u32,
    epoch: u64,
    role: pb::Role,
    dim: u32,
) -> pb::AssignShardRequest {
    pb::AssignShardRequest {
        collection: collection.into(),
        shard,
        epoch,
        role: role as i32,
        storage: "local".into(),
        dimension: dim,
        metric: pb1::Metric::L2 as i32,
        index: Some(pb1::IndexParams {
            m: Some(16),
            ef_construction: Some(100),
            ef_search: Some(64),
        }),
        incarnation: 0,
        restore: None,
        replication: None,
    }
}

/// Poll NodeStatus until the shard reaches `state` at `epoch` (failure after PATIENCE).
pub async fn wait_state(
    client: &mut Client,
    collection: &str,
    shard: u32,
    epoch: u64,
    state: pb::ShardState,
) -> pb::ShardStatus {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = client
            .node_status(pb::NodeStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        if let Some(s) = status
            .shards
            .iter()
            .find(|s| s.collection == collection && s.shard == shard && s.epoch == epoch)
        {
            if s.state() == state {
                return s.clone();
            }
            assert!(
                s.state() != pb::ShardState::Failed || state == pb::ShardState::Failed,
                "shard failed: {}",
                s.error
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "shard {collection}/{shard} never reached {state:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Assign a writer shard and wait until it serves.
pub async fn serve_writer(client: &mut Client, collection: &str, shard: u32, epoch: u64, dim: u32) {
    client
        .assign_shard(assign_req(collection, shard, epoch, pb::Role::Writer, dim))
        .await
        .unwrap();
    wait_state(client, collection, shard, epoch, pb::ShardState::Serving).await;
}

/// The `NotOwner` detail of a FAILED_PRECONDITION status.
pub fn not_owner(s: &tonic::Status) -> pb::NotOwner {
    use prost::Message;
    assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}");
    assert!(s.message().starts_with("not owner:"), "{}", s.message());
    pb::NotOwner::decode(s.details()).expect("a NotOwner detail")
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// The value of a Prometheus sample line that starts with `prefix` (name and labels).
pub fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

pub fn keys_of(points: &[pb1::Point]) -> Vec<u64> {
    points
        .iter()
        .map(|p| match p.key.as_ref().and_then(|k| k.kind.clone()) {
            Some(pb1::key::Kind::Int(v)) => v,
            other => panic!("unexpected key {other:?}"),
        })
        .collect()
}

pub fn hit_keys(hits: &[pb::ShardHit]) -> Vec<u64> {
    hits.iter()
        .map(|h| match h.key.as_ref().and_then(|k| k.kind.clone()) {
            Some(pb1::key::Kind::Int(v)) => v,
            other => panic!("unexpected key {other:?}"),
        })
        .collect()
}
