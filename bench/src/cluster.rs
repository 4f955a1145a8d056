//! `vecshard bench-cluster`: the same TEXMEX dataset into one embedded engine and, for each
//! shard count, through a router onto one data node (both in this process, local disk):
//! ingest throughput, single-client latency (p50/p99) and QPS, multi-client QPS, and
//! recall@k. Shows what the router adds over the engine. With the global `--tls`, router
//! and node run with generated certificates (every hop encrypted and authenticated): the
//! cost of TLS.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures::StreamExt;
use vecshard_engine::{Metric, Options, Point, SearchRequest, Shard, ShardSpec};
use vecshard_proto::v1 as pb;

use vecshard_cluster::{Cluster, Spec, connect, node_config};

use crate::Dataset;
use crate::measure::{Pass, client_threads_qps, threaded_qps, timed_passes};

/// A gRPC error as an error that reads well on a terminal.
pub(crate) fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", s.code(), s.message())
}

/// Create the benchmark's collection (L2, M 16, efConstruction 200, local storage),
/// retrying while the cluster is still starting (UNAVAILABLE) for up to 30 s.
pub(crate) async fn create_collection(
    c: &mut vecshard_cluster::Client,
    name: &str,
    dimension: u32,
    shards: u32,
    ef: u32,
) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let req = pb::CreateCollectionRequest {
            name: name.into(),
            dimension,
            metric: pb::Metric::L2 as i32,
            shard_count: shards,
            storage: "local".into(),
            index: Some(pb::IndexParams {
                m: Some(16),
                ef_construction: Some(200),
                ef_search: Some(ef),
            }),
            ..Default::default()
        };
        match c.create_collection(req).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code() == tonic::Code::Unavailable && Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(status(e)),
        }
    }
}

#[derive(Args)]
pub struct BenchClusterArgs {
    /// Directory with base.fvecs, query.fvecs and groundtruth.ivecs (L2).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Use only the first N base vectors (recall is then not reported); 0: all.
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Shard counts to measure through the router.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub shards: Vec<u32>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: u32,
    /// Search width.
    #[arg(long, default_value_t = 64)]
    pub ef: u32,
    /// Points per upsert.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Upserts in flight (engine: writer threads).
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Concurrent searchers for the multi-client QPS.
    #[arg(long, default_value_t = 2)]
    pub clients: usize,
    /// Seconds per timed search pass.
    #[arg(long, default_value_t = 3.0)]
    pub secs: f64,
    /// Let the router call the node in this process directly, as `vecshard dev` does
    /// (default: over loopback gRPC, as with a separate node process).
    #[arg(long)]
    pub local_node: bool,
    /// Skip the embedded-engine baseline.
    #[arg(long)]
    pub no_engine: bool,
}

struct Row {
    target: String,
    ingest_pps: f64,
    p50_us: f64,
    p99_us: f64,
    qps1: f64,
    qps_n: f64,
    recall: Option<f64>,
}

fn recall(truth: &Option<Vec<Vec<i32>>>, results: &[Vec<u64>], k: usize) -> Option<f64> {
    let truth = truth.as_ref()?;
    let hits: usize = results
        .iter()
        .zip(truth)
        .map(|(r, t)| {
            r.iter()
                .filter(|id| t[..k].contains(&(**id as i32)))
                .count()
        })
        .sum();
    Some(hits as f64 / (results.len() * k) as f64)
}

