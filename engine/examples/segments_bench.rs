//! Segments after ingest + idle, and search cost over them against one segment:
//!
//! ```text
//! cargo run --release -p vecshard-engine --example segments_bench -- \
//!     [--points 200000] [--dim 32] [--flushes 10] [--max-segments 3] [--min-width 3] \
//!     [--efs 16,32,64] [--rounds 3] [--dir DIR] [--dataset DIR] [--m 16] \
//!     [--ef-construction 64] [--memtable-bytes N] [--idle-merge-after SECS] \
//!     [--segments 3,8]
//! ```
//! Ingests `--points` clustered vectors (or the base vectors of `--dataset`, a directory
//! with `base.fvecs`, `query.fvecs` and `groundtruth.ivecs` as
//! `shared/bench/gen_synthetic.py` writes them) with background flushes and merges on,
//! the memtable sized for about `--flushes` flushes (or `--memtable-bytes`; `0`: the
//! default 64 MiB), waits until the background work is done, and prints the segment count
//! and how the segments changed while it waited. Then, for each ef, search p50/p99 and
//! recall@10 (against an exact search, or the dataset's ground truth) over those segments,
//! and again after `compact()` leaves one segment, and the multi-segment p50 over the
//! single-segment p50 at equal recall (the single segment's p50 interpolated at the
//! multi-segment recall).
//!
//! `--segments 3,8,80:15:5` instead splits the points into exactly that many equal
//! segments, or segments of those relative sizes (background work off, a flush after
//! each part; a 1-segment shard too, the baseline),
//! and searches each shard two ways, alternating query by query (one shard and ef at a
//! time): `Shard::search` (the
//! walks share the k-th best distance and `ef`) and `Shard::search_separately` (each
//! segment on its own with the full `ef`, the path before issue 14). It prints p50/p99
//! and recall@10 of both and each p50 over the 1-segment p50 at equal recall. With
//! `--dir` the split shards are kept in `DIR/split-…` and reused.
//!
//! `--idle-merge-after SECS` sets `Options::idle_merge_after` (default: the option's
//! default; `0`: off, and the bench flushes the last memtable itself): with it on, waiting
//! means until the idle merge has left one segment and an empty memtable (`Stats::merging`
//! tells a running merge).
//!
//! With `--dir DIR` the two shards are kept in `DIR/multi` and `DIR/single` (a compacted
//! checkpoint of the first) and reused by later runs with the same `DIR`, which then only
//! search them (background work off): before/after builds can alternate on the same data.
//! `--min-width 1000000 --max-segments 8` approximates the old policy (merge the smallest
//! beyond 8).
//!
//! 200k × 32-d, 10 flushes, on 2 busy cores: the default policy ends in 2 segments
//! (p50 52 µs at ef 16, recall@10 0.964; one segment: 44 µs at ef 32, recall 0.965); the
//! old one in 8 (130 µs at ef 16, recall 0.981; one segment: 63 µs at ef 64, recall 0.976).
//! (Measured before the idle merge, i.e. with `--idle-merge-after 0`.)
//!
//! clustered-128 (200k × 128-d from `gen_synthetic.py`), `--m 16 --ef-construction 200
//! --flushes 10`, one run each on 2 cores shared with other builds (load ≈ 15):
//! - `--idle-merge-after 0`: 2 segments after ingest (470 s) + merges (128 s); p50 at
//!   equal recall 1.61× one segment at ef 10 (recall 0.905), 1.38× at ef 16 (0.962),
//!   1.36× at ef 24 (0.986), 1.42× at ef 32 (0.994).
//! - defaults (idle merge after 10 s): 3 segments after ingest, then one idle merge (the
//!   largest segment's graph extended with the other rows, on one niced background thread) left
//!   1 segment 73 s later; p50 0.8–1.06× the compacted copy's at every ef (the same
//!   graph: noise), e.g. 31 µs at ef 16 (recall 0.908), 42 µs at ef 24 (0.955).

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
    rounds: usize,
    dir: Option<std::path::PathBuf>,
    dataset: Option<std::path::PathBuf>,
    m: usize,
    ef_construction: usize,
    memtable_bytes: Option<usize>,
    idle_merge_after: Option<Duration>,
    /// `--segments`: each split as the relative sizes of its segments.
    segments: Vec<Vec<usize>>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        points: 200_000,
        dim: 32,
        flushes: 10,
        max_segments: Options::default().max_segments,
        min_width: Options::default().min_merge_width,
        efs: vec![16, 32, 64],
        rounds: 3,
        dir: None,
        dataset: None,
        m: 16,
        ef_construction: 64,
        memtable_bytes: None,
        idle_merge_after: Options::default().idle_merge_after,
        segments: Vec::new(),
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
            "--rounds" => a.rounds = num()?,
            "--dir" => a.dir = Some(value.clone().into()),
            "--dataset" => a.dataset = Some(value.clone().into()),
            "--m" => a.m = num()?,
            "--ef-construction" => a.ef_construction = num()?,
            "--memtable-bytes" => a.memtable_bytes = Some(num()?),
            "--idle-merge-after" => {
                a.idle_merge_after = match num()? {
                    0 => None,
                    secs => Some(Duration::from_secs(secs as u64)),
                }
            }
            "--segments" => {
                a.segments = value
                    .split(',')
                    .map(split_sizes)
                    .collect::<Result<_, String>>()?
            }
            "--efs" => {
                a.efs = value
                    .split(',')
                    .map(|v| v.parse().map_err(|e| format!("--efs {v:?}: {e}")))
                    .collect::<Result<_, String>>()?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.points < 1000 || a.dim == 0 || a.flushes == 0 || a.efs.is_empty() || a.rounds == 0 {
        return Err("need --points ≥ 1000, --dim ≥ 1, --flushes ≥ 1, --efs, --rounds ≥ 1".into());
    }
    Ok(a)
}

