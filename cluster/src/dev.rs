//! `vecshard dev`: a whole cluster in one process — one router and N data nodes on local
//! disk ([`Cluster`]) — then its demo through the router's public API, then serve
//! until ctrl-c.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use vecshard_transfer::Progress;

use crate::{Cluster, ClusterError, DevCerts, Spec, demo, node_config};

/// What `vecshard dev` runs.
pub struct Dev {
    /// Data nodes to run (at least 1).
    pub nodes: usize,
    /// Where the router and the nodes keep their data (default: a temporary directory,
    /// removed on exit). Reusing a directory keeps the collections.
    pub data: Option<PathBuf>,
    /// Run the demo, then exit.
    pub demo_only: bool,
    /// Skip the demo; just serve.
    pub no_demo: bool,
    /// Listen on any free ports instead of 7000 (gRPC), 7080 (REST), 7001 (internal).
    pub any_port: bool,
    /// Points the demo imports.
    pub points: usize,
    /// Generate certificates in the data directory and run the cluster with TLS.
    pub tls: bool,
}

/// The router setting `serving_threads` from the environment, as `vecshard router` reads it.
const SERVING_THREADS_ENV: &str = "VECSHARD__ROUTER__SERVING_THREADS";

/// Start the cluster, print its addresses, run the demo, then serve until SIGTERM or
/// ctrl-c (as `a` says).
pub async fn run(a: Dev) -> Result<()> {
    if a.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let tmp = tempfile::tempdir()?;
    let dir = a.data.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let mut rc = vecshard_router::RouterConfig::local(&dir.join("router"));
    if !a.any_port {
        rc.grpc_listen = "127.0.0.1:7000".into();
        rc.http_listen = "127.0.0.1:7080".into();
        rc.internal_listen = "127.0.0.1:7001".into();
    }
    rc.default_shard_count = a.nodes as u32;
    // As for `vecshard router`: serve client connections on threads of their own.
    if let Ok(v) = std::env::var(SERVING_THREADS_ENV) {
        rc.serving_threads = v.trim().parse().with_context(|| {
            format!("{SERVING_THREADS_ENV}={v:?}: expected a number of threads")
        })?;
    }
    rc.failure_timeout_ms = 5000;
    rc.control_interval_ms = 200;
    // One host: router and nodes share the file system, so backups may go under it.
    let backups = std::path::absolute(dir.join("backups"))?;
    rc.backup_locations = vec![backups.to_string_lossy().into_owned()];
    let node_ids: Vec<String> = (0..a.nodes).map(|i| format!("node-{i}")).collect();
    let certs = match a.tls {
        true => Some(
            DevCerts::generate(&dir.join("certs"), &node_ids)
                .context("generate TLS certificates")?,
        ),
        false => None,
    };
    let nodes = node_ids
        .iter()
        .map(|id| {
            let mut nc = node_config(id, dir.join(id));
            nc.cluster.heartbeat_interval_ms = 500;
            nc
        })
        .collect();
    // Same process: the router calls the nodes' services directly.
    let cluster = Cluster::start(Spec {
        router: rc,
        nodes,
        local_calls: true,
        certs,
    })
    .await
    .map_err(|e| match e {
        ClusterError::Router(_) => {
            anyhow::Error::new(e).context("another `vecshard dev` running? try --any-port")
        }
        e => e.into(),
    })?;
    let (router, nodes, certs) = (cluster.router(), cluster.nodes(), cluster.certs());
    let scheme = if certs.is_some() { "https" } else { "http" };
    println!("vecshard dev cluster (data in {})", dir.display());
    println!(
        "  router 1   gRPC {}   REST {scheme}://{}",
        router.grpc_addr(),
        router.http_addr()
    );
    println!("  backups    under {}", backups.display());
    if let Some(c) = &certs {
        println!(
            "  TLS on: clients verify with --ca {} (curl --cacert)",
            c.ca().display()
        );
    }
    for n in nodes {
        println!(
            "  {}    gRPC {}   health http://{}/healthz",
            n.node_id(),
            n.grpc_addr(),
            n.http_addr()
        );
    }
    let mut client = cluster.client().await?;
    demo::wait_nodes(&mut client, a.nodes, Duration::from_secs(30)).await?;
    if !a.no_demo {
        let progress = Progress::new(Some(a.points as u64), "importing");
        demo::run(&mut client, a.points, a.nodes as u32, &progress).await?;
    }
    if !a.demo_only {
        println!(
            "\nserving; try `vecshard status --router {}` — ctrl-c to stop",
            router.grpc_addr()
        );
        vecshard_node::stop_requested().await;
    }
    cluster.shutdown().await;
    Ok(())
}