/// Run `vecshard bench-cluster` on `data` (read from `a.dataset`); with `tls`, router and
/// node run with generated certificates.
pub fn run(a: BenchClusterArgs, data: Dataset, tls: bool) -> Result<()> {
    let Dataset {
        mut base,
        queries,
        mut truth,
    } = data;
    if a.limit > 0 && a.limit < base.len() {
        base.truncate(a.limit);
        truth = None;
    }
    if base.is_empty() || queries.is_empty() {
        bail!("dataset {}: no base or query vectors", a.dataset.display());
    }
    let data = Arc::new(Dataset {
        base,
        queries,
        truth,
    });
    eprintln!(
        "{} base and {} query vectors, {}-d; k={} ef={}",
        data.base.len(),
        data.queries.len(),
        data.base[0].len(),
        a.k,
        a.ef
    );
    let mut rows = Vec::new();
    if !a.no_engine {
        rows.push(engine(&a, &data)?);
        print_row(rows.last().unwrap());
    }
    let rt = tokio::runtime::Runtime::new()?;
    for &s in &a.shards {
        rows.push(rt.block_on(cluster(&a, &data, s, tls))?);
        print_row(rows.last().unwrap());
    }
    println!();
    print_table(&rows);
    if let (Some(e), Some(r1)) = (
        rows.iter().find(|r| r.target == "engine"),
        rows.iter().find(|r| r.target == "router 1 shard"),
    ) {
        println!(
            "\nadded p50 through the router (1 shard): {:.0} µs",
            r1.p50_us - e.p50_us
        );
        if let Some(r4) = rows.iter().find(|r| r.target == "router 4 shards") {
            println!(
                "4-shard QPS with {} clients vs one engine with {} threads: {:.0} %",
                a.clients,
                a.clients,
                100.0 * r4.qps_n / e.qps_n
            );
        }
    }
    Ok(())
}

fn print_row(r: &Row) {
    eprintln!(
        "  {}: ingest {:.0} pts/s, p50 {:.0} µs, p99 {:.0} µs, QPS {:.0} / {:.0}, recall {}",
        r.target,
        r.ingest_pps,
        r.p50_us,
        r.p99_us,
        r.qps1,
        r.qps_n,
        r.recall
            .map(|x| format!("{x:.3}"))
            .unwrap_or_else(|| "-".into())
    );
}

fn print_table(rows: &[Row]) {
    println!(
        "| target | ingest points/s | p50 µs | p99 µs | QPS, 1 client | QPS, N clients | recall@k |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            r.target,
            r.ingest_pps,
            r.p50_us,
            r.p99_us,
            r.qps1,
            r.qps_n,
            r.recall
                .map(|x| format!("{x:.3}"))
                .unwrap_or_else(|| "-".into())
        );
    }
}

/// The embedded engine: the baseline.
fn engine(a: &BenchClusterArgs, d: &Dataset) -> Result<Row> {
    let tmp = tempfile::tempdir()?;
    let location = tmp.path().join("shard").to_string_lossy().into_owned();
    let mut spec = ShardSpec::new(d.base[0].len(), Metric::L2);
    spec.index.ef_search = a.ef as usize;
    // Same engine settings as the node's defaults.
    let shard = Shard::create(&location, spec, Options::default())?;
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..a.parallel)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let from = next.fetch_add(a.batch, Ordering::Relaxed);
                        if from >= d.base.len() {
                            return Ok(());
                        }
                        let to = (from + a.batch).min(d.base.len());
                        let points = (from..to)
                            .map(|i| Point::new(i as u64, d.base[i].clone()))
                            .collect();
                        shard.upsert(points)?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        }
        Ok(())
    })?;
    let ingest_pps = d.base.len() as f64 / start.elapsed().as_secs_f64();
    // Steady state: close (which flushes) and reopen, as the cluster's node does.
    shard.close()?;
    let shard = Shard::open(&location, Options::default())?;
    let search = |q: &Vec<f32>| -> Result<Vec<u64>> {
        let req = SearchRequest::new(q.clone(), a.k as usize);
        let hits = shard.search(&req)?;
        Ok(hits
            .iter()
            .map(|h| match h.key {
                vecshard_engine::Key::Int(v) => v,
                vecshard_engine::Key::Str(_) => u64::MAX,
            })
            .collect())
    };
    let results = d.queries.iter().map(search).collect::<Result<Vec<_>>>()?;
    // Every query succeeded once above; the timed passes only measure.
    let pass = timed_passes(d.queries.len(), a.secs, 1, |i| {
        let _ = search(&d.queries[i]);
    });
    let qps_n = threaded_qps(a.clients, a.secs, |_| {
        Some(|i: usize| {
            let _ = search(&d.queries[i % d.queries.len()]);
        })
    });
    shard.close()?;
    Ok(Row {
        target: "engine".into(),
        ingest_pps,
        p50_us: pass.p50_us,
        p99_us: pass.p99_us,
        qps1: pass.qps,
        qps_n,
        recall: recall(&d.truth, &results, a.k as usize),
    })
}

