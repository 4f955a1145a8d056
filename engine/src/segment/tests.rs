//! Format 2 against format 1 on the same rows and the same graph, and damaged format-2
//! blocks.

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::StdRng};

use std::sync::Arc;

use super::*;
use crate::error::ErrorKind;
use crate::index::{MemIndex, ReadAhead, SliceVectors};
use crate::options::SegmentFormat;
use crate::types::{Metric, Value};

const DIM: usize = 24;
const ROWS: usize = 3000;

fn data(seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let centers: Vec<f32> = (0..8 * DIM).map(|_| rng.random_range(-5.0..5.0)).collect();
    let mut out = Vec::with_capacity(ROWS * DIM);
    for r in 0..ROWS {
        let c = (r % 8) * DIM;
        for d in 0..DIM {
            out.push(centers[c + d] + rng.random_range(-1.0..1.0));
        }
    }
    out
}

fn key(r: usize) -> Key {
    if r.is_multiple_of(5) {
        Key::Str(format!("doc-{r}"))
    } else {
        Key::Int(r as u64 * 3)
    }
}

/// The same rows and index laid out in both formats.
fn both(metric: Metric) -> (Vec<f32>, Vec<u8>, Vec<u8>) {
    files(metric, true)
}

/// [`both`], every row with metadata (`with_meta`) or none.
fn files(metric: Metric, with_meta: bool) -> (Vec<f32>, Vec<u8>, Vec<u8>) {
    let vectors = data(7);
    let view = SliceVectors {
        data: &vectors,
        dim: DIM,
    };
    let mem = MemIndex::new(IndexParams::default(), metric, DIM, ROWS);
    for r in 0..ROWS as u32 {
        mem.insert(r, &view);
    }
    let files = [SegmentFormat::V1, SegmentFormat::V2].map(|format| {
        let mut w = SegmentWriter::new(DIM, metric, ROWS);
        for r in 0..ROWS {
            let mut meta = Metadata::new();
            if with_meta {
                meta.insert("group".into(), Value::Int((r % 4) as i64));
            }
            let payload = format!("p{r}").into_bytes();
            w.push(view.get(r as u32), r as u64 + 1, &key(r), &meta, &payload);
        }
        let index = mem.to_bytes(ROWS as u32, &view);
        w.finish(format, ROWS as u64, &[(Key::Int(1), 5)], index)
            .unwrap()
    });
    let [v1, v2] = files;
    (vectors, v1, v2)
}

fn open(bytes: &[u8], metric: Metric) -> Result<Segment> {
    let blob = aligned(Blob::Owned(Bytes::copy_from_slice(bytes)));
    Segment::from_blob(
        "mem://segments/1".into(),
        blob,
        1,
        0,
        ShardSpec::new(DIM, metric),
        None,
    )
}

#[test]
fn format_2_answers_exactly_like_format_1_on_the_same_graph() {
    for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
        let (vectors, v1, v2) = both(metric);
        assert_eq!(&v2[..8], b"VSHDSEG2");
        let (a, b) = (open(&v1, metric).unwrap(), open(&v2, metric).unwrap());
        assert_eq!((a.format_version(), b.format_version()), (1, 2));
        for row in (0..ROWS as u32).step_by(97) {
            assert_eq!(a.vector(row).unwrap(), b.vector(row).unwrap());
            assert_eq!(a.key(row), b.key(row));
            assert_eq!(a.seq(row), b.seq(row));
            assert_eq!(a.metadata(row).unwrap(), b.metadata(row).unwrap());
            assert_eq!(a.payload(row).unwrap(), b.payload(row).unwrap());
        }
        assert_eq!(a.tombstones(), b.tombstones());
        let filter = Filter::parse_str(r#"{"field": "group", "eq": 2}"#).unwrap();
        assert_eq!(a.matching(Some(&filter)), b.matching(Some(&filter)));
        let mut rng = StdRng::seed_from_u64(11);
        for q in 0..50 {
            let base = rng.random_range(0..ROWS) * DIM;
            let query: Vec<f32> = (0..DIM)
                .map(|d| vectors[base + d] + rng.random_range(-0.5..0.5))
                .collect();
            let accept = |r: u32| q % 3 != 0 || r.is_multiple_of(2);
            let sel = if q % 3 == 0 { 0.5 } else { 1.0 };
            let ra = a.ann(&query, 10, 32, &accept, sel, Within::NONE).unwrap();
            let rb = b.ann(&query, 10, 32, &accept, sel, Within::NONE).unwrap();
            assert_eq!(ra.len(), 10);
            assert_eq!(ra, rb, "{metric:?} query {q}");
        }
    }
}

