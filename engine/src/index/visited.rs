//! A reusable visited set: one generation stamp per row, kept per thread (with the
//! walk's other scratch buffers), so a search clears it by bumping the generation
//! instead of touching every row, and allocates nothing once warm.

use std::cell::RefCell;

use super::search::Scratch;

/// Generation-stamped membership over rows `0..len`.
pub(crate) struct Visited {
    marks: Vec<u16>,
    generation: u16,
}

impl Visited {
    pub(crate) fn new() -> Self {
        Visited {
            marks: Vec::new(),
            generation: 0,
        }
    }

    /// Forget every row and make room for rows `0..rows`.
    pub(crate) fn reset(&mut self, rows: usize) {
        if self.marks.len() < rows {
            self.marks.resize(rows, self.generation);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.fill(0);
            self.generation = 1;
        }
    }

    /// Mark `row`; `true` if it was not marked yet. Rows past the reset size count as
    /// visited, so a bad id is skipped instead of indexing out of bounds.
    #[inline]
    pub(crate) fn insert(&mut self, row: u32) -> bool {
        match self.marks.get_mut(row as usize) {
            Some(mark) if *mark != self.generation => {
                *mark = self.generation;
                true
            }
            _ => false,
        }
    }
}

thread_local! {
    static WORKSPACE: RefCell<(Visited, Scratch)> = RefCell::new((Visited::new(), Scratch::default()));
}

/// Run `f` with this thread's visited set, cleared and sized for `rows`, and scratch
/// buffers. A nested call (an `accept` callback that searches again) gets fresh ones
/// instead of panicking.
pub(crate) fn with_workspace<R>(rows: usize, f: impl FnOnce(&mut Visited, &mut Scratch) -> R) -> R {
    WORKSPACE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut ws) => {
            let (visited, scratch) = &mut *ws;
            visited.reset(rows);
            f(visited, scratch)
        }
        Err(_) => {
            let mut visited = Visited::new();
            visited.reset(rows);
            f(&mut visited, &mut Scratch::default())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_clear_and_wrap() {
        let mut v = Visited::new();
        for _ in 0..70_000 {
            v.reset(10);
            assert!(v.insert(3));
            assert!(!v.insert(3));
        }
        assert!(!v.insert(10), "rows past the size count as visited");
    }
}
