//! `vecshard bench`: ingest a TEXMEX dataset through the public engine API (durable writes,
//! real WAL), flush, reopen, and measure recall, QPS and latency for several `ef`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use vecshard_engine::{Key, Metric, Options, Point, SearchRequest, Shard, ShardSpec};

use crate::datafile::{read_fvecs, read_ivecs};

#[derive(Args)]
pub struct BenchArgs {
    /// Directory with base.fvecs, query.fvecs, groundtruth.ivecs (and optionally meta.json).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Metric (default: from meta.json — l2, or cosine for inner-product sets).
    #[arg(long)]
    pub metric: Option<Metric>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Search widths to measure.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    pub ef: Vec<usize>,
    /// Threads for ingest and for the multi-thread QPS run.
    #[arg(long, default_value_t = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2))]
    pub threads: usize,
    /// Points per upsert batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Memtable size (default: large enough for the whole set, so it becomes one segment).
    #[arg(long)]
    pub memtable_bytes: Option<usize>,
    /// Graph degree.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// Build-time search width.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// Where to put the shard (default: a fresh temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Put the shard in an object store instead (s3://bucket/prefix, file:///path): the
    /// summary then also reports the cold open, the first query and the bytes they fetched.
    #[arg(long, conflicts_with = "dir")]
    pub location: Option<String>,
    /// Minimum seconds per timed pass.
    #[arg(long, default_value_t = 1.0)]
    pub min_pass_secs: f64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where searches go: `engine` (in process) or `node` (a node started in process,
    /// ingest and searches over loopback gRPC, compared with the engine on the same data).
    #[arg(long, value_enum, default_value = "engine")]
    pub via: Via,
}

/// What `vecshard bench` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// The embedded engine, in process.
    Engine,
    /// A node over loopback gRPC, next to the engine on the same data.
    Node,
}

/// Peak resident set size of this process (VmHWM), in bytes.
pub fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn dataset_metric(dir: &Path) -> Metric {
    let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&meta).unwrap_or_default();
    match v.get("metric").and_then(|m| m.as_str()) {
        Some("ip") | Some("dot") | Some("cosine") => Metric::Cosine,
        _ => Metric::L2,
    }
}

