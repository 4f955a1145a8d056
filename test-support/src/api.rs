//! Builders and helpers on the public gRPC API (`vecshard.v1`), for tests that talk to a
//! router (in process or a child process).

use std::collections::BTreeSet;
use std::time::Duration;

use tonic::transport::Endpoint;
use vecshard_proto::fast_unary::OneFrameChannel;
use vecshard_proto::v1 as pb;
use vecshard_proto::v1::vec_shard_client::VecShardClient;

use crate::{eventually, l2, vector};

/// A client of a router's public API.
pub type Client = VecShardClient<OneFrameChannel>;

/// A client of the router at `addr` (`host:port`), accepting large answers; its unary
/// calls leave in one write, as `vecshard`'s own clients send them.
pub async fn connect(addr: impl std::fmt::Display) -> Client {
    try_connect(&addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// [`connect`], or why it failed.
pub async fn try_connect(addr: &impl std::fmt::Display) -> Result<Client, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?;
    let channel = vecshard_proto::coalesce::connect(&endpoint).await?;
    Ok(VecShardClient::new(channel).max_decoding_message_size(64 << 20))
}

pub fn int_key(v: u64) -> pb::Key {
    pb::Key {
        kind: Some(pb::key::Kind::Int(v)),
    }
}

/// The integer key of a point or hit (`u64::MAX` for a string key).
pub fn key_id(k: Option<&pb::Key>) -> u64 {
    match k.and_then(|k| k.kind.as_ref()) {
        Some(pb::key::Kind::Int(v)) => *v,
        other => panic!("not an integer key: {other:?}"),
    }
}

/// Point `i`: [`vector`]`(i, dim)`; metadata `tag` ("a" for multiples of 3, else "b"),
/// `parity` ("even"/"odd") and `n` (= i); payload `{"i":i}`.
pub fn point(i: u64, dim: usize) -> pb::Point {
    let s = |v: &str| pb::Value {
        kind: Some(pb::value::Kind::StringValue(v.into())),
    };
    let metadata = [
        (
            "tag".to_string(),
            s(if i.is_multiple_of(3) { "a" } else { "b" }),
        ),
        (
            "parity".to_string(),
            s(if i.is_multiple_of(2) { "even" } else { "odd" }),
        ),
        (
            "n".to_string(),
            pb::Value {
                kind: Some(pb::value::Kind::IntValue(i as i64)),
            },
        ),
    ];
    pb::Point {
        key: Some(int_key(i)),
        vector: vector(i, dim),
        metadata: metadata.into(),
        payload: format!("{{\"i\":{i}}}").into_bytes(),
        ..Default::default()
    }
}

/// The hits' integer keys, in order.
pub fn hit_ids(r: &pb::SearchResponse) -> Vec<u64> {
    r.hits.iter().map(|h| key_id(h.key.as_ref())).collect()
}

/// The answer equals the exact one (`want`, from [`crate::exact`]) up to the order of
/// near-ties.
pub fn assert_same_hits(got: &pb::SearchResponse, want: &[(u64, f64)], query: &[f32], dim: usize) {
    assert_eq!(got.hits.len(), want.len(), "hit count");
    for (i, (h, (wid, wd))) in got.hits.iter().zip(want).enumerate() {
        let id = key_id(h.key.as_ref());
        let d = l2(query, &vector(id, dim));
        assert!(
            id == *wid || (d - wd).abs() < 1e-5,
            "hit {i}: got {id} at {d}, want {wid} at {wd}"
        );
    }
}

/// Upsert [`point`]s `ids` in batches of 500.
pub async fn upsert(c: &mut Client, collection: &str, ids: impl Iterator<Item = u64>, dim: usize) {
    let ids: Vec<u64> = ids.collect();
    for chunk in ids.chunks(500) {
        let points = chunk.iter().map(|i| point(*i, dim)).collect();
        c.upsert(pb::UpsertRequest {
            collection: collection.into(),
            points,
        })
        .await
        .unwrap();
    }
}

/// Every key in `ids` is found.
pub async fn assert_all_found(c: &mut Client, collection: &str, ids: &BTreeSet<u64>) {
    let ids: Vec<u64> = ids.iter().copied().collect();
    for chunk in ids.chunks(1000) {
        let r = c
            .get(pb::GetRequest {
                collection: collection.into(),
                keys: chunk.iter().map(|i| int_key(*i)).collect(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.points.len(),
            chunk.len(),
            "some acknowledged points are missing"
        );
    }
}

/// Every point via scan, as a set of keys (a key seen twice fails).
pub async fn scan_all(c: &mut Client, collection: &str) -> BTreeSet<u64> {
    let mut cursor = String::new();
    let mut seen = BTreeSet::new();
    loop {
        let page = c
            .scan(pb::ScanRequest {
                collection: collection.into(),
                cursor,
                limit: 1000,
            })
            .await
            .unwrap()
            .into_inner();
        for p in page.points {
            let v = key_id(p.key.as_ref());
            assert!(seen.insert(v), "{v} twice in a scan");
        }
        if page.next_cursor.is_empty() {
            return seen;
        }
        cursor = page.next_cursor;
    }
}

/// Live nodes in a cluster status.
pub fn alive_nodes(s: &pb::ClusterStatusResponse) -> usize {
    s.nodes
        .iter()
        .filter(|x| x.state == pb::NodeState::Alive as i32)
        .count()
}

/// Wait (up to 20 s) until `n` nodes are alive in the router's status.
pub async fn wait_alive(c: &mut Client, n: usize) {
    eventually("nodes alive", Duration::from_secs(20), || {
        let mut c = c.clone();
        async move {
            let s = c
                .cluster_status(pb::ClusterStatusRequest {})
                .await
                .ok()?
                .into_inner();
            (alive_nodes(&s) >= n).then_some(())
        }
    })
    .await
}

/// Wait (up to 20 s) until every shard of `collection` is serving.
pub async fn wait_serving(c: &mut Client, collection: &str) {
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
