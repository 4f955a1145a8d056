//! Helpers for in-process router tests: routers on 127.0.0.1 with free ports, fake data
//! nodes, clients, and polling (no fixed sleeps).

#![allow(dead_code)]

pub mod fake_node;

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use vecshard_proto::v1 as pb;
use vecshard_proto::v1::vec_shard_client::VecShardClient;
use vecshard_router::config::Member;
use vecshard_router::{RouterConfig, RouterHandle};

/// Fast timings for tests.
pub fn test_config(dir: &Path, id: u64) -> RouterConfig {
    let mut c = RouterConfig::local(dir);
    c.id = id;
    c.failure_timeout_ms = 1500;
    c.control_interval_ms = 100;
    c.search_timeout_ms = 5000;
    c.write_timeout_ms = 10000;
    c.raft.heartbeat_ms = 100;
    c.raft.election_timeout_min_ms = 500;
    c.raft.election_timeout_max_ms = 1000;
    // The fake nodes' shared "object store" answers to s3:// URLs under this bucket.
    c.allowed_storage = vec!["s3://bucket".into()];
    c
}

/// A port that is free now, outside the kernel's ephemeral range (32768–60999 on Linux) so
/// that outgoing connections of other processes do not take it before we bind it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(104_729)) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Configurations of `n` routers forming one Raft group, with fixed free ports.
pub fn group_configs(root: &Path, n: u64) -> Vec<RouterConfig> {
    let members: Vec<Member> = (1..=n)
        .map(|id| Member {
            id,
            grpc: format!("127.0.0.1:{}", free_port()),
            internal: format!("127.0.0.1:{}", free_port()),
            http: format!("127.0.0.1:{}", free_port()),
        })
        .collect();
    members
        .iter()
        .map(|m| {
            let mut c = test_config(&root.join(format!("router-{}", m.id)), m.id);
            c.grpc_listen = m.grpc.clone();
            c.internal_listen = m.internal.clone();
            c.http_listen = m.http.clone();
            c.members = members.clone();
            c
        })
        .collect()
}

/// Poll `f` every 20 ms until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn client(r: &RouterHandle) -> VecShardClient<Channel> {
    VecShardClient::connect(format!("http://{}", r.grpc_addr()))
        .await
        .unwrap()
        .max_decoding_message_size(64 << 20)
}

/// Wait until `n` nodes are alive in the router's status.
pub async fn wait_alive(c: &mut VecShardClient<Channel>, n: usize) {
    eventually("nodes alive", Duration::from_secs(20), || {
        let mut c = c.clone();
        async move {
            let s = c
                .cluster_status(pb::ClusterStatusRequest {})
                .await
                .ok()?
                .into_inner();
            let alive = s
                .nodes
                .iter()
                .filter(|x| x.state == pb::NodeState::Alive as i32)
                .count();
            (alive >= n).then_some(())
        }
    })
    .await
}

/// Wait until every shard of `collection` is serving.
pub async fn wait_serving(c: &mut VecShardClient<Channel>, collection: &str) {
    eventually("shards serving", Duration::from_secs(20), || {
        let mut c = c.clone();
        let req = pb::DescribeCollectionRequest {
            name: collection.into(),
        };
        async move {
            let d = c.describe_collection(req).await.ok()?.into_inner();
            d.shards
                .iter()
                .all(|s| s.state == pb::ShardState::Serving as i32)
                .then_some(())
        }
    })
    .await
}

pub fn int_key(v: u64) -> pb::Key {
    pb::Key {
        kind: Some(pb::key::Kind::Int(v)),
    }
}

/// A deterministic pseudo-random vector for key `i`.
pub fn vector(i: u64, dim: usize) -> Vec<f32> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 10_000) as f32 / 10_000.0
        })
        .collect()
}

pub fn point(i: u64, dim: usize) -> pb::Point {
    let mut metadata = std::collections::HashMap::new();
    metadata.insert(
        "parity".to_string(),
        pb::Value {
            kind: Some(pb::value::Kind::StringValue(
                if i.is_multiple_of(2) { "even" } else { "odd" }.into(),
            )),
        },
    );
    metadata.insert(
        "n".to_string(),
        pb::Value {
            kind: Some(pb::value::Kind::IntValue(i as i64)),
        },
    );
    pb::Point {
        key: Some(int_key(i)),
        vector: vector(i, dim),
        metadata,
        payload: format!("{{\"i\":{i}}}").into_bytes(),
        ..Default::default()
    }
}

/// Exact top-k (L2) over points `ids`, ties by key.
pub fn exact_top_k(
    query: &[f32],
    ids: impl Iterator<Item = u64>,
    dim: usize,
    k: usize,
) -> Vec<u64> {
    let mut all: Vec<(f32, u64)> = ids
        .map(|i| {
            let v = vector(i, dim);
            (v.iter().zip(query).map(|(a, b)| (a - b) * (a - b)).sum(), i)
        })
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|(_, i)| i).collect()
}

pub fn hit_ids(r: &pb::SearchResponse) -> Vec<u64> {
    r.hits
        .iter()
        .map(|h| match h.key.as_ref().unwrap().kind.as_ref().unwrap() {
            pb::key::Kind::Int(v) => *v,
            pb::key::Kind::Str(_) => u64::MAX,
        })
        .collect()
}
