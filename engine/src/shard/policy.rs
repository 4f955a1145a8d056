//! The merge policy: which segments a compaction merges. A pure function of the segments'
//! sizes, so it is tested with a table and simulated without a shard.
//!
//! Three rules, in order:
//! 1. **Size tiers**: the smallest run of at least `min_merge_width` segments whose live
//!    rows are within `merge_ratio` of the run's smallest one. Merging similar sizes keeps
//!    write amplification logarithmic: a row is rewritten about once per tier.
//! 2. **Cap**: more than `max_segments` segments: the smallest ones, enough of them to get
//!    back to the cap in one merge. This bounds the segments a search walks.
//! 3. **Deletions**: a segment (of at least [`MIN_REWRITE_ROWS`] rows) whose deleted share
//!    exceeds `max_deleted_ratio` is rewritten alone, dropping its dead rows.
//!
//! The inputs need not be neighbours in sequence order: reopening resolves keys by
//! sequence number, and partial merges keep their tombstones (design note 008).
//!
//! Rows are counted live (the size a merge writes), so a segment thinned by deletions
//! tiers with smaller ones. The background thread asks again after every merge (flushing
//! waiting memtables first), so several merges in a row reach the cap.
//!
//! Why a flush does not merge the memtable into a small segment in the same step: a flush
//! writes the memtable's graph as it is (`MemIndex::to_bytes`, no graph build), while any
//! merge rebuilds the HNSW graph over all its rows (`index::build`, the dominant cost: tens
//! of seconds for 200k rows on 2 cores). Folding "newest small segment + memtable" into the
//! flush would save one write of a memtable-sized file and one manifest commit, but not the
//! build; and it would put that build on the flush path, which writers wait on once
//! `max_frozen_memtables` memtables are full, and delay the WAL truncation the flush
//! allows. With tiers, the flushed segment is merged in the background with its peers as
//! soon as `min_merge_width` of them exist, which is the same rows rebuilt once, off the
//! write path.

use crate::options::Options;

/// Segments smaller than this are not rewritten for their deletions alone (the next merge
/// drops them anyway, and rewriting tiny segments is mostly fixed costs).
pub(crate) const MIN_REWRITE_ROWS: u64 = 1024;

/// What the policy knows of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSize {
    /// Rows stored, dead ones included.
    pub rows: u64,
    /// Rows not deleted or superseded.
    pub live: u64,
}

/// The policy's knobs (see [`Options`] for their trade-offs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MergePolicy {
    pub max_segments: usize,
    pub merge_ratio: f64,
    pub min_merge_width: usize,
    pub max_deleted_ratio: f64,
}

impl MergePolicy {
    pub(crate) fn from_options(o: &Options) -> Self {
        MergePolicy {
            max_segments: o.max_segments,
            merge_ratio: o.merge_ratio,
            min_merge_width: o.min_merge_width,
            max_deleted_ratio: o.max_deleted_ratio,
        }
    }

    /// Indexes (into `segs`) of the segments to merge into one, smallest first; empty when
    /// nothing is worth merging. One index alone means: rewrite it without its dead rows.
    pub(crate) fn plan(&self, segs: &[SegmentSize]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..segs.len()).collect();
        order.sort_by_key(|&i| (segs[i].live, i));
        let width = self.min_merge_width.max(2);
        for start in 0..order.len() {
            let limit = self.merge_ratio * segs[order[start]].live.max(1) as f64;
            let end = order[start..]
                .iter()
                .take_while(|&&i| segs[i].live as f64 <= limit)
                .count();
            if end >= width {
                return order[start..start + end].to_vec();
            }
        }
        if segs.len() > self.max_segments {
            return order[..segs.len() - self.max_segments + 1].to_vec();
        }
        segs.iter()
            .enumerate()
            .filter(|(_, s)| {
                s.rows >= MIN_REWRITE_ROWS
                    && (s.rows - s.live.min(s.rows)) as f64 > self.max_deleted_ratio * s.rows as f64
            })
            .max_by_key(|(_, s)| s.rows - s.live.min(s.rows))
            .map(|(i, _)| vec![i])
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(sizes: &[u64]) -> Vec<SegmentSize> {
        sizes
            .iter()
            .map(|&n| SegmentSize { rows: n, live: n })
            .collect()
    }

