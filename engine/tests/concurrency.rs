//! Concurrent writers, readers and background flush/compaction: searches never return a key
//! twice or a point that was never written, writers never lose an acknowledged write, and
//! each writer reads its own writes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use vecshard_engine::{Key, Metric, Options, Point, SearchRequest, Shard, ShardSpec};

const WRITERS: u64 = 3;
const PER_WRITER: u64 = 1_500;

fn vector(key: u64, version: u64) -> Vec<f32> {
    vec![(key % 17) as f32, (key % 5) as f32, version as f32, 1.0]
}

#[test]
fn concurrent_ingest_search_flush_compact() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        memtable_bytes: 64 << 10,
        max_segments: 3,
        ..Options::default()
    };
    let shard = Shard::create(
        dir.path().to_str().unwrap(),
        ShardSpec::new(4, Metric::L2),
        opts,
    )
    .unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let shard = &shard;
                s.spawn(move || {
                    // Each writer owns keys w, w+WRITERS, …; it writes each twice (version 0
                    // then 1) and deletes every 10th.
                    for i in 0..PER_WRITER {
                        let key = i * WRITERS + w;
                        for version in 0..2 {
                            shard
                                .upsert(vec![Point::new(key, vector(key, version))])
                                .unwrap();
                        }
                        let got = shard
                            .get(&Key::Int(key))
                            .unwrap()
                            .expect("reads its own write");
                        assert_eq!(got.vector, vector(key, 1));
                        if i % 10 == 0 {
                            shard.delete(vec![Key::Int(key)]).unwrap();
                            assert!(shard.get(&Key::Int(key)).unwrap().is_none());
                        }
                    }
                })
            })
            .collect();
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (shard, stop) = (&shard, &stop);
                s.spawn(move || {
                    let mut searches = 0;
                    while !stop.load(Ordering::Relaxed) || searches < 10 {
                        let mut req = SearchRequest::new(vec![(r * 3) as f32, 1.0, 1.0, 1.0], 50);
                        req.with_vector = true;
                        req.exact = searches % 2 == 0;
                        let hits = shard.search(&req).unwrap();
                        let keys: HashSet<&Key> = hits.iter().map(|h| &h.key).collect();
                        assert_eq!(keys.len(), hits.len(), "a key appeared twice in one result");
                        for h in &hits {
                            let Key::Int(k) = h.key else {
                                panic!("unexpected key {:?}", h.key)
                            };
                            assert!(k < WRITERS * PER_WRITER, "never-written key {k}");
                            let v = h.vector.as_ref().unwrap();
                            assert!(
                                v == &vector(k, 0) || v == &vector(k, 1),
                                "key {k} with a vector never written"
                            );
                        }
                        searches += 1;
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
    });
    let expected: u64 = (0..WRITERS * PER_WRITER)
        .filter(|k| !(k / WRITERS).is_multiple_of(10))
        .count() as u64;
    assert_eq!(shard.stats().live_points, expected);
    assert!(
        shard.stats().flushes > 0,
        "small memtables must have flushed during the run"
    );
    shard.close().unwrap();
    let reopened = Shard::open(dir.path().to_str().unwrap(), Options::default()).unwrap();
    assert_eq!(reopened.stats().live_points, expected);
    for k in 0..WRITERS * PER_WRITER {
        let got = reopened.get(&Key::Int(k)).unwrap();
        if (k / WRITERS).is_multiple_of(10) {
            assert!(got.is_none(), "deleted key {k} came back");
        } else {
            assert_eq!(got.unwrap().vector, vector(k, 1), "key {k}");
        }
    }
}
