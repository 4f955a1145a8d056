//! The end of a compaction: the new view is built off to the side and published with one
//! swap, so gets and searches keep answering while it is built, and writes that land
//! meanwhile are carried over (values, deletes) into what it publishes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use vecshard_engine::failpoints::COMPACTION_PUBLISH_BEFORE;
use vecshard_engine::{Durability, Key, Metric, Options, Point, SearchRequest, Shard, ShardSpec};

/// Long enough for a slow, shared machine; a blocked read never answers at all.
const ANSWER: Duration = Duration::from_secs(20);

fn vector(key: u64, version: u64) -> Vec<f32> {
    vec![key as f32, version as f32, (key % 7) as f32, 1.0]
}

type Model = HashMap<u64, Vec<f32>>;

fn upsert(shard: &Shard, model: &mut Model, keys: impl Iterator<Item = u64>, version: u64) {
    let points: Vec<Point> = keys.map(|k| Point::new(k, vector(k, version))).collect();
    for p in &points {
        let Key::Int(k) = p.key else { unreachable!() };
        model.insert(k, p.vector.clone());
    }
    shard.upsert(points).unwrap();
}

fn delete(shard: &Shard, model: &mut Model, keys: impl Iterator<Item = u64>) {
    let keys: Vec<u64> = keys.collect();
    for k in &keys {
        model.remove(k);
    }
    shard
        .delete(keys.into_iter().map(Key::Int).collect())
        .unwrap();
}

/// Every key the model knows (and a band of keys it does not) reads back as the model says;
/// a full scan returns exactly the model; an exact search returns only live points.
fn check(shard: &Shard, model: &Model, key_space: u64, what: &str) {
    for k in 0..key_space {
        let got = shard.get(&Key::Int(k)).unwrap().map(|p| p.vector);
        assert_eq!(got.as_ref(), model.get(&k), "{what}: key {k}");
    }
    let mut scanned = Vec::new();
    let mut after: Option<Key> = None;
    loop {
        let page = shard.scan(after.as_ref(), 1000).unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        scanned.extend(page.into_iter().map(|p| (p.key, p.vector)));
    }
    assert_eq!(scanned.len(), model.len(), "{what}: scan length");
    for (key, v) in &scanned {
        let Key::Int(k) = key else {
            panic!("{what}: unexpected key {key}")
        };
        assert_eq!(Some(v), model.get(k), "{what}: scanned key {k}");
    }
    let mut req = SearchRequest::new(vector(key_space / 2, 0), 200.min(model.len().max(1)));
    req.exact = true;
    req.with_vector = true;
    let hits = shard.search(&req).unwrap();
    assert_eq!(
        hits.len(),
        req.k.min(model.len()),
        "{what}: exact search size"
    );
    for h in &hits {
        let Key::Int(k) = h.key else {
            panic!("{what}: unexpected key {}", h.key)
        };
        assert_eq!(h.vector.as_ref(), model.get(&k), "{what}: search hit {k}");
    }
}

/// Stop the first compaction right before it publishes (fail point
/// `compaction-publish-before`) until `resume` says go (or is dropped: a failing test never
/// leaves the compaction stuck).
fn pause_before_publish() -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (paused_tx, paused_rx) = mpsc::sync_channel::<()>(1);
    let (resume_tx, resume_rx) = mpsc::channel::<()>();
    let resume_rx = Mutex::new(resume_rx);
    let first = AtomicBool::new(true);
    fail::cfg_callback(COMPACTION_PUBLISH_BEFORE, move || {
        if first.swap(false, Ordering::SeqCst) {
            let _ = paused_tx.send(());
            let _ = resume_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(120));
        }
    })
    .unwrap();
    (paused_rx, resume_tx)
}

/// Run `f` on another thread and wait a bounded time for its answer.
fn answers<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(ANSWER)
        .unwrap_or_else(|_| panic!("{what} did not answer within {ANSWER:?}"))
}

