//! Warm and cold search of one format-2 shard read two ways in the same run: mapped from
//! local disk, and lazily (blocks on demand through the block cache) through the object-store
//! code path (`file://` over the same directory), design note 015:
//!
//! ```text
//! cargo run --release -p vecshard-engine --features object-store --example lazy_bench -- \
//!     DATASET_DIR --dir /tmp/x/shard [--limit ROWS] [--m 16] [--efc 200] [--ef 32] \
//!     [--queries 200] [--passes 3] [--read-batch 1,4,a4] [--latency-ms 25] [--mbps 100] \
//!     [--block-cache-bytes N] [--part-bytes N] [--max-requests N] [--cold-queries 100] [--cache-dir DIR] [--skip-cold] \
//!     [--prefetch none|upper-layers|all] [--warm-latency] [--skip-warm] [--opens N] \
//!     [--location s3://bucket/prefix]
//! ```
//! `DATASET_DIR` holds `base.fvecs`, `query.fvecs` and `groundtruth.ivecs`
//! (`shared/bench/gen_synthetic.py`). The shard is built once into `--dir` (format 2, one
//! segment) and reused by later runs.
//!
//! Warm: both handles search the same queries, alternating query by query (the machine's
//! load falls on both alike); one untimed pass fills the lazy handle's block cache, then
//! `--passes` timed passes; p50/p99 µs and recall@10 per handle and read batch (`aN`:
//! `ReadAhead::adaptive(N)`, N per round only in rounds that miss a block). With
//! `--warm-latency` the warm handles read through the same `LatencyStorage` as the cold
//! ones, so a block cache smaller than the working set pays the store's latency per miss.
//! Cold (unless `--skip-cold`): per read batch, a fresh lazy handle through
//! `LatencyStorage` (`--latency-ms` first byte, `--mbps` per request): open time and bytes,
//! the first query, p50/p99 of the first `--cold-queries` queries, their recall, and the
//! process's RSS before and after the open and after the queries (the mapped handle is
//! closed by then; `--skip-warm` leaves out the mapped handle and the warm part, so the
//! RSS is the lazy handle's alone over the process's own).
//! With `LAZY_BENCH_SMAPS=FILE` each cold pass copies `/proc/self/smaps` to FILE after its
//! queries (where the RSS is: heap, thread arenas, the binary) and prints how many file
//! descriptors (HTTP connections, over S3) the process holds.
//! `--location` reads the lazy handles from there instead of `file://` over `--dir` (a copy
//! of the shard built there, e.g. on a local S3 server whose bucket is a directory; the
//! endpoint and credentials come from the `AWS_*` variables). `--opens N` only opens N fresh lazy handles in turn and prints the open times (for
//! profiling the open).

use std::sync::Arc;
use std::time::{Duration, Instant};

use vecshard_engine::index::ReadAhead;
use vecshard_engine::storage::{Latency, LatencyStorage, StorageOptions, open_storage};
use vecshard_engine::{
    Durability, Key, Metric, Options, Point, Prefetch, SearchRequest, SegmentFormat, Shard,
    ShardSpec,
};

