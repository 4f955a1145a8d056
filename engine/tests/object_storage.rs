//! Object-store storage: the shared conformance suite on `memory://`, `file://` and the
//! local S3 service; block and disk caches; retries and the check of a retried create.
#![cfg(feature = "object-store")]

mod object_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use object_support::{FaultyStore, fast_retries, s3_location, unique};
use vecshard_engine::ErrorKind;
use vecshard_engine::storage::object_store::memory::InMemory;
use vecshard_engine::storage::object_store::{GetRange, ObjectStore};
use vecshard_engine::storage::{
    Blob, CacheStats, ObjectStorage, Storage, StorageOptions, conformance, open_storage,
};

const KIB: u64 = 1024;

fn faulty_storage(opts: &StorageOptions) -> (Arc<FaultyStore>, ObjectStorage) {
    let store = FaultyStore::new(Arc::new(InMemory::new()));
    let dynstore: Arc<dyn ObjectStore> = store.clone();
    let storage = ObjectStorage::builder(dynstore, "memory://faulty")
        .prefix("shard")
        .options(opts)
        .build()
        .unwrap();
    (store, storage)
}

fn pattern(len: u64) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn memory_conforms() {
    let s = open_storage(&format!("memory://{}", unique("conf")), &fast_retries()).unwrap();
    conformance::run(s.as_ref());
}

#[test]
fn memory_with_prefix_conforms() {
    let name = unique("conf-prefix");
    let s = open_storage(&format!("memory://{name}/a/b"), &fast_retries()).unwrap();
    conformance::run(s.as_ref());
    // A sibling prefix sees nothing of it.
    let other = open_storage(&format!("memory://{name}/a/c"), &fast_retries()).unwrap();
    assert!(other.list("conf").unwrap().is_empty());
}

#[test]
fn file_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("shard").display());
    let s = open_storage(&url, &fast_retries()).unwrap();
    assert!(!s.supports_append());
    assert!(s.lock_exclusive().unwrap().is_none());
    conformance::run(s.as_ref());
}

#[test]
fn file_with_disk_cache_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StorageOptions {
        cache_dir: Some(dir.path().join("cache")),
        ..fast_retries()
    };
    let url = format!("file://{}", dir.path().join("shard").display());
    let s = open_storage(&url, &opts).unwrap();
    conformance::run(s.as_ref());
    let before = s.cache_stats();
    assert_eq!(s.map("conf/map").unwrap().len(), 10_000);
    assert_eq!(s.cache_stats().disk_hits, before.disk_hits + 1);
}

#[test]
fn s3_conforms() {
    let location = s3_location("conformance");
    let s = open_storage(&location, &fast_retries()).unwrap();
    assert_eq!(s.location(), location);
    conformance::run(s.as_ref());
    let err = s.get("conf/missing").unwrap_err();
    assert!(
        err.message().contains(&format!("{location}/conf/missing")),
        "errors name the full location and key: {err}"
    );
}

#[test]
fn reopened_memory_store_keeps_its_data() {
    let url = format!("memory://{}/shard", unique("reopen"));
    let opts = StorageOptions::default();
    let s = open_storage(&url, &opts).unwrap();
    assert!(
        s.put_if_absent("manifest/1", Bytes::from_static(b"m1"))
            .unwrap()
    );
    drop(s);
    let s = open_storage(&url, &opts).unwrap();
    assert_eq!(&s.get("manifest/1").unwrap()[..], b"m1");
}

#[test]
fn append_files_are_refused() {
    let s = open_storage(&format!("memory://{}", unique("append")), &fast_retries()).unwrap();
    let err = s.create_append("wal/1").err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("wal/1"), "{err}");
}