#[test]
fn reads_and_writes_go_on_while_a_compaction_is_about_to_publish() {
    // Fail points are process-wide: the scenario keeps this binary's tests apart.
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let (paused, resume) = pause_before_publish();
    let opts = Options {
        background: false,
        ..Options::default()
    };
    let location = dir.path().to_str().unwrap().to_string();
    let shard = Shard::create(&location, ShardSpec::new(4, Metric::L2), opts).unwrap();
    let mut model = Model::new();
    for part in 0..3u64 {
        upsert(&shard, &mut model, part * 1000..(part + 1) * 1000, 0);
        shard.flush().unwrap();
    }
    delete(&shard, &mut model, 0..300);
    shard.flush().unwrap();

    let compactor = {
        let shard = shard.clone();
        std::thread::spawn(move || shard.compact())
    };
    paused
        .recv_timeout(Duration::from_secs(120))
        .expect("the compaction reaches its publish step");

    // Reads while the compaction waits to publish.
    let (got, hits) = answers("a get and a search during the compaction", {
        let shard = shard.clone();
        move || {
            let got = shard.get(&Key::Int(1500)).unwrap();
            let hits = shard
                .search(&SearchRequest::new(vector(1500, 0), 5))
                .unwrap();
            (got, hits)
        }
    });
    assert_eq!(got.unwrap().vector, vector(1500, 0));
    assert_eq!(hits[0].key, Key::Int(1500));

    // Writes while it waits: new keys, overwrites and deletes of merged rows, a delete
    // then re-insert, an insert then delete.
    let mut during = model.clone();
    let shard2 = shard.clone();
    let during_model = answers("writes during the compaction", move || {
        upsert(&shard2, &mut during, 5000..5100, 1);
        upsert(&shard2, &mut during, 1000..1100, 2);
        delete(&shard2, &mut during, 2000..2100);
        delete(&shard2, &mut during, [2500].into_iter());
        upsert(&shard2, &mut during, [2500].into_iter(), 3);
        upsert(&shard2, &mut during, [2600, 5200].into_iter(), 4);
        delete(&shard2, &mut during, [2600, 5200].into_iter());
        during
    });
    model = during_model;
    check(&shard, &model, 5300, "before the publish");

    resume.send(()).unwrap();
    compactor.join().unwrap().unwrap();
    assert_eq!(
        shard.stats().segments,
        1,
        "the compaction merged every segment"
    );
    assert_eq!(shard.stats().live_points, model.len() as u64);
    check(&shard, &model, 5300, "after the publish");

    // The published view keeps taking writes and survives flush, compaction and reopen.
    upsert(&shard, &mut model, 1050..1060, 5);
    delete(&shard, &mut model, 1060..1070);
    shard.flush().unwrap();
    shard.compact().unwrap();
    check(&shard, &model, 5300, "after a second compaction");
    shard.close().unwrap();
    let reopened = Shard::open(&location, Options::default()).unwrap();
    check(&reopened, &model, 5300, "after reopen");
    scenario.teardown();
}

/// Random upserts and deletes from one writer (which reads its own writes) while another
/// thread compacts over and over; the shard must end equal to a HashMap model.
#[test]
fn random_writes_interleaved_with_compactions_match_a_model() {
    // No fail point here, but it must not run into the other test's pause.
    let _scenario = fail::FailScenario::setup();
    for seed in [7u64, 1234, 99_991] {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap().to_string();
        let opts = Options {
            memtable_bytes: 64 << 10,
            max_segments: 2,
            durability: Durability::Buffered,
            ..Options::default()
        };
        let shard = Shard::create(&location, ShardSpec::new(4, Metric::L2), opts).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let compactor = {
            let (shard, stop) = (shard.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut runs = 0u32;
                while !stop.load(Ordering::Relaxed) || runs < 3 {
                    shard.flush().unwrap();
                    shard.compact().unwrap();
                    runs += 1;
                }
                runs
            })
        };
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut model = Model::new();
        const KEYS: u64 = 600;
        for version in 0..1_500u64 {
            let n = rng.random_range(1..20u64);
            let keys: Vec<u64> = (0..n).map(|_| rng.random_range(0..KEYS)).collect();
            if rng.random_bool(0.3) {
                delete(&shard, &mut model, keys.iter().copied());
            } else {
                let mut unique = keys.clone();
                unique.sort_unstable();
                unique.dedup();
                upsert(&shard, &mut model, unique.into_iter(), version + 1);
            }
            let k = keys[0];
            let got = shard.get(&Key::Int(k)).unwrap().map(|p| p.vector);
            assert_eq!(
                got.as_ref(),
                model.get(&k),
                "seed {seed}: reads its own write of {k}"
            );
        }
        stop.store(true, Ordering::Relaxed);
        let runs = compactor.join().unwrap();
        assert!(runs >= 3, "seed {seed}: compactions ran");
        check(&shard, &model, KEYS, &format!("seed {seed}"));
        shard.close().unwrap();
        let reopened = Shard::open(&location, Options::default()).unwrap();
        check(&reopened, &model, KEYS, &format!("seed {seed}, reopened"));
    }
}