struct Args {
    dataset: std::path::PathBuf,
    dir: std::path::PathBuf,
    limit: Option<usize>,
    m: usize,
    efc: usize,
    ef: usize,
    queries: usize,
    passes: usize,
    batches: Vec<Batch>,
    latency_ms: u64,
    mbps: u64,
    block_cache_bytes: u64,
    part_bytes: u64,
    max_requests: usize,
    cold_queries: usize,
    cache_dir: Option<std::path::PathBuf>,
    skip_cold: bool,
    warm_latency: bool,
    skip_warm: bool,
    prefetch: Prefetch,
    opens: usize,
    location: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let dataset = it
        .next()
        .ok_or("usage: lazy_bench DATASET_DIR --dir DIR [flags]")?;
    let mut a = Args {
        dataset: dataset.into(),
        dir: std::path::PathBuf::new(),
        limit: None,
        m: 16,
        efc: 200,
        ef: 32,
        queries: 200,
        passes: 3,
        batches: vec![Batch(1, false), Batch(4, false)],
        latency_ms: 25,
        mbps: 100,
        block_cache_bytes: Options::default().block_cache_bytes,
        part_bytes: StorageOptions::default().part_bytes,
        max_requests: StorageOptions::default().max_requests,
        cold_queries: 100,
        cache_dir: None,
        skip_cold: false,
        warm_latency: false,
        skip_warm: false,
        prefetch: Prefetch::UpperLayers,
        opens: 0,
        location: None,
    };
    while let Some(flag) = it.next() {
        if flag == "--skip-cold" {
            a.skip_cold = true;
            continue;
        }
        if flag == "--skip-warm" {
            a.skip_warm = true;
            continue;
        }
        if flag == "--warm-latency" {
            a.warm_latency = true;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || -> Result<u64, String> {
            value.parse().map_err(|e| format!("{flag} {value:?}: {e}"))
        };
        match flag.as_str() {
            "--dir" => a.dir = value.clone().into(),
            "--limit" => a.limit = Some(num()? as usize),
            "--m" => a.m = num()? as usize,
            "--efc" => a.efc = num()? as usize,
            "--ef" => a.ef = num()? as usize,
            "--queries" => a.queries = num()? as usize,
            "--passes" => a.passes = num()? as usize,
            "--latency-ms" => a.latency_ms = num()?,
            "--mbps" => a.mbps = num()?,
            "--block-cache-bytes" => a.block_cache_bytes = num()?,
            "--part-bytes" => a.part_bytes = num()?,
            "--max-requests" => a.max_requests = num()? as usize,
            "--cold-queries" => a.cold_queries = num()? as usize,
            "--opens" => a.opens = num()? as usize,
            "--cache-dir" => a.cache_dir = Some(value.clone().into()),
            "--location" => a.location = Some(value.clone()),
            "--prefetch" => {
                a.prefetch = match value.as_str() {
                    "none" => Prefetch::None,
                    "upper-layers" => Prefetch::UpperLayers,
                    "all" => Prefetch::All,
                    _ => return Err(format!("--prefetch {value:?}")),
                }
            }
            "--read-batch" => {
                a.batches = value
                    .split(',')
                    .map(|v| {
                        let (n, adaptive) = match v.strip_prefix('a') {
                            Some(n) => (n, true),
                            None => (v, false),
                        };
                        let n = n.parse().map_err(|e| format!("--read-batch {v:?}: {e}"))?;
                        Ok(Batch(n, adaptive))
                    })
                    .collect::<Result<_, String>>()?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.dir.as_os_str().is_empty() || !a.dir.is_absolute() {
        return Err("--dir needs an absolute path".into());
    }
    if a.batches.is_empty() || a.passes == 0 || a.queries == 0 {
        return Err("need --read-batch, --passes ≥ 1, --queries ≥ 1".into());
    }
    Ok(a)
}

/// The vectors of an `.fvecs` file (or the ids of an `.ivecs` file, as `f32::from_bits`).
fn read_vecs(path: &std::path::Path, limit: usize) -> Result<Vec<Vec<f32>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() && out.len() < limit {
        let word = |i: usize| -> Result<u32, String> {
            bytes
                .get(i..i + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| format!("{}: truncated at byte {i}", path.display()))
        };
        let dim = word(at)? as usize;
        let v = (0..dim)
            .map(|d| word(at + 4 + 4 * d).map(f32::from_bits))
            .collect::<Result<Vec<f32>, String>>()?;
        out.push(v);
        at += 4 + 4 * dim;
    }
    Ok(out)
}

/// Build the shard in `dir` (format 2, one segment) unless it is there.
fn build(a: &Args) -> Result<(), String> {
    let location = a.dir.to_string_lossy().to_string();
    if a.dir.join("manifest").exists() || a.dir.join("manifests").exists() {
        println!("reusing the shard in {location}");
        return Ok(());
    }
    let base = read_vecs(&a.dataset.join("base.fvecs"), a.limit.unwrap_or(usize::MAX))?;
    let dim = base[0].len();
    let mut spec = ShardSpec::new(dim, Metric::L2);
    spec.index.m = a.m;
    spec.index.ef_construction = a.efc;
    let opts = Options {
        durability: Durability::Buffered,
        background: false,
        idle_merge_after: None,
        memtable_bytes: base.len() * (dim * 4 + a.m * 8 + 200) * 2 + (64 << 20),
        segment_format: SegmentFormat::V2,
        ..Options::default()
    };
    let t = Instant::now();
    let shard = Shard::create(&location, spec, opts).map_err(|e| e.to_string())?;
    for (i, chunk) in base.chunks(5_000).enumerate() {
        let points = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| Point::new((i * 5_000 + j) as u64, v.clone()))
            .collect();
        shard.upsert(points).map_err(|e| e.to_string())?;
    }
    shard.flush().map_err(|e| e.to_string())?;
    let st = shard.stats();
    shard.close().map_err(|e| e.to_string())?;
    println!(
        "built {} points {dim}-d in {} segment(s), {} bytes, in {:.1} s",
        st.live_points,
        st.segments,
        st.segment_bytes,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A `--read-batch` value: candidates per round, and whether only rounds that miss widen.
#[derive(Debug, Clone, Copy)]
struct Batch(usize, bool);

impl std::fmt::Display for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", if self.1 { "a" } else { "" }, self.0)
    }
}

/// A read-only handle on the shard through the object-store code path.
fn open_lazy(
    a: &Args,
    batch: Batch,
    latency: Option<Latency>,
) -> Result<(Shard, Option<Arc<LatencyStorage>>, f64), String> {
    let location = a
        .location
        .clone()
        .unwrap_or_else(|| format!("file://{}", a.dir.display()));
    let opts = Options {
        read_only: true,
        block_cache_bytes: a.block_cache_bytes,
        cache_dir: a.cache_dir.clone(),
        prefetch: a.prefetch,
        read_ahead: ReadAhead {
            batch: batch.0,
            adaptive: batch.1,
            ..ReadAhead::EXACT
        },
        ..Options::default()
    };
    let storage_opts = StorageOptions {
        block_cache_bytes: opts.block_cache_bytes,
        cache_dir: opts.cache_dir.clone(),
        part_bytes: a.part_bytes,
        max_requests: a.max_requests,
        ..StorageOptions::default()
    };
    let t = Instant::now();
    let mut storage = open_storage(&location, &storage_opts).map_err(|e| e.to_string())?;
    let slow = latency.map(|l| Arc::new(LatencyStorage::new(storage.clone(), l)));
    if let Some(s) = &slow {
        storage = s.clone();
    }
    let shard = Shard::open_with(storage, None, None, opts).map_err(|e| e.to_string())?;
    Ok((shard, slow, t.elapsed().as_secs_f64()))
}

/// `--opens N`: open N fresh lazy handles one after another (no search) and print each
/// open's time and bytes, then their median: the open alone, e.g. under a profiler.
fn opens(a: &Args, latency: Latency) -> Result<(), String> {
    let slow = (a.latency_ms > 0 || a.mbps > 0).then_some(latency);
    let mut times = Vec::with_capacity(a.opens);
    for _ in 0..a.opens {
        let (shard, _, s) = open_lazy(a, a.batches[0], slow)?;
        println!("open {:.3} s, {} B fetched", s, shard.stats().bytes_fetched);
        times.push(s);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{} opens, {} ms + {} MB/s: p50 {:.3} s",
        a.opens,
        a.latency_ms,
        a.mbps,
        pct(&times, 0.5)
    );
    Ok(())
}

/// This process's resident set (VmRSS), in MB (10^6 bytes; /proc says kB for KiB).
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib * 1024.0 / 1e6)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => sorted[((n as f64 * p) as usize).min(n - 1)],
    }
}

