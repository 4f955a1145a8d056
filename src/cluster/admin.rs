//! `vecshard cluster move-shard|add-router|remove-router --http ADDR`: operator commands,
//! sent to any router's REST address (followers forward them to the Raft leader).

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Give an object-store shard a new owner (its epoch grows; the old owner is fenced).
    MoveShard {
        /// A router's REST address (`host:port`).
        #[arg(long)]
        http: String,
        /// Collection.
        collection: String,
        /// Shard number.
        shard: u32,
        /// The node to move it to.
        #[arg(long)]
        to: String,
    },
    /// Add a router to the Raft group (it catches up from a snapshot, then votes).
    AddRouter {
        /// A member router's REST address.
        #[arg(long)]
        http: String,
        /// The new router's Raft id.
        #[arg(long)]
        id: u64,
        /// Its client gRPC address.
        #[arg(long)]
        grpc_addr: String,
        /// Its internal gRPC address.
        #[arg(long)]
        internal_addr: String,
        /// Its REST address.
        #[arg(long)]
        http_addr: String,
    },
    /// Forget a data node that is down and holds no shard.
    RemoveNode {
        /// A router's REST address.
        #[arg(long)]
        http: String,
        /// The node's id.
        #[arg(long)]
        id: String,
    },
    /// Remove a router from the Raft group.
    RemoveRouter {
        /// A member router's REST address.
        #[arg(long)]
        http: String,
        /// The router's Raft id.
        #[arg(long)]
        id: u64,
    },
}

async fn post(http: &str, path: &str, body: Value) -> Result<Value> {
    let mut req = reqwest::Client::new()
        .post(format!("http://{http}{path}"))
        .json(&body);
    if let Ok(k) = std::env::var("VECSHARD_API_KEY") {
        req = req.bearer_auth(k);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach the router at {http}"))?;
    let ok = resp.status().is_success();
    let v: Value = resp
        .json()
        .await
        .context("the router's answer is not JSON")?;
    if !ok {
        bail!(
            "{}: {}",
            v["error"]["code"].as_str().unwrap_or("error"),
            v["error"]["message"].as_str().unwrap_or("")
        );
    }
    Ok(v)
}

pub async fn run(cmd: AdminCmd) -> Result<()> {
    match cmd {
        AdminCmd::MoveShard {
            http,
            collection,
            shard,
            to,
        } => {
            let v = post(
                &http,
                "/v1/cluster/shards/move",
                json!({"collection": collection, "shard": shard, "to": to}),
            )
            .await?;
            println!(
                "shard {shard} of {collection} now belongs to {to} at epoch {}",
                v["epoch"]
            );
        }
        AdminCmd::AddRouter {
            http,
            id,
            grpc_addr,
            internal_addr,
            http_addr,
        } => {
            let body =
                json!({"id": id, "grpc": grpc_addr, "internal": internal_addr, "http": http_addr});
            post(&http, "/v1/cluster/routers", body).await?;
            println!("router {id} added");
        }
        AdminCmd::RemoveNode { http, id } => {
            post(&http, "/v1/cluster/nodes/remove", json!({"id": id})).await?;
            println!("node {id} removed");
        }
        AdminCmd::RemoveRouter { http, id } => {
            post(&http, "/v1/cluster/routers/remove", json!({"id": id})).await?;
            println!("router {id} removed");
        }
    }
    Ok(())
}
