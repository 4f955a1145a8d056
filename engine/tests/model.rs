//! Property test: random sequences of upserts, deletes, flushes, compactions (all segments,
//! or what the merge policy picks: partial merges of segments that need not be adjacent),
//! checkpoints, clean and unclean reopens, checked against an in-memory model after every
//! step: get, scan and exact search (with and without filters) must match exactly,
//! including tie-breaks; a checkpoint restores to the model; after a flush, a new reader
//! and a refreshed one (both from the version's deletion vectors) match it too.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vecshard_engine::{
    Filter, Key, Metric, Options, Point, SearchRequest, Shard, ShardSpec, Value,
};

const DIM: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Upsert(Vec<Point>),
    Delete(Vec<Key>),
    Flush,
    Compact,
    /// Merge rounds of the policy until it picks nothing.
    Merge,
    /// Checkpoint to a new location and check the restore against the model.
    Checkpoint,
    Reopen,
    /// Drop the handle without closing it (memtables are not flushed): recovery replays
    /// the WAL.
    CrashReopen,
    Search {
        query: Vec<f32>,
        k: usize,
        filter: Option<Filter>,
    },
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        (0u64..24).prop_map(Key::Int),
        (0u8..8).prop_map(|i| Key::Str(format!("k{i}")))
    ]
}

fn vector() -> impl Strategy<Value = Vec<f32>> {
    // Small integers: distances are exact in f32, and ties are common, which exercises the
    // tie-break by key.
    prop::collection::vec((-3i8..=3).prop_map(f32::from), DIM)
}

fn point() -> impl Strategy<Value = Point> {
    (
        key(),
        vector(),
        0i64..4,
        prop::option::of(0u8..3),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..6),
    )
        .prop_map(|(key, vector, n, s, flag, payload)| {
            let mut p = Point::new(key, vector)
                .with("n", Value::Int(n))
                .with_payload(payload);
            if let Some(s) = s {
                p = p.with("s", Value::Str(format!("s{s}")));
            }
            if flag {
                p = p.with("tags", Value::StrList(vec![format!("t{n}"), "all".into()]));
            }
            p
        })
}

fn leaf_filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        (0i64..4).prop_map(|n| Filter::Eq("n".into(), Value::Int(n))),
        (0i64..4).prop_map(|n| Filter::Ne("n".into(), Value::Int(n))),
        (0u8..3).prop_map(|s| Filter::Eq("s".into(), Value::Str(format!("s{s}")))),
        (0i64..4).prop_map(|n| Filter::In(
            "tags".into(),
            vec![Value::Str(format!("t{n}")), Value::Str("x".into())]
        )),
        (0i64..4, 0i64..4).prop_map(|(a, b)| Filter::Range(
            "n".into(),
            vecshard_engine::filter::Range {
                gte: Some(Value::Int(a)),
                lt: Some(Value::Float(b as f64 + 0.5)),
                ..Default::default()
            }
        )),
        Just(Filter::Exists("s".into())),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    leaf_filter().prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(point(), 1..8).prop_map(Op::Upsert),
        2 => prop::collection::vec(key(), 1..4).prop_map(Op::Delete),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        2 => Just(Op::Merge),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
        1 => Just(Op::CrashReopen),
        3 => (vector(), 1usize..12, prop::option::of(filter())).prop_map(|(query, k, filter)| Op::Search { query, k, filter }),
    ]
}

fn opts() -> Options {
    Options {
        background: false,
        memtable_bytes: 64 << 10,
        ..Default::default()
    }
}

fn model_distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    let d: f32 = match metric {
        Metric::L2 => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
        _ => -a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
    };
    d + 0.0
}

fn check_all(shard: &Shard, model: &BTreeMap<Key, Point>) {
    // scan in pages of 5
    let mut scanned = Vec::new();
    let mut after: Option<Key> = None;
    loop {
        let page = shard.scan(after.as_ref(), 5).unwrap();
        if page.is_empty() {
            break;
        }
        after = Some(page.last().unwrap().key.clone());
        scanned.extend(page);
    }
    let want: Vec<&Point> = model.values().collect();
    assert_eq!(
        scanned.iter().collect::<Vec<_>>(),
        want,
        "scan differs from the model"
    );
    for i in 0..24u64 {
        let k = Key::Int(i);
        assert_eq!(shard.get(&k).unwrap().as_ref(), model.get(&k), "get {k}");
    }
    assert_eq!(shard.stats().live_points as usize, model.len());
    assert_eq!(shard.count(None).unwrap() as usize, model.len());
}