fn main() -> Result<(), String> {
    // As the node does (`MALLOC_ARENA_MAX=16` gives glibc's default on 2 cores, for an A/B).
    // `LAZY_BENCH_NO_TRIM=1` leaves the trimming thread out, for an A/B.
    vecshard_engine::malloc::limit_arenas();
    if std::env::var_os("LAZY_BENCH_NO_TRIM").is_none() {
        vecshard_engine::malloc::trim_in_background();
    }
    let a = parse()?;
    build(&a)?;
    let queries = read_vecs(
        &a.dataset.join("query.fvecs"),
        a.queries.max(a.cold_queries),
    )?;
    let truth: Vec<Vec<Key>> = read_vecs(&a.dataset.join("groundtruth.ivecs"), queries.len())?
        .into_iter()
        .map(|ids| {
            ids.iter()
                .take(10)
                .map(|id| Key::Int(u64::from(id.to_bits())))
                .collect()
        })
        .collect();
    let requests: Vec<SearchRequest> = queries
        .iter()
        .map(|q| {
            let mut r = SearchRequest::new(q.clone(), 10);
            r.ef = Some(a.ef);
            r
        })
        .collect();
    let recall_of = |hits: &[vecshard_engine::Hit], i: usize| {
        hits.iter().filter(|h| truth[i].contains(&h.key)).count()
    };
    if a.limit.is_some() {
        println!("(--limit: recall is against the full set's ground truth, so it is low)");
    }

    let latency = Latency::new(a.latency_ms, a.mbps);
    if a.opens > 0 {
        return opens(&a, latency);
    }
    if !a.skip_warm {
        let mapped = Shard::open(
            &a.dir.to_string_lossy(),
            Options {
                read_only: true,
                ..Options::default()
            },
        )
        .map_err(|e| e.to_string())?;
        let mut lazy = Vec::new();
        for &b in &a.batches {
            let (shard, _, open_s) = open_lazy(&a, b, a.warm_latency.then_some(latency))?;
            println!(
                "lazy handle (read batch {b}): open {:.3} s, {} bytes fetched",
                open_s,
                shard.stats().bytes_fetched
            );
            lazy.push(shard);
        }
        let warm = &requests[..a.queries.min(requests.len())];
        // Fill the caches (and the CPU's), untimed.
        for r in warm {
            mapped.search(r).map_err(|e| e.to_string())?;
            for s in &lazy {
                s.search(r).map_err(|e| e.to_string())?;
            }
        }
        let before: Vec<_> = lazy.iter().map(|s| s.stats()).collect();
        let handles = 1 + lazy.len();
        let mut lat = vec![Vec::new(); handles];
        let mut found = vec![0usize; handles];
        let mut same = vec![0usize; handles];
        for _ in 0..a.passes {
            for (i, r) in warm.iter().enumerate() {
                let t = Instant::now();
                let want = mapped.search(r).map_err(|e| e.to_string())?;
                lat[0].push(t.elapsed().as_secs_f64() * 1e6);
                found[0] += recall_of(&want, i);
                for (h, s) in lazy.iter().enumerate() {
                    let t = Instant::now();
                    let got = s.search(r).map_err(|e| e.to_string())?;
                    lat[h + 1].push(t.elapsed().as_secs_f64() * 1e6);
                    found[h + 1] += recall_of(&got, i);
                    let keys = |x: &[vecshard_engine::Hit]| -> Vec<Key> {
                        x.iter().map(|h| h.key.clone()).collect()
                    };
                    same[h + 1] += usize::from(keys(&got) == keys(&want));
                }
            }
        }
        println!(
            "warm, ef {}, {} queries × {} passes (µs; block cache {} B):",
            a.ef,
            warm.len(),
            a.passes,
            a.block_cache_bytes
        );
        let n = (warm.len() * a.passes) as f64;
        let base_p50 = {
            let mut l = lat[0].clone();
            l.sort_by(f64::total_cmp);
            pct(&l, 0.5)
        };
        for (h, l) in lat.iter_mut().enumerate() {
            l.sort_by(f64::total_cmp);
            let name = match h {
                0 => "mapped".to_string(),
                _ => format!("lazy batch {}", a.batches[h - 1]),
            };
            println!(
                "  {name:<14} p50 {:>8.1}  p99 {:>8.1}  recall@10 {:.4}  p50/mapped {:.2}{}",
                pct(l, 0.5),
                pct(l, 0.99),
                found[h] as f64 / (n * 10.0),
                pct(l, 0.5) / base_p50,
                if h > 0 {
                    format!(
                        "  same answers as mapped {:.1} %",
                        same[h] as f64 * 100.0 / n
                    )
                } else {
                    String::new()
                }
            );
        }
        for (s, b) in lazy.iter().zip(&before) {
            let st = s.stats();
            println!(
                "  lazy cache: {} resident bytes; in the timed passes {} memory hits (block-table \
             reads included), {} misses",
                st.cache_resident_bytes,
                st.cache_memory_hits - b.cache_memory_hits,
                st.cache_misses - b.cache_misses
            );
        }
        drop(lazy);
        // The mapped handle's pages count in RSS; the cold part measures the lazy handle alone.
        drop(mapped);
    }

    if a.skip_cold {
        return Ok(());
    }
    for &b in &a.batches {
        let rss_before = rss_mb();
        let (shard, slow, open_s) = open_lazy(&a, b, Some(latency))?;
        let rss_open = rss_mb();
        let open_bytes = shard.stats().bytes_fetched;
        let open_requests = slow.as_ref().map_or(0, |s| s.injected().requests);
        let mut l = Vec::new();
        let mut hits = 0;
        for (i, r) in requests.iter().take(a.cold_queries).enumerate() {
            let t = Instant::now();
            let got = shard.search(r).map_err(|e| e.to_string())?;
            l.push(t.elapsed().as_secs_f64() * 1e3);
            hits += recall_of(&got, i);
        }
        if let Ok(to) = std::env::var("LAZY_BENCH_SMAPS") {
            let _ = std::fs::copy("/proc/self/smaps", to);
            let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
            println!("open file descriptors: {fds}");
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            {
                // SAFETY: mallinfo2 only reads the allocator's counters.
                let m = unsafe { libc::mallinfo2() };
                let before = rss_mb();
                let t = Instant::now();
                vecshard_engine::malloc::trim();
                let took = t.elapsed().as_secs_f64() * 1e3;
                println!(
                    "malloc: in use {:.0} MB, free in the heap {:.0} MB, mmapped {:.0} MB, \
                     arenas {:.0} MB; RSS {before:.0} MB, after malloc_trim ({took:.1} ms) {:.0} MB",
                    m.uordblks as f64 / 1e6,
                    m.fordblks as f64 / 1e6,
                    m.hblkhd as f64 / 1e6,
                    m.arena as f64 / 1e6,
                    rss_mb()
                );
            }
        }
        let first = l.first().copied().unwrap_or(0.0);
        let count = l.len();
        l.sort_by(f64::total_cmp);
        let injected = slow.map(|s| s.injected()).unwrap_or_default();
        println!(
            "RSS MB: before the open {rss_before:.0}, after it {rss_open:.0}, after the cold \
             queries {:.0} (block cache resident {} B)",
            rss_mb(),
            shard.stats().cache_resident_bytes
        );
        println!(
            "cold, read batch {b}, {} ms + {} MB/s: open {:.3} s ({} B, {open_requests} requests \
             charged), first query {:.0} ms, \
             first {count} p50 {:.0} / p99 {:.0} ms, recall@10 {:.4}, fetched {} B in {} requests \
             ({:.1} s injected)",
            a.latency_ms,
            a.mbps,
            open_s,
            open_bytes,
            first,
            pct(&l, 0.5),
            pct(&l, 0.99),
            hits as f64 / (count as f64 * 10.0),
            shard.stats().bytes_fetched,
            injected.requests,
            injected.delay.as_secs_f64()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