#[test]
fn a_merge_extends_a_format_2_graph_like_a_format_1_one() {
    let (vectors, v1, v2) = both(Metric::L2);
    let (a, b) = (
        open(&v1, Metric::L2).unwrap(),
        open(&v2, Metric::L2).unwrap(),
    );
    let kept: Vec<u32> = (0..ROWS as u32).filter(|r| r % 3 != 0).collect();
    let mut merged: Vec<f32> = kept
        .iter()
        .flat_map(|&r| a.vector(r).unwrap().to_vec())
        .collect();
    merged.extend_from_slice(&vectors[..100 * DIM]);
    let all = SliceVectors {
        data: &merged,
        dim: DIM,
    };
    let rows = (kept.len() + 100) as u32;
    let params = IndexParams::default();
    let ga = a.extend_index(params, &kept, rows, &all).unwrap();
    let gb = b.extend_index(params, &kept, rows, &all).unwrap();
    // The kept rows keep their layers in both (new rows are inserted in parallel, so
    // the bytes and checksums differ): same sizes, degrees, top layer and entry.
    assert_eq!(ga.graph.len(), gb.graph.len());
    assert_eq!(ga.graph[..36], gb.graph[..36]);
    // The graph rebuilt from the hop blocks is the format-1 section, byte for byte.
    let (SegIndex::Hops(hop), SegIndex::Graph(_)) = (&b.index, &a.index) else {
        panic!("formats");
    };
    let rebuilt = hop.graph_section(b.section(Section::Hops)).unwrap();
    assert_eq!(rebuilt, a.section(Section::Graph));
}

#[test]
fn a_damaged_block_is_named_when_read() {
    let (_, _, v2) = both(Metric::L2);
    let seg = open(&v2, Metric::L2).unwrap();
    let vectors = seg.sections[Section::Vectors as usize - 1].clone();
    let hops = seg.sections[Section::Hops as usize - 1].clone();
    for (at, want) in [
        (vectors.start + 3 * 4096 + 17, "section Vectors block 3 "),
        (hops.start + 5 * 4096 + 1, "section Hops block 5 "),
        (v2.len() - 40, "directory checksum"),
        (v2.len() - 3, "tail magic"),
        (20, "header checksum"),
    ] {
        let mut bad = v2.clone();
        bad[at] ^= 0x10;
        let e = open(&bad, Metric::L2).err().expect("damage found");
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("mem://segments/1") && msg.contains(want),
            "{msg}"
        );
    }
}

#[test]
fn a_format_2_file_cut_short_is_corrupt() {
    let (_, _, v2) = both(Metric::L2);
    for len in [0, 10, 95, 4096, v2.len() / 2, v2.len() - 1] {
        let e = open(&v2[..len], Metric::L2).err().expect("cut found");
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{len}: {e}");
    }
}

/// A local directory whose ranged reads fail from the `fail_at`-th on (counting from 0).
#[derive(Debug)]
struct Flaky {
    inner: crate::storage::LocalStorage,
    reads: std::sync::atomic::AtomicU64,
    fail_at: u64,
}

