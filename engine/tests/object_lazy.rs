//! Object-store shards read format-2 segments lazily (design note 015, step 5): the same
//! files opened through the lazy backing and through the whole-file (mapped) path give the
//! same answers; the block cache stays under its bound while threads search; a slow store
//! only slows answers and a failing one gives errors, never other answers.
#![cfg(feature = "object-store")]

mod object_support;

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::StdRng};
use vecshard_engine::storage::{
    AppendFile, Blob, CacheStats, Latency, LatencyStorage, LockGuard, ObjectInfo, Storage,
    StorageOptions, open_storage,
};
use vecshard_engine::{
    Error, ErrorKind, Filter, Hit, Key, Metric, Options, Point, Prefetch, Result, SearchRequest,
    SegmentFormat, Shard, ShardSpec, Value,
};

use object_support::{fast_retries, unique};

const DIM: usize = 16;
const FIRST: u64 = 2000;
const ALL: u64 = 3000;

fn vector(i: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(i);
    let c = (i % 7) as f32 * 3.0;
    (0..DIM)
        .map(|d| c + d as f32 * 0.1 + rng.random_range(-1.0..1.0))
        .collect()
}

fn point(i: u64, version: u64) -> Point {
    let mut v = vector(i);
    v[0] += version as f32;
    Point::new(i, v)
        .with("group", Value::Int((i % 5) as i64))
        .with_payload(format!("p{i}.{version}").into_bytes())
}

/// A format-2 shard in `memory://…` with two segments, overwrites and deletes; its URL.
fn build() -> String {
    let url = format!("memory://{}", unique("lazy"));
    let opts = Options {
        segment_format: SegmentFormat::V2,
        background: false,
        ..Options::default()
    };
    let shard = Shard::create(&url, ShardSpec::new(DIM, Metric::L2), opts).unwrap();
    let pts: Vec<Point> = (0..FIRST).map(|i| point(i, 0)).collect();
    shard.upsert(pts).unwrap();
    shard.flush().unwrap();
    let pts: Vec<Point> = (FIRST..ALL).map(|i| point(i, 0)).collect();
    shard.upsert(pts).unwrap();
    shard
        .upsert((0..200).map(|i| point(i * 7, 1)).collect())
        .unwrap();
    shard
        .delete((0..100).map(|i| Key::Int(i * 11 + 3)).collect())
        .unwrap();
    shard.flush().unwrap();
    shard.close().unwrap();
    url
}

/// Every read of `inner` as it is, but segments mapped (fetched whole) instead of read
/// in blocks: the whole-file path over the same objects.
#[derive(Debug)]
struct Whole(Arc<dyn Storage>);

impl Storage for Whole {
    fn location(&self) -> &str {
        self.0.location()
    }
    fn get(&self, p: &str) -> Result<Bytes> {
        self.0.get(p)
    }
    fn get_range(&self, p: &str, r: Range<u64>) -> Result<Bytes> {
        self.0.get_range(p, r)
    }
    fn map(&self, p: &str) -> Result<Blob> {
        self.0.map(p)
    }
    fn put(&self, p: &str, d: Bytes) -> Result<()> {
        self.0.put(p, d)
    }
    fn put_if_absent(&self, p: &str, d: Bytes) -> Result<bool> {
        self.0.put_if_absent(p, d)
    }
    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        self.0.list(dir)
    }
    fn delete(&self, p: &str) -> Result<()> {
        self.0.delete(p)
    }
    fn supports_append(&self) -> bool {
        self.0.supports_append()
    }
    fn create_append(&self, p: &str) -> Result<Box<dyn AppendFile>> {
        self.0.create_append(p)
    }
    fn lock_exclusive(&self) -> Result<Option<Box<dyn LockGuard>>> {
        self.0.lock_exclusive()
    }
}

