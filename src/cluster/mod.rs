//! Cluster subcommands: run a router, manage collections, import, search, status, and the
//! operator's commands. Each talks to a router over its public API.

mod admin;
mod client;
mod collection;
mod dev;
mod overview;
mod search;
mod table;
mod transfer;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

use crate::routercmd::{self, RouterArgs};

pub use client::set_tls;

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Run a router (client API, shard map, placement) until ctrl-c.
    Router(RouterArgs),
    /// A whole cluster in one process (one router, N nodes, local disk), a demo, then
    /// serve until ctrl-c.
    Dev(dev::DevArgs),
    /// Create, list, describe or drop collections.
    #[command(subcommand)]
    Collection(collection::CollectionCmd),
    /// The cluster's routers, nodes and shards.
    Status {
        /// A router's gRPC address.
        #[arg(long)]
        router: String,
    },
    /// Import a file through a router: `.fvecs` and `.npy` (keys = row numbers),
    /// `.parquet`, otherwise JSON lines.
    Import {
        /// A router's gRPC address.
        #[arg(long)]
        router: String,
        /// Collection.
        #[arg(long)]
        collection: String,
        /// The file.
        file: PathBuf,
        /// The file's format (fvecs, jsonl, parquet, npy); default: from its extension.
        #[arg(long)]
        format: Option<vecshard_transfer::Format>,
        /// Points per upsert.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Upserts in flight.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
    },
    /// Export every point of a collection (key, vector, metadata, payload) through a
    /// router's scan into JSON lines or Parquet; the file appears only when complete.
    Export {
        /// A router's gRPC address.
        #[arg(long)]
        router: String,
        /// Collection.
        #[arg(long)]
        collection: String,
        /// jsonl or parquet; default: from --out's extension.
        #[arg(long)]
        format: Option<vecshard_transfer::Format>,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Search with every vector of an `.fvecs` file; one JSON line per query.
    Search {
        /// A router's gRPC address.
        #[arg(long)]
        router: String,
        /// Collection.
        #[arg(long)]
        collection: String,
        /// Query vectors.
        #[arg(long)]
        queries: PathBuf,
        /// Results per query.
        #[arg(long, default_value_t = 10)]
        k: u32,
        /// Metadata filter (JSON).
        #[arg(long)]
        filter: Option<String>,
        /// Search width.
        #[arg(long)]
        ef: Option<u32>,
        /// Exact (brute-force) search.
        #[arg(long)]
        exact: bool,
        /// Return the hits of the shards that answer when some cannot.
        #[arg(long)]
        allow_partial: bool,
    },
    /// Benchmark ingest and search through a router (1, 2, 4 shards) against one
    /// embedded engine on the same TEXMEX dataset.
    BenchCluster(crate::bench::BenchClusterArgs),
    /// Operator commands: move a shard, add or remove a router.
    #[command(subcommand)]
    Cluster(admin::AdminCmd),
}

pub fn run(cmd: ClusterCmd) -> Result<()> {
    match cmd {
        ClusterCmd::Router(a) => return routercmd::run(a),
        ClusterCmd::BenchCluster(a) => return crate::bench::run_cluster(a, client::tls_wanted()),
        _ => {}
    }
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    rt.block_on(async {
        match cmd {
            ClusterCmd::Router(_) | ClusterCmd::BenchCluster(_) => Ok(()),
            ClusterCmd::Dev(a) => dev::run(a).await,
            ClusterCmd::Collection(c) => collection::run(c).await,
            ClusterCmd::Status { router } => overview::run(&router).await,
            ClusterCmd::Import {
                router,
                collection,
                file,
                format,
                batch,
                parallel,
            } => transfer::import(&router, &collection, &file, format, batch, parallel).await,
            ClusterCmd::Export {
                router,
                collection,
                format,
                out,
            } => transfer::export(&router, &collection, format, &out).await,
            ClusterCmd::Search {
                router,
                collection,
                queries,
                k,
                filter,
                ef,
                exact,
                allow_partial,
            } => {
                search::run(search::SearchArgs {
                    router: &router,
                    collection: &collection,
                    queries: &queries,
                    k,
                    filter,
                    ef,
                    exact,
                    allow_partial,
                })
                .await
            }
            ClusterCmd::Cluster(c) => admin::run(c).await,
        }
    })
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn until_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
