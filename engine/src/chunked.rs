//! A fixed-capacity array of rows that allocates in chunks of [`CHUNK_ROWS`] rows on first
//! touch, so an empty memtable costs a directory of pointers instead of its capacity.
//!
//! Chunks never move once allocated, so references into them stay valid while other
//! threads fill later chunks: concurrent writers and lock-free readers work as they would
//! on one preallocated slice.

use std::sync::OnceLock;

/// Rows per chunk (a power of two).
pub(crate) const CHUNK_ROWS: usize = 1024;
const SHIFT: u32 = CHUNK_ROWS.trailing_zeros();

/// `rows` rows of `stride` elements each, made by `make` when their chunk is first touched.
pub(crate) struct Chunked<T> {
    chunks: Box<[OnceLock<Box<[T]>>]>,
    rows: usize,
    stride: usize,
    make: fn() -> T,
}

impl<T> Chunked<T> {
    pub(crate) fn new(rows: usize, stride: usize, make: fn() -> T) -> Self {
        Chunked {
            chunks: (0..rows.div_ceil(CHUNK_ROWS))
                .map(|_| OnceLock::new())
                .collect(),
            rows,
            stride,
            make,
        }
    }

    /// Rows the array can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.rows
    }

    /// The elements of `row`, allocating its chunk if needed; `None` past the capacity.
    #[inline]
    pub(crate) fn get(&self, row: u32) -> Option<&[T]> {
        let (c, at) = self.position(row)?;
        let chunk = self.chunks[c].get_or_init(|| self.make_chunk(c));
        chunk.get(at..at + self.stride)
    }

    /// The elements of `row` if its chunk exists (never allocates).
    #[inline]
    pub(crate) fn peek(&self, row: u32) -> Option<&[T]> {
        let (c, at) = self.position(row)?;
        self.chunks[c].get()?.get(at..at + self.stride)
    }

    /// The element of `row` in a one-element-per-row array, allocating its chunk if needed.
    ///
    /// # Panics
    /// Past the capacity (as indexing a slice would); callers index reserved rows only.
    #[inline]
    pub(crate) fn at(&self, row: u32) -> &T {
        match self.get(row) {
            Some(s) => &s[0],
            None => panic!("row {row} past the capacity of {} rows", self.rows),
        }
    }

    /// Every allocated chunk with the number of its first row.
    pub(crate) fn allocated(&self) -> impl Iterator<Item = (usize, &[T])> {
        self.chunks
            .iter()
            .enumerate()
            .filter_map(|(c, chunk)| chunk.get().map(|s| (c * CHUNK_ROWS, &s[..])))
    }

    /// Rows in chunk `c`.
    pub(crate) fn chunk_rows(&self, c: usize) -> usize {
        (self.rows - c * CHUNK_ROWS).min(CHUNK_ROWS)
    }

    fn position(&self, row: u32) -> Option<(usize, usize)> {
        let row = row as usize;
        if row >= self.rows {
            return None;
        }
        Some((row >> SHIFT, (row & (CHUNK_ROWS - 1)) * self.stride))
    }

    fn make_chunk(&self, c: usize) -> Box<[T]> {
        (0..self.chunk_rows(c) * self.stride)
            .map(|_| (self.make)())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn chunks_appear_on_first_touch_and_stay_put() {
        let a: Chunked<AtomicU32> = Chunked::new(CHUNK_ROWS * 2 + 5, 3, || AtomicU32::new(7));
        assert_eq!(a.allocated().count(), 0);
        assert!(a.peek(0).is_none());
        let last = (CHUNK_ROWS * 2 + 4) as u32;
        a.get(last).unwrap()[2].store(9, Ordering::Relaxed);
        assert_eq!(
            a.allocated().map(|(first, _)| first).collect::<Vec<_>>(),
            [2 * CHUNK_ROWS]
        );
        assert_eq!(a.peek(last).unwrap()[2].load(Ordering::Relaxed), 9);
        assert_eq!(a.peek(last).unwrap()[0].load(Ordering::Relaxed), 7);
        assert_eq!(a.chunk_rows(2), 5);
        assert!(a.get(last + 1).is_none(), "past the capacity");
        assert!(a.peek(3).is_none(), "chunk 0 still untouched");
        let p = a.get(3).unwrap().as_ptr();
        a.get(CHUNK_ROWS as u32).unwrap();
        assert_eq!(a.get(3).unwrap().as_ptr(), p, "a chunk never moves");
    }
}