#[test]
fn usable_from_inside_a_tokio_runtime() {
    let s = open_storage(&format!("memory://{}", unique("in-tokio")), &fast_retries()).unwrap();
    s.put("x", Bytes::from_static(b"fine")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let got = rt.block_on(async { s.get("x").unwrap() });
    assert_eq!(&got[..], b"fine");
    let multi = tokio::runtime::Runtime::new().unwrap();
    let s2 = s.clone();
    let got = multi
        .block_on(async move { tokio::spawn(async move { s2.get("x").unwrap() }).await })
        .unwrap();
    assert_eq!(&got[..], b"fine");
}

// ---- block cache -------------------------------------------------------------------

fn block_opts(block: u64, capacity: u64) -> StorageOptions {
    StorageOptions {
        block_size_bytes: block,
        block_cache_bytes: capacity,
        ..fast_retries()
    }
}

#[test]
fn block_cache_counts_hits_and_misses() {
    let (store, s) = faulty_storage(&block_opts(64 * KIB, 4 << 20));
    let data = pattern(300 * KIB);
    s.put("segments/1", Bytes::from(data.clone())).unwrap();

    assert_eq!(
        &s.get_range("segments/1", 10..100).unwrap()[..],
        &data[10..100]
    );
    assert_eq!(
        s.cache_stats(),
        CacheStats {
            memory_hits: 0,
            disk_hits: 0,
            misses: 1,
            requests: 1,
            bytes_fetched: 64 * KIB
        }
    );
    assert_eq!(
        &s.get_range("segments/1", 1000..2000).unwrap()[..],
        &data[1000..2000]
    );
    assert_eq!(s.cache_stats().memory_hits, 1);
    assert_eq!(store.gets(), 1, "the second read was served from memory");
}

#[test]
fn adjacent_missing_blocks_are_fetched_in_one_request() {
    let bs = 64 * KIB;
    let (store, s) = faulty_storage(&block_opts(bs, 4 << 20));
    let len = 300 * KIB; // blocks 0..=4, the last one short
    let data = pattern(len);
    s.put("segments/1", Bytes::from(data.clone())).unwrap();

    // Cache blocks 0 and 2.
    s.get_range("segments/1", 5..6).unwrap();
    s.get_range("segments/1", 2 * bs + 1..2 * bs + 2).unwrap();
    store.take_ranges();

    // Whole object: block 1 alone, then blocks 3-4 in one GET.
    let got = s.get_range("segments/1", 0..len).unwrap();
    assert_eq!(&got[..], &data[..]);
    let ranges = store.take_ranges();
    assert_eq!(
        ranges,
        vec![
            Some(GetRange::Bounded(bs..2 * bs)),
            Some(GetRange::Bounded(3 * bs..5 * bs))
        ]
    );
    let stats = s.cache_stats();
    assert_eq!(stats.memory_hits, 2);
    assert_eq!(stats.misses, 2 + 3);
    assert_eq!(stats.bytes_fetched, 2 * bs + bs + (len - 3 * bs));

    // Everything is cached now, read at odd offsets across every block boundary.
    for start in [0, bs - 1, 2 * bs - 7, len - 1] {
        let end = (start + bs + 13).min(len);
        assert_eq!(
            &s.get_range("segments/1", start..end).unwrap()[..],
            &data[start as usize..end as usize]
        );
    }
    assert!(store.take_ranges().is_empty());
    assert!(s.get_range("segments/1", len - 5..len + 5).is_err());
}

/// A 400 KiB object `segments/1` on a storage of 4 KiB blocks with `max_requests`, and 20
/// ranges in 20 blocks with a gap between each two: 20 GETs asked for in one round.
fn twenty_scattered_ranges(
    max_requests: usize,
) -> (
    Arc<FaultyStore>,
    ObjectStorage,
    Vec<u8>,
    Vec<std::ops::Range<u64>>,
) {
    let opts = StorageOptions {
        max_requests,
        ..block_opts(4 * KIB, 4 << 20)
    };
    let (store, s) = faulty_storage(&opts);
    let data = pattern(400 * KIB);
    s.put("segments/1", Bytes::from(data.clone())).unwrap();
    let ranges = (0..20)
        .map(|i| i * 8 * KIB + 10..i * 8 * KIB + 300)
        .collect();
    (store, s, data, ranges)
}

#[test]
fn ranged_gets_in_flight_are_bounded_by_max_requests() {
    for (max_requests, peak) in [(4, 4), (1, 1), (64, 20)] {
        let (store, s, data, ranges) = twenty_scattered_ranges(max_requests);
        // Each GET waits in the store until `max_requests` of them are in it (or all 20
        // have arrived): only a bound in the storage keeps the peak below 20.
        store.hold_gets(max_requests, ranges.len());
        let got = s.get_ranges("segments/1", &ranges).unwrap();
        for (r, g) in ranges.iter().zip(&got) {
            assert_eq!(&g[..], &data[r.start as usize..r.end as usize]);
        }
        assert_eq!(store.gets(), 20);
        assert_eq!(store.peak_in_flight(), peak, "max_requests {max_requests}");
    }
}

#[test]
fn a_prefetch_takes_a_quarter_of_the_requests_in_flight() {
    let (store, s, data, ranges) = twenty_scattered_ranges(8);
    // A warm (the prefetch) runs at most 8 / 4 GETs at once, so searches keep the rest.
    store.hold_gets(2, ranges.len());
    s.warm("segments/1", &ranges, &|| true).unwrap();
    assert_eq!(store.gets(), 20);
    assert_eq!(store.peak_in_flight(), 2);
    assert!(s.block_cache().resident_bytes() > 0, "warmed");
    // A search's reads may use all 8.
    s.put("segments/2", Bytes::from(data.clone())).unwrap();
    store.hold_gets(8, ranges.len());
    let got = s.get_ranges("segments/2", &ranges).unwrap();
    assert_eq!(&got[3][..], &data[3 * 8 * 1024 + 10..3 * 8 * 1024 + 300]);
    assert_eq!(store.peak_in_flight(), 8);
}

#[test]
fn a_cached_block_does_not_keep_the_answer_it_came_in_alive() {
    // `InMemory` answers a ranged GET with a slice of the stored object, as an HTTP client
    // answers with a slice of its connection's read buffer: a cached block must be a copy,
    // or the cache would hold (and not count) the larger buffer.
    let (store, s) = faulty_storage(&block_opts(4 * KIB, 1 << 20));
    let data = pattern(64 * KIB);
    s.put("segments/1", Bytes::from(data.clone())).unwrap();
    for range in [
        4 * KIB..8 * KIB,
        20 * KIB..20 * KIB + 10,
        40 * KIB..52 * KIB,
    ] {
        let got = s.get_range("segments/1", range.clone()).unwrap();
        assert_eq!(&got[..], &data[range.start as usize..range.end as usize]);
    }
    let path = vecshard_engine::storage::object_store::path::Path::from("shard/segments/1");
    use vecshard_engine::storage::object_store::ObjectStoreExt;
    let stored = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { store.get(&path).await.unwrap().bytes().await.unwrap() });
    let inside = stored.as_ptr_range();
    assert_eq!(&stored[..], &data[..]);
    // Every block (cached by the reads above, or fetched now) is its own allocation.
    for b in 0..16 {
        let block = s
            .get_range("segments/1", b * 4 * KIB..(b + 1) * 4 * KIB)
            .unwrap();
        assert!(
            !inside.contains(&block.as_ptr()),
            "block {b} is a slice of the store's answer"
        );
    }
}

