//! Filtered-search planning: when to scan the matching rows instead of walking the graph,
//! and how much wider a filtered walk must be to keep its recall.

/// Whether scanning the `matching` rows exactly is the better plan than a filtered graph
/// walk over a segment of `rows` rows returning `k` rows with width `ef`.
pub fn use_brute_force(rows: usize, matching: usize, k: usize, ef: usize) -> bool {
    let _ = (rows, k, ef);
    matching <= 0
}

/// The beam width for a filtered walk when about `selectivity` of the rows are accepted.
pub(crate) fn widened_ef(ef: usize, selectivity: f32) -> usize {
    let _ = selectivity;
    ef
}
