//! `vecshard`: one binary for the embedded engine, the cluster and the benchmarks.

mod bench;
mod certs;
mod cluster;
mod demo;
mod local;
mod nodecmd;
mod probe;
mod progress;
mod routercmd;

use anyhow::Result;
use clap::{Parser, Subcommand};
use vecshard_transfer::read as datafile;

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
    ca: Option<std::path::PathBuf>,
    /// Talk TLS to routers (verified against --ca, else the system's roots). With `dev`:
    /// generate certificates in the data directory and run the cluster with TLS.
    #[arg(long, global = true)]
    tls: bool,
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
    cluster::set_tls(cli.ca.as_deref(), cli.tls)?;
    match cli.cmd {
        Cmd::Local(cmd) => local::run(cmd),
        Cmd::Bench(args) => bench::run(args),
        Cmd::Demo(args) => demo::run(args),
        Cmd::Node(args) => nodecmd::run(args),
        Cmd::Certs(cmd) => certs::run(cmd),
        Cmd::Backup(cmd) => vecshard_backup::run(cmd),
        Cmd::Probe(args) => probe::run(args),
        Cmd::Cluster(cmd) => cluster::run(cmd),
    }
}
