//! Read-only handles on an object store follow one writer: after a refresh they see the
//! new data, and they never see a half-committed version (every flush commits whole
//! batches, so a reader's keys are always exactly the first B batches).
#![cfg(feature = "object-store")]

mod object_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use vecshard_engine::{
    ErrorKind, Key, Metadata, Metric, Options, Point, SearchRequest, SegmentFormat, Shard,
    ShardSpec, Value,
};

const BATCH: u64 = 10;
const BATCHES: u64 = 25;

fn batch(b: u64) -> Vec<Point> {
    (b * BATCH..(b + 1) * BATCH)
        .map(|k| Point::new(k, vec![k as f32, b as f32]))
        .collect()
}

/// The number of whole batches the reader holds; panics on a partial one.
fn whole_batches(r: &Shard) -> u64 {
    let mut keys = Vec::new();
    let mut after = None;
    loop {
        let page = r.scan(after.as_ref(), 100).unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        keys.extend(page.into_iter().map(|p| p.key));
    }
    let n = keys.len() as u64;
    assert_eq!(n % BATCH, 0, "reader sees a partial batch: {n} keys");
    assert_eq!(
        keys,
        (0..n).map(Key::Int).collect::<Vec<_>>(),
        "reader sees a gap"
    );
    n / BATCH
}

fn follow(location: &str) {
    let writer =
        Shard::create(location, ShardSpec::new(2, Metric::L2), Options::default()).unwrap();
    let reader = Shard::open(location, Options::read_only()).unwrap();
    let err = reader.upsert(batch(99)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnly);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for b in 0..BATCHES {
                writer.upsert(batch(b)).unwrap();
                writer.flush().unwrap();
                if b % 8 == 7 {
                    writer.compact().unwrap();
                }
            }
            done.store(true, Ordering::Release);
        });
        let mut seen = 0;
        while !done.load(Ordering::Acquire) {
            reader.refresh().unwrap();
            let now = whole_batches(&reader);
            assert!(now >= seen, "a reader never goes back ({now} < {seen})");
            seen = now;
            if now > 0 {
                let hits = reader
                    .search(&SearchRequest::new(vec![0.0, 0.0], 3))
                    .unwrap();
                assert_eq!(hits[0].key, Key::Int(0));
            }
        }
    });
    reader.refresh().unwrap();
    assert_eq!(whole_batches(&reader), BATCHES);

    // A reader that refreshes on its own interval catches up without being asked.
    let auto = Shard::open(
        location,
        Options {
            refresh_interval: Some(Duration::from_millis(20)),
            ..Options::read_only()
        },
    )
    .unwrap();
    writer.upsert(batch(BATCHES)).unwrap();
    writer.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while auto.get(&Key::Int(BATCHES * BATCH)).unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "auto-refreshing reader never caught up"
        );
        std::thread::yield_now();
    }
    writer.close().unwrap();
}

#[test]
fn readers_follow_the_writer_on_memory() {
    follow(&format!("memory://{}", object_support::unique("reader")));
}

#[test]
fn readers_follow_the_writer_on_local_s3() {
    follow(&object_support::s3_location("reader"));
}

/// A reader builds its key index on its first get or scan. Until then its searches and
/// stats use the deletion marks the open set from the manifest's deletion vectors. Every
/// answer is the latest acknowledged version and deleted keys stay deleted, before the
/// index is built, after it, and after a refresh (which leaves the index to the next use
/// again). Whole (format 1) and lazy (format 2) segments.
#[test]
fn a_reader_answers_from_deletion_marks_and_builds_keys_on_first_use() {
    let point = |k: u64, version: i64| {
        let mut p = Point::new(k, vec![k as f32, version as f32]);
        p.metadata.insert("version".into(), Value::Int(version));
        p
    };
    // The version each key should hold after the writes below (None: deleted).
    let want = |k: u64| match k {
        50..60 => Some(3),
        0..100 => Some(2),
        200..250 => None,
        _ => Some(1),
    };
    let version = |p: &Metadata| match p.get("version") {
        Some(Value::Int(v)) => *v,
        other => panic!("version {other:?}"),
    };
    for format in [SegmentFormat::V1, SegmentFormat::V2] {
        let location = format!("memory://{}", object_support::unique("reader-keys"));
        let opts = Options {
            segment_format: format,
            ..Options::default()
        };
        let writer = Shard::create(&location, ShardSpec::new(2, Metric::L2), opts).unwrap();
        writer
            .upsert((0..300).map(|k| point(k, 1)).collect())
            .unwrap();
        writer.flush().unwrap();
        writer
            .upsert((0..100).map(|k| point(k, 2)).collect())
            .unwrap();
        writer.delete((200..250).map(Key::Int).collect()).unwrap();
        writer.flush().unwrap();
        writer
            .upsert((50..60).map(|k| point(k, 3)).collect())
            .unwrap();
        writer.flush().unwrap();

        let reader = Shard::open(
            &location,
            Options {
                segment_format: format,
                ..Options::read_only()
            },
        )
        .unwrap();
        assert_eq!(reader.stats().segments, 3, "{format:?}");
        assert_eq!(reader.stats().live_points, 250, "{format:?}");
        let search_all = |reader: &Shard, live: &dyn Fn(u64) -> Option<i64>| {
            for k in (0..310).step_by(7) {
                let mut req = SearchRequest::new(vec![k as f32, 1.0], 10);
                req.exact = k % 2 == 0;
                req.with_metadata = true;
                let hits = reader.search(&req).unwrap();
                assert_eq!(hits.len(), 10);
                for h in hits {
                    let Key::Int(hk) = h.key else {
                        panic!("{:?}", h.key)
                    };
                    let got = version(h.metadata.as_ref().expect("metadata"));
                    assert_eq!(Some(got), live(hk), "{format:?}: key {hk} near {k}");
                }
            }
        };
        search_all(&reader, &want);
        for k in 0..300 {
            let got = reader.get(&Key::Int(k)).unwrap();
            assert_eq!(
                got.map(|p| version(&p.metadata)),
                want(k),
                "{format:?}: get {k}"
            );
        }
        let scanned: Vec<Key> = reader
            .scan(None, 1000)
            .unwrap()
            .into_iter()
            .map(|p| p.key)
            .collect();
        let live: Vec<Key> = (0..300)
            .filter(|k| want(*k).is_some())
            .map(Key::Int)
            .collect();
        assert_eq!(scanned, live, "{format:?}");
        assert_eq!(reader.stats().live_points, 250, "{format:?}");
        search_all(&reader, &want);
        // A checkpoint counts live keys by sequence number: a lazy reader reads them then.
        let copy = format!("memory://{}", object_support::unique("reader-keys-copy"));
        assert_eq!(reader.checkpoint(&copy).unwrap().points, 250, "{format:?}");

        writer.delete((0..10).map(Key::Int).collect()).unwrap();
        writer
            .upsert((300..310).map(|k| point(k, 1)).collect())
            .unwrap();
        writer.flush().unwrap();
        reader.refresh().unwrap();
        let after = |k: u64| if k < 10 { None } else { want(k) };
        assert_eq!(reader.stats().live_points, 250, "{format:?}");
        search_all(&reader, &after);
        assert!(reader.get(&Key::Int(5)).unwrap().is_none(), "{format:?}");
        let got = reader.get(&Key::Int(305)).unwrap().expect("key 305");
        assert_eq!(version(&got.metadata), 1);
        assert_eq!(reader.scan(None, 1000).unwrap().len(), 250, "{format:?}");
        writer.close().unwrap();
    }
}