impl crate::storage::Storage for Flaky {
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn get(&self, path: &str) -> Result<Bytes> {
        self.inner.get(path)
    }
    fn get_range(&self, path: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        let n = self
            .reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n >= self.fail_at {
            return Err(Error::new(
                ErrorKind::Io,
                format!("injected read failure {n}"),
            ));
        }
        self.inner.get_range(path, range)
    }
    fn map(&self, path: &str) -> Result<Blob> {
        self.inner.map(path)
    }
    fn put(&self, path: &str, data: Bytes) -> Result<()> {
        self.inner.put(path, data)
    }
    fn put_if_absent(&self, path: &str, data: Bytes) -> Result<bool> {
        self.inner.put_if_absent(path, data)
    }
    fn list(&self, dir: &str) -> Result<Vec<crate::storage::ObjectInfo>> {
        self.inner.list(dir)
    }
    fn delete(&self, path: &str) -> Result<()> {
        self.inner.delete(path)
    }
    fn supports_append(&self) -> bool {
        false
    }
    fn create_append(&self, path: &str) -> Result<Box<dyn crate::storage::AppendFile>> {
        self.inner.create_append(path)
    }
    fn lock_exclusive(&self) -> Result<Option<Box<dyn crate::storage::LockGuard>>> {
        Ok(None)
    }
}

fn stored(bytes: &[u8], fail_at: u64) -> (tempfile::TempDir, Arc<Flaky>) {
    let dir = tempfile::tempdir().unwrap();
    let inner = crate::storage::LocalStorage::new(dir.path()).unwrap();
    crate::storage::Storage::put(&inner, &paths::segment(1), Bytes::copy_from_slice(bytes))
        .unwrap();
    let flaky = Flaky {
        inner,
        reads: Default::default(),
        fail_at,
    };
    (dir, Arc::new(flaky))
}

fn queries(vectors: &[f32], n: usize) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(5);
    (0..n)
        .map(|_| {
            let base = rng.random_range(0..ROWS) * DIM;
            (0..DIM)
                .map(|d| vectors[base + d] + rng.random_range(-0.5..0.5))
                .collect()
        })
        .collect()
}

#[test]
fn a_lazy_search_answers_like_the_mapped_one_reading_only_what_it_walks() {
    for metric in [Metric::L2, Metric::Cosine] {
        let (vectors, _, v2) = both(metric);
        let mapped = open(&v2, metric).unwrap();
        let (_dir, storage) = stored(&v2, u64::MAX);
        let spec = ShardSpec::new(DIM, metric);
        let lazy = lazy::LazyIndex::open(storage, 1, v2.len() as u64, 0, spec)
            .unwrap()
            .unwrap();
        let open_bytes = lazy.stats.bytes.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            open_bytes <= 64 * 1024 + 64,
            "{open_bytes} bytes read to open"
        );
        for (q, query) in queries(&vectors, 40).iter().enumerate() {
            let accept = |r: u32| q % 4 != 0 || r.is_multiple_of(3);
            let sel = if q % 4 == 0 { 0.33 } else { 1.0 };
            let before = lazy.stats.bytes.load(std::sync::atomic::Ordering::Relaxed);
            let want = mapped
                .ann(query, 10, 32, &accept, sel, Within::NONE)
                .unwrap();
            let got = lazy
                .search(ReadAhead::EXACT, query, 10, 32, &accept, sel, Within::NONE)
                .unwrap();
            assert_eq!(got.len(), 10);
            assert_eq!(got, want, "{metric:?} query {q}");
            let read = lazy.stats.bytes.load(std::sync::atomic::Ordering::Relaxed) - before;
            if sel == 1.0 {
                // A walk of ef 32 reads some of the 3000 rows' blocks, not the file.
                assert!(read < v2.len() as u64, "query {q} read {read} bytes");
            }
            // Reading ahead reads more, never answers differently.
            let ahead = lazy
                .search(
                    ReadAhead {
                        lookahead: 4,
                        ..ReadAhead::EXACT
                    },
                    query,
                    10,
                    32,
                    &accept,
                    sel,
                    Within::NONE,
                )
                .unwrap();
            assert_eq!(ahead, want, "{metric:?} query {q}, lookahead 4");
        }
    }
}