#[test]
fn block_cache_memory_stays_bounded() {
    let bs = 16 * KIB;
    let capacity = 256 * KIB;
    let (_, s) = faulty_storage(&block_opts(bs, capacity));
    let len = 2 << 20;
    let data = pattern(len);
    s.put("segments/big", Bytes::from(data.clone())).unwrap();
    let mut off = 0;
    while off < len {
        let end = (off + 40 * KIB).min(len);
        assert_eq!(
            &s.get_range("segments/big", off..end).unwrap()[..],
            &data[off as usize..end as usize]
        );
        let resident = s.block_cache().resident_bytes();
        assert!(resident <= capacity, "{resident} > {capacity}");
        off = end;
    }
    assert!(
        s.block_cache().resident_bytes() > capacity / 2,
        "the cache is used"
    );
}

#[test]
fn replacing_an_object_drops_its_cached_blocks() {
    let (_, s) = faulty_storage(&block_opts(4 * KIB, 1 << 20));
    s.put("x", Bytes::from(vec![1u8; 10_000])).unwrap();
    assert_eq!(s.get_range("x", 5000..5001).unwrap()[0], 1);
    s.put("x", Bytes::from(vec![2u8; 10_000])).unwrap();
    assert_eq!(s.get_range("x", 5000..5001).unwrap()[0], 2);
    s.delete("x").unwrap();
    assert_eq!(
        s.get_range("x", 0..1).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

// ---- disk cache --------------------------------------------------------------------

fn disk_opts(dir: &std::path::Path, bound: u64) -> StorageOptions {
    StorageOptions {
        cache_dir: Some(dir.to_path_buf()),
        cache_dir_bytes: bound,
        block_size_bytes: 16 * KIB,
        ..fast_retries()
    }
}

fn cached_files(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn second_map_is_served_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (store, s) = faulty_storage(&disk_opts(dir.path(), 1 << 20));
    let data = pattern(100 * KIB);
    s.put("segments/1", Bytes::from(data.clone())).unwrap();

    let first = s.map("segments/1").unwrap();
    assert!(matches!(first, Blob::Mapped(_)), "{first:?}");
    assert_eq!(&first[..], &data[..]);
    assert_eq!(s.cache_stats().misses, 1);
    assert_eq!(
        cached_files(dir.path()).len(),
        1,
        "one file, no temporaries left"
    );

    let gets = store.gets();
    let second = s.map("segments/1").unwrap();
    assert_eq!(&second[..], &data[..]);
    assert_eq!(s.cache_stats().disk_hits, 1);
    assert_eq!(store.gets(), gets, "no request for the second map");

    // Ranged reads of a cached object come from disk, then from memory.
    assert_eq!(
        &s.get_range("segments/1", 100..40_000).unwrap()[..],
        &data[100..40_000]
    );
    assert_eq!(s.cache_stats().disk_hits, 1 + 3);
    assert_eq!(
        &s.get_range("segments/1", 100..40_000).unwrap()[..],
        &data[100..40_000]
    );
    assert_eq!(s.cache_stats().memory_hits, 3);
    assert_eq!(store.gets(), gets);
}

#[test]
fn missed_blocks_are_written_to_the_disk_cache_and_read_from_it_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let opts = disk_opts(dir.path(), 1 << 20);
    let store = FaultyStore::new(Arc::new(InMemory::new()));
    let open = || {
        let dynstore: Arc<dyn ObjectStore> = store.clone();
        ObjectStorage::builder(dynstore, "memory://disk-blocks")
            .options(&opts)
            .build()
            .unwrap()
    };
    let data = pattern(100 * KIB);
    let ranges = [0..100, 20 * KIB..40 * KIB, 90 * KIB..100 * KIB];
    let check = |got: Vec<Bytes>| {
        for (r, g) in ranges.iter().zip(got) {
            assert_eq!(&g[..], &data[r.start as usize..r.end as usize]);
        }
    };
    let s = open();
    s.put("segments/3", Bytes::from(data.clone())).unwrap();
    check(s.get_ranges("segments/3", &ranges).unwrap());
    // Blocks 0, 1, 2, 5 and 6 (of 16 KiB) missed, were fetched and written to disk.
    assert_eq!(s.cache_stats().misses, 5);
    let blocks: Vec<String> = cached_files(dir.path())
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(blocks.len(), 5, "{blocks:?}");
    drop(s);

    // A restart (an empty memory cache, the same directory): no request to the store.
    let gets = store.gets();
    let s = open();
    check(s.get_ranges("segments/3", &ranges).unwrap());
    assert_eq!(
        s.cache_stats(),
        CacheStats {
            disk_hits: 5,
            ..CacheStats::default()
        }
    );
    assert_eq!(store.gets(), gets);
    drop(s);

    // A damaged block file is fetched again, never served.
    let first = blocks.iter().find(|n| n.ends_with(".0")).unwrap();
    std::fs::write(dir.path().join(first), b"torn").unwrap();
    let s = open();
    check(s.get_ranges("segments/3", &ranges).unwrap());
    let st = s.cache_stats();
    assert_eq!((st.disk_hits, st.misses), (4, 1), "{st:?}");

    // Replacing the object drops its block files.
    s.put("segments/3", Bytes::from(pattern(10 * KIB))).unwrap();
    assert_eq!(cached_files(dir.path()), Vec::<(String, u64)>::new());
}

#[test]
fn disk_cache_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("memory://{}/s", unique("disk-reopen"));
    let opts = disk_opts(dir.path(), 1 << 20);
    let data = Bytes::from(pattern(50 * KIB));
    {
        let s = open_storage(&url, &opts).unwrap();
        s.put("segments/7", data.clone()).unwrap();
        s.map("segments/7").unwrap();
    }
    let s = open_storage(&url, &opts).unwrap();
    assert_eq!(&s.map("segments/7").unwrap()[..], &data[..]);
    assert_eq!(
        s.cache_stats(),
        CacheStats {
            disk_hits: 1,
            ..CacheStats::default()
        }
    );
}

