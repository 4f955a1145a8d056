//! Read-only handles on an object store follow one writer: after a refresh they see the
//! new data, and they never see a half-committed version (every flush commits whole
//! batches, so a reader's keys are always exactly the first B batches).
#![cfg(feature = "object-store")]

mod object_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use vecshard_engine::{ErrorKind, Key, Metric, Options, Point, SearchRequest, Shard, ShardSpec};

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
