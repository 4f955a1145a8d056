//! Timing helpers shared by the benchmarks: timed passes (latency percentiles, QPS),
//! multi-thread and multi-client QPS, and resource figures.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use vecshard_engine::{SearchRequest, Shard};

/// Peak resident set size of this process (VmHWM), in bytes.
pub fn peak_rss_bytes() -> u64 {
    status_bytes("VmHWM:")
}

/// Resident set size of this process now (VmRSS), in bytes.
pub fn rss_bytes() -> u64 {
    status_bytes("VmRSS:")
}

/// A `kB` field of `/proc/self/status`, in bytes (0 where there is none).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
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