#[test]
fn disk_cache_evicts_least_recently_used_over_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let bound = 250 * KIB;
    let (_, s) = faulty_storage(&disk_opts(dir.path(), bound));
    for name in ["a", "b", "c", "too-big"] {
        let len = if name == "too-big" {
            300 * KIB
        } else {
            100 * KIB
        };
        s.put(&format!("segments/{name}"), Bytes::from(pattern(len)))
            .unwrap();
    }
    s.map("segments/a").unwrap();
    s.map("segments/b").unwrap();
    s.map("segments/a").unwrap(); // a is now more recent than b
    s.map("segments/c").unwrap(); // over the bound: b goes
    let total: u64 = cached_files(dir.path()).iter().map(|f| f.1).sum();
    assert_eq!(total, 200 * KIB);
    assert!(total <= bound);

    let before = s.cache_stats();
    s.map("segments/a").unwrap();
    s.map("segments/c").unwrap();
    assert_eq!(
        s.cache_stats().disk_hits,
        before.disk_hits + 2,
        "a and c kept"
    );
    s.map("segments/b").unwrap();
    assert_eq!(s.cache_stats().misses, before.misses + 1, "b was evicted");

    // Larger than the whole bound: served from memory, not cached.
    let big = s.map("segments/too-big").unwrap();
    assert!(matches!(big, Blob::Owned(_)));
    assert_eq!(big.len() as u64, 300 * KIB);
    let total: u64 = cached_files(dir.path()).iter().map(|f| f.1).sum();
    assert!(total <= bound, "{total}");
}