/// Latency distribution and throughput of one pass.
pub struct Pass {
    pub qps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Run `f(i)` for each query index once per pass: one warm-up pass, then timed passes of at
/// least `min_secs` each; the pass with the median QPS is reported.
pub fn timed_passes(n: usize, min_secs: f64, passes: usize, mut f: impl FnMut(usize)) -> Pass {
    (0..n).for_each(&mut f);
    let mut results: Vec<Pass> = (0..passes)
        .map(|_| {
            let mut lat = Vec::with_capacity(n);
            let start = Instant::now();
            while start.elapsed().as_secs_f64() < min_secs || lat.is_empty() {
                for i in 0..n {
                    let t = Instant::now();
                    f(i);
                    lat.push(t.elapsed());
                }
            }
            let total = start.elapsed().as_secs_f64();
            lat.sort_unstable();
            let pct = |p: f64| {
                lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6
            };
            Pass {
                qps: lat.len() as f64 / total,
                p50_us: pct(0.50),
                p99_us: pct(0.99),
            }
        })
        .collect();
    results.sort_by(|a, b| a.qps.total_cmp(&b.qps));
    results.swap_remove(passes / 2)
}

pub fn run(a: BenchArgs) -> Result<()> {
    let base = read_fvecs(&a.dataset.join("base.fvecs"))?;
    let queries = read_fvecs(&a.dataset.join("query.fvecs"))?;
    let truth = read_ivecs(&a.dataset.join("groundtruth.ivecs"))?;
    if base.is_empty() || queries.len() != truth.len() {
        bail!(
            "dataset {}: empty base or query/groundtruth count mismatch",
            a.dataset.display()
        );
    }
    if truth.iter().any(|t| t.len() < a.k) {
        bail!(
            "groundtruth has fewer than k = {} neighbours per query",
            a.k
        );
    }
    let dim = base[0].len();
    let metric = a.metric.unwrap_or_else(|| dataset_metric(&a.dataset));
    if a.via == Via::Node {
        return via_node::run(&a, base, &queries, &truth, metric);
    }
    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().join("shard")
        }
    };
    let location = match &a.location {
        Some(url) => url.clone(),
        None => dir
            .to_str()
            .context("shard directory is not UTF-8")?
            .to_string(),
    };
    let mut spec = ShardSpec::new(dim, metric);
    spec.index.m = a.m;
    spec.index.ef_construction = a.ef_construction;
    let memtable_bytes = a
        .memtable_bytes
        .unwrap_or((base.len() * (dim * 4 + a.m * 8 + 256)).max(64 << 20));
    let opts = Options {
        memtable_bytes,
        ..Options::default()
    };
    let n = base.len();

    // Ingest: `threads` writers, batches of `batch`, every write durable.
    let shard = Shard::create(&location, spec, opts.clone())?;
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..a.threads.max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let from = next.fetch_add(a.batch, Ordering::Relaxed);
                        if from >= n {
                            return Ok(());
                        }
                        let to = (from + a.batch).min(n);
                        let points = (from..to)
                            .map(|i| Point::new(i as u64, base[i].clone()))
                            .collect();
                        shard.upsert(points)?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("ingest thread panicked"))??;
        }
        Ok(())
    })?;
    let searchable_s = started.elapsed().as_secs_f64();
    let t = Instant::now();
    shard.flush()?;
    let flush_s = t.elapsed().as_secs_f64();
    let build_s = started.elapsed().as_secs_f64();
    shard.close()?;
    drop(shard);
    drop(base);

    let t = Instant::now();
    let shard = Shard::open(
        &location,
        Options {
            read_only: true,
            ..opts
        },
    )?;
    let open_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut first = SearchRequest::new(queries[0].clone(), a.k);
    first.ef = a.ef.first().copied();
    shard.search(&first)?;
    let first_query_ms = t.elapsed().as_secs_f64() * 1e3;
    let stats = shard.stats();
    let cold_bytes_fetched = stats.bytes_fetched;
    let disk_bytes = if a.location.is_some() {
        stats.segment_bytes + stats.wal_bytes
    } else {
        dir_bytes(&dir)
    };

    let mut rows = Vec::new();
    for &ef in &a.ef {
        let request = |q: &[f32]| {
            let mut r = SearchRequest::new(q.to_vec(), a.k);
            r.ef = Some(ef);
            r
        };
        let mut found = 0usize;
        for (q, t) in queries.iter().zip(&truth) {
            let hits = shard.search(&request(q))?;
            let want: std::collections::HashSet<Key> =
                t[..a.k].iter().map(|&i| Key::Int(i as u64)).collect();
            found += hits.iter().filter(|h| want.contains(&h.key)).count();
        }
        let recall = found as f64 / (queries.len() * a.k) as f64;
        let reqs: Vec<SearchRequest> = queries.iter().map(|q| request(q)).collect();
        let single = timed_passes(reqs.len(), a.min_pass_secs, 5, |i| {
            let _ = shard.search(&reqs[i]);
        });
        let mt_qps = multi_thread_qps(&shard, &reqs, a.threads, a.min_pass_secs);
        rows.push(serde_json::json!({
            "ef": ef, "recall": round(recall, 4), "qps": round(single.qps, 0), "qps_mt": round(mt_qps, 0),
            "threads": a.threads, "p50_us": round(single.p50_us, 1), "p99_us": round(single.p99_us, 1),
        }));
    }
    let summary = serde_json::json!({
        "summary": true, "via": "engine", "points": n, "dim": dim, "metric": metric.as_str(), "k": a.k,
        "ingest_points_per_s": round(n as f64 / searchable_s, 0), "searchable_s": round(searchable_s, 2),
        "flush_s": round(flush_s, 2), "build_s": round(build_s, 2), "open_s": round(open_s, 3),
        "segments": stats.segments, "disk_bytes": disk_bytes, "peak_rss_bytes": peak_rss_bytes(),
        "memtable_bytes": memtable_bytes, "location": if a.location.is_some() { location.as_str() } else { "local" },
        "first_query_ms": round(first_query_ms, 2), "cold_bytes_fetched": cold_bytes_fetched,
    });
    if a.json {
        for r in &rows {
            println!("{r}");
        }
        println!("{summary}");
    } else {
        print_table(&rows, &summary);
    }
    Ok(())
}