    fn policy() -> MergePolicy {
        MergePolicy::from_options(&Options::default())
    }

    #[test]
    fn plans_follow_the_table() {
        // (segments as (rows, live), expected plan)
        type Case = (&'static [(u64, u64)], &'static [usize]);
        let cases: &[Case] = &[
            // Nothing, or too few segments to merge.
            (&[], &[]),
            (&[(100, 100)], &[]),
            (&[(100, 100), (100, 100)], &[]),
            // Three similar sizes: a tier.
            (&[(100, 100), (120, 120), (250, 250)], &[0, 1, 2]),
            // The smallest tier goes first; the large one is left alone.
            (
                &[(10_000, 10_000), (100, 100), (110, 110), (90, 90)],
                &[3, 1, 2],
            ),
            // Dissimilar sizes under the cap: nothing.
            (&[(1000, 1000), (100, 100), (10, 10)], &[]),
            // Over the cap without a tier: the smallest, back to the cap in one merge.
            (
                &[
                    (100_000, 100_000),
                    (10_000, 10_000),
                    (1000, 1000),
                    (100, 100),
                    (10, 10),
                ],
                &[4, 3, 2],
            ),
            // The tier uses live rows: a mostly deleted segment sizes as its live rows.
            (&[(10_000, 100), (100, 100), (100, 100)], &[0, 1, 2]),
            // A lone segment with many deletions is rewritten.
            (&[(10_000, 6000)], &[0]),
            (&[(10_000, 8000)], &[]),
            // ... but not when it is tiny.
            (&[(1000, 10)], &[]),
            // The one with the most dead rows first.
            (&[(100_000, 50_000), (10_000, 1000)], &[0]),
        ];
        for (segs, want) in cases {
            let segs: Vec<SegmentSize> = segs
                .iter()
                .map(|&(rows, live)| SegmentSize { rows, live })
                .collect();
            assert_eq!(policy().plan(&segs), *want, "segments {segs:?}");
        }
    }

    #[test]
    fn width_and_ratio_are_honoured() {
        let p = MergePolicy {
            min_merge_width: 2,
            merge_ratio: 2.0,
            ..policy()
        };
        assert_eq!(p.plan(&live(&[100, 190])), vec![0, 1]);
        assert_eq!(p.plan(&live(&[100, 210])), Vec::<usize>::new());
        let p = MergePolicy {
            max_segments: 8,
            min_merge_width: 4,
            ..policy()
        };
        assert_eq!(p.plan(&live(&[100, 100, 100])), Vec::<usize>::new());
        assert_eq!(p.plan(&live(&[100, 100, 100, 100])), vec![0, 1, 2, 3]);
    }

    /// Steady ingest with the defaults: never more than the cap once merged, and each row
    /// rewritten a bounded number of times.
    #[test]
    fn steady_ingest_stays_under_the_cap() {
        let p = policy();
        let (flush, flushes) = (20_000u64, 50);
        let mut segs: Vec<u64> = Vec::new();
        let mut written = 0u64;
        for _ in 0..flushes {
            segs.push(flush);
            written += flush;
            loop {
                let plan = p.plan(&live(&segs));
                if plan.is_empty() {
                    break;
                }
                let merged: u64 = plan.iter().map(|&i| segs[i]).sum();
                written += merged;
                let mut i = 0;
                segs.retain(|_| {
                    i += 1;
                    !plan.contains(&(i - 1))
                });
                segs.push(merged);
            }
            assert!(segs.len() <= p.max_segments, "{segs:?}");
        }
        let amplification = written as f64 / (flush * flushes) as f64;
        assert!(amplification < 6.0, "write amplification {amplification}");
    }
}