// ---- retries and retried creates ----------------------------------------------------

#[test]
fn retried_create_that_finds_its_own_bytes_counts_as_created() {
    let (store, s) = faulty_storage(&fast_retries());
    store.fail_creates_after_apply.store(1, Ordering::SeqCst);
    assert!(
        s.put_if_absent("manifest/1", Bytes::from_static(b"mine"))
            .unwrap()
    );
    assert_eq!(store.puts.load(Ordering::SeqCst), 2, "retried once");
    assert_eq!(store.gets(), 1, "read back to check");
    assert_eq!(&s.get("manifest/1").unwrap()[..], b"mine");
}

#[test]
fn retried_create_that_finds_other_bytes_lost() {
    let (store, s) = faulty_storage(&fast_retries());
    assert!(
        s.put_if_absent("manifest/1", Bytes::from_static(b"theirs"))
            .unwrap()
    );
    // Our first attempt fails before reaching the store; the retry finds theirs.
    store.fail_creates_before_apply.store(1, Ordering::SeqCst);
    assert!(
        !s.put_if_absent("manifest/1", Bytes::from_static(b"mine"))
            .unwrap()
    );
    assert_eq!(&s.get("manifest/1").unwrap()[..], b"theirs");
}

#[test]
fn plain_lost_create_does_not_read_back() {
    let (store, s) = faulty_storage(&fast_retries());
    assert!(
        s.put_if_absent("wal/1", Bytes::from_static(b"same"))
            .unwrap()
    );
    // Same bytes, but no attempt of ours failed: it is someone else's create.
    assert!(
        !s.put_if_absent("wal/1", Bytes::from_static(b"same"))
            .unwrap()
    );
    assert_eq!(store.gets(), 0);
}

