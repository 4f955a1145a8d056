//! Per-row deletion marks with the sequence number that deleted (or superseded) the row, so
//! a search at snapshot `S` still sees rows deleted after `S`.

use std::sync::atomic::{AtomicU64, Ordering};

/// The mark of a live row.
pub(crate) const LIVE: u64 = u64::MAX;

/// One `AtomicU64` per row: `LIVE`, or the sequence number of the deleting operation.
#[derive(Debug)]
pub(crate) struct Deletions {
    marks: Box<[AtomicU64]>,
}

impl Deletions {
    pub(crate) fn new(rows: usize) -> Self {
        Deletions {
            marks: (0..rows).map(|_| AtomicU64::new(LIVE)).collect(),
        }
    }

    /// Mark `row` deleted by operation `seq` (the earliest deletion wins).
    pub(crate) fn mark(&self, row: u32, seq: u64) {
        self.marks[row as usize].fetch_min(seq, Ordering::AcqRel);
    }

    /// The deleting sequence number, or `LIVE`.
    #[inline]
    pub(crate) fn get(&self, row: u32) -> u64 {
        self.marks[row as usize].load(Ordering::Acquire)
    }

    /// Whether `row` is still present at snapshot `seq`.
    #[inline]
    pub(crate) fn alive_at(&self, row: u32, seq: u64) -> bool {
        self.get(row) > seq
    }

    /// Rows still live now.
    pub(crate) fn live_count(&self) -> usize {
        self.marks
            .iter()
            .filter(|m| m.load(Ordering::Relaxed) == LIVE)
            .count()
    }
}
