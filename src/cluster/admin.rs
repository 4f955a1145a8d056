//! `vecshard cluster move-shard|add-router|remove-node|remove-router --http ADDR`: operator
//! commands, sent to any router's REST address (`vecshard_client::admin`).

use anyhow::Result;
use clap::Subcommand;
use vecshard_client::admin;

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

pub async fn run(cmd: AdminCmd) -> Result<()> {
    match cmd {
        AdminCmd::MoveShard {
            http,
            collection,
            shard,
            to,
        } => {
            let epoch = admin::move_shard(&http, &collection, shard, &to).await?;
            println!("shard {shard} of {collection} now belongs to {to} at epoch {epoch}");
        }
        AdminCmd::AddRouter {
            http,
            id,
            grpc_addr,
            internal_addr,
            http_addr,
        } => {
            let new = admin::NewRouter {
                id,
                grpc: &grpc_addr,
                internal: &internal_addr,
                http: &http_addr,
            };
            admin::add_router(&http, new).await?;
            println!("router {id} added");
        }
        AdminCmd::RemoveNode { http, id } => {
            admin::remove_node(&http, &id).await?;
            println!("node {id} removed");
        }
        AdminCmd::RemoveRouter { http, id } => {
            admin::remove_router(&http, id).await?;
            println!("router {id} removed");
        }
    }
    Ok(())
}
