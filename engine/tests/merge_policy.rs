//! The merge policy at work: with the default policy, a shard that flushed many times
//! settles in at most 3 segments on its own (background compaction, no `compact()` call),
//! still answers every search exactly as the data says, and a segment that lost most of
//! its rows to deletions is rewritten; once writes stop, it ends in one segment (the idle
//! merge) whose extended graph still finds the true nearest neighbours.

#[path = "index_util.rs"]
mod index_util;

use std::time::{Duration, Instant};

use vecshard_engine::index::IndexParams;
use vecshard_engine::{Key, Metric, Options, Point, SearchRequest, Shard, ShardSpec, Stats};

const DIM: usize = 8;

fn vector(key: u64) -> Vec<f32> {
    (0..DIM as u64)
        .map(|d| ((key.wrapping_mul(2654435761).wrapping_add(d * 97)) % 1000) as f32 / 1000.0)
        .collect()
}

fn spec() -> ShardSpec {
    ShardSpec {
        dim: DIM,
        metric: Metric::L2,
        index: IndexParams {
            m: 8,
            ef_construction: 32,
            ..IndexParams::default()
        },
    }
}

/// Poll `stats()` until `done` holds; fail after a minute, showing the last stats.
fn wait_for(shard: &Shard, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = shard.stats();
        if done(&st) {
            return st;
        }
        assert!(Instant::now() < deadline, "{what}: still {st:?}");
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

#[test]
fn many_flushes_settle_in_three_segments() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        memtable_bytes: 64 << 10,
        ..Options::default()
    };
    let shard = Shard::create(dir.path().to_str().unwrap(), spec(), opts).unwrap();
    const N: u64 = 12_000;
    for chunk in (0..N).collect::<Vec<_>>().chunks(200) {
        shard
            .upsert(chunk.iter().map(|&k| Point::new(k, vector(k))).collect())
            .unwrap();
    }
    let st = wait_for(&shard, "background flushes and merges", |st| {
        st.segments <= 3 && st.memtable_rows < 1000
    });
    assert!(
        st.flushes >= 20,
        "too few flushes to test the policy: {st:?}"
    );
    assert!(st.compactions >= 1, "{st:?}");
    assert_eq!(st.live_points, N);
    // Every point is still found, and a search of a stored vector finds it first.
    for k in (0..N).step_by(397) {
        let got = shard.get(&Key::Int(k)).unwrap().expect("point kept");
        assert_eq!(got.vector, vector(k));
        let mut req = SearchRequest::new(vector(k), 1);
        req.exact = true;
        let hits = shard.search(&req).unwrap();
        assert_eq!(hits[0].distance, 0.0, "key {k}");
    }
    shard.close().unwrap();
}

#[test]
fn a_mostly_deleted_segment_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap().to_string();
    let shard = Shard::create(&location, spec(), Options::default()).unwrap();
    const N: u64 = 4000;
    shard
        .upsert((0..N).map(|k| Point::new(k, vector(k))).collect())
        .unwrap();
    shard.flush().unwrap();
    let before = shard.stats();
    assert_eq!((before.segments, before.compactions), (1, 0));
    // 40% dead: over the default 30%.
    shard
        .delete((0..N).filter(|k| k % 5 < 2).map(Key::Int).collect())
        .unwrap();
    shard.flush().unwrap();
    let st = wait_for(&shard, "rewrite of the segment with deletions", |st| {
        st.compactions >= 1
    });
    assert_eq!(st.live_points, N * 3 / 5);
    // The rewritten segment holds only live rows: it is smaller than the original.
    assert!(
        st.segment_bytes < before.segment_bytes * 3 / 4,
        "{} bytes before, {} after",
        before.segment_bytes,
        st.segment_bytes
    );
    for k in [0u64, 1, 2, 3, 4, 3999] {
        assert_eq!(shard.get(&Key::Int(k)).unwrap().is_some(), k % 5 >= 2);
    }
    shard.close().unwrap();
    let reopened = Shard::open(&location, Options::default()).unwrap();
    assert_eq!(reopened.stats().live_points, N * 3 / 5);
}

#[test]
fn bad_policy_options_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap();
    for (opts, name) in [
        (
            Options {
                merge_ratio: 0.5,
                ..Options::default()
            },
            "merge_ratio",
        ),
        (
            Options {
                merge_ratio: f64::NAN,
                ..Options::default()
            },
            "merge_ratio",
        ),
        (
            Options {
                min_merge_width: 1,
                ..Options::default()
            },
            "min_merge_width",
        ),
        (
            Options {
                max_deleted_ratio: 1.5,
                ..Options::default()
            },
            "max_deleted_ratio",
        ),
        (
            Options {
                object_requests: 0,
                ..Options::default()
            },
            "object_requests",
        ),
    ] {
        let e = Shard::create(location, spec(), opts).unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
}

#[test]
fn an_idle_shard_ends_in_one_segment_that_searches_like_brute_force() {
    const DIM: usize = 16;
    const N: usize = 6_000;
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        memtable_bytes: 128 << 10,
        idle_merge_after: Some(Duration::from_millis(100)),
        ..Options::default()
    };
    let spec = ShardSpec {
        dim: DIM,
        metric: Metric::L2,
        index: IndexParams {
            m: 12,
            ef_construction: 64,
            ..IndexParams::default()
        },
    };
    let shard = Shard::create(dir.path().to_str().unwrap(), spec, opts).unwrap();
    let data = index_util::clustered(21, N + 50, DIM, 30, Metric::L2);
    let (rows, queries) = data.split_at(N * DIM);
    for (i, chunk) in rows.chunks(500 * DIM).enumerate() {
        let points = chunk
            .chunks_exact(DIM)
            .enumerate()
            .map(|(j, v)| Point::new((i * 500 + j) as u64, v.to_vec()))
            .collect();
        shard.upsert(points).unwrap();
    }
    // The last rows are still in the memtable: the idle merge flushes them too.
    let st = wait_for(&shard, "the idle flush and merge", |st| {
        st.segments == 1 && st.memtable_rows == 0
    });
    assert!(st.flushes >= 5, "too few flushes to test the merge: {st:?}");
    assert!(st.compactions >= 1, "{st:?}");
    assert_eq!(st.live_points, N as u64);
    let vectors = vecshard_engine::index::SliceVectors {
        data: rows,
        dim: DIM,
    };
    let all = |_: u32| true;
    let truth = index_util::truth(Metric::L2, &vectors, queries, N as u32, 10, &all);
    let (mut found, mut total) = (0, 0);
    for (q, t) in queries.chunks_exact(DIM).zip(&truth) {
        let mut req = SearchRequest::new(q.to_vec(), 10);
        req.ef = Some(64);
        let hits = shard.search(&req).unwrap();
        assert_eq!(hits.len(), 10);
        total += t.len();
        found += t
            .iter()
            .filter(|n| hits.iter().any(|h| h.key == Key::Int(u64::from(n.row))))
            .count();
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.95, "recall@10 {recall} after the idle merge");
    shard.close().unwrap();
}
