//! `vecshard bench`: ingest a TEXMEX dataset through the public engine API (durable writes,
//! real WAL), flush, reopen, and measure recall, QPS and latency for several `ef`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use vecshard_engine::storage::Latency;
use vecshard_engine::{
    Key, Metric, Options, Point, Prefetch, ReadAhead, SearchRequest, SegmentFormat, Shard,
    ShardSpec,
};

use crate::measure::{dir_bytes, multi_thread_qps, peak_rss_bytes, round, timed_passes};
use crate::{Dataset, cold};

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
    /// With --location: first-byte latency injected into every object-store request of
    /// the cold open and the searches (ingest is not slowed), e.g. 25 for S3 in-region.
    #[arg(long, requires = "location")]
    pub object_latency_ms: Option<u64>,
    /// With --object-latency-ms: bandwidth of one request in MB/s (0: unlimited).
    #[arg(long, default_value_t = 0, requires = "object_latency_ms")]
    pub object_bandwidth_mbps: u64,
    /// The shard at --location or --dir already holds this dataset (from an earlier run
    /// with the same parameters): skip ingest and measure the cold open and searches only.
    #[arg(long)]
    pub skip_ingest: bool,
    /// Format of the segments the ingest writes: 1 (the engine's default), 2, or 0 (`auto`:
    /// 2 on object stores, read lazily in blocks through the caches; 1 on local disk).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=2))]
    pub segment_format: u32,
    /// Block cache bound of the reopened shard in bytes (default: the engine's 256 MiB).
    #[arg(long)]
    pub block_cache_bytes: Option<u64>,
    /// What the reopened object-store shard warms at open: none, upper-layers, all.
    #[arg(long, default_value = "upper-layers")]
    pub prefetch: String,
    /// Candidates a lazy search expands per round that must read blocks, as the node's
    /// `engine.read_batch` (adaptive: a round served from memory expands one, so warm
    /// searches answer as the local search). 1: every round expands one. 1 to 64, as
    /// the node's setting.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub read_batch: u32,
    /// Use only the first N queries (and their ground truth) for the warm sweep: a cache
    /// smaller than the working set makes every warm query pay store latency.
    #[arg(long)]
    pub queries: Option<usize>,
    /// Timed passes per `ef` (the median one is reported).
    #[arg(long, default_value_t = 5)]
    pub passes: usize,
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

fn dataset_metric(dir: &Path) -> Metric {
    let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&meta).unwrap_or_default();
    match v.get("metric").and_then(|m| m.as_str()) {
        Some("ip") | Some("dot") | Some("cosine") => Metric::Cosine,
        _ => Metric::L2,
    }
}