fn check_search(
    shard: &Shard,
    model: &BTreeMap<Key, Point>,
    metric: Metric,
    query: &[f32],
    k: usize,
    filter: &Option<Filter>,
) {
    let mut req = SearchRequest::new(query.to_vec(), k);
    req.exact = true;
    req.filter = filter.clone();
    req.with_metadata = true;
    req.with_payload = true;
    let got: Vec<(Key, f32)> = shard
        .search(&req)
        .unwrap()
        .into_iter()
        .map(|h| (h.key, h.distance))
        .collect();
    let mut want: Vec<(Key, f32)> = model
        .values()
        .filter(|p| filter.as_ref().is_none_or(|f| f.matches(&p.metadata)))
        .map(|p| (p.key.clone(), model_distance(metric, query, &p.vector)))
        .collect();
    assert_eq!(
        shard.count(filter.as_ref()).unwrap(),
        want.len() as u64,
        "count (filter={filter:?})"
    );
    want.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    want.truncate(k);
    assert_eq!(got, want, "exact search (k={k}, filter={filter:?})");
    // Approximate search over a tiny shard must find the same (every container is small).
    let mut approx = req.clone();
    approx.exact = false;
    approx.ef = Some(64);
    let got: Vec<Key> = shard
        .search(&approx)
        .unwrap()
        .into_iter()
        .map(|h| h.key)
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "approximate search returns k results when k match"
    );
}

/// A policy that merges partially and often: at most 2 segments, so a third one makes the
/// two smallest merge (neighbours in sequence order or not) and leaves the largest; tiers
/// only of equal sizes.
fn eager_opts() -> Options {
    Options {
        max_segments: 2,
        min_merge_width: 2,
        merge_ratio: 1.0,
        ..opts()
    }
}

fn run(metric: Metric, ops: Vec<Op>) {
    run_with(metric, ops, opts())
}

fn run_with(metric: Metric, ops: Vec<Op>, opts: Options) {
    let opts = || opts.clone();
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path().join("shard");
    let loc = loc.to_str().unwrap();
    let mut checkpoints = 0;
    let mut shard = Shard::create(loc, ShardSpec::new(DIM, metric), opts()).unwrap();
    // A reader that follows every flush by refreshing (deletion vectors of the new
    // version, applied to the segments it already holds).
    let follower = Shard::open(loc, Options::read_only()).unwrap();
    let mut model: BTreeMap<Key, Point> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Upsert(points) => {
                shard.upsert(points.clone()).unwrap();
                for p in points {
                    model.insert(p.key.clone(), p);
                }
            }
            Op::Delete(keys) => {
                shard.delete(keys.clone()).unwrap();
                for k in keys {
                    model.remove(&k);
                }
            }
            Op::Flush => {
                shard.flush().unwrap();
                // Everything is flushed: a fresh reader and the follower see the model.
                let reader = Shard::open(loc, Options::read_only()).unwrap();
                check_all(&reader, &model);
                follower.refresh().unwrap();
                check_all(&follower, &model);
            }
            Op::Compact => shard.compact().unwrap(),
            Op::Merge => {
                let mut rounds = 0;
                while shard.compact_by_policy().unwrap() {
                    rounds += 1;
                    assert!(rounds < 64, "the merge policy does not settle");
                }
            }
            Op::Checkpoint => {
                checkpoints += 1;
                let dest = dir.path().join(format!("ckpt{checkpoints}"));
                let summary = shard.checkpoint(dest.to_str().unwrap()).unwrap();
                assert_eq!(summary.points as usize, model.len());
                let restored = Shard::open(dest.to_str().unwrap(), opts()).unwrap();
                check_all(&restored, &model);
                restored.close().unwrap();
            }
            Op::Reopen => {
                shard.close().unwrap();
                shard = Shard::open(loc, opts()).unwrap();
            }
            Op::CrashReopen => {
                drop(shard);
                shard = Shard::open(loc, opts()).unwrap();
            }
            Op::Search { query, k, filter } => {
                check_search(&shard, &model, metric, &query, k, &filter)
            }
        }
        check_all(&shard, &model);
    }
    // A read-only handle sees what was flushed.
    shard.flush().unwrap();
    let reader = Shard::open(loc, Options::read_only()).unwrap();
    check_all(&reader, &model);
    for q in [[0.0f32; DIM], [1.0, -2.0, 3.0, 0.0]] {
        check_search(&reader, &model, metric, &q, 7, &None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn l2_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        run(Metric::L2, ops);
    }

    #[test]
    fn dot_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        run(Metric::Dot, ops);
    }

    #[test]
    fn eager_merge_policy_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        run_with(Metric::L2, ops, eager_opts());
    }
}
