//! Cluster subcommands: run a router, a whole cluster in one process (`vecshard-cluster`),
//! manage collections, import, export, search, status, and the operator's commands. Each
//! talks to a router over its public API (`vecshard-client`, `vecshard-transfer`).

mod admin;
mod collection;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use vecshard_client::{Connector, collections, search};
use vecshard_transfer::{Format, read};

use crate::routercmd::{self, RouterArgs};

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Run a router (client API, shard map, placement) until ctrl-c.
    Router(RouterArgs),
    /// A whole cluster in one process (one router, N nodes, local disk), a demo, then
    /// serve until ctrl-c.
    Dev(DevArgs),
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
        format: Option<Format>,
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
        format: Option<Format>,
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
    BenchCluster(vecshard_bench::cluster::BenchClusterArgs),
    /// Server CPU per search of a running router and node (e.g. `vecshard dev`), measured
    /// from outside; or the embedded engine on the node's shard directories
    /// (scripts/profile-server.sh).
    BenchServed(vecshard_bench::served::BenchServedArgs),
    /// Ingest throughput and upsert p50/p99 through a running cluster with replication
    /// factor 1 and 3 (`all`, `majority`) (scripts/bench-replication.sh).
    BenchReplication(vecshard_bench::replication::BenchReplicationArgs),
    /// Operator commands: move a shard, add or remove a router.
    #[command(subcommand)]
    Cluster(admin::AdminCmd),
}

#[derive(Args)]
pub struct DevArgs {
    /// Data nodes to run.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Where the router and the nodes keep their data (default: a temporary directory,
    /// removed on exit). Reusing a directory keeps the collections.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Run the demo, then exit.
    #[arg(long, conflicts_with = "no_demo")]
    demo_only: bool,
    /// Skip the demo; just serve.
    #[arg(long)]
    no_demo: bool,
    /// Listen on any free ports instead of 7000 (gRPC), 7080 (REST), 7001 (internal).
    #[arg(long)]
    any_port: bool,
    /// Points the demo imports.
    #[arg(long, default_value_t = 20_000)]
    points: usize,
}

pub fn run(cmd: ClusterCmd, connector: &Connector) -> Result<()> {
    match cmd {
        ClusterCmd::Router(a) => return routercmd::run(a),
        ClusterCmd::BenchCluster(a) => {
            let data = vecshard_bench::Dataset::load(&a.dataset, false)?;
            return vecshard_bench::cluster::run(a, data, connector.tls());
        }
        ClusterCmd::BenchServed(a) => return vecshard_bench::served::run(a),
        ClusterCmd::BenchReplication(a) => return vecshard_bench::replication::run(a),
        _ => {}
    }
    let rt = crate::runtime::server("vecshard-worker")?;
    rt.block_on(async {
        match cmd {
            ClusterCmd::Router(_)
            | ClusterCmd::BenchCluster(_)
            | ClusterCmd::BenchServed(_)
            | ClusterCmd::BenchReplication(_) => Ok(()),
            ClusterCmd::Dev(a) => {
                let dev = vecshard_cluster::dev::Dev {
                    nodes: a.nodes,
                    data: a.data,
                    demo_only: a.demo_only,
                    no_demo: a.no_demo,
                    any_port: a.any_port,
                    points: a.points,
                    tls: connector.tls(),
                };
                vecshard_cluster::dev::run(dev).await
            }
            ClusterCmd::Collection(c) => collection::run(c, connector).await,
            ClusterCmd::Status { router } => {
                let s = collections::cluster_status(&mut connector.connect(&router).await?).await?;
                print!("{}", vecshard_client::text::cluster_status(&s));
                Ok(())
            }
            ClusterCmd::Import {
                router,
                collection,
                file,
                format,
                batch,
                parallel,
            } => {
                let client = connector.connect(&router).await?;
                let import = vecshard_transfer::import::router::import_file;
                let n = import(client, &collection, &file, format, batch, parallel).await?;
                eprintln!("imported {n} points into {collection}");
                Ok(())
            }
            ClusterCmd::Export {
                router,
                collection,
                format,
                out,
            } => {
                let format = Format::for_export(format, &out)?;
                let client = connector.connect(&router).await?;
                let export = vecshard_transfer::export::export_file;
                let n = export(client, &collection, format, &out).await?;
                eprintln!("exported {n} points of {collection} to {}", out.display());
                Ok(())
            }
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
                let client = connector.connect(&router).await?;
                let queries = read::read_fvecs(&queries)?;
                let params = search::Params {
                    collection,
                    k,
                    filter,
                    ef,
                    exact,
                    allow_partial,
                };
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                search::search_lines(&client, queries, &params, &mut out).await
            }
            ClusterCmd::Cluster(c) => admin::run(c).await,
        }
    })
}
