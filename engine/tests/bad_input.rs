//! Bad input gets a clear invalid-argument error naming the problem, and the shard stays
//! usable.

use vecshard_engine::{
    ErrorKind, Filter, Key, Metric, Options, Point, SearchRequest, Shard, ShardSpec, Value, limits,
};

fn check(r: vecshard_engine::Result<impl std::fmt::Debug>, needle: &str) {
    let err = r.expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(
        err.to_string().contains(needle),
        "{err:?} should mention {needle:?}"
    );
}

#[test]
fn bad_writes_and_queries_are_rejected_and_the_shard_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path().to_str().unwrap();
    let s = Shard::create(loc, ShardSpec::new(3, Metric::Cosine), Options::default()).unwrap();
    s.upsert(vec![Point::new(1u64, vec![1.0, 0.0, 0.0])])
        .unwrap();

    check(
        s.upsert(vec![Point::new(2u64, vec![1.0, 2.0])]),
        "dimension 2",
    );
    check(s.upsert(vec![Point::new(2u64, vec![])]), "dimension 0");
    check(
        s.upsert(vec![Point::new(2u64, vec![1.0, f32::NAN, 0.0])]),
        "non-finite",
    );
    check(
        s.upsert(vec![Point::new(2u64, vec![f32::INFINITY, 0.0, 0.0])]),
        "non-finite",
    );
    check(
        s.upsert(vec![Point::new(2u64, vec![0.0, 0.0, 0.0])]),
        "zero vector",
    );
    check(
        s.upsert(vec![Point::new(
            "k".repeat(limits::MAX_KEY_BYTES + 1),
            vec![1.0, 0.0, 0.0],
        )]),
        "the limit is 1024",
    );
    check(s.upsert(vec![Point::new("", vec![1.0, 0.0, 0.0])]), "empty");
    check(
        s.upsert(vec![
            Point::new(3u64, vec![1.0, 0.0, 0.0])
                .with_payload(vec![0; limits::MAX_PAYLOAD_BYTES + 1]),
        ]),
        "payload",
    );
    check(
        s.upsert(vec![
            Point::new(3u64, vec![1.0, 0.0, 0.0]).with("f", Value::Float(f64::NAN)),
        ]),
        "not finite",
    );
    check(s.upsert(Vec::new()), "empty upsert batch");
    check(s.delete(Vec::new()), "empty delete batch");
    // A batch is all or nothing: one bad point rejects it.
    check(
        s.upsert(vec![
            Point::new(4u64, vec![1.0, 1.0, 0.0]),
            Point::new(5u64, vec![1.0]),
        ]),
        "points[1] (key 5).vector",
    );
    assert!(s.get(&Key::Int(4)).unwrap().is_none());

    check(
        s.search(&SearchRequest::new(vec![1.0, 0.0], 3)),
        "dimension 2",
    );
    check(
        s.search(&SearchRequest::new(vec![1.0, 0.0, f32::NAN], 3)),
        "non-finite",
    );
    check(
        s.search(&SearchRequest::new(vec![1.0, 0.0, 0.0], 0)),
        "k: must be in 1..=10000, got 0",
    );
    check(
        s.search(&SearchRequest::new(vec![1.0, 0.0, 0.0], limits::MAX_K + 1)),
        "got 10001",
    );
    let mut r = SearchRequest::new(vec![1.0, 0.0, 0.0], 3);
    r.ef = Some(0);
    check(s.search(&r), "ef: must be in 1..=100000, got 0");
    check(
        Filter::parse_str(r#"{"field":"x","gt":1}"#).map_err(vecshard_engine::Error::from),
        "unknown operator",
    );
    check(s.scan(None, 0), "scan limit");

    // Still usable.
    s.upsert(vec![Point::new(2u64, vec![0.0, 1.0, 0.0])])
        .unwrap();
    let hits = s
        .search(&SearchRequest::new(vec![0.0, 1.0, 0.0], 1))
        .unwrap();
    assert_eq!(hits[0].key, Key::Int(2));
    assert_eq!(s.stats().live_points, 2);
}

#[test]
fn bad_shard_specs_and_mismatches_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path().to_str().unwrap();
    check(
        Shard::create(loc, ShardSpec::new(0, Metric::L2), Options::default()),
        "dimension 0",
    );
    check(
        Shard::create(
            loc,
            ShardSpec::new(limits::MAX_DIM + 1, Metric::L2),
            Options::default(),
        ),
        "out of range",
    );
    let s = Shard::create(loc, ShardSpec::new(8, Metric::L2), Options::default()).unwrap();
    s.close().unwrap();
    check(
        Shard::open_or_create(loc, ShardSpec::new(9, Metric::L2), Options::default()),
        "8-d l2",
    );
    let err = Shard::create(loc, ShardSpec::new(8, Metric::L2), Options::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let missing = dir.path().join("nothing");
    let err = Shard::open(missing.to_str().unwrap(), Options::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[test]
fn read_only_and_locked_handles_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path().to_str().unwrap();
    let w = Shard::create(loc, ShardSpec::new(2, Metric::L2), Options::default()).unwrap();
    let err = Shard::open(loc, Options::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    w.upsert(vec![Point::new(1u64, vec![1.0, 2.0])]).unwrap();
    w.flush().unwrap();
    let r = Shard::open(loc, Options::read_only()).unwrap();
    assert_eq!(
        r.upsert(vec![Point::new(2u64, vec![1.0, 2.0])])
            .unwrap_err()
            .kind(),
        ErrorKind::ReadOnly
    );
    assert_eq!(
        r.delete(vec![Key::Int(1)]).unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
    assert_eq!(r.get(&Key::Int(1)).unwrap().unwrap().vector, vec![1.0, 2.0]);
    // The reader follows the writer after a refresh.
    w.upsert(vec![Point::new(2u64, vec![3.0, 4.0])]).unwrap();
    w.flush().unwrap();
    assert!(r.get(&Key::Int(2)).unwrap().is_none());
    assert!(r.refresh().unwrap());
    assert!(r.get(&Key::Int(2)).unwrap().is_some());
    w.compact().unwrap();
    assert!(r.refresh().unwrap());
    assert_eq!(r.stats().live_points, 2);
    w.close().unwrap();
    assert_eq!(
        w.upsert(vec![Point::new(3u64, vec![1.0, 1.0])])
            .unwrap_err()
            .kind(),
        ErrorKind::Closed
    );
}