#[test]
fn a_lazy_segment_reads_metadata_offsets_only_when_there_are_values() {
    let spec = ShardSpec::new(DIM, Metric::L2);
    let group_2 = Filter::parse_str(r#"{"field": "group", "eq": 2}"#).unwrap();
    for with_meta in [false, true] {
        let (_, _, v2) = files(Metric::L2, with_meta);
        let mapped = open(&v2, Metric::L2).unwrap();
        let (_dir, storage) = stored(&v2, u64::MAX);
        let lazy = lazy::LazyIndex::open(storage, 1, v2.len() as u64, 0, spec)
            .unwrap()
            .unwrap();
        let opened = lazy.stats.bytes.load(std::sync::atomic::Ordering::Relaxed);
        let meta_len = lazy.section_len(Section::Metadata);
        let resident: usize = RESIDENT.iter().map(|k| lazy.section_len(*k)).sum();
        let reads = LazyReads {
            prefetch: Prefetch::None,
            read_ahead: ReadAhead::EXACT,
            skip_seqs: false,
        };
        let seg = Segment::open_lazy(lazy, 0, spec, None, reads).unwrap();
        let SegIndex::Lazy(lazy, _) = &seg.index else {
            panic!("not lazy")
        };
        let read = lazy.stats.bytes.load(std::sync::atomic::Ordering::Relaxed) - opened;
        if with_meta {
            assert_eq!(read as usize, resident, "every resident section is read");
        } else {
            // Offsets only, all zero: neither read nor kept.
            assert_eq!(meta_len, (ROWS + 1) * 8);
            assert_eq!(read as usize, resident - meta_len);
            assert!(seg.sections[Section::Metadata as usize - 1].is_empty());
        }
        for row in 0..ROWS as u32 {
            assert_eq!(seg.metadata(row).unwrap(), mapped.metadata(row).unwrap());
        }
        assert_eq!(
            seg.matching(Some(&group_2)),
            mapped.matching(Some(&group_2))
        );
        let groups = seg.matching(Some(&group_2)).len();
        assert_eq!(groups, if with_meta { ROWS as u64 / 4 } else { 0 });
    }
}

#[test]
fn a_lazy_reader_segment_reads_its_sequence_numbers_only_when_asked() {
    let spec = ShardSpec::new(DIM, Metric::L2);
    let (_, _, v2) = both(Metric::L2);
    let mapped = open(&v2, Metric::L2).unwrap();
    let reads = LazyReads {
        prefetch: Prefetch::None,
        read_ahead: ReadAhead::EXACT,
        skip_seqs: true,
    };
    // The reads an open makes: with `fail_load` the next one (the sequence numbers) fails.
    let open_reads = {
        let (_dir, storage) = stored(&v2, u64::MAX);
        let lazy = lazy::LazyIndex::open(storage.clone(), 1, v2.len() as u64, 0, spec)
            .unwrap()
            .unwrap();
        Segment::open_lazy(lazy, 0, spec, None, reads).unwrap();
        storage.reads.load(std::sync::atomic::Ordering::Relaxed)
    };
    for fail_load in [false, true] {
        let (_dir, storage) = stored(&v2, if fail_load { open_reads } else { u64::MAX });
        let lazy = lazy::LazyIndex::open(storage, 1, v2.len() as u64, 0, spec)
            .unwrap()
            .unwrap();
        let opened = lazy.stats.bytes.load(std::sync::atomic::Ordering::Relaxed);
        let resident: usize = RESIDENT.iter().map(|k| lazy.section_len(*k)).sum();
        let seqs_len = lazy.section_len(Section::Seqs);
        let seg = Segment::open_lazy(lazy, 0, spec, None, reads).unwrap();
        let SegIndex::Lazy(lazy, _) = &seg.index else {
            panic!("not lazy")
        };
        let bytes = || lazy.stats.bytes.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!((bytes() - opened) as usize, resident - seqs_len);
        assert!(!seg.has_seqs());
        // Visibility at or after the segment's last write needs no sequence number.
        let snap = seg.max_seq();
        for row in 0..ROWS as u32 {
            assert_eq!(seg.visible(row, snap), mapped.visible(row, snap));
        }
        assert!(!seg.has_seqs());
        if fail_load {
            let e = seg.load_seqs().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Io, "{e}");
            assert!(!seg.has_seqs(), "a failed read loads nothing");
            continue;
        }
        let before = bytes();
        seg.load_seqs().unwrap();
        assert_eq!((bytes() - before) as usize, seqs_len);
        seg.load_seqs().unwrap();
        assert_eq!((bytes() - before) as usize, seqs_len, "read once");
        for row in 0..ROWS as u32 {
            assert_eq!(seg.seq(row), mapped.seq(row));
            assert_eq!(seg.visible(row, 1000), mapped.visible(row, 1000));
        }
    }
}