fn query_req(collection: &str, q: &[f32], k: u32) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: collection.into(),
        vector: q.to_vec(),
        k,
        ..Default::default()
    }
}

fn ids(r: &pb::SearchResponse) -> Vec<u64> {
    r.hits
        .iter()
        .map(|h| match h.key.as_ref().and_then(|k| k.kind.as_ref()) {
            Some(pb::key::Kind::Int(v)) => *v,
            _ => u64::MAX,
        })
        .collect()
}

/// A router and one node in this process; `shards` shards on the node.
async fn cluster(a: &BenchClusterArgs, d: &Arc<Dataset>, shards: u32, tls: bool) -> Result<Row> {
    let tmp = tempfile::tempdir()?;
    // With --tls every hop is TLS: client to router, router to node, node to router.
    let certs = if tls {
        let dir = tmp.path().join("certs");
        Some(vecshard_cluster::DevCerts::generate(
            &dir,
            &["bench-node".into()],
        )?)
    } else {
        None
    };
    let mut nc = node_config("bench-node", tmp.path().join("node"));
    nc.cluster.heartbeat_interval_ms = 200;
    let mut cluster = Cluster::start(Spec {
        router: vecshard_router::RouterConfig::local(&tmp.path().join("router")),
        nodes: vec![nc],
        local_calls: a.local_node,
        certs,
    })
    .await?;
    let ca = cluster.certs().map(|c| c.ca().to_path_buf());
    let mut c = cluster.client().await?;
    let name = "bench";
    create_collection(&mut c, name, d.base[0].len() as u32, shards, a.ef).await?;
    // Warm every shard (they open in the background).
    c.search(query_req(name, &d.queries[0], a.k))
        .await
        .map_err(status)?;

    let start = Instant::now();
    let batches = (0..d.base.len()).step_by(a.batch).map(|from| {
        let to = (from + a.batch).min(d.base.len());
        let points = (from..to)
            .map(|i| pb::Point {
                key: Some(pb::Key {
                    kind: Some(pb::key::Kind::Int(i as u64)),
                }),
                vector: d.base[i].clone(),
                ..Default::default()
            })
            .collect();
        pb::UpsertRequest {
            collection: name.into(),
            points,
        }
    });
    {
        let sender = c.clone();
        let sends = futures::stream::iter(batches)
            .map(|req| {
                let mut c = sender.clone();
                async move { c.upsert(req).await.map_err(status) }
            })
            .buffer_unordered(a.parallel);
        let mut sends = std::pin::pin!(sends);
        while let Some(r) = sends.next().await {
            r?;
        }
    }
    let ingest_pps = d.base.len() as f64 / start.elapsed().as_secs_f64();

    // Steady state, as for the engine: restart the node (closing flushes every shard)
    // on the same address and wait until every shard serves again.
    cluster.restart_node(0).await.context("restart the node")?;
    let end = Instant::now() + Duration::from_secs(60);
    while let Err(e) = c.search(query_req(name, &d.queries[0], a.k)).await {
        if Instant::now() > end {
            return Err(status(e)).context("the shards did not serve again after a restart");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Clients run on their own threads and runtimes, as separate client processes
    // would, not on the cluster's runtime.
    let (addr, d2, name2, k, secs, clients) = (
        cluster.router().grpc_addr().to_string(),
        d.clone(),
        name.to_string(),
        a.k,
        a.secs,
        a.clients,
    );
    let measured = tokio::task::spawn_blocking(move || {
        client_passes(&addr, ca, &d2, &name2, k, secs, clients)
    })
    .await??;
    let Measured {
        results,
        pass,
        qps_n,
    } = measured;
    if shards == 1 && cluster.certs().is_none() {
        let (addr, d2, name2, k, secs) = (
            cluster.nodes()[0].grpc_addr().to_string(),
            d.clone(),
            name.to_string(),
            a.k,
            a.secs,
        );
        tokio::task::spawn_blocking(move || direct_node(&addr, &d2, &name2, k, secs)).await??;
    }
    cluster.shutdown().await;
    Ok(Row {
        target: format!(
            "router {shards} shard{}",
            if shards == 1 { "" } else { "s" }
        ),
        ingest_pps,
        p50_us: pass.p50_us,
        p99_us: pass.p99_us,
        qps1: pass.qps,
        qps_n,
        recall: recall(&d.truth, &results, a.k as usize),
    })
}

struct Measured {
    results: Vec<Vec<u64>>,
    pass: Pass,
    qps_n: f64,
}

/// Every query once (for recall), then one client for `secs` (latency, QPS), then
/// `clients` clients, each on its own thread with a single-threaded runtime.
fn client_passes(
    addr: &str,
    ca: Option<std::path::PathBuf>,
    d: &Dataset,
    name: &str,
    k: u32,
    secs: f64,
    clients: usize,
) -> Result<Measured> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ca = ca.as_deref();
    let mut c = rt.block_on(connect(addr, ca))?;
    let mut search = |q: &[f32]| -> Result<pb::SearchResponse> {
        Ok(rt
            .block_on(c.search(query_req(name, q, k)))
            .map_err(status)?
            .into_inner())
    };
    let results = d
        .queries
        .iter()
        .map(|q| search(q).map(|r| ids(&r)))
        .collect::<Result<Vec<_>>>()?;
    // Every query succeeded once above; the timed passes only measure.
    let pass = timed_passes(d.queries.len(), secs, 1, |i| {
        let _ = search(&d.queries[i]);
    });
    let qps_n = client_threads_qps(
        clients,
        secs,
        || async { Ok(connect(addr, ca).await?) },
        |mut c, i| {
            let req = query_req(name, &d.queries[i % d.queries.len()], k);
            async move {
                let _ = c.search(req).await;
            }
        },
    );
    Ok(Measured {
        results,
        pass,
        qps_n,
    })
}

/// Diagnostic: the node's own search latency, without the router (shard 0, at the epoch
/// the node holds it).
fn direct_node(addr: &str, d: &Dataset, name: &str, k: u32, secs: f64) -> Result<()> {
    use vecshard_proto::internal::v1 as pi;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let channel = rt.block_on(
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect(),
    )?;
    let mut n = pi::node_client::NodeClient::new(channel);
    let held = rt
        .block_on(n.node_status(pi::NodeStatusRequest {}))
        .map_err(status)?
        .into_inner();
    let Some(epoch) = held
        .shards
        .iter()
        .find(|s| s.collection == name && s.shard == 0)
        .map(|s| s.epoch)
    else {
        bail!("node {addr} does not hold shard 0 of {name}");
    };
    let req = |i: usize| pi::SearchRequest {
        target: Some(pi::ShardTarget {
            collection: name.into(),
            shard: 0,
            epoch,
        }),
        vector: d.queries[i].clone(),
        k,
        ..Default::default()
    };
    rt.block_on(n.search(req(0))).map_err(status)?;
    let pass = timed_passes(d.queries.len(), secs, 1, |i| {
        let _ = rt.block_on(n.search(req(i)));
    });
    let (p50, p99, qps) = (pass.p50_us, pass.p99_us, pass.qps);
    eprintln!("  node direct (1 shard, no router): p50 {p50:.0} µs, p99 {p99:.0} µs, QPS {qps:.0}");
    Ok(())
}