/// Forwards everything; the ranged reads after the first `ok` fail (`u64::MAX`: none).
/// With `hold_warms`, every warm (a segment's prefetch) stops after its first round,
/// reports on `paused`, waits for [`Failing::release_warms`], then goes on and reports
/// again when it returns.
#[derive(Debug)]
struct Failing {
    inner: Arc<dyn Storage>,
    ok: AtomicU64,
    reads: AtomicU64,
    warms: Mutex<Option<mpsc::Sender<()>>>,
    released: (Mutex<bool>, Condvar),
}

impl Failing {
    fn new(inner: Arc<dyn Storage>) -> Arc<Failing> {
        Arc::new(Failing {
            inner,
            ok: AtomicU64::new(u64::MAX),
            reads: AtomicU64::new(0),
            warms: Mutex::new(None),
            released: (Mutex::new(false), Condvar::new()),
        })
    }

    fn hold_warms(&self) -> mpsc::Receiver<()> {
        let (tx, rx) = mpsc::channel();
        *self.warms.lock().unwrap() = Some(tx);
        rx
    }

    fn release_warms(&self) {
        *self.released.0.lock().unwrap() = true;
        self.released.1.notify_all();
    }

    fn read(&self) -> Result<()> {
        if self.reads.fetch_add(1, Ordering::SeqCst) >= self.ok.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Io, "injected read failure"));
        }
        Ok(())
    }
}

impl Storage for Failing {
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn get(&self, p: &str) -> Result<Bytes> {
        self.inner.get(p)
    }
    fn get_range(&self, p: &str, r: Range<u64>) -> Result<Bytes> {
        self.read()?;
        self.inner.get_range(p, r)
    }
    fn get_ranges(&self, p: &str, r: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.read()?;
        self.inner.get_ranges(p, r)
    }
    fn reads_in_blocks(&self) -> bool {
        self.inner.reads_in_blocks()
    }
    fn map(&self, p: &str) -> Result<Blob> {
        self.inner.map(p)
    }
    fn put(&self, p: &str, d: Bytes) -> Result<()> {
        self.inner.put(p, d)
    }
    fn put_if_absent(&self, p: &str, d: Bytes) -> Result<bool> {
        self.inner.put_if_absent(p, d)
    }
    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        self.inner.list(dir)
    }
    fn delete(&self, p: &str) -> Result<()> {
        self.inner.delete(p)
    }
    fn supports_append(&self) -> bool {
        self.inner.supports_append()
    }
    fn create_append(&self, p: &str) -> Result<Box<dyn AppendFile>> {
        self.inner.create_append(p)
    }
    fn lock_exclusive(&self) -> Result<Option<Box<dyn LockGuard>>> {
        self.inner.lock_exclusive()
    }
    fn cache_stats(&self) -> CacheStats {
        self.inner.cache_stats()
    }
    fn warm(&self, p: &str, r: &[Range<u64>], keep_going: &dyn Fn() -> bool) -> Result<()> {
        let Some(paused) = self.warms.lock().unwrap().clone() else {
            return self.inner.warm(p, r, keep_going);
        };
        let asked = AtomicU64::new(0);
        let held = || {
            // Asked before the first round, then after each: hold after the first.
            if asked.fetch_add(1, Ordering::SeqCst) == 1 {
                paused.send(()).unwrap();
                let (released, cv) = &self.released;
                drop(cv.wait_while(released.lock().unwrap(), |r| !*r).unwrap());
            }
            keep_going()
        };
        let done = self.inner.warm(p, r, &held);
        paused.send(()).unwrap();
        done
    }
}

fn storage(url: &str, cache_bytes: u64) -> Arc<dyn Storage> {
    let opts = StorageOptions {
        block_cache_bytes: cache_bytes,
        ..fast_retries()
    };
    open_storage(url, &opts).unwrap()
}

fn reader(storage: Arc<dyn Storage>, prefetch: Prefetch) -> Shard {
    let opts = Options {
        prefetch,
        ..Options::read_only()
    };
    Shard::open_with(storage, None, None, opts).unwrap()
}

