//! Search latency while a shard compacts, against the same shard idle:
//!
//! ```text
//! cargo run --release -p vecshard-engine --example compaction_bench -- \
//!     [--points 1000000] [--dim 32] [--segments 4] [--m 16] [--efc 64] [--ef 64] [--k 10]
//! ```
//! Builds a shard of `--points` random vectors in `--segments` flushed segments (a tenth
//! of the points deleted, so the merge has work), then one thread searches one query at a
//! time: first with the shard idle, then while `compact()` merges every segment on another
//! thread. Prints p50 / p99 / max per phase. A compaction that blocks readers shows up as
//! a max (and p99) near the length of its publish step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use vecshard_engine::{Durability, Key, Metric, Options, Point, SearchRequest, Shard, ShardSpec};

struct Args {
    points: usize,
    dim: usize,
    segments: usize,
    m: usize,
    efc: usize,
    ef: usize,
    k: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        points: 1_000_000,
        dim: 32,
        segments: 4,
        m: 16,
        efc: 64,
        ef: 64,
        k: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: usize = value
            .parse()
            .map_err(|e| format!("{flag} {value:?}: {e}"))?;
        match flag.as_str() {
            "--points" => a.points = n,
            "--dim" => a.dim = n,
            "--segments" => a.segments = n,
            "--m" => a.m = n,
            "--efc" => a.efc = n,
            "--ef" => a.ef = n,
            "--k" => a.k = n,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.points < a.segments.max(1) * 10 || a.dim == 0 {
        return Err("need --points ≥ 10 × --segments and --dim ≥ 1".into());
    }
    Ok(a)
}

fn random_vector(rng: &mut SmallRng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Latencies in microseconds, sorted.
struct Latencies(Vec<f64>);

impl Latencies {
    fn at(&self, q: f64) -> f64 {
        let i = ((self.0.len() as f64 - 1.0) * q).round() as usize;
        self.0.get(i).copied().unwrap_or(0.0)
    }
}

/// Search one query at a time until `done` (or at least `min` searches).
fn search_loop(shard: &Shard, a: &Args, seed: u64, min: usize, done: &AtomicBool) -> Latencies {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::new();
    while out.len() < min || !done.load(Ordering::Relaxed) {
        let mut req = SearchRequest::new(random_vector(&mut rng, a.dim), a.k);
        req.ef = Some(a.ef);
        let t = Instant::now();
        let hits = shard.search(&req).expect("search");
        out.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(!hits.is_empty());
    }
    out.sort_by(f64::total_cmp);
    Latencies(out)
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("compaction_bench: {e}");
            std::process::exit(2);
        }
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut spec = ShardSpec::new(a.dim, Metric::L2);
    spec.index.m = a.m;
    spec.index.ef_construction = a.efc;
    let per_segment = a.points / a.segments;
    let opts = Options {
        background: false,
        durability: Durability::Buffered,
        memtable_bytes: (per_segment + 1) * (a.dim * 4 + a.m * 8 + 256),
        ..Options::default()
    };
    let shard = Shard::create(dir.path().to_str().unwrap(), spec, opts).expect("create");
    let mut rng = SmallRng::seed_from_u64(1);
    let started = Instant::now();
    let mut ingest_s = 0.0;
    let mut memtable = None;
    for s in 0..a.segments {
        let first = s * per_segment;
        let t = Instant::now();
        for chunk in (first..first + per_segment)
            .collect::<Vec<_>>()
            .chunks(10_000)
        {
            let points = chunk
                .iter()
                .map(|k| Point::new(*k as u64, random_vector(&mut rng, a.dim)))
                .collect();
            shard.upsert(points).expect("upsert");
        }
        ingest_s += t.elapsed().as_secs_f64();
        if s == 0 {
            // The first segment's rows, still in the memtable: memtable search speed.
            memtable = Some(search_loop(&shard, &a, 4, 1_000, &AtomicBool::new(true)));
        }
        shard.flush().expect("flush");
    }
    let deleted: Vec<Key> = (0..a.segments * per_segment)
        .step_by(10)
        .map(|k| Key::Int(k as u64))
        .collect();
    for chunk in deleted.chunks(10_000) {
        shard.delete(chunk.to_vec()).expect("delete");
    }
    shard.flush().expect("flush");
    let build_s = started.elapsed().as_secs_f64();
    let stats = shard.stats();
    println!(
        "shard: {} live points, {}-d, {} segments, built in {build_s:.1} s (ingest {:.0} points/s)",
        stats.live_points,
        a.dim,
        stats.segments,
        (a.segments * per_segment) as f64 / ingest_s
    );
    if let Some(m) = &memtable {
        println!(
            "memtable of {per_segment} rows: search p50 {:.0} µs, p99 {:.0} µs",
            m.at(0.5),
            m.at(0.99)
        );
    }

    let idle_done = AtomicBool::new(true);
    let idle = search_loop(&shard, &a, 2, 2_000, &idle_done);

    let done = AtomicBool::new(false);
    let (during, compact_s) = std::thread::scope(|s| {
        let compactor = s.spawn(|| {
            let t = Instant::now();
            shard.compact().expect("compact");
            done.store(true, Ordering::Relaxed);
            t.elapsed()
        });
        let during = search_loop(&shard, &a, 3, 100, &done);
        let took: Duration = compactor.join().expect("compaction thread");
        (during, took.as_secs_f64())
    });
    println!(
        "compaction of {} segments into {} took {compact_s:.1} s",
        stats.segments,
        shard.stats().segments
    );
    println!();
    println!("| phase | searches | p50 µs | p99 µs | max µs |");
    println!("|---|---|---|---|---|");
    for (name, l) in [("idle", &idle), ("during compaction", &during)] {
        println!(
            "| {name} | {} | {:.0} | {:.0} | {:.0} |",
            l.0.len(),
            l.at(0.5),
            l.at(0.99),
            l.at(1.0)
        );
    }
    println!();
    println!(
        "p99 during / idle: {:.2}×",
        during.at(0.99) / idle.at(0.99).max(f64::MIN_POSITIVE)
    );
    shard.close().expect("close");
}
