//! The memtable: a bounded, append-only set of rows with a concurrent ANN index.
//! Rows are reserved under the shard's commit lock, filled in parallel by their writers,
//! and become visible when the shard publishes their sequence numbers. Per-row storage
//! grows in chunks as rows arrive ([`crate::chunked`]): an empty memtable costs a few
//! kilobytes whatever its capacity.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::chunked::Chunked;
use crate::deletions::Deletions;
use crate::index::{MemIndex, Vectors};
use crate::options::ShardSpec;
use crate::types::{Key, Metadata, Point};

/// Key, metadata and payload of one memtable row.
#[derive(Debug)]
pub(crate) struct RowData {
    pub key: Key,
    pub metadata: Metadata,
    pub payload: Vec<u8>,
}

/// Row-major vectors written once per row by the row's owner.
struct VectorArena {
    data: Chunked<UnsafeCell<f32>>,
}

// SAFETY: each row is written exactly once, by the one writer that reserved it, before the
// row is handed to the index or published; readers only read rows after that hand-off (the
// index's locks or the publish lock order the write before any read).
unsafe impl Sync for VectorArena {}

impl VectorArena {
    fn new(rows: usize, dim: usize) -> Self {
        VectorArena {
            data: Chunked::new(rows, dim, || UnsafeCell::new(0.0)),
        }
    }

    /// # Safety
    /// The caller owns `row` exclusively (reserved it) and nobody reads it yet.
    unsafe fn write(&self, row: u32, v: &[f32]) {
        let Some(cells) = self.data.get(row) else {
            tracing::error!(row, "memtable vector write past the capacity");
            return;
        };
        let n = cells.len().min(v.len());
        let ptr = UnsafeCell::raw_get(cells.as_ptr());
        // SAFETY: the cells are the row's (in bounds, `n` at most their length) and
        // exclusively ours per the function's contract; UnsafeCell<f32> has the layout of f32.
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), ptr, n) };
    }
}

impl Vectors for VectorArena {
    #[inline]
    fn get(&self, row: u32) -> &[f32] {
        let Some(cells) = self.data.get(row) else {
            return &[];
        };
        // SAFETY: only called for rows already written (the index reaches rows after their
        // insert began, which follows the write; scans check publication first).
        unsafe { std::slice::from_raw_parts(UnsafeCell::raw_get(cells.as_ptr()), cells.len()) }
    }
}

/// An in-memory, concurrently searchable table of recent writes.
pub(crate) struct Memtable {
    /// Runtime container id (kept when the memtable becomes a segment).
    pub container: u32,
    capacity: usize,
    vectors: VectorArena,
    rows: Chunked<OnceLock<RowData>>,
    seqs: Chunked<AtomicU64>,
    /// Deletion marks, shared with the segment this memtable becomes.
    pub deleted: Arc<Deletions>,
    reserved: AtomicUsize,
    bytes: AtomicUsize,
    tombstones: Mutex<Vec<(Key, u64)>>,
    index: MemIndex,
    /// Highest sequence number assigned to this memtable (0: none).
    last_seq: AtomicU64,
}

/// Rows a memtable of `bytes` holds for `spec`.
pub(crate) fn capacity_for(spec: &ShardSpec, bytes: usize) -> usize {
    let per_row = spec.dim * 4 + spec.index.m * 8 + 128;
    (bytes / per_row).max(16)
}

/// Bytes a point costs in a memtable (for the size limit).
pub(crate) fn point_bytes(p: &Point) -> usize {
    let key = match &p.key {
        Key::Int(_) => 8,
        Key::Str(s) => s.len() + 24,
    };
    p.vector.len() * 4 + key + p.payload.len() + p.metadata.len() * 48 + 96
}

impl Memtable {
    pub(crate) fn new(container: u32, spec: ShardSpec, capacity: usize) -> Self {
        Memtable {
            container,
            capacity,
            vectors: VectorArena::new(capacity, spec.dim),
            rows: Chunked::new(capacity, 1, OnceLock::new),
            seqs: Chunked::new(capacity, 1, || AtomicU64::new(u64::MAX)),
            deleted: Arc::new(Deletions::new(capacity)),
            reserved: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            tombstones: Mutex::new(Vec::new()),
            index: MemIndex::new(spec.index, spec.metric, spec.dim, capacity),
            last_seq: AtomicU64::new(0),
        }
    }

    /// Whether `rows` more rows and `bytes` more bytes fit (always true when empty).
    pub(crate) fn fits(&self, rows: usize, bytes: usize, limit: usize) -> bool {
        let reserved = self.reserved.load(Ordering::Relaxed);
        let used = self.bytes.load(Ordering::Relaxed);
        (reserved + rows <= self.capacity && used + bytes <= limit)
            || (reserved == 0 && rows <= self.capacity)
    }

    /// Reserve `n` rows; call under the commit lock after [`Memtable::fits`].
    pub(crate) fn reserve(&self, n: usize, bytes: usize, last_seq: u64) -> u32 {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.last_seq.fetch_max(last_seq, Ordering::AcqRel);
        self.reserved.fetch_add(n, Ordering::AcqRel) as u32
    }

    /// Fill reserved `row` with `point` (sequence number `seq`) and index it.
    pub(crate) fn insert(&self, row: u32, seq: u64, point: Point) {
        // SAFETY: `row` was reserved by this caller and is written once, here.
        unsafe { self.vectors.write(row, &point.vector) };
        let data = RowData {
            key: point.key,
            metadata: point.metadata,
            payload: point.payload,
        };
        let _ = self.rows.at(row).set(data);
        self.index.insert(row, &self.vectors);
        self.seqs.at(row).store(seq, Ordering::Release);
    }

    pub(crate) fn add_tombstone(&self, key: Key, seq: u64) {
        self.tombstones.lock().push((key, seq));
    }

    pub(crate) fn tombstones(&self) -> Vec<(Key, u64)> {
        self.tombstones.lock().clone()
    }

    /// Rows reserved so far.
    pub(crate) fn rows(&self) -> usize {
        self.reserved.load(Ordering::Acquire)
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Acquire)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.last_seq() == 0
    }

    /// The row's sequence number (`u64::MAX` until inserted).
    #[inline]
    pub(crate) fn seq(&self, row: u32) -> u64 {
        self.seqs
            .peek(row)
            .map_or(u64::MAX, |s| s[0].load(Ordering::Acquire))
    }

    /// Whether `row` is visible at snapshot `snap`.
    #[inline]
    pub(crate) fn visible(&self, row: u32, snap: u64) -> bool {
        self.seq(row) <= snap && self.deleted.alive_at(row, snap)
    }

    /// Key/metadata/payload of an inserted row.
    pub(crate) fn row(&self, row: u32) -> Option<&RowData> {
        self.rows.peek(row)?[0].get()
    }

    pub(crate) fn vector(&self, row: u32) -> &[f32] {
        self.vectors.get(row)
    }

    pub(crate) fn vectors(&self) -> &dyn Vectors {
        &self.vectors
    }

    pub(crate) fn index(&self) -> &MemIndex {
        &self.index
    }
}
