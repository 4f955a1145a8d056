//! Searching a shard of several segments and a memtable (searched together, largest first,
//! later walks bounded by the k-th best distance found so far): approximate results match
//! brute force over the live points, and deleted or superseded rows never appear, even
//! when the query sits exactly on them.

#[path = "index_util.rs"]
mod index_util;

use std::collections::BTreeMap;

use index_util::clustered;
use vecshard_engine::distance::distance;
use vecshard_engine::filter::Range;
use vecshard_engine::{
    Filter, Hit, Key, Metric, Options, Point, SearchRequest, Shard, ShardSpec, Value,
};

const DIM: usize = 16;
const K: usize = 10;

struct Fixture {
    _dir: tempfile::TempDir,
    shard: Shard,
    /// Live points: key → (vector, "n").
    live: BTreeMap<u64, (Vec<f32>, i64)>,
    /// Vectors of deleted points and old vectors of re-upserted ones.
    stale: Vec<Vec<f32>>,
}

fn point(key: u64, v: &[f32]) -> Point {
    Point::new(key, v.to_vec())
        .with("n", Value::Int((key % 4) as i64))
        .with("key", Value::Int(key as i64))
}

/// Segments of 3,500, 2,000 and 800 rows plus 300 rows in the memtable; after each batch
/// 100 earlier keys get a new vector (the old row stays in its segment, superseded) and
/// 50 earlier keys are deleted.
///
/// Built on one thread (inserts and flushes), so every run builds the same graphs and the
/// recall bounds below hold or fail for the code, not for a thread interleaving: on two
/// threads the shared search's recall at ef 64 ranged 0.987–0.997 over 20 runs.
fn fixture() -> Fixture {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(build_fixture)
}

fn build_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        background: false,
        background_threads: 1,
        memtable_bytes: 64 << 20,
        ..Options::default()
    };
    let spec = ShardSpec::new(DIM, Metric::L2);
    let shard = Shard::create(dir.path().to_str().unwrap(), spec, opts).unwrap();
    let data = clustered(11, 6_600 + 3 * 100, DIM, 12, Metric::L2);
    let mut rows = data.chunks_exact(DIM);
    let mut live: BTreeMap<u64, (Vec<f32>, i64)> = BTreeMap::new();
    let mut stale = Vec::new();
    let mut next = 0u64;
    for (batch, size) in [3_500usize, 2_000, 800, 300].into_iter().enumerate() {
        let mut points = Vec::new();
        for _ in 0..size {
            let v = rows.next().unwrap();
            points.push(point(next, v));
            live.insert(next, (v.to_vec(), (next % 4) as i64));
            next += 1;
        }
        shard.upsert(points).unwrap();
        if batch > 0 {
            // Supersede 100 keys of earlier batches with new vectors, delete 50 others.
            let earlier: Vec<u64> = live
                .keys()
                .copied()
                .filter(|k| k % 13 == batch as u64)
                .collect();
            let mut points = Vec::new();
            for &key in earlier.iter().take(100) {
                let v = rows.next().unwrap();
                stale.push(live[&key].0.clone());
                points.push(point(key, v));
                live.insert(key, (v.to_vec(), (key % 4) as i64));
            }
            shard.upsert(points).unwrap();
            let gone: Vec<u64> = earlier.iter().skip(100).take(50).copied().collect();
            for key in &gone {
                stale.push(live.remove(key).unwrap().0);
            }
            shard
                .delete(gone.into_iter().map(Key::Int).collect())
                .unwrap();
        }
        if batch < 3 {
            shard.flush().unwrap();
        }
    }
    let st = shard.stats();
    assert_eq!(st.segments, 3, "three segments");
    assert!(st.memtable_rows > 0, "and a memtable");
    assert_eq!(st.live_points as usize, live.len());
    Fixture {
        _dir: dir,
        shard,
        live,
        stale,
    }
}

/// The exact top k among live points `keep` allows, by (distance, key).
fn brute(f: &Fixture, q: &[f32], keep: impl Fn(i64) -> bool) -> Vec<(Key, f32)> {
    let mut all: Vec<(Key, f32)> = f
        .live
        .iter()
        .filter(|(_, (_, n))| keep(*n))
        .map(|(k, (v, _))| (Key::Int(*k), distance(Metric::L2, q, v)))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(K);
    all
}

/// Checks every hit is a live point at its current vector (and matches `keep`); returns
/// how many of the true top k were found.
fn check(f: &Fixture, q: &[f32], filter: Option<Filter>, keep: impl Fn(i64) -> bool) -> usize {
    let mut req = SearchRequest::new(q.to_vec(), K);
    req.ef = Some(128);
    req.filter = filter;
    let hits = f.shard.search(&req).unwrap();
    let want = brute(f, q, &keep);
    assert_eq!(hits.len(), want.len(), "k hits when k match");
    let mut seen = std::collections::BTreeSet::new();
    for h in &hits {
        let Key::Int(k) = h.key else {
            panic!("unexpected key {:?}", h.key)
        };
        let (v, n) = f
            .live
            .get(&k)
            .unwrap_or_else(|| panic!("deleted key {k} returned"));
        assert_eq!(
            h.distance,
            distance(Metric::L2, q, v),
            "key {k} returned at a superseded vector"
        );
        assert!(keep(*n), "key {k} does not match the filter");
        assert!(seen.insert(k), "key {k} returned twice");
    }
    let distances: Vec<f32> = hits.iter().map(|h| h.distance).collect();
    assert!(distances.is_sorted(), "hits sorted by distance");
    want.iter()
        .filter(|(k, _)| hits.iter().any(|h| &h.key == k))
        .count()
}

