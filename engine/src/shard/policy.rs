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
//! When the shard has been idle (no writes) for `idle_merge_after`, a fourth rule merges
//! everything into one segment ([`MergePolicy::idle_merge`]): searching one segment is
//! cheaper than searching several (about 2× for 3 segments at equal recall on 1M rows),
//! and a shard that went quiet has the cores to spare. The merge extends the largest
//! segment's graph (`index::extend`), so it costs inserting the other rows plus rewriting
//! the file. Rewriting a large segment to absorb a few rows is what the rule avoids: it
//! merges when the largest segment holds under [`IDLE_LARGEST_SHARE`] of the live rows,
//! or once the shard has been idle [`LONG_IDLE`] times `idle_merge_after` — a trickle of
//! writes (one every few idle periods) rewrites the large segment only for every 5 % of
//! new rows, while a shard that stopped taking writes ends in one segment.
//!
//! Rows are counted live (the size a merge writes), so a segment thinned by deletions
//! tiers with smaller ones. The background thread asks again after every merge (flushing
//! waiting memtables first), so several merges in a row reach the cap.
//!
//! Why a flush does not merge the memtable into a small segment in the same step: a flush
//! writes the memtable's graph as it is (`MemIndex::to_bytes`, no graph work), while a
//! merge inserts rows into a graph: it extends its largest input's graph with the other
//! rows (`index::extend`, when that input keeps 90 % of its rows; otherwise it rebuilds).
//! Folding "small segment + memtable" into the flush would therefore add the insertion of
//! one side's rows into the other's graph to the flush path, which writers wait on once
//! `max_frozen_memtables` memtables are full, and delay the WAL truncation the flush
//! allows. What it would save is one small segment until the next tier merge. That is not
//! free for searches: a walk costs nearly as much in a small graph as in a large one, so
//! a 5 % segment beside a large one makes a search about 1.4× one segment's at equal
//! recall even with walks sharing `ef` by size (design note 008, `segments_bench
//! --segments 95:5`). Flushed segments are merged in the background with their peers once
//! `min_merge_width` of them exist, and the idle merge leaves one segment, both off the
//! write path.

use std::time::Duration;

use crate::options::Options;
use crate::segment::Segment;

/// Segments smaller than this are not rewritten for their deletions alone (the next merge
/// drops them anyway, and rewriting tiny segments is mostly fixed costs).
pub(crate) const MIN_REWRITE_ROWS: u64 = 1024;

/// The idle merge waits while the largest segment holds at least this share of the live
/// rows (unless the idle lasts [`LONG_IDLE`] periods).
pub(crate) const IDLE_LARGEST_SHARE: f64 = 0.95;

/// After this many idle periods the idle merge folds even a few rows into the largest
/// segment.
pub(crate) const LONG_IDLE: u32 = 10;

/// What the policy knows of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSize {
    /// Rows stored, dead ones included.
    pub rows: u64,
    /// Rows not deleted or superseded.
    pub live: u64,
}

impl SegmentSize {
    /// The sizes of `seg` at sequence number `snap`: rows that writes up to `snap`
    /// deleted or superseded are not live.
    pub(crate) fn of(seg: &Segment, snap: u64) -> Self {
        SegmentSize {
            rows: u64::from(seg.rows()),
            live: seg.deleted.live_count_at(seg.rows() as usize, snap) as u64,
        }
    }
}

/// The policy's knobs (see [`Options`] for their trade-offs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MergePolicy {
    pub max_segments: usize,
    pub merge_ratio: f64,
    pub min_merge_width: usize,
    pub max_deleted_ratio: f64,
    pub idle_merge_after: Option<Duration>,
    pub idle_merge_max_rows: u64,
}

impl MergePolicy {
    pub(crate) fn from_options(o: &Options) -> Self {
        MergePolicy {
            max_segments: o.max_segments,
            merge_ratio: o.merge_ratio,
            min_merge_width: o.min_merge_width,
            max_deleted_ratio: o.max_deleted_ratio,
            idle_merge_after: o.idle_merge_after,
            idle_merge_max_rows: o.idle_merge_max_rows,
        }
    }

    /// Whether a shard that has taken no writes for `idle` should merge all of `segs` into
    /// one (see the module notes).
    pub(crate) fn idle_merge(&self, segs: &[SegmentSize], idle: Duration) -> bool {
        let Some(after) = self.idle_merge_after else {
            return false;
        };
        if idle < after || segs.len() < 2 {
            return false;
        }
        let total: u64 = segs.iter().map(|s| s.live).sum();
        let largest = segs.iter().map(|s| s.live).max().unwrap_or(0);
        if total > self.idle_merge_max_rows {
            return false;
        }
        (largest as f64) < IDLE_LARGEST_SHARE * total as f64 || idle >= after * LONG_IDLE
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

    #[test]
    fn idle_merges_follow_the_table() {
        let s = Duration::from_secs;
        // (segments' live rows, idle seconds, merge?) with the defaults: after 10 s, cap 2M.
        let cases: &[(&[u64], u64, bool)] = &[
            // Not idle long enough, or nothing to merge.
            (&[800_000, 150_000, 50_000], 9, false),
            (&[1_000_000], 3600, false),
            (&[], 3600, false),
            // Idle: segments of a 1M-row ingest become one.
            (&[800_000, 150_000, 50_000], 10, true),
            (&[500_000, 500_000], 10, true),
            // Too large for the idle merge.
            (&[1_500_000, 600_000], 10, false),
            (&[1_000_000, 1_000_000], 3600, true),
            // A few rows beside a large segment wait for a long idle (10 periods).
            (&[1_000_000, 20_000], 10, false),
            (&[1_000_000, 20_000], 99, false),
            (&[1_000_000, 20_000], 100, true),
            // ... unless they are 5 % of the rows or more.
            (&[950_000, 30_000, 20_000], 10, false),
            (&[940_000, 30_000, 30_000], 10, true),
        ];
        for &(sizes, idle, want) in cases {
            assert_eq!(
                policy().idle_merge(&live(sizes), s(idle)),
                want,
                "segments {sizes:?} idle {idle} s"
            );
        }
        let off = MergePolicy {
            idle_merge_after: None,
            ..policy()
        };
        assert!(!off.idle_merge(&live(&[100, 100]), s(1 << 20)));
        // Live rows count: a segment thinned by deletions is small.
        let thinned = [
            SegmentSize {
                rows: 1_000_000,
                live: 900_000,
            },
            SegmentSize {
                rows: 100_000,
                live: 100_000,
            },
        ];
        assert!(policy().idle_merge(&thinned, s(10)));
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