/// Calls per second from `threads` threads for `min_secs`. `worker(t)` prepares thread `t`
/// and returns its call (given a running query number), or `None` if it could not start.
pub fn threaded_qps<C: FnMut(usize)>(
    threads: usize,
    min_secs: f64,
    worker: impl Fn(usize) -> Option<C> + Sync,
) -> f64 {
    let threads = threads.max(1);
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (done, worker) = (&done, &worker);
            s.spawn(move || {
                let Some(mut call) = worker(t) else { return };
                let mut i = t;
                while start.elapsed() < Duration::from_secs_f64(min_secs) {
                    call(i);
                    done.fetch_add(1, Ordering::Relaxed);
                    i += threads;
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Calls per second from `threads` client threads, each with its own single-threaded
/// runtime and connection (`connect`), making one call at a time (`call(client, i)`).
pub fn client_threads_qps<C, CF, F>(
    threads: usize,
    min_secs: f64,
    connect: impl Fn() -> CF + Sync,
    call: impl Fn(C, usize) -> F + Sync,
) -> f64
where
    C: Clone,
    CF: std::future::Future<Output = Result<C>>,
    F: std::future::Future,
{
    threaded_qps(threads, min_secs, |_| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let client = rt.block_on(connect()).ok()?;
        let call = &call;
        Some(move |i: usize| {
            rt.block_on(call(client.clone(), i));
        })
    })
}

pub fn multi_thread_qps(
    shard: &Shard,
    reqs: &[SearchRequest],
    threads: usize,
    min_secs: f64,
) -> f64 {
    threaded_qps(threads, min_secs, |_| {
        Some(|i: usize| {
            let _ = shard.search(&reqs[i % reqs.len()]);
        })
    })
}

pub fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn print_table(rows: &[serde_json::Value], s: &serde_json::Value) {
    println!(
        "{} points × {}-d {}: ingest {} pts/s (searchable after {} s), flush {} s, open {} s, {} segment(s), disk {:.1} MB, peak RSS {:.1} MB",
        s["points"],
        s["dim"],
        s["metric"].as_str().unwrap_or(""),
        s["ingest_points_per_s"],
        s["searchable_s"],
        s["flush_s"],
        s["open_s"],
        s["segments"],
        s["disk_bytes"].as_f64().unwrap_or(0.0) / 1e6,
        s["peak_rss_bytes"].as_f64().unwrap_or(0.0) / 1e6
    );
    println!(
        "{:>6} {:>8} {:>10} {:>12} {:>9} {:>9}",
        "ef", "recall", "QPS (1t)", "QPS (mt)", "p50 µs", "p99 µs"
    );
    for r in rows {
        println!(
            "{:>6} {:>8} {:>10} {:>12} {:>9} {:>9}",
            r["ef"], r["recall"], r["qps"], r["qps_mt"], r["p50_us"], r["p99_us"]
        );
    }
}

/// `--via node`: a node in process on loopback, one shard, ingest and searches over
/// gRPC; the same searches on the in-process engine over the same files for comparison.
mod via_node {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use anyhow::{Context, Result, bail};
    use tonic::transport::Channel;
    use vecshard_engine::{Key, Metric, Options, SearchRequest, Shard};
    use vecshard_proto::internal::v1 as pb;
    use vecshard_proto::internal::v1::node_client::NodeClient;
    use vecshard_proto::v1 as pb1;

    use super::{
        BenchArgs, client_threads_qps, dir_bytes, multi_thread_qps, peak_rss_bytes, round,
        timed_passes,
    };

    type Client = NodeClient<Channel>;

    const COLLECTION: &str = "bench";

    fn target(epoch: u64) -> Option<pb::ShardTarget> {
        Some(pb::ShardTarget {
            collection: COLLECTION.into(),
            shard: 0,
            epoch,
        })
    }

    async fn connect(addr: &str) -> Result<Client> {
        let channel = Channel::from_shared(addr.to_string())?
            .tcp_nodelay(true)
            .connect()
            .await?;
        Ok(NodeClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20))
    }

    async fn assign(
        c: &mut Client,
        a: &BenchArgs,
        dim: usize,
        metric: Metric,
        epoch: u64,
    ) -> Result<()> {
        let metric = vecshard_model::proto::metric_to_proto(metric);
        c.assign_shard(pb::AssignShardRequest {
            collection: COLLECTION.into(),
            shard: 0,
            epoch,
            role: pb::Role::Writer as i32,
            storage: "local".into(),
            dimension: dim as u32,
            metric: metric as i32,
            index: Some(pb1::IndexParams {
                m: Some(a.m as u32),
                ef_construction: Some(a.ef_construction as u32),
                ef_search: Some(64),
            }),
            incarnation: 0,
        })
        .await?;
        loop {
            let st = c.node_status(pb::NodeStatusRequest {}).await?.into_inner();
            if let Some(s) = st.shards.iter().find(|s| s.epoch == epoch) {
                match s.state() {
                    pb::ShardState::Serving => return Ok(()),
                    pb::ShardState::Failed | pb::ShardState::Fenced => {
                        bail!("the node could not open the shard: {}", s.error)
                    }
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn search_req(q: &[f32], k: usize, ef: usize, epoch: u64) -> pb::SearchRequest {
        pb::SearchRequest {
            target: target(epoch),
            vector: q.to_vec(),
            k: k as u32,
            ef: Some(ef as u32),
            ..Default::default()
        }
    }

    fn hit_key(h: &pb::ShardHit) -> Option<Key> {
        vecshard_model::proto::key_from_proto(h.key.as_ref()).ok()
    }

    pub fn run(
        a: &BenchArgs,
        base: Vec<Vec<f32>>,
        queries: &[Vec<f32>],
        truth: &[Vec<i32>],
        metric: Metric,
    ) -> Result<()> {
        let dim = base[0].len();
        let n = base.len();
        let tmp = tempfile::tempdir()?;
        let data_dir = a.dir.clone().unwrap_or_else(|| tmp.path().join("node"));
        let memtable_bytes = a
            .memtable_bytes
            .unwrap_or((n * (dim * 4 + a.m * 8 + 256)).max(64 << 20));
        let mut cfg = vecshard_node::NodeConfig::default();
        cfg.node.id = "bench".into();
        cfg.node.grpc_addr = "127.0.0.1:0".into();
        cfg.node.http_addr = "127.0.0.1:0".into();
        cfg.node.data_dir = data_dir.clone();
        cfg.node.search_threads = a.threads;
        cfg.node.mailbox_capacity = (a.threads * 4).max(16);
        cfg.engine.memtable_bytes = memtable_bytes;
        let server = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(a.threads.max(1))
            .thread_name("bench-node")
            .enable_all()
            .build()?;
        let node = server.block_on(vecshard_node::start(cfg))?;
        let addr = format!("http://{}", node.grpc_addr());

        // Ingest through gRPC: `threads` clients, batches of `batch`.
        let base = std::sync::Arc::new(base);
        let started = Instant::now();
        server.block_on(async {
            let mut c = connect(&addr).await?;
            assign(&mut c, a, dim, metric, 1).await?;
            let next = std::sync::Arc::new(AtomicUsize::new(0));
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..a.threads.max(1) {
                let (mut c, next, base, batch) = (c.clone(), next.clone(), base.clone(), a.batch);
                tasks.spawn(async move {
                    loop {
                        let from = next.fetch_add(batch, Ordering::Relaxed);
                        if from >= n {
                            return Ok::<(), anyhow::Error>(());
                        }
                        let points = (from..(from + batch).min(n))
                            .map(|i| pb1::Point {
                                key: Some(pb1::Key {
                                    kind: Some(pb1::key::Kind::Int(i as u64)),
                                }),
                                vector: base[i].clone(),
                                ..Default::default()
                            })
                            .collect();
                        c.upsert(pb::UpsertRequest {
                            target: target(1),
                            points,
                        })
                        .await?;
                    }
                });
            }
            while let Some(t) = tasks.join_next().await {
                t??;
            }
            Ok::<(), anyhow::Error>(())
        })?;
        let searchable_s = started.elapsed().as_secs_f64();
        drop(base);

        // Release (the node flushes and closes), then reassign: the node reopens.
        let t = Instant::now();
        server.block_on(async {
            let mut c = connect(&addr).await?;
            c.release_shard(pb::ReleaseShardRequest {
                collection: COLLECTION.into(),
                shard: 0,
                epoch: 1,
                delete_data: false,
                ..Default::default()
            })
            .await?;
            Ok::<(), anyhow::Error>(())
        })?;
        let flush_s = t.elapsed().as_secs_f64();
        let build_s = started.elapsed().as_secs_f64();
        let t = Instant::now();
        server.block_on(async {
            let mut c = connect(&addr).await?;
            assign(&mut c, a, dim, metric, 2).await
        })?;
        let open_s = t.elapsed().as_secs_f64();

        // The engine, in process, over the same files (read-only: the node holds the lock).
        let location = data_dir.join(COLLECTION).join("0");
        let engine = Shard::open(
            location.to_str().context("data directory is not UTF-8")?,
            Options {
                read_only: true,
                ..Options::default()
            },
        )?;
        let stats = engine.stats();
        let disk_bytes = dir_bytes(&location);

        let client_rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut client = client_rt.block_on(connect(&addr))?;
        let mut rows = Vec::new();
        for &ef in &a.ef {
            let reqs: Vec<pb::SearchRequest> =
                queries.iter().map(|q| search_req(q, a.k, ef, 2)).collect();
            let mut found = 0usize;
            for (r, t) in reqs.iter().zip(truth) {
                let hits = client_rt
                    .block_on(client.search(r.clone()))?
                    .into_inner()
                    .hits;
                let want: std::collections::HashSet<Key> =
                    t[..a.k].iter().map(|&i| Key::Int(i as u64)).collect();
                found += hits
                    .iter()
                    .filter_map(hit_key)
                    .filter(|k| want.contains(k))
                    .count();
            }
            let recall = found as f64 / (queries.len() * a.k) as f64;
            let engine_reqs: Vec<SearchRequest> = queries
                .iter()
                .map(|q| {
                    let mut r = SearchRequest::new(q.clone(), a.k);
                    r.ef = Some(ef);
                    r
                })
                .collect();
            let eng = timed_passes(engine_reqs.len(), a.min_pass_secs, 5, |i| {
                let _ = engine.search(&engine_reqs[i]);
            });
            let via = timed_passes(reqs.len(), a.min_pass_secs, 5, |i| {
                let _ = client_rt.block_on(client.search(reqs[i].clone()));
            });
            let eng_mt = multi_thread_qps(&engine, &engine_reqs, a.threads, a.min_pass_secs);
            let via_mt = client_threads_qps(
                a.threads,
                a.min_pass_secs,
                || connect(&addr),
                |mut c, i| {
                    let req = reqs[i % reqs.len()].clone();
                    async move {
                        let _ = c.search(req).await;
                    }
                },
            );
            rows.push(serde_json::json!({
                "ef": ef, "recall": round(recall, 4), "qps": round(via.qps, 0), "qps_mt": round(via_mt, 0),
                "threads": a.threads, "p50_us": round(via.p50_us, 1), "p99_us": round(via.p99_us, 1),
                "via": "node", "engine_qps": round(eng.qps, 0), "engine_qps_mt": round(eng_mt, 0),
                "engine_p50_us": round(eng.p50_us, 1), "engine_p99_us": round(eng.p99_us, 1),
                "added_p50_us": round(via.p50_us - eng.p50_us, 1),
                "added_p99_us": round(via.p99_us - eng.p99_us, 1),
            }));
        }
        // Close the client's connection before the node's graceful shutdown waits for it.
        drop(client);
        drop(client_rt);
        engine.close()?;
        server.block_on(node.shutdown());
        let summary = serde_json::json!({
            "summary": true, "via": "node", "points": n, "dim": dim, "metric": metric.as_str(), "k": a.k,
            "ingest_points_per_s": round(n as f64 / searchable_s, 0), "searchable_s": round(searchable_s, 2),
            "flush_s": round(flush_s, 2), "build_s": round(build_s, 2), "open_s": round(open_s, 3),
            "segments": stats.segments, "disk_bytes": disk_bytes, "peak_rss_bytes": peak_rss_bytes(),
            "memtable_bytes": memtable_bytes,
        });
        if a.json {
            for r in &rows {
                println!("{r}");
            }
            println!("{summary}");
        } else {
            print_table(&rows, &summary);
        }
        Ok(())
    }

    fn print_table(rows: &[serde_json::Value], s: &serde_json::Value) {
        println!(
            "via node (loopback gRPC): {} points × {}-d {}: ingest {} pts/s, release (flush) {} s, reopen {} s, {} segment(s)",
            s["points"],
            s["dim"],
            s["metric"].as_str().unwrap_or(""),
            s["ingest_points_per_s"],
            s["flush_s"],
            s["open_s"],
            s["segments"]
        );
        println!(
            "{:>6} {:>8} {:>10} {:>10} {:>9} {:>9} | {:>10} {:>10} {:>9} {:>9} | {:>10}",
            "ef",
            "recall",
            "QPS (1t)",
            "QPS (mt)",
            "p50 µs",
            "p99 µs",
            "eng QPS",
            "eng mt",
            "eng p50",
            "eng p99",
            "added p50"
        );
        for r in rows {
            println!(
                "{:>6} {:>8} {:>10} {:>10} {:>9} {:>9} | {:>10} {:>10} {:>9} {:>9} | {:>10}",
                r["ef"],
                r["recall"],
                r["qps"],
                r["qps_mt"],
                r["p50_us"],
                r["p99_us"],
                r["engine_qps"],
                r["engine_qps_mt"],
                r["engine_p50_us"],
                r["engine_p99_us"],
                r["added_p50_us"]
            );
        }
    }
}