#[test]
fn multi_segment_search_matches_brute_force() {
    let f = fixture();
    let queries = clustered(12, 60, DIM, 12, Metric::L2);
    let (mut found, mut total) = (0, 0);
    for q in queries.chunks_exact(DIM) {
        found += check(&f, q, None, |_| true);
        total += K;
    }
    let recall = found as f64 / total as f64;
    // Measured 1.000: the bound only cuts walks that cannot enter the top k.
    assert!(recall >= 0.98, "recall@{K} {recall}");
    // Exact search is exact, including the tie-break by key.
    for q in queries.chunks_exact(DIM).take(10) {
        let mut req = SearchRequest::new(q.to_vec(), K);
        req.exact = true;
        let got: Vec<(Key, f32)> = f
            .shard
            .search(&req)
            .unwrap()
            .into_iter()
            .map(|h| (h.key, h.distance))
            .collect();
        assert_eq!(got, brute(&f, q, |_| true));
    }
}

#[test]
fn multi_segment_search_with_filter_matches_brute_force() {
    let f = fixture();
    let queries = clustered(13, 40, DIM, 12, Metric::L2);
    let (mut found, mut total) = (0, 0);
    for q in queries.chunks_exact(DIM) {
        let filter = Filter::Eq("n".into(), Value::Int(1));
        found += check(&f, q, Some(filter), |n| n == 1);
        total += K;
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.95, "filtered recall@{K} {recall}");
}

#[test]
fn deleted_and_superseded_rows_never_appear() {
    let f = fixture();
    assert_eq!(f.stale.len(), 3 * 150);
    // Each query sits exactly on a stale row, the nearest row of its segment: the walks
    // reach it first and must neither return it nor take their bound from it.
    for q in &f.stale {
        check(&f, q, None, |_| true);
    }
}

/// Keys, distances and order of `hits`.
fn ranked(hits: Vec<Hit>) -> Vec<(Key, f32)> {
    hits.into_iter().map(|h| (h.key, h.distance)).collect()
}

/// Recall@K of `search` at `ef` over `queries`, against brute force.
fn recall_of(
    f: &Fixture,
    queries: &[f32],
    ef: usize,
    search: impl Fn(&SearchRequest) -> Vec<Hit>,
) -> f64 {
    let mut found = 0;
    for q in queries.chunks_exact(DIM) {
        let mut req = SearchRequest::new(q.to_vec(), K);
        req.ef = Some(ef);
        let hits = search(&req);
        let want = brute(f, q, |_| true);
        found += want
            .iter()
            .filter(|(k, _)| hits.iter().any(|h| &h.key == k))
            .count();
    }
    found as f64 / (queries.len() / DIM * K) as f64
}

/// The shared search (later walks bounded by the k-th best so far, `ef` shared by size)
/// against every container walked on its own with the full `ef` (the path before issue
/// 14): the same hits wherever the answer is exact (exact search, with and without a
/// filter; a filter selective enough for brute force), and close recall at equal ef.
#[test]
fn shared_search_matches_separate_search() {
    let f = fixture();
    let queries = clustered(14, 60, DIM, 12, Metric::L2);
    let shared = |req: &SearchRequest| f.shard.search(req).unwrap();
    let separate = |req: &SearchRequest| f.shard.search_separately(req).unwrap();
    let few = Filter::Range(
        "key".into(),
        Range {
            lt: Some(Value::Int(300)),
            ..Range::default()
        },
    );
    for q in queries.chunks_exact(DIM) {
        let mut req = SearchRequest::new(q.to_vec(), K);
        req.exact = true;
        let want = ranked(separate(&req));
        assert_eq!(want, brute(&f, q, |_| true), "exact search is exact");
        assert_eq!(ranked(shared(&req)), want, "exact");
        req.filter = Some(Filter::Eq("n".into(), Value::Int(2)));
        assert_eq!(
            ranked(shared(&req)),
            ranked(separate(&req)),
            "exact, filtered"
        );
        // About 300 matching rows across the segments: brute force in each.
        let mut req = SearchRequest::new(q.to_vec(), K);
        req.filter = Some(few.clone());
        let want = ranked(separate(&req));
        assert_eq!(want.len(), K);
        assert_eq!(ranked(shared(&req)), want, "selective filter");
    }
    for ef in [16, 32, 64, 128] {
        let (s, p) = (
            recall_of(&f, &queries, ef, shared),
            recall_of(&f, &queries, ef, separate),
        );
        eprintln!("ef {ef}: recall@{K} shared {s:.3}, separate {p:.3}");
        // At equal ef the shared search walks the smaller segments with less width, so
        // it may find a little less (this fixture: 0.025 less at ef 16, 0.017 at 32,
        // 0.005 at 64, 0.002 at 128); per query it costs less, and
        // `segments_bench --segments` compares the two at equal recall.
        assert!(
            s >= p - 0.04 && (ef < 64 || s >= 0.99),
            "ef {ef}: shared recall {s}, separate {p}"
        );
    }
}
