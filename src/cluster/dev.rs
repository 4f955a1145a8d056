//! `vecshard dev`: a whole cluster in one process — one router and N data nodes on local
//! disk — then a demo through the router's public API (create a collection, import
//! generated points with a progress bar, filtered searches), then serve until ctrl-c.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use vecshard_proto::v1 as pb;

use super::client::{Client, connect, status, tls_wanted, trust_ca};
use crate::progress::Progress;
use vecshard_cluster::{Cluster, ClusterError, DevCerts, Spec, node_config};
use vecshard_model::json::key_to_json;
use vecshard_model::proto::key_from_proto;

#[derive(Args)]
pub struct DevArgs {
    /// Data nodes to run.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Where the router and the nodes keep their data (default: a temporary directory,
    /// removed on exit). Reusing a directory keeps the collections.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Run the demo, then exit.
    #[arg(long, conflicts_with = "no_demo")]
    pub demo_only: bool,
    /// Skip the demo; just serve.
    #[arg(long)]
    pub no_demo: bool,
    /// Listen on any free ports instead of 7000 (gRPC), 7080 (REST), 7001 (internal).
    #[arg(long)]
    pub any_port: bool,
    /// Points the demo imports.
    #[arg(long, default_value_t = 20_000)]
    pub points: usize,
}

const DIM: usize = 64;
const COLORS: [&str; 4] = ["red", "green", "blue", "black"];

pub async fn run(a: DevArgs) -> Result<()> {
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
    rc.failure_timeout_ms = 5000;
    rc.control_interval_ms = 200;
    let node_ids: Vec<String> = (0..a.nodes).map(|i| format!("node-{i}")).collect();
    let certs = dev_certs(&dir.join("certs"), &node_ids)?;
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
    let mut client = connect(&router.grpc_addr().to_string()).await?;
    wait_nodes(&mut client, a.nodes).await?;
    if !a.no_demo {
        demo(&mut client, a.points, a.nodes as u32).await?;
    }
    if !a.demo_only {
        println!(
            "\nserving; try `vecshard status --router {}` — ctrl-c to stop",
            router.grpc_addr()
        );
        super::until_signal().await;
    }
    cluster.shutdown().await;
    Ok(())
}

/// Certificates in `dir` (written afresh) when `--tls` or `--ca` was given; the command
/// line's client trusts their CA from then on.
fn dev_certs(dir: &Path, nodes: &[String]) -> Result<Option<DevCerts>> {
    if !tls_wanted() {
        return Ok(None);
    }
    let certs = DevCerts::generate(dir, nodes).context("generate TLS certificates")?;
    let ca = std::fs::read(certs.ca()).with_context(|| certs.ca().display().to_string())?;
    trust_ca(&ca);
    Ok(Some(certs))
}

async fn wait_nodes(c: &mut Client, n: usize) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let s = c
            .cluster_status(pb::ClusterStatusRequest {})
            .await
            .map_err(status)?
            .into_inner();
        let alive = s
            .nodes
            .iter()
            .filter(|x| x.state == pb::NodeState::Alive as i32)
            .count();
        if alive >= n {
            return Ok(());
        }
        if Instant::now() > end {
            bail!("only {alive} of {n} nodes came up");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn demo_point(i: usize, centers: &[Vec<f32>], rng: &mut rand::rngs::SmallRng) -> pb::Point {
    let c = &centers[i % centers.len()];
    let value = |k| pb::Value { kind: Some(k) };
    let metadata = [
        (
            "color".to_string(),
            value(pb::value::Kind::StringValue(
                COLORS[(i / 7) % COLORS.len()].into(),
            )),
        ),
        (
            "price".to_string(),
            value(pb::value::Kind::IntValue((i % 1000) as i64)),
        ),
    ];
    pb::Point {
        key: Some(pb::Key {
            kind: Some(pb::key::Kind::Int(i as u64)),
        }),
        vector: c
            .iter()
            .map(|x| x + rng.random_range(-0.3f32..0.3))
            .collect(),
        metadata: metadata.into(),
        payload: format!("{{\"title\": \"item {i}\"}}").into_bytes(),
    }
}

async fn demo(c: &mut Client, points: usize, shards: u32) -> Result<()> {
    let name = "demo";
    let exists = c
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .map_err(status)?
        .into_inner()
        .collections
        .iter()
        .any(|s| s.name == name);
    if !exists {
        c.create_collection(pb::CreateCollectionRequest {
            name: name.into(),
            dimension: DIM as u32,
            metric: pb::Metric::Cosine as i32,
            shard_count: shards,
            storage: "local".into(),
            index: None,
        })
        .await
        .map_err(status)?;
    }
    println!("\ncollection {name:?}: {DIM}-d cosine, {shards} shards on local disk");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let centers: Vec<Vec<f32>> = (0..32)
        .map(|_| (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    let batches: Vec<Vec<pb::Point>> = (0..points)
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(|chunk| {
            chunk
                .iter()
                .map(|&i| demo_point(i, &centers, &mut rng))
                .collect()
        })
        .collect();
    let progress = Progress::new(Some(points as u64), "importing");
    let started = Instant::now();
    let sender = c.clone();
    let sends = futures::stream::iter(batches)
        .map(|b| {
            let mut c = sender.clone();
            async move {
                let n = b.len() as u64;
                let req = pb::UpsertRequest {
                    collection: name.into(),
                    points: b,
                };
                c.upsert(req).await.map_err(status).map(|_| n)
            }
        })
        .buffered(4);
    let mut sends = std::pin::pin!(sends);
    let mut acked = 0;
    while let Some(n) = sends.next().await {
        acked += n?;
        progress.acked(acked);
    }
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {acked} points in {secs:.1} s ({:.0} points/s, durable)",
        acked as f64 / secs
    );

    let query: Vec<f32> = centers[3].clone();
    for (title, filter) in [
        ("nearest to cluster 3", None),
        (
            "nearest red ones",
            Some(r#"{"field": "color", "eq": "red"}"#),
        ),
        (
            "nearest with 100 <= price < 200, not black",
            Some(
                r#"{"and": [{"field": "price", "range": {"gte": 100, "lt": 200}}, {"not": {"field": "color", "eq": "black"}}]}"#,
            ),
        ),
    ] {
        let t = Instant::now();
        let r = c
            .search(pb::SearchRequest {
                collection: name.into(),
                vector: query.clone(),
                k: 5,
                filter_spec: filter.map(|f| pb::search_request::FilterSpec::FilterJson(f.into())),
                with_metadata: true,
                ..Default::default()
            })
            .await
            .map_err(status)?
            .into_inner();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        println!(
            "\n{title}{} ({ms:.1} ms):",
            filter.map(|f| format!(" {f}")).unwrap_or_default()
        );
        for h in r.hits {
            let meta = |f: &str| h.metadata.get(f).and_then(|v| v.kind.clone());
            let color = match meta("color") {
                Some(pb::value::Kind::StringValue(s)) => s,
                _ => String::new(),
            };
            let price = match meta("price") {
                Some(pb::value::Kind::IntValue(p)) => p,
                _ => 0,
            };
            let id = key_from_proto(h.key.as_ref())
                .map(|k| key_to_json(&k))
                .unwrap_or_default()
                .to_string();
            println!(
                "  id {id:>6}  score {:.4}  color {color:<5}  price {price}",
                h.score
            );
        }
    }
    Ok(())
}