#[test]
fn transient_read_errors_are_retried_and_not_found_is_not() {
    let (store, s) = faulty_storage(&fast_retries());
    s.put("x", Bytes::from_static(b"data")).unwrap();
    store.fail_gets.store(2, Ordering::SeqCst);
    assert_eq!(&s.get("x").unwrap()[..], b"data");
    assert_eq!(store.gets(), 3);

    let before = store.gets();
    let err = s.get("missing").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("memory://faulty/missing"), "{err}");
    assert_eq!(store.gets(), before + 1, "not-found is not retried");

    store.fail_gets.store(100, Ordering::SeqCst);
    let err = s.get("x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("memory://faulty/x"), "{err}");
    store.fail_gets.store(0, Ordering::SeqCst);
}

#[test]
fn s3_retried_create_is_checked_against_the_real_server() {
    // The S3 store from open_storage, wrapped so that the first create is applied on the
    // server and then reported as a timeout.
    let location = s3_location("retried-create");
    let (bucket, prefix) = location
        .trim_start_matches("s3://")
        .split_once('/')
        .unwrap();
    let s3: Arc<dyn ObjectStore> = Arc::new(
        vecshard_engine::storage::object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .unwrap(),
    );
    let store = FaultyStore::new(s3);
    let dynstore: Arc<dyn ObjectStore> = store.clone();
    let s = ObjectStorage::builder(dynstore, location.clone())
        .prefix(prefix)
        .options(&fast_retries())
        .build()
        .unwrap();
    store.fail_creates_after_apply.store(1, Ordering::SeqCst);
    assert!(
        s.put_if_absent("manifest/00000000000000000001", Bytes::from_static(b"v1"))
            .unwrap()
    );
    assert_eq!(store.puts.load(Ordering::SeqCst), 2);
    let other = open_storage(&location, &fast_retries()).unwrap();
    assert!(
        other
            .put_if_absent(
                "manifest/00000000000000000002",
                Bytes::from_static(b"theirs")
            )
            .unwrap()
    );
    store.fail_creates_before_apply.store(1, Ordering::SeqCst);
    assert!(
        !s.put_if_absent("manifest/00000000000000000002", Bytes::from_static(b"ours"))
            .unwrap()
    );
}

#[test]
fn latency_wrapper_conforms_and_charges_only_backend_fetches() {
    use std::sync::Mutex;
    use std::time::Duration;
    use vecshard_engine::storage::{Latency, LatencyStorage};

    let inner = open_storage(&format!("memory://{}", unique("latency")), &fast_retries()).unwrap();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let log = waits.clone();
    let s = LatencyStorage::new(inner.clone(), Latency::new(25, 100))
        .with_delay(Arc::new(move |d| log.lock().unwrap().push(d)));
    conformance::run(&s);

    s.put("seg", Bytes::from(pattern(3 * 1024 * KIB))).unwrap();
    let charged = || s.injected().requests;
    let before = charged();
    let got = s.get_range("seg", 10..2_000_000).unwrap();
    assert_eq!(&got[..], &pattern(2_000_000)[10..]);
    assert_eq!(charged(), before + 1, "a cold range is one charged request");
    let fetched = waits.lock().unwrap().last().copied().unwrap();
    let block = StorageOptions::default().block_size_bytes;
    assert_eq!(
        fetched,
        Latency::new(25, 100).cost(2_000_000u64.div_ceil(block) * block),
        "whole blocks fetched"
    );
    s.get_range("seg", 100..1_000_000).unwrap();
    assert_eq!(charged(), before + 1, "block-cache hits cost nothing");
    let m = s.map("seg").unwrap();
    assert_eq!(m.len() as u64, 3 * 1024 * KIB);
    assert_eq!(charged(), before + 2, "map without a disk cache downloads");
    assert_eq!(
        s.cache_stats(),
        inner.cache_stats(),
        "counters are the backend's"
    );
    assert!(
        waits
            .lock()
            .unwrap()
            .iter()
            .all(|d| *d >= Duration::from_millis(25))
    );
}