fn requests() -> Vec<SearchRequest> {
    let mut rng = StdRng::seed_from_u64(99);
    (0..40)
        .map(|q| {
            let base = vector(rng.random_range(0..ALL));
            let v: Vec<f32> = base
                .iter()
                .map(|x| x + rng.random_range(-0.3..0.3))
                .collect();
            let mut r = SearchRequest::new(v, 10);
            r.ef = Some(32);
            r.with_vector = q % 2 == 0;
            r.with_payload = true;
            r.with_metadata = q % 3 == 0;
            if q % 4 == 1 {
                let g = q % 5;
                r.filter = Some(
                    Filter::parse_str(&format!(r#"{{"field": "group", "eq": {g}}}"#)).unwrap(),
                );
            }
            if q % 10 == 7 {
                r.exact = true;
            }
            r
        })
        .collect()
}

fn same_hits(got: &[Hit], want: &[Hit], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.key, w.key, "{what}");
        assert_eq!(g.distance, w.distance, "{what}");
        assert_eq!(g.vector, w.vector, "{what}");
        assert_eq!(g.payload, w.payload, "{what}");
        assert_eq!(g.metadata, w.metadata, "{what}");
    }
}

#[test]
fn a_lazy_shard_answers_like_the_whole_file_path_and_reads_little_to_open() {
    let url = build();
    let whole = reader(Arc::new(Whole(storage(&url, 64 << 20))), Prefetch::None);
    let lazy = reader(storage(&url, 64 << 20), Prefetch::None);
    let (ws, ls) = (whole.stats(), lazy.stats());
    assert_eq!((ws.segments, ws.lazy_segments), (2, 0));
    assert_eq!((ls.segments, ls.lazy_segments), (2, 2));
    // A node runs a narrow search inline on its async runtime unless the read may wait on
    // the store: lazy segments may, whole ones never.
    assert!(lazy.reads_may_wait());
    assert!(!whole.reads_may_wait());
    assert_eq!(ls.live_points, ws.live_points);
    assert_eq!(ls.live_points, ALL - 100);
    // Open: headers, directories and the row columns only — not the vectors and hops.
    assert!(
        ls.bytes_fetched * 3 < ls.segment_bytes,
        "opened with {} of {} segment bytes",
        ls.bytes_fetched,
        ls.segment_bytes
    );
    // ... kept by the segments themselves: none of it went into the block cache.
    assert_eq!(ls.cache_resident_bytes, 0);
    for (i, r) in requests().iter().enumerate() {
        let want = whole.search(r).unwrap();
        assert_eq!(want.len(), 10);
        same_hits(&lazy.search(r).unwrap(), &want, &format!("query {i}"));
    }
    for i in (0..ALL).step_by(37).chain([3, 14, 7, 0]) {
        let k = Key::Int(i);
        assert_eq!(lazy.get(&k).unwrap(), whole.get(&k).unwrap(), "get {i}");
    }
    assert_eq!(
        lazy.scan(None, ALL as usize).unwrap(),
        whole.scan(None, ALL as usize).unwrap()
    );
    assert!(
        lazy.stats().bytes_fetched > ls.bytes_fetched,
        "searches read blocks"
    );
}

#[test]
fn a_lazy_writer_merges_and_keeps_every_point() {
    let url = build();
    let opts = Options {
        segment_format: SegmentFormat::V2,
        background: false,
        prefetch: Prefetch::None,
        ..Options::default()
    };
    let shard = Shard::open(&url, opts).unwrap();
    assert_eq!(shard.stats().lazy_segments, 2);
    shard.upsert(vec![point(5, 9)]).unwrap();
    shard.compact().unwrap();
    let s = shard.stats();
    assert_eq!((s.segments, s.lazy_segments), (1, 1), "{s:?}");
    for i in 0..ALL {
        let got = shard.get(&Key::Int(i)).unwrap();
        if i % 11 == 3 && i < 1100 {
            assert!(got.is_none(), "{i} was deleted");
            continue;
        }
        let version = match i {
            5 => 9,
            _ if i % 7 == 0 && i < 1400 => 1,
            _ => 0,
        };
        assert_eq!(got, Some(point(i, version)), "point {i}");
    }
}

