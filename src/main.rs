//! `vecshard`: one binary for the embedded engine, the cluster and the benchmarks.

mod bench;
mod cluster;
mod datafile;
mod demo;
mod local;
mod nodecmd;
mod progress;
mod routercmd;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vecshard",
    version,
    about = "A horizontally sharded vector search cluster (and an embedded engine)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The embedded engine on one shard (a directory or an object-store URL).
    #[command(subcommand)]
    Local(local::LocalCmd),
    /// The embedded engine in one process: import generated data and search it.
    Demo(demo::DemoArgs),
    /// Benchmark one shard on a TEXMEX dataset (recall, QPS, latency, build, memory).
    Bench(bench::BenchArgs),
    /// Run a data node (shards behind the internal gRPC API) until SIGTERM or ctrl-c.
    Node(nodecmd::NodeArgs),
    #[command(flatten)]
    Cluster(cluster::ClusterCmd),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VECSHARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Local(cmd) => local::run(cmd),
        Cmd::Bench(args) => bench::run(args),
        Cmd::Demo(args) => demo::run(args),
        Cmd::Node(args) => nodecmd::run(args),
        Cmd::Cluster(cmd) => cluster::run(cmd),
    }
}