#[test]
fn one_round_reads_many_ranges_and_whole_blocks_carry_their_check_mark() {
    let (store, s) = faulty_storage(&block_opts(4 * KIB, 1024 * KIB));
    let data = pattern(40 * KIB);
    s.put("segments/1", Bytes::from(data.clone())).unwrap();
    let ranges = [0..4 * KIB, 10..20, 8 * KIB..12 * KIB, 12 * KIB..13 * KIB];
    let got = s.get_blocks("segments/1", &ranges).unwrap();
    for (r, f) in ranges.iter().zip(&got) {
        assert_eq!(&f.bytes[..], &data[r.start as usize..r.end as usize]);
    }
    // Blocks 0, 2 and 3 were missing: 0 alone, 2..4 coalesced — two GETs in one round.
    assert_eq!(store.gets(), 2);
    assert_eq!(s.cache_stats().requests, 2);
    let marks: Vec<bool> = got.iter().map(|f| f.checked.is_some()).collect();
    assert_eq!(marks, [true, false, true, false], "whole blocks only");
    got[0]
        .checked
        .as_ref()
        .unwrap()
        .store(true, Ordering::SeqCst);
    let again = s.get_blocks("segments/1", &ranges[..1]).unwrap();
    assert!(again[0].checked.as_ref().unwrap().load(Ordering::SeqCst));
    assert_eq!(store.gets(), 2, "served from memory, mark kept");
    // A replaced object's blocks are fetched again, with new, unset marks.
    s.put("segments/1", Bytes::from(data.clone())).unwrap();
    let fresh = s.get_blocks("segments/1", &ranges[..1]).unwrap();
    assert!(!fresh[0].checked.as_ref().unwrap().load(Ordering::SeqCst));
    assert_eq!(store.gets(), 3);
}

type Waits = Arc<std::sync::Mutex<Vec<std::time::Duration>>>;

/// A storage of 4 KiB blocks (64 MiB cache) behind a `LatencyStorage` of 25 ms + 100 MB/s
/// that records its waits instead of sleeping: the store, the storage, the slow wrapper,
/// its latency and the waits.
fn recorded_slow_storage() -> (
    Arc<FaultyStore>,
    Arc<dyn Storage>,
    vecshard_engine::storage::LatencyStorage,
    vecshard_engine::storage::Latency,
    Waits,
) {
    use vecshard_engine::storage::{Latency, LatencyStorage};
    let (store, s) = faulty_storage(&block_opts(4 * KIB, 64 << 20));
    let s: Arc<dyn Storage> = Arc::new(s);
    let waits: Waits = Arc::default();
    let log = waits.clone();
    let latency = Latency::new(25, 100);
    let slow = LatencyStorage::new(s.clone(), latency)
        .with_delay(Arc::new(move |d| log.lock().unwrap().push(d)));
    (store, s, slow, latency, waits)
}

#[test]
fn a_large_read_is_split_into_parallel_parts_of_one_round() {
    let (store, s, slow, latency, waits) = recorded_slow_storage();
    let len = 30_000_000u64; // a 30 MB section of a 1M-row segment
    let data = pattern(len);
    s.put("segments/1", Bytes::from(data.clone())).unwrap();
    let (waited, charged) = (waits.lock().unwrap().len(), slow.injected());

    let (small, large) = (100..5000, 4096..len - 3);
    let got = slow
        .get_ranges("segments/1", &[small.clone(), large.clone()])
        .unwrap();
    assert_eq!(&got[0][..], &data[small.start as usize..small.end as usize]);
    assert_eq!(&got[1][..], &data[large.start as usize..large.end as usize]);
    let ranges = store.take_ranges();
    let parts: Vec<(u64, u64)> = ranges
        .iter()
        .map(|r| match r {
            Some(GetRange::Bounded(b)) => (b.start, b.end),
            other => panic!("unexpected range {other:?}"),
        })
        .collect();
    let part = StorageOptions::default().part_bytes;
    assert!(
        parts.len() as u64 >= len.div_ceil(part),
        "30 MB in parts of ≤ {part} B: {parts:?}"
    );
    assert!(parts.iter().all(|(a, b)| b - a <= part), "{parts:?}");
    // The parts tile the object, each block fetched once.
    let mut at = 0;
    for (a, b) in &parts {
        assert_eq!(*a, at, "{parts:?}");
        at = *b;
    }
    assert!(at >= len);
    let stats = s.cache_stats();
    assert_eq!(stats.requests, parts.len() as u64);
    assert_eq!(stats.bytes_fetched, len);
    // One round: one wait, the bytes spread over the parts.
    let waits = waits.lock().unwrap()[waited..].to_vec();
    assert_eq!(waits, vec![latency.cost(len / parts.len() as u64)]);
    assert_eq!(
        slow.injected().requests - charged.requests,
        parts.len() as u64
    );
    // A small read is one request, as before.
    s.put("segments/2", Bytes::from(data[..100_000].to_vec()))
        .unwrap();
    s.get_range("segments/2", 0..100_000).unwrap();
    assert_eq!(store.take_ranges().len(), 1);
    // `part_bytes` sets the part size (whole blocks); 0 never splits.
    for (part, requests) in [(10 << 20, 3), (0, 1)] {
        let opts = StorageOptions {
            part_bytes: part,
            ..block_opts(4 * KIB, 64 << 20)
        };
        let (store, s) = faulty_storage(&opts);
        s.put("segments/1", Bytes::from(data.clone())).unwrap();
        let got = s.get_range("segments/1", 0..len).unwrap();
        assert!(got[..] == data[..]);
        assert_eq!(store.take_ranges().len(), requests, "part_bytes {part}");
    }
}