#[test]
fn the_block_cache_bound_holds_under_concurrent_searches() {
    let url = build();
    let probe = reader(storage(&url, 0), Prefetch::None);
    let segment_bytes = probe.stats().segment_bytes;
    let bound = segment_bytes / 10;
    let whole = reader(Arc::new(Whole(storage(&url, 0))), Prefetch::None);
    let lazy = reader(storage(&url, bound), Prefetch::All);
    let reqs = requests();
    let want: Vec<Vec<Hit>> = reqs.iter().map(|r| whole.search(r).unwrap()).collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (lazy, reqs, want) = (&lazy, &reqs, &want);
            s.spawn(move || {
                for round in 0..3 {
                    for (i, r) in reqs.iter().enumerate().skip(t) {
                        same_hits(&lazy.search(r).unwrap(), &want[i], &format!("t{t} q{i}"));
                        let held = lazy.stats().cache_resident_bytes;
                        assert!(held <= bound, "round {round}: {held} > {bound}");
                    }
                }
            });
        }
    });
    let s = lazy.stats();
    assert!(
        s.cache_resident_bytes > 0 && s.cache_resident_bytes <= bound,
        "{s:?}"
    );
    assert!(s.cache_memory_hits > 0, "{s:?}");
}

#[test]
fn a_warm_lazy_shard_counts_its_table_reads_as_memory_hits() {
    let url = build();
    let lazy = reader(storage(&url, 64 << 20), Prefetch::None);
    // Plain graph searches: keys come from the resident columns, the walk's records and
    // the rescored vectors from the block tables once warm.
    let mut rng = StdRng::seed_from_u64(7);
    let reqs: Vec<SearchRequest> = (0..20)
        .map(|_| {
            let mut r = SearchRequest::new(vector(rng.random_range(0..ALL)), 10);
            r.ef = Some(32);
            r
        })
        .collect();
    for r in &reqs {
        lazy.search(r).unwrap();
    }
    let before = lazy.stats();
    for r in &reqs {
        lazy.search(r).unwrap();
    }
    let after = lazy.stats();
    assert_eq!(
        (
            after.cache_misses,
            after.cache_requests,
            after.bytes_fetched
        ),
        (
            before.cache_misses,
            before.cache_requests,
            before.bytes_fetched
        ),
        "warm searches fetch nothing"
    );
    // Each search reads at least its 10 rescored vectors from the tables.
    assert!(
        after.cache_memory_hits >= before.cache_memory_hits + 20 * 10,
        "{before:?} then {after:?}"
    );
}

#[test]
fn a_slow_store_answers_the_same_and_charges_rounds() {
    let url = build();
    let whole = reader(Arc::new(Whole(storage(&url, 0))), Prefetch::None);
    let waits = Arc::new(parking_lot::Mutex::new(Vec::<Duration>::new()));
    let log = waits.clone();
    let slow = Arc::new(
        LatencyStorage::new(storage(&url, 64 << 20), Latency::new(25, 100))
            .with_delay(Arc::new(move |d| log.lock().push(d))),
    );
    let lazy = reader(slow.clone(), Prefetch::None);
    let at_open = slow.injected();
    for r in requests() {
        same_hits(
            &lazy.search(&r).unwrap(),
            &whole.search(&r).unwrap(),
            "slow",
        );
    }
    let after = slow.injected();
    assert!(after.requests > at_open.requests, "{after:?}");
    assert!(waits.lock().iter().all(|d| *d >= Duration::from_millis(25)));
    // A repeated query is served by the block cache: no round is charged.
    let r = &requests()[0];
    lazy.search(r).unwrap();
    let before = slow.injected();
    lazy.search(r).unwrap();
    assert_eq!(slow.injected(), before);
}

