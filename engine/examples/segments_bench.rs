//! Segments after ingest + idle, and search cost over them against one segment:
//!
//! ```text
//! cargo run --release -p vecshard-engine --example segments_bench -- \
//!     [--points 200000] [--dim 32] [--flushes 10] [--max-segments 3] [--min-width 3] [--efs 16,32,64]
//! ```
//! Ingests `--points` clustered vectors with background flushes and merges on (the
//! memtable sized for about `--flushes` flushes), waits until the background work is done,
//! and prints the segment count. Then, for each ef, search p50 and recall@10 (against an
//! exact search) over those segments, and again after `compact()` leaves one segment.
//! `--min-width 1000000 --max-segments 8` approximates the old policy (merge the smallest
//! beyond 8).
//!
//! 200k × 32-d, 10 flushes, on 2 busy cores: the default policy ends in 2 segments
//! (p50 52 µs at ef 16, recall@10 0.964; one segment: 44 µs at ef 32, recall 0.965); the
//! old one in 8 (130 µs at ef 16, recall 0.981; one segment: 63 µs at ef 64, recall 0.976).

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use vecshard_engine::{Durability, Hit, Metric, Options, Point, SearchRequest, Shard, ShardSpec};

struct Args {
    points: usize,
    dim: usize,
    flushes: usize,
    max_segments: usize,
    min_width: usize,
    efs: Vec<usize>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        points: 200_000,
        dim: 32,
        flushes: 10,
        max_segments: Options::default().max_segments,
        min_width: Options::default().min_merge_width,
        efs: vec![16, 32, 64],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || -> Result<usize, String> {
            value.parse().map_err(|e| format!("{flag} {value:?}: {e}"))
        };
        match flag.as_str() {
            "--points" => a.points = num()?,
            "--dim" => a.dim = num()?,
            "--flushes" => a.flushes = num()?,
            "--max-segments" => a.max_segments = num()?,
            "--min-width" => a.min_width = num()?,
            "--efs" => {
                a.efs = value
                    .split(',')
                    .map(|v| v.parse().map_err(|e| format!("--efs {v:?}: {e}")))
                    .collect::<Result<_, String>>()?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.points < 1000 || a.dim == 0 || a.flushes == 0 || a.efs.is_empty() {
        return Err("need --points ≥ 1000, --dim ≥ 1, --flushes ≥ 1, --efs".into());
    }
    Ok(a)
}

/// Points around 100 random centres: clustered like real embeddings.
fn data(seed: u64, n: usize, dim: usize) -> Vec<Vec<f32>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..100)
        .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..centres.len())];
            // Spread falling off by dimension: a low intrinsic dimension, like embeddings.
            c.iter()
                .enumerate()
                .map(|(d, x)| x + rng.random_range(-0.5f32..0.5) * 0.85f32.powi(d as i32))
                .collect()
        })
        .collect()
}

fn keys(hits: &[Hit]) -> Vec<vecshard_engine::Key> {
    hits.iter().map(|h| h.key.clone()).collect()
}

/// (p50 µs, recall@10) of `queries` at `ef`.
fn measure(
    shard: &Shard,
    queries: &[Vec<f32>],
    truth: &[Vec<vecshard_engine::Key>],
    ef: usize,
) -> (f64, f64) {
    let mut lat = Vec::with_capacity(queries.len());
    let mut found = 0usize;
    for _round in 0..3 {
        for (q, t) in queries.iter().zip(truth) {
            let mut req = SearchRequest::new(q.clone(), 10);
            req.ef = Some(ef);
            let start = Instant::now();
            let hits = shard.search(&req).expect("search");
            lat.push(start.elapsed().as_secs_f64() * 1e6);
            found += keys(&hits).iter().filter(|k| t.contains(k)).count();
        }
    }
    lat.sort_by(f64::total_cmp);
    (
        lat[lat.len() / 2],
        found as f64 / (3 * 10 * queries.len()) as f64,
    )
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("segments_bench: {e}");
            std::process::exit(2);
        }
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut spec = ShardSpec::new(a.dim, Metric::L2);
    spec.index.ef_construction = 64;
    // About what one row costs in a memtable (vector, graph links, key, bookkeeping).
    let row_bytes = a.dim * 4 + spec.index.m * 2 * 4 + 200;
    let opts = Options {
        durability: Durability::Buffered,
        memtable_bytes: (a.points / a.flushes * row_bytes).max(64 << 10),
        max_segments: a.max_segments,
        min_merge_width: a.min_width,
        ..Options::default()
    };
    let shard = Shard::create(dir.path().to_str().unwrap(), spec, opts).expect("create");
    // Queries come from the same distribution as the points (300 held out).
    let mut vectors = data(1, a.points + 300, a.dim);
    let queries = vectors.split_off(a.points);
    let started = Instant::now();
    for (i, chunk) in vectors.chunks(5_000).enumerate() {
        let points = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| Point::new((i * 5_000 + j) as u64, v.clone()))
            .collect();
        shard.upsert(points).expect("upsert");
    }
    let ingest_s = started.elapsed().as_secs_f64();
    // Idle: the last memtable flushed, then wait until the policy's cap is met and the
    // background merges stop (a merge in progress changes nothing until it publishes).
    shard.flush().expect("flush");
    let mut last = shard.stats();
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (last.segments as usize > a.max_segments && Instant::now() < deadline)
        || quiet_since.elapsed() < Duration::from_secs(3)
    {
        std::thread::sleep(Duration::from_millis(100));
        let st = shard.stats();
        if st.compactions != last.compactions || st.segments != last.segments {
            quiet_since = Instant::now();
        }
        last = st;
    }
    let idle_s = started.elapsed().as_secs_f64() - ingest_s;
    println!(
        "{} points {}-d, {} flushes, {} merges: {} segments after ingest ({ingest_s:.1} s) + idle ({idle_s:.1} s)",
        last.live_points, a.dim, last.flushes, last.compactions, last.segments
    );

    let truth: Vec<Vec<vecshard_engine::Key>> = queries
        .iter()
        .map(|q| {
            let mut req = SearchRequest::new(q.clone(), 10);
            req.exact = true;
            keys(&shard.search(&req).expect("exact search"))
        })
        .collect();
    let multi: Vec<(f64, f64)> = a
        .efs
        .iter()
        .map(|&ef| measure(&shard, &queries, &truth, ef))
        .collect();
    let segments = last.segments;
    shard.compact().expect("compact");
    let single: Vec<(f64, f64)> = a
        .efs
        .iter()
        .map(|&ef| measure(&shard, &queries, &truth, ef))
        .collect();
    println!();
    println!("| ef | {segments} segments p50 µs | recall@10 | 1 segment p50 µs | recall@10 |");
    println!("|---|---|---|---|---|");
    for (ef, (m, s)) in a.efs.iter().zip(multi.iter().zip(&single)) {
        println!(
            "| {ef} | {:.0} | {:.3} | {:.0} | {:.3} |",
            m.0, m.1, s.0, s.1
        );
    }
    shard.close().expect("close");
}