/// One `--segments` item: `N` (N equal segments) or relative sizes such as `80:15:5`.
fn split_sizes(item: &str) -> Result<Vec<usize>, String> {
    let bad = |e: String| format!("--segments {item:?}: {e}");
    let sizes: Vec<usize> = if item.contains(':') {
        item.split(':')
            .map(|w| w.parse::<usize>().map_err(|e| bad(e.to_string())))
            .collect::<Result<_, _>>()?
    } else {
        let n: usize = item
            .parse()
            .map_err(|e: std::num::ParseIntError| bad(e.to_string()))?;
        vec![1; n]
    };
    if sizes.is_empty() || sizes.contains(&0) {
        return Err(bad("every segment needs a size ≥ 1".into()));
    }
    Ok(sizes)
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

/// The vectors of an `.fvecs` file (or the ids of an `.ivecs` file, as `f32::from_bits`).
fn read_vecs(path: &std::path::Path) -> Result<Vec<Vec<f32>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
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

/// Base vectors, queries and each query's true top 10 (row numbers as keys).
type Dataset = (Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<Vec<vecshard_engine::Key>>);

fn read_dataset(dir: &std::path::Path) -> Result<Dataset, String> {
    let base = read_vecs(&dir.join("base.fvecs"))?;
    let queries = read_vecs(&dir.join("query.fvecs"))?;
    let truth = read_vecs(&dir.join("groundtruth.ivecs"))?
        .into_iter()
        .map(|ids| {
            ids.iter()
                .take(10)
                .map(|id| vecshard_engine::Key::Int(u64::from(id.to_bits())))
                .collect()
        })
        .collect();
    Ok((base, queries, truth))
}

fn keys(hits: &[Hit]) -> Vec<vecshard_engine::Key> {
    hits.iter().map(|h| h.key.clone()).collect()
}

/// One ef's result: latency percentiles and recall.
#[derive(Clone, Copy)]
struct Row {
    p50: f64,
    p99: f64,
    recall: f64,
}

/// p50/p99 µs and recall@10 of `queries` at `ef`, over `rounds` passes.
fn measure(
    shard: &Shard,
    queries: &[Vec<f32>],
    truth: &[Vec<vecshard_engine::Key>],
    ef: usize,
    rounds: usize,
) -> Row {
    let mut lat = Vec::with_capacity(queries.len() * rounds);
    let mut found = 0usize;
    for _round in 0..rounds {
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
    Row {
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
        recall: found as f64 / (rounds * 10 * queries.len()) as f64,
    }
}

/// The single-segment p50 at `recall`, interpolated linearly between the measured efs
/// (`None` outside their recall range).
fn p50_at(single: &[Row], recall: f64) -> Option<f64> {
    let mut pts: Vec<(f64, f64)> = single.iter().map(|r| (r.recall, r.p50)).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(&(_, p)) = pts.iter().find(|(r, _)| *r == recall) {
        return Some(p);
    }
    pts.windows(2).find_map(|w| {
        let ((r0, p0), (r1, p1)) = (w[0], w[1]);
        (r0 < recall && recall < r1).then(|| p0 + (p1 - p0) * (recall - r0) / (r1 - r0))
    })
}

/// Ingest, wait until idle and return the shard with its stats line printed.
fn build(a: &Args, location: &str, vectors: &[Vec<f32>]) -> Shard {
    let dim = vectors[0].len();
    let mut spec = ShardSpec::new(dim, Metric::L2);
    spec.index.m = a.m;
    spec.index.ef_construction = a.ef_construction;
    // About what one row costs in a memtable (vector, graph links, key, bookkeeping).
    let row_bytes = dim * 4 + spec.index.m * 2 * 4 + 200;
    let memtable_bytes = match a.memtable_bytes {
        Some(0) => Options::default().memtable_bytes,
        Some(n) => n,
        None => (vectors.len() / a.flushes * row_bytes).max(64 << 10),
    };
    let opts = Options {
        durability: Durability::Buffered,
        memtable_bytes,
        max_segments: a.max_segments,
        min_merge_width: a.min_width,
        idle_merge_after: a.idle_merge_after,
        ..Options::default()
    };
    let shard = Shard::create(location, spec, opts).expect("create");
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
    let mut last = shard.stats();
    println!(
        "after ingest ({ingest_s:.1} s): {} segments, {} memtable rows, {} flushes, {} merges",
        last.segments, last.memtable_rows, last.flushes, last.compactions
    );
    // Idle: wait until the policy's cap is met and no merge runs. Without the idle merge
    // the last memtable is flushed here; with it, the idle merge flushes it and is waited
    // for (one segment, an empty memtable, no merge running).
    if a.idle_merge_after.is_none() {
        shard.flush().expect("flush");
    }
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let settled = !last.merging
            && match a.idle_merge_after {
                None => last.segments as usize <= a.max_segments,
                Some(_) => last.segments == 1 && last.memtable_rows == 0,
            };
        if settled || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        let st = shard.stats();
        if (st.compactions, st.segments, st.memtable_rows, st.merging)
            != (
                last.compactions,
                last.segments,
                last.memtable_rows,
                last.merging,
            )
        {
            println!(
                "  +{:.1} s: {} segments, {} memtable rows, {} flushes, {} merges{}",
                started.elapsed().as_secs_f64() - ingest_s,
                st.segments,
                st.memtable_rows,
                st.flushes,
                st.compactions,
                if st.merging { ", merging" } else { "" }
            );
        }
        last = st;
    }
    let idle_s = started.elapsed().as_secs_f64() - ingest_s;
    println!(
        "{} points {dim}-d, {} flushes, {} merges: {} segments after ingest ({ingest_s:.1} s) + idle ({idle_s:.1} s)",
        last.live_points, last.flushes, last.compactions, last.segments
    );
    shard
}

/// A shard of `vectors` in exactly one segment per entry of `sizes` (relative sizes):
/// background work off, each part flushed by hand, so no merge changes the count.
fn build_split(a: &Args, location: &str, vectors: &[Vec<f32>], sizes: &[usize]) -> Shard {
    let dim = vectors[0].len();
    let mut spec = ShardSpec::new(dim, Metric::L2);
    spec.index.m = a.m;
    spec.index.ef_construction = a.ef_construction;
    let total: usize = sizes.iter().sum();
    let mut ends: Vec<usize> = sizes
        .iter()
        .scan(0, |acc, w| {
            *acc += w;
            Some(vectors.len() * *acc / total)
        })
        .collect();
    ends.dedup();
    let largest = ends
        .iter()
        .scan(0, |prev, &e| Some(e - std::mem::replace(prev, e)))
        .max()
        .unwrap_or(1);
    let row_bytes = dim * 4 + spec.index.m * 2 * 4 + 200;
    let opts = Options {
        durability: Durability::Buffered,
        background: false,
        memtable_bytes: (largest * row_bytes * 2).max(64 << 10),
        idle_merge_after: None,
        ..Options::default()
    };
    let shard = Shard::create(location, spec, opts).expect("create");
    let started = Instant::now();
    let mut start = 0;
    for end in ends {
        for first in (start..end).step_by(5_000) {
            let points = (first..(first + 5_000).min(end))
                .map(|i| Point::new(i as u64, vectors[i].clone()))
                .collect();
            shard.upsert(points).expect("upsert");
        }
        shard.flush().expect("flush");
        start = end;
    }
    let st = shard.stats();
    assert_eq!(
        st.segments as usize,
        sizes.len(),
        "{location}: one segment per part"
    );
    println!(
        "{} points in {} segments ({}) built in {:.1} s",
        st.live_points,
        st.segments,
        label(sizes),
        started.elapsed().as_secs_f64()
    );
    shard
}

/// How a split is named: `3` for three equal segments, else `80:15:5`.
fn label(sizes: &[usize]) -> String {
    if sizes.iter().all(|&w| w == sizes[0]) {
        sizes.len().to_string()
    } else {
        sizes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// Latencies (µs) and hits found of one way of searching.
#[derive(Default)]
struct Samples {
    lat: Vec<f64>,
    found: usize,
    asked: usize,
}

impl Samples {
    fn row(&mut self) -> Row {
        self.lat.sort_by(f64::total_cmp);
        Row {
            p50: self.lat[self.lat.len() / 2],
            p99: self.lat[self.lat.len() * 99 / 100],
            recall: self.found as f64 / self.asked as f64,
        }
    }
}

/// `--segments`: for each count a shard split into that many segments, searched with the
/// shared bound (`Shard::search`) and with every segment on its own
/// (`Shard::search_separately`), the two alternating query by query so load on the
/// machine hits both alike; p50s are compared with the 1-segment shard's at equal recall.
fn by_count(
    a: &Args,
    dir: &std::path::Path,
    vectors: &[Vec<f32>],
    queries: &[Vec<f32>],
    given_truth: Option<Vec<Vec<vecshard_engine::Key>>>,
) {
    let mut splits = vec![vec![1]];
    splits.extend(a.segments.iter().filter(|s| s.len() > 1).cloned());
    let search_only = Options {
        background: false,
        ..Options::default()
    };
    let shards: Vec<Shard> = splits
        .iter()
        .map(|sizes| {
            let path = dir.join(format!("split-{}", label(sizes).replace(':', "-")));
            let loc = path.to_str().expect("UTF-8 path");
            if !path.exists() {
                build_split(a, loc, vectors, sizes).close().expect("close");
            }
            let shard = Shard::open(loc, search_only.clone()).expect("open");
            assert_eq!(shard.stats().segments as usize, sizes.len(), "{loc}");
            shard
        })
        .collect();
    let truth: Vec<Vec<vecshard_engine::Key>> = given_truth.unwrap_or_else(|| {
        queries
            .iter()
            .map(|q| {
                let mut req = SearchRequest::new(q.clone(), 10);
                req.exact = true;
                keys(&shards[0].search(&req).expect("exact search"))
            })
            .collect()
    });
    // samples[shard][ef][0: shared, 1: separate]
    let mut samples: Vec<Vec<[Samples; 2]>> = shards
        .iter()
        .map(|_| a.efs.iter().map(|_| Default::default()).collect())
        .collect();
    // One shard and ef at a time over all queries (caches warm, as for a shard serving
    // a stream of queries), the two ways alternating first from query to query.
    for round in 0..a.rounds {
        for (si, shard) in shards.iter().enumerate() {
            for (ei, &ef) in a.efs.iter().enumerate() {
                for (qi, (q, t)) in queries.iter().zip(&truth).enumerate() {
                    let mut req = SearchRequest::new(q.clone(), 10);
                    req.ef = Some(ef);
                    let first = (round + qi) % 2;
                    for way in [first, 1 - first] {
                        let start = Instant::now();
                        let hits = if way == 0 {
                            shard.search(&req)
                        } else {
                            shard.search_separately(&req)
                        }
                        .expect("search");
                        let s = &mut samples[si][ei][way];
                        s.lat.push(start.elapsed().as_secs_f64() * 1e6);
                        s.found += keys(&hits).iter().filter(|k| t.contains(k)).count();
                        s.asked += t.len().min(10);
                    }
                }
            }
        }
    }
    let rows: Vec<Vec<[Row; 2]>> = samples
        .iter_mut()
        .map(|per_ef| {
            per_ef
                .iter_mut()
                .map(|[sh, se]| [sh.row(), se.row()])
                .collect()
        })
        .collect();
    let single: Vec<Row> = rows[0].iter().map(|r| r[0]).collect();
    let vs_single = |r: &Row| {
        p50_at(&single, r.recall)
            .map(|p| format!("{:.2}×", r.p50 / p))
            .unwrap_or_else(|| "–".into())
    };
    println!();
    println!(
        "| segments | ef | shared p50 / p99 µs | recall@10 | separate p50 / p99 µs | recall@10 | shared / separate p50 | shared p50 / 1 segment at equal recall | separate p50 / 1 segment at equal recall |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (sizes, per_ef) in splits.iter().zip(&rows) {
        let n = label(sizes);
        for (ef, [sh, se]) in a.efs.iter().zip(per_ef) {
            println!(
                "| {n} | {ef} | {:.0} / {:.0} | {:.3} | {:.0} / {:.0} | {:.3} | {:.2} | {} | {} |",
                sh.p50,
                sh.p99,
                sh.recall,
                se.p50,
                se.p99,
                se.recall,
                sh.p50 / se.p50,
                vs_single(sh),
                vs_single(se),
            );
        }
    }
    for shard in shards {
        shard.close().expect("close");
    }
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("segments_bench: {e}");
            std::process::exit(2);
        }
    };
    // Queries come from the same distribution as the points (300 held out), or from the
    // dataset with its ground truth.
    let (vectors, queries, given_truth) = match &a.dataset {
        Some(dir) => match read_dataset(dir) {
            Ok((base, queries, truth)) => (base, queries, Some(truth)),
            Err(e) => {
                eprintln!("segments_bench: {e}");
                std::process::exit(2);
            }
        },
        None => {
            let mut vectors = data(1, a.points + 300, a.dim);
            let queries = vectors.split_off(a.points);
            (vectors, queries, None)
        }
    };
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    if !a.segments.is_empty() {
        by_count(&a, &dir, &vectors, &queries, given_truth);
        return;
    }
    let (multi_dir, single_dir) = (dir.join("multi"), dir.join("single"));
    let (multi_loc, single_loc) = (
        multi_dir.to_str().expect("UTF-8 path"),
        single_dir.to_str().expect("UTF-8 path"),
    );
    let search_only = Options {
        background: false,
        ..Options::default()
    };
    let (shard, single_shard) = if single_dir.exists() {
        let shard = Shard::open(multi_loc, search_only.clone()).expect("open multi");
        let st = shard.stats();
        println!(
            "{} points in {} segments, reused from {}",
            st.live_points,
            st.segments,
            dir.display()
        );
        let single = Shard::open(single_loc, search_only).expect("open single");
        (shard, single)
    } else {
        let shard = build(&a, multi_loc, &vectors);
        shard.close().expect("close");
        let shard = Shard::open(multi_loc, search_only.clone()).expect("open multi");
        shard.checkpoint(single_loc).expect("checkpoint");
        let single = Shard::open(single_loc, search_only).expect("open single");
        single.compact().expect("compact");
        (shard, single)
    };
    drop(vectors);
    let last = shard.stats();
    let truth: Vec<Vec<vecshard_engine::Key>> = given_truth.unwrap_or_else(|| {
        queries
            .iter()
            .map(|q| {
                let mut req = SearchRequest::new(q.clone(), 10);
                req.exact = true;
                keys(&shard.search(&req).expect("exact search"))
            })
            .collect()
    });
    let multi: Vec<Row> = a
        .efs
        .iter()
        .map(|&ef| measure(&shard, &queries, &truth, ef, a.rounds))
        .collect();
    let segments = last.segments;
    let single: Vec<Row> = a
        .efs
        .iter()
        .map(|&ef| measure(&single_shard, &queries, &truth, ef, a.rounds))
        .collect();
    assert_eq!(single_shard.stats().segments, 1, "the compacted copy");
    println!();
    println!(
        "| ef | {segments} segments p50 / p99 µs | recall@10 | 1 segment p50 / p99 µs | recall@10 | {segments} segments p50 / 1 segment p50 at equal recall |"
    );
    println!("|---|---|---|---|---|---|");
    for (ef, (m, s)) in a.efs.iter().zip(multi.iter().zip(&single)) {
        let ratio = p50_at(&single, m.recall)
            .map(|p| format!("{:.2}×", m.p50 / p))
            .unwrap_or_else(|| "–".into());
        println!(
            "| {ef} | {:.0} / {:.0} | {:.3} | {:.0} / {:.0} | {:.3} | {ratio} |",
            m.p50, m.p99, m.recall, s.p50, s.p99, s.recall
        );
    }
    shard.close().expect("close");
    single_shard.close().expect("close");
}
