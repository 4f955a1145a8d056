//! Per-row deletion marks with the sequence number that deleted (or superseded) the row, so
//! a search at snapshot `S` still sees rows deleted after `S`.

use std::sync::atomic::{AtomicU64, Ordering};

use roaring::RoaringBitmap;

use crate::chunked::Chunked;

/// The mark of a live row.
pub(crate) const LIVE: u64 = u64::MAX;

/// One `AtomicU64` per row: `LIVE`, or the sequence number of the deleting operation.
/// Allocated in chunks as rows are marked (an untouched chunk is all `LIVE`), so the marks
/// of a memtable grow with its rows.
pub(crate) struct Deletions {
    marks: Chunked<AtomicU64>,
}

impl std::fmt::Debug for Deletions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deletions")
            .field("rows", &self.marks.capacity())
            .finish()
    }
}

impl Deletions {
    pub(crate) fn new(rows: usize) -> Self {
        Deletions {
            marks: Chunked::new(rows, 1, || AtomicU64::new(LIVE)),
        }
    }

    /// Mark `row` deleted by operation `seq` (the earliest deletion wins). A row past the
    /// end is ignored (and logged).
    pub(crate) fn mark(&self, row: u32, seq: u64) {
        match self.marks.get(row) {
            Some(m) => {
                m[0].fetch_min(seq, Ordering::AcqRel);
            }
            None => tracing::error!(
                row,
                rows = self.marks.capacity(),
                "deletion mark past the end"
            ),
        }
    }

    /// The deleting sequence number, or `LIVE`.
    #[inline]
    pub(crate) fn get(&self, row: u32) -> u64 {
        self.marks
            .peek(row)
            .map_or(LIVE, |m| m[0].load(Ordering::Acquire))
    }

    /// Whether `row` is still present at snapshot `seq`.
    #[inline]
    pub(crate) fn alive_at(&self, row: u32, seq: u64) -> bool {
        self.get(row) > seq
    }

    /// Rows among the first `rows` still present at snapshot `seq` (a memtable's marks,
    /// carried into its segment, have room for more rows than the segment has).
    pub(crate) fn live_count_at(&self, rows: usize, seq: u64) -> usize {
        let dead: usize = self
            .marks
            .allocated()
            .map(|(first, chunk)| {
                chunk
                    .iter()
                    .take(rows.saturating_sub(first))
                    .filter(|m| m.load(Ordering::Relaxed) <= seq)
                    .count()
            })
            .sum();
        rows - dead
    }

    /// The rows among the first `rows` deleted at or before `seq`: a segment's deletion
    /// vector for a manifest version whose `flushed_seq` is `seq`. Reads only the chunks
    /// that hold a mark.
    pub(crate) fn dead_at(&self, rows: u32, seq: u64) -> RoaringBitmap {
        let mut dead = RoaringBitmap::new();
        for (first, chunk) in self.marks.allocated() {
            for (i, m) in chunk.iter().enumerate() {
                let row = (first + i) as u32;
                if row < rows && m.load(Ordering::Acquire) <= seq {
                    dead.insert(row);
                }
            }
        }
        dead
    }
}