/// Run `vecshard bench` on `data` (read from `a.dataset`, ground truth required).
pub fn run(a: BenchArgs, data: Dataset) -> Result<()> {
    let Dataset {
        base,
        mut queries,
        mut truth,
    } = data;
    if let Some(n) = a.queries {
        queries.truncate(n);
        if let Some(t) = truth.as_mut() {
            t.truncate(n);
        }
    }
    let truth =
        truth.with_context(|| format!("dataset {}: no groundtruth", a.dataset.display()))?;
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
        return crate::via_node::run(&a, base, &queries, &truth, metric);
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
    let prefetch = match a.prefetch.as_str() {
        "none" => Prefetch::None,
        "upper-layers" => Prefetch::UpperLayers,
        "all" => Prefetch::All,
        other => bail!("--prefetch {other:?}: expected none, upper-layers or all"),
    };
    let opts = Options {
        memtable_bytes,
        segment_format: match a.segment_format {
            1 => SegmentFormat::V1,
            2 => SegmentFormat::V2,
            _ => SegmentFormat::Auto,
        },
        block_cache_bytes: a
            .block_cache_bytes
            .unwrap_or(Options::default().block_cache_bytes),
        prefetch,
        read_ahead: match a.read_batch {
            1 => ReadAhead::EXACT,
            n => ReadAhead::adaptive(n as usize),
        },
        ..Options::default()
    };
    let n = base.len();

    let (searchable_s, flush_s, build_s) = match a.skip_ingest {
        true => {
            drop(base);
            (0.0, 0.0, 0.0)
        }
        false => ingest(&a, &location, spec, &opts, base)?,
    };

    let latency = a
        .object_latency_ms
        .map(|ms| Latency::new(ms, a.object_bandwidth_mbps));
    let cold_reqs: Vec<SearchRequest> = queries
        .iter()
        .map(|q| {
            let mut r = SearchRequest::new(q.clone(), a.k);
            r.ef = a.ef.first().copied();
            r
        })
        .collect();
    let (shard, cold) = cold::open_cold(&location, &opts, latency, &cold_reqs)?;
    let stats = shard.stats();
    if stats.live_points != n as u64 {
        bail!(
            "shard {location} holds {} points, the dataset {n}: it is not this dataset \
             (drop --skip-ingest to build it)",
            stats.live_points
        );
    }
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
        let single = timed_passes(reqs.len(), a.min_pass_secs, a.passes.max(1), |i| {
            let _ = shard.search(&reqs[i]);
        });
        let mt_qps = multi_thread_qps(&shard, &reqs, a.threads, a.min_pass_secs);
        rows.push(serde_json::json!({
            "ef": ef, "recall": round(recall, 4), "qps": round(single.qps, 0), "qps_mt": round(mt_qps, 0),
            "threads": a.threads, "p50_us": round(single.p50_us, 1), "p99_us": round(single.p99_us, 1),
        }));
    }
    let ingest_rate = match searchable_s > 0.0 {
        true => round(n as f64 / searchable_s, 0),
        false => 0.0,
    };
    let mut summary = serde_json::json!({
        "summary": true, "via": "engine", "points": n, "dim": dim, "metric": metric.as_str(), "k": a.k,
        "ingest_points_per_s": ingest_rate, "searchable_s": round(searchable_s, 2),
        "flush_s": round(flush_s, 2), "build_s": round(build_s, 2),
        "segments": stats.segments, "disk_bytes": disk_bytes, "peak_rss_bytes": peak_rss_bytes(),
        "memtable_bytes": opts.memtable_bytes, "block_cache_bytes": opts.block_cache_bytes,
        "segment_format": a.segment_format, "prefetch": a.prefetch, "read_batch": a.read_batch,
        "location": if a.location.is_some() { location.as_str() } else { "local" },
    });
    if let (Some(out), serde_json::Value::Object(c)) = (summary.as_object_mut(), cold.json()) {
        out.extend(c);
    }
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

/// Ingest `base` into a new shard at `location` with `threads` writers in batches of
/// `batch`, every write durable; flush and close. Returns the seconds until searchable,
/// of the flush, and in all.
fn ingest(
    a: &BenchArgs,
    location: &str,
    spec: ShardSpec,
    opts: &Options,
    base: Vec<Vec<f32>>,
) -> Result<(f64, f64, f64)> {
    let n = base.len();
    let shard = Shard::create(location, spec, opts.clone())?;
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
    Ok((searchable_s, flush_s, build_s))
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
    let mb = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0) / 1e6;
    println!(
        "cold: open {} s ({:.1} MB fetched), first query {} ms, first {} queries p50 {} / p99 {} ms, RSS after open {:.1} MB, after them {:.1} MB; injected latency {} ms: {} requests, {} s",
        s["open_s"],
        mb(&s["open_bytes_fetched"]),
        s["first_query_ms"],
        s["cold_queries"],
        s["cold_p50_ms"],
        s["cold_p99_ms"],
        mb(&s["rss_after_open_bytes"]),
        mb(&s["rss_after_cold_queries_bytes"]),
        s["object_latency_ms"],
        s["injected_requests"],
        s["injected_s"]
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
