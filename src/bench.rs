//! `vecshard bench`: ingest a TEXMEX dataset through the public engine API (durable writes,
//! real WAL), flush, reopen, and measure recall, QPS and latency for several `ef`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
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
    /// Minimum seconds per timed pass.
    #[arg(long, default_value_t = 1.0)]
    pub min_pass_secs: f64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
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
    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().join("shard")
        }
    };
    let location = dir
        .to_str()
        .context("shard directory is not UTF-8")?
        .to_string();
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
    let stats = shard.stats();
    let disk_bytes = dir_bytes(&dir);

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
        "summary": true, "points": n, "dim": dim, "metric": metric.as_str(), "k": a.k,
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

fn multi_thread_qps(shard: &Shard, reqs: &[SearchRequest], threads: usize, min_secs: f64) -> f64 {
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads.max(1) {
            let done = &done;
            s.spawn(move || {
                let mut i = t;
                while start.elapsed() < Duration::from_secs_f64(min_secs) {
                    let _ = shard.search(&reqs[i % reqs.len()]);
                    done.fetch_add(1, Ordering::Relaxed);
                    i += threads;
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

fn dir_bytes(dir: &Path) -> u64 {
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