#[test]
fn reads_kept_by_the_caller_bypass_the_block_cache_in_parts_of_one_round() {
    let (store, s, slow, _, waits) = recorded_slow_storage();
    let len = 20_000_000u64;
    let data = pattern(len);
    s.put("segments/1", Bytes::from(data.clone())).unwrap();
    store.take_ranges();

    // Unaligned ranges, one longer than a part, one empty.
    let ranges = [100..5000, 4099..len - 3, 7..7];
    let got = slow.get_ranges_uncached("segments/1", &ranges).unwrap();
    for (r, g) in ranges.iter().zip(&got) {
        assert_eq!(&g[..], &data[r.start as usize..r.end as usize]);
    }
    // The bytes asked for (not whole blocks), the long range in parts of ≤ `part_bytes`
    // that tile it, nothing cached, one round charged.
    let asked = store.take_ranges();
    let mut parts: Vec<(u64, u64)> = asked
        .iter()
        .map(|r| match r {
            Some(GetRange::Bounded(b)) => (b.start, b.end),
            other => panic!("unexpected range {other:?}"),
        })
        .collect();
    parts.sort_unstable();
    let part = StorageOptions::default().part_bytes;
    let long_parts = (len - 3 - 4099).div_ceil(part);
    assert_eq!(parts[0], (100, 5000));
    assert_eq!(parts.len() as u64, 1 + long_parts, "{parts:?}");
    let mut at = 4099;
    for (a, b) in &parts[1..] {
        assert_eq!(*a, at, "{parts:?}");
        assert!(b - a <= part, "{parts:?}");
        at = *b;
    }
    assert_eq!(at, len - 3);
    assert_eq!(s.cache_resident_bytes(), 0);
    assert_eq!(s.cache_stats().bytes_fetched, 4900 + (len - 3 - 4099));
    assert_eq!(waits.lock().unwrap().len(), 1, "one round");
    assert_eq!(slow.injected().requests, 1 + long_parts);

    // A range past the end is not filled in: the caller sees a short answer or an error.
    let past = slow.get_ranges_uncached("segments/1", std::slice::from_ref(&(len - 10..len + 10)));
    assert!(past.map_or(true, |g| g[0].len() < 20));
    // With a cache directory the reads go through the caches (a restart reads them there).
    let dir = tempfile::tempdir().unwrap();
    let opts = StorageOptions {
        cache_dir: Some(dir.path().to_path_buf()),
        ..block_opts(4 * KIB, 64 << 20)
    };
    let (_, cached) = faulty_storage(&opts);
    cached
        .put("segments/1", Bytes::from(data[..100_000].to_vec()))
        .unwrap();
    let got = cached
        .get_ranges_uncached("segments/1", std::slice::from_ref(&(10..90_000)))
        .unwrap();
    assert_eq!(&got[0][..], &data[10..90_000]);
    assert!(cached.cache_resident_bytes() > 0);
}
