//! `vecshard`: one binary for the embedded engine, the cluster and the benchmarks. It parses
//! arguments and calls the libraries: `vecshard-local` (`local`, `demo`), `vecshard-bench`,
//! `vecshard-node`, `vecshard-router`, `vecshard-cluster` (`dev`), `vecshard-client` and
//! `vecshard-transfer` (the commands that talk to a router), `vecshard-security` (`certs`).

mod certs;
mod cluster;
mod local;
mod nodecmd;
mod probe;
mod routercmd;
mod runtime;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use vecshard_bench::Dataset;
use vecshard_client::Connector;

#[derive(Parser)]
#[command(
    name = "vecshard",
    version,
    about = "A horizontally sharded vector search cluster (and an embedded engine)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Verify routers' TLS certificates against this CA certificate (PEM); implies --tls.
    #[arg(long, global = true, env = "VECSHARD_CA")]
    ca: Option<PathBuf>,
    /// Talk TLS to routers (verified against --ca, else the system's roots). With `dev`:
    /// generate certificates in the data directory and run the cluster with TLS.
    #[arg(long, global = true)]
    tls: bool,
}

#[derive(Args)]
struct DemoArgs {
    /// Where to keep the shard (default: a temporary directory, removed afterwards).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Points to generate.
    #[arg(long, default_value_t = 50_000)]
    points: usize,
    /// Dimension.
    #[arg(long, default_value_t = 64)]
    dim: usize,
}

#[derive(Subcommand)]
enum Cmd {
    /// The embedded engine on one shard (a directory or an object-store URL).
    #[command(subcommand)]
    Local(local::LocalCmd),
    /// The embedded engine in one process: import generated data and search it.
    Demo(DemoArgs),
    /// Benchmark one shard on a TEXMEX dataset (recall, QPS, latency, build, memory).
    Bench(vecshard_bench::shard::BenchArgs),
    /// Run a data node (shards behind the internal gRPC API) until SIGTERM or ctrl-c.
    Node(nodecmd::NodeArgs),
    /// GET a plain-HTTP health endpoint; exit non-zero unless it answers 2xx.
    Probe(probe::ProbeArgs),
    /// TLS certificates for a cluster (a CA, routers, nodes).
    #[command(subcommand)]
    Certs(certs::CertsCmd),
    /// Cluster backups through a router: create, list, describe, restore, delete.
    #[command(subcommand)]
    Backup(vecshard_backup::BackupCmd),
    #[command(flatten)]
    Cluster(cluster::ClusterCmd),
}

fn main() {
    // Before any thread starts: one malloc arena per core, and free heap pages given back
    // after object-store reads (vecshard_engine::malloc).
    vecshard_engine::malloc::limit_arenas();
    vecshard_engine::malloc::trim_in_background();
    if let Err(e) = init_logging() {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Logs go to stderr at the level `VECSHARD_LOG` sets (default `warn`), as text or, with
/// `VECSHARD_LOG_FORMAT=json`, one JSON object per line (timestamp, level, target,
/// fields, spans) for log collectors.
fn init_logging() -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VECSHARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("VECSHARD_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().init(),
        Ok("text") | Ok("") | Err(_) => logs.init(),
        Ok(other) => anyhow::bail!("VECSHARD_LOG_FORMAT must be `text` or `json`, got {other:?}"),
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    let connector = Connector::new(cli.ca.as_deref(), cli.tls)?;
    match cli.cmd {
        Cmd::Local(cmd) => local::run(cmd),
        Cmd::Bench(a) => {
            let data = Dataset::load(&a.dataset, true)?;
            vecshard_bench::shard::run(a, data)
        }
        Cmd::Demo(a) => vecshard_local::demo::run(vecshard_local::demo::Demo {
            data: a.data,
            points: a.points,
            dim: a.dim,
        }),
        Cmd::Node(args) => nodecmd::run(args),
        Cmd::Certs(cmd) => certs::run(cmd),
        Cmd::Backup(cmd) => vecshard_backup::run(cmd),
        Cmd::Probe(args) => probe::run(args),
        Cmd::Cluster(cmd) => cluster::run(cmd, &connector),
    }
}
