//! Helpers for in-process router tests: routers on 127.0.0.1 with free ports, fake data
//! nodes, clients, and polling (no fixed sleeps).

#![allow(dead_code, unused_imports)]

pub mod fake_node;

use std::path::Path;
use std::time::Duration;

use tonic::transport::Channel;
use vecshard_model::ManualClock;
use vecshard_proto::v1 as pb;
use vecshard_proto::v1::vec_shard_client::VecShardClient;
use vecshard_router::config::Member;
use vecshard_router::{RouterConfig, RouterHandle};
pub use vecshard_test_support::api::{hit_ids, int_key, point, wait_alive, wait_serving};
pub use vecshard_test_support::{eventually, free_port, vector};

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

/// Advance a router's manual `clock` by `total`, a third of `failure_timeout_ms` at a time,
/// and after each step wait until every node in `live` has had a heartbeat answered: the
/// live nodes never look silent for more than a step, a node that stopped sending looks
/// silent for all of `total`.
pub async fn advance_with_heartbeats(
    clock: &ManualClock,
    cfg: &RouterConfig,
    live: &[&fake_node::FakeNode],
    total: Duration,
) {
    let step = Duration::from_millis(cfg.failure_timeout_ms / 3);
    let mut done = Duration::ZERO;
    while done < total {
        let before: Vec<u64> = live.iter().map(|n| n.heartbeats()).collect();
        clock.advance(step);
        done += step;
        eventually(
            "a heartbeat from every live node",
            Duration::from_secs(10),
            || {
                let fresh = live.iter().zip(&before).all(|(n, b)| n.heartbeats() > *b);
                async move { fresh.then_some(()) }
            },
        )
        .await;
    }
}

pub async fn client(r: &RouterHandle) -> vecshard_test_support::api::Client {
    vecshard_test_support::api::connect(r.grpc_addr()).await
}

/// Exact top-k (L2) over points `ids`, ties by key, in f32 as the fake nodes compute it.
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
