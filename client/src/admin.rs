//! The operator's calls, sent to any router's REST address (`host:port`; followers forward
//! them to the Raft leader), with the API key of `VECSHARD_API_KEY` when set.

use anyhow::Result;
use serde_json::{Value, json};

/// Give an object-store shard a new owner; returns its new epoch.
pub async fn move_shard(http: &str, collection: &str, shard: u32, to: &str) -> Result<Value> {
    let body = json!({"collection": collection, "shard": shard, "to": to});
    let v = post(http, "/v1/cluster/shards/move", body).await?;
    Ok(v["epoch"].clone())
}

/// A router joining the Raft group: its id and its three addresses.
pub struct NewRouter<'a> {
    /// Raft id.
    pub id: u64,
    /// Client gRPC address.
    pub grpc: &'a str,
    /// Internal gRPC address.
    pub internal: &'a str,
    /// REST address.
    pub http: &'a str,
}

/// Add a router to the Raft group (it catches up from a snapshot, then votes).
pub async fn add_router(http: &str, r: NewRouter<'_>) -> Result<()> {
    let body = json!({"id": r.id, "grpc": r.grpc, "internal": r.internal, "http": r.http});
    post(http, "/v1/cluster/routers", body).await.map(drop)
}

/// Forget a data node that is down and holds no shard.
pub async fn remove_node(http: &str, id: &str) -> Result<()> {
    post(http, "/v1/cluster/nodes/remove", json!({"id": id}))
        .await
        .map(drop)
}

/// Remove a router from the Raft group.
pub async fn remove_router(http: &str, id: u64) -> Result<()> {
    post(http, "/v1/cluster/routers/remove", json!({"id": id}))
        .await
        .map(drop)
}

/// POST `body` to the router's REST API at `http` (`host:port` or a URL).
async fn post(http: &str, path: &str, body: Value) -> Result<Value> {
    crate::rest::Router::new(http)?.post(path, body).await
}