#[test]
fn a_failing_store_gives_errors_never_other_answers() {
    let url = build();
    let whole = reader(Arc::new(Whole(storage(&url, 0))), Prefetch::None);
    let reqs = requests();
    let (mut failed, mut answered) = (0, 0);
    // No block cache: every search reads, so every fail point is met.
    let flaky = Failing::new(storage(&url, 0));
    let lazy = reader(flaky.clone(), Prefetch::None);
    // Each search or get may make `fail_after` more reads; the next one fails.
    let fail_next = |after: u64| {
        let now = flaky.reads.load(Ordering::SeqCst);
        flaky.ok.store(now + after, Ordering::SeqCst);
    };
    for fail_after in [0u64, 1, 2, 3, 5, 8, 13, 21, 34, 55, 1000] {
        for (i, r) in reqs.iter().enumerate().take(12) {
            fail_next(fail_after);
            match lazy.search(r) {
                Ok(got) => {
                    same_hits(&got, &whole.search(r).unwrap(), &format!("q{i}"));
                    answered += 1;
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
                    assert!(e.to_string().contains("injected"), "{e}");
                    failed += 1;
                }
            }
        }
        fail_next(fail_after);
        let k = Key::Int(FIRST + 1);
        match lazy.get(&k) {
            Ok(got) => assert_eq!(got, whole.get(&k).unwrap()),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Io, "{e}"),
        }
    }
    assert!(
        failed > 0 && answered > 0,
        "{failed} failed, {answered} answered"
    );
}

#[test]
fn prefetch_all_warms_the_cache_in_the_background() {
    let url = build();
    let lazy = reader(storage(&url, 64 << 20), Prefetch::All);
    let segment_bytes = lazy.stats().segment_bytes;
    // Polled: the warming runs on its own thread while the shard already serves.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while lazy.stats().bytes_fetched < segment_bytes * 8 / 10 {
        assert!(std::time::Instant::now() < deadline, "{:?}", lazy.stats());
        std::thread::yield_now();
    }
    let before = lazy.stats();
    for r in requests() {
        lazy.search(&r).unwrap();
    }
    let after = lazy.stats();
    assert_eq!(
        after.bytes_fetched, before.bytes_fetched,
        "all served from memory"
    );
}

/// Bytes fetched by a `Prefetch::All` shard of `url` when its warms have done one round
/// each, and when they have returned, the shard dropped in between or not.
fn warm_rounds(url: &str, drop_shard: bool) -> (u64, u64) {
    // One GET of one 4 KiB part in flight for a prefetch: a round is 4 KiB, so each
    // segment's warm takes several rounds.
    let opts = StorageOptions {
        block_cache_bytes: 64 << 20,
        part_bytes: 4 << 10,
        max_requests: 4,
        ..fast_retries()
    };
    let object = open_storage(url, &opts).unwrap();
    let store = Failing::new(object.clone());
    let events = store.hold_warms();
    let shard = reader(store.clone(), Prefetch::All);
    let segments = shard.stats().segments;
    let wait = |what: &str| {
        for _ in 0..segments {
            events
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    };
    wait("each prefetch's first round");
    let paused = object.cache_stats().bytes_fetched;
    if drop_shard {
        drop(shard);
        store.release_warms();
        wait("each prefetch returning");
    } else {
        store.release_warms();
        wait("each prefetch returning");
        drop(shard);
    }
    (paused, object.cache_stats().bytes_fetched)
}

#[test]
fn a_dropped_shards_prefetch_stops_after_the_round_in_flight() {
    let url = build();
    let (paused, whole) = warm_rounds(&url, false);
    assert!(
        paused < whole,
        "a kept shard warms on: {paused} then {whole} bytes"
    );
    let (paused, end) = warm_rounds(&url, true);
    assert_eq!(
        end, paused,
        "a prefetch went on downloading for a dropped shard (a whole warm fetches {whole})"
    );
}