#[test]
fn a_failing_store_gives_an_error_never_a_different_answer() {
    let (vectors, _, v2) = both(Metric::L2);
    let mapped = open(&v2, Metric::L2).unwrap();
    let spec = ShardSpec::new(DIM, Metric::L2);
    // As the manifest says: the open is reads 0 and 1.
    let tail = tail_bytes(&v2);
    let all = |_: u32| true;
    let (mut failed, mut answered) = (0, 0);
    for query in queries(&vectors, 5) {
        let want = mapped.ann(&query, 10, 32, &all, 1.0, Within::NONE).unwrap();
        let (_dir, storage) = stored(&v2, u64::MAX);
        let lazy = lazy::LazyIndex::open(storage.clone(), 1, v2.len() as u64, tail, spec)
            .unwrap()
            .unwrap();
        lazy.search(ReadAhead::EXACT, &query, 10, 32, &all, 1.0, Within::NONE)
            .unwrap();
        let reads = storage.reads.load(std::sync::atomic::Ordering::Relaxed);
        // Reads 0 and 1 open the segment; fail each later read in turn (the last: none).
        let step = (reads as usize / 20).max(1);
        for fail_at in (2..=reads).step_by(step).chain([reads - 1, reads]) {
            let (_dir, storage) = stored(&v2, fail_at);
            let lazy = lazy::LazyIndex::open(storage, 1, v2.len() as u64, tail, spec)
                .unwrap()
                .unwrap();
            match lazy.search(ReadAhead::EXACT, &query, 10, 32, &all, 1.0, Within::NONE) {
                Ok(got) => {
                    assert_eq!(got, want, "fail_at {fail_at}");
                    answered += 1;
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
                    assert!(e.to_string().contains("injected"), "{e}");
                    failed += 1;
                }
            }
        }
    }
    assert!(
        failed > 0 && answered > 0,
        "{failed} failed, {answered} answered"
    );
}

#[test]
fn a_damaged_block_is_named_when_a_lazy_search_reads_it() {
    let (vectors, _, v2) = both(Metric::L2);
    let mapped = open(&v2, Metric::L2).unwrap();
    let SegIndex::Hops(hop) = &mapped.index else {
        panic!("format 2");
    };
    let hops = mapped.sections[Section::Hops as usize - 1].clone();
    let spec = ShardSpec::new(DIM, Metric::L2);
    let query = &queries(&vectors, 1)[0];
    let all = |_: u32| true;
    let rows: Vec<u32> = mapped
        .ann(query, 10, 32, &all, 1.0, Within::NONE)
        .unwrap()
        .iter()
        .map(|n| n.row)
        .collect();
    // The nearest row's block is read: its distance or its links were needed.
    let block = hop.block_of(rows[0]);
    for (at, want) in [
        (
            hops.start + block * hop.block_len() + 9,
            format!("section Hops block {block} "),
        ),
        (
            hops.start + block * hop.block_len() + 200,
            format!("section Hops block {block} "),
        ),
    ] {
        let mut bad = v2.clone();
        bad[at] ^= 0x44;
        let (_dir, storage) = stored(&bad, u64::MAX);
        // The open reads the header and directory only: the damage is found when read.
        let lazy = lazy::LazyIndex::open(storage, 1, bad.len() as u64, 0, spec)
            .unwrap()
            .unwrap();
        let e = lazy
            .search(ReadAhead::EXACT, query, 10, 32, &all, 1.0, Within::NONE)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        let msg = e.to_string();
        assert!(msg.contains("segments/") && msg.contains(&want), "{msg}");
    }
    // A damaged vector is found when it is rescored.
    let vectors_at = mapped.sections[Section::Vectors as usize - 1].start;
    let mut bad = v2.clone();
    bad[vectors_at + rows[0] as usize * DIM * 4] ^= 0x44;
    let (_dir, storage) = stored(&bad, u64::MAX);
    let lazy = lazy::LazyIndex::open(storage, 1, bad.len() as u64, 0, spec)
        .unwrap()
        .unwrap();
    let e = lazy
        .search(ReadAhead::EXACT, query, 10, 32, &all, 1.0, Within::NONE)
        .unwrap_err();
    assert!(e.to_string().contains("section Vectors block"), "{e}");
}

