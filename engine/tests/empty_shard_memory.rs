//! An idle, empty shard costs little memory: the memtable grows with its rows instead of
//! allocating per-row arrays for its whole capacity up front. Measured with a counting
//! global allocator (this test binary holds one test, so nothing else allocates meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use vecshard_engine::{Metric, Options, Point, SearchRequest, Shard, ShardSpec};

/// Bytes currently allocated through the global allocator.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SHARDS: usize = 16;
const BUDGET: isize = 1 << 20;

#[test]
fn an_empty_shard_costs_at_most_one_mib_and_grows_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    // The defaults a node uses (64 MiB memtable), at a common dimension.
    let spec = ShardSpec::new(128, Metric::L2);
    let before = LIVE.load(Ordering::Relaxed);
    let shards: Vec<Shard> = (0..SHARDS)
        .map(|i| {
            let location = dir.path().join(i.to_string());
            Shard::create(location.to_str().unwrap(), spec, Options::default()).unwrap()
        })
        .collect();
    let per_shard = (LIVE.load(Ordering::Relaxed) - before) / SHARDS as isize;
    eprintln!("an empty shard holds {per_shard} bytes");
    assert!(
        per_shard <= BUDGET,
        "an empty shard holds {per_shard} bytes, the budget is {BUDGET}"
    );

    // Growth on demand still holds every row and finds it.
    let shard = &shards[0];
    let points: Vec<Point> = (0..5_000u64)
        .map(|k| {
            let mut rng = SmallRng::seed_from_u64(k);
            Point::new(k, (0..128).map(|_| rng.random_range(-1.0..1.0)).collect())
        })
        .collect();
    for batch in points.chunks(500) {
        shard.upsert(batch.to_vec()).unwrap();
    }
    assert_eq!(shard.stats().live_points, 5_000);
    let mut req = SearchRequest::new(points[4321].vector.clone(), 1);
    req.ef = Some(64);
    assert_eq!(shard.search(&req).unwrap()[0].key, points[4321].key);
    for s in &shards {
        s.close().unwrap();
    }
}