#[cfg(feature = "object-store")]
#[test]
fn concurrent_lazy_searches_keep_the_block_cache_bound() {
    use crate::storage::object_store::memory::InMemory;
    use crate::storage::{BlockCache, ObjectStorage, Storage};

    let (vectors, _, v2) = both(Metric::L2);
    let mapped = open(&v2, Metric::L2).unwrap();
    // A tenth of the segment, in 4 KiB cache blocks (the hop block size).
    let bound = v2.len() as u64 / 10;
    let cache = Arc::new(BlockCache::new(bound, 4096));
    let storage = ObjectStorage::builder(Arc::new(InMemory::new()), "memory://lazy-bound")
        .block_cache(cache.clone())
        .build()
        .unwrap();
    storage
        .put(&paths::segment(1), Bytes::copy_from_slice(&v2))
        .unwrap();
    let storage = Arc::new(storage);
    let spec = ShardSpec::new(DIM, Metric::L2);
    let lazy = lazy::LazyIndex::open(storage.clone(), 1, v2.len() as u64, 0, spec)
        .unwrap()
        .unwrap();
    let qs = queries(&vectors, 48);
    let all = |_: u32| true;
    let done = std::sync::atomic::AtomicBool::new(false);
    let peak = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(cache.resident_bytes(), std::sync::atomic::Ordering::Relaxed);
                std::thread::yield_now();
            }
        });
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let (lazy, qs, mapped) = (&lazy, &qs, &mapped);
                s.spawn(move || {
                    for query in qs.iter().skip(t).step_by(4) {
                        let want = mapped.ann(query, 10, 32, &all, 1.0, Within::NONE).unwrap();
                        let got = lazy
                            .search(
                                ReadAhead {
                                    lookahead: 2,
                                    ..ReadAhead::EXACT
                                },
                                query,
                                10,
                                32,
                                &all,
                                1.0,
                                Within::NONE,
                            )
                            .unwrap();
                        assert_eq!(got, want);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    assert!(peak > 0 && peak <= bound, "peak {peak} of {bound} bytes");
    let stats = storage.cache_stats();
    assert!(stats.memory_hits > 0 && stats.misses > 0, "{stats:?}");
    // The tables keep only blocks the cache holds: their bytes are the cache's.
    let (held, resident) = (lazy.table_bytes(), cache.resident_bytes());
    assert!(
        held > 0 && held <= resident,
        "{held} held, {resident} cached"
    );
}

#[cfg(feature = "object-store")]
#[test]
fn a_warm_lazy_search_reads_the_table_and_lets_go_when_the_cache_does() {
    use crate::storage::object_store::memory::InMemory;
    use crate::storage::{CacheStats, ObjectStorage, Storage, StorageOptions};

    let (vectors, _, v2) = both(Metric::L2);
    let mapped = open(&v2, Metric::L2).unwrap();
    let options = StorageOptions {
        block_cache_bytes: 4 * v2.len() as u64,
        ..StorageOptions::default()
    };
    let storage = ObjectStorage::builder(Arc::new(InMemory::new()), "memory://lazy-table")
        .options(&options)
        .build()
        .unwrap();
    storage
        .put(&paths::segment(1), Bytes::copy_from_slice(&v2))
        .unwrap();
    let storage = Arc::new(storage);
    let spec = ShardSpec::new(DIM, Metric::L2);
    let lazy = lazy::LazyIndex::open(storage.clone(), 1, v2.len() as u64, 0, spec)
        .unwrap()
        .unwrap();
    let all = |_: u32| true;
    let qs = queries(&vectors, 20);
    let search = |q: &[f32]| lazy.search(ReadAhead::EXACT, q, 10, 32, &all, 1.0, Within::NONE);
    for q in &qs {
        search(q).unwrap();
    }
    let held = lazy.table_bytes();
    assert!(
        held > 0 && held <= storage.cache_resident_bytes(),
        "{held} bytes held"
    );
    // Warm: the same queries read nothing from the storage (not even its cache), and
    // answer like the mapped segment.
    let (requests, cache) = (
        lazy.stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        storage.cache_stats(),
    );
    for q in &qs {
        let want = mapped.ann(q, 10, 32, &all, 1.0, Within::NONE).unwrap();
        assert_eq!(search(q).unwrap(), want);
    }
    assert_eq!(
        lazy.stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        requests
    );
    // Only the memory hits moved: the tables' reads count as hits of the cache they share.
    let after = storage.cache_stats();
    assert!(
        after.memory_hits >= cache.memory_hits + 20 * 10,
        "{after:?} after {cache:?}"
    );
    assert_eq!(
        CacheStats {
            memory_hits: cache.memory_hits,
            ..after
        },
        cache
    );
    // The object goes away: the cache drops its blocks, so do the tables, and a search
    // is an error rather than an answer from what the tables had.
    storage.delete(&paths::segment(1)).unwrap();
    assert_eq!(storage.cache_resident_bytes(), 0);
    assert_eq!(lazy.table_bytes(), 0);
    let e = search(&qs[0]).unwrap_err();
    assert!(e.to_string().contains("segments/"), "{e}");
}

#[test]
fn a_batched_lazy_walk_keeps_the_mapped_recall_in_fewer_rounds() {
    let (vectors, _, v2) = both(Metric::L2);
    let mapped = open(&v2, Metric::L2).unwrap();
    let (_dir, storage) = stored(&v2, u64::MAX);
    let spec = ShardSpec::new(DIM, Metric::L2);
    let lazy = lazy::LazyIndex::open(storage, 1, v2.len() as u64, 0, spec)
        .unwrap()
        .unwrap();
    let view = SliceVectors {
        data: &vectors,
        dim: DIM,
    };
    let all = |_: u32| true;
    let reads = || {
        lazy.stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let (mut hits_mapped, mut hits_batched, mut rounds_one, mut rounds_four) = (0, 0, 0, 0);
    for query in queries(&vectors, 40) {
        let truth: Vec<u32> =
            crate::index::brute_force(Metric::L2, &view, &query, 0..ROWS as u32, 10, &all)
                .iter()
                .map(|n| n.row)
                .collect();
        let hits = |found: &[Neighbor]| found.iter().filter(|n| truth.contains(&n.row)).count();
        hits_mapped += hits(&mapped.ann(&query, 10, 16, &all, 1.0, Within::NONE).unwrap());
        let before = reads();
        lazy.search(ReadAhead::EXACT, &query, 10, 16, &all, 1.0, Within::NONE)
            .unwrap();
        rounds_one += reads() - before;
        let before = reads();
        let four = ReadAhead {
            batch: 4,
            ..ReadAhead::EXACT
        };
        let found = lazy
            .search(four, &query, 10, 16, &all, 1.0, Within::NONE)
            .unwrap();
        rounds_four += reads() - before;
        hits_batched += hits(&found);
    }
    // A wider walk finds at least as much (less a little rounding of ties).
    assert!(
        hits_batched + 4 >= hits_mapped,
        "{hits_batched} vs {hits_mapped} of 400"
    );
    assert!(
        rounds_four < rounds_one,
        "{rounds_four} vs {rounds_one} requests"
    );
}

#[cfg(feature = "object-store")]
#[test]
fn an_adaptive_walk_widens_only_in_rounds_that_read_so_a_warm_one_answers_as_mapped() {
    use crate::storage::object_store::memory::InMemory;
    use crate::storage::{ObjectStorage, Storage, StorageOptions};

    let (vectors, _, v2) = both(Metric::L2);
    let mapped = open(&v2, Metric::L2).unwrap();
    let options = StorageOptions {
        block_cache_bytes: 4 * v2.len() as u64,
        ..StorageOptions::default()
    };
    let lazy_at = |location: &str| {
        let storage = ObjectStorage::builder(Arc::new(InMemory::new()), location)
            .options(&options)
            .build()
            .unwrap();
        storage
            .put(&paths::segment(1), Bytes::copy_from_slice(&v2))
            .unwrap();
        let spec = ShardSpec::new(DIM, Metric::L2);
        lazy::LazyIndex::open(Arc::new(storage), 1, v2.len() as u64, 0, spec)
            .unwrap()
            .unwrap()
    };
    let (exact, adaptive) = (lazy_at("memory://exact"), lazy_at("memory://adaptive"));
    let reads = |l: &lazy::LazyIndex| l.stats.requests.load(std::sync::atomic::Ordering::Relaxed);
    let all = |_: u32| true;
    let qs = queries(&vectors, 20);
    let wide = ReadAhead::adaptive(4);
    // Cold: the rounds that read widen, so the walk takes fewer of them.
    for q in &qs {
        exact
            .search(ReadAhead::EXACT, q, 10, 16, &all, 1.0, Within::NONE)
            .unwrap();
        adaptive
            .search(wide, q, 10, 16, &all, 1.0, Within::NONE)
            .unwrap();
    }
    assert!(
        reads(&adaptive) < reads(&exact),
        "{} vs {} requests",
        reads(&adaptive),
        reads(&exact)
    );
    // Once the exact walks' blocks are in the tables, no round reads, none widens: the
    // mapped walk's answers, and nothing read.
    for q in &qs {
        adaptive
            .search(ReadAhead::EXACT, q, 10, 16, &all, 1.0, Within::NONE)
            .unwrap();
    }
    let before = reads(&adaptive);
    for (i, q) in qs.iter().enumerate() {
        let want = mapped.ann(q, 10, 16, &all, 1.0, Within::NONE).unwrap();
        let got = adaptive
            .search(wide, q, 10, 16, &all, 1.0, Within::NONE)
            .unwrap();
        assert_eq!(got, want, "query {i}");
    }
    assert_eq!(reads(&adaptive), before);
}

#[test]
fn the_manifests_tail_length_reads_the_directory_with_the_header() {
    let (vectors, v1, v2) = both(Metric::L2);
    assert_eq!(tail_bytes(&v1), 0, "format 1 has no directory");
    let tail = tail_bytes(&v2);
    let dir = format2::decode_tail("t", &v2[v2.len() - format2::TAIL_LEN..], v2.len()).unwrap();
    assert_eq!(tail, (v2.len() - dir.start) as u64);
    assert!(
        tail > lazy::TAIL_PROBE,
        "a directory past the probe: {tail} bytes"
    );
    let (_dir, storage) = stored(&v2, u64::MAX);
    let spec = ShardSpec::new(DIM, Metric::L2);
    let mapped = open(&v2, Metric::L2).unwrap();
    let query = &queries(&vectors, 1)[0];
    let want = mapped
        .ann(query, 10, 32, &|_| true, 1.0, Within::NONE)
        .unwrap();
    // Right, too short (the directory then takes a second read), past the file's start:
    // each opens the same segment.
    for (hint, reads) in [(tail, 2), (40, 3), (u64::MAX, 2)] {
        let lazy = lazy::LazyIndex::open(storage.clone(), 1, v2.len() as u64, hint, spec)
            .unwrap()
            .unwrap();
        let requests = lazy
            .stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(requests, reads, "tail hint {hint}");
        let got = lazy
            .search(
                ReadAhead::EXACT,
                query,
                10,
                32,
                &|_| true,
                1.0,
                Within::NONE,
            )
            .unwrap();
        assert_eq!(got, want, "tail hint {hint}");
    }
}
