//! What a follower does with the primary's frames, given its own position: apply the
//! frame that continues its log exactly, skip one it already holds (a resend after a lost
//! answer), and stop at a gap so the primary resends from the follower's position.

/// The fate of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// It continues the log: apply it.
    Apply,
    /// The follower already holds all of it: skip it.
    Skip,
    /// It starts after the follower's next sequence number: stop, report the position.
    Gap,
    /// It starts inside the follower's log but ends after it: the logs differ (a frame
    /// boundary the primary never wrote). Refused.
    Overlap,
}

/// The fate of a frame of `len` items starting at `first_seq` on a follower whose next
/// sequence number is `next_seq`.
pub fn fate(first_seq: u64, len: u64, next_seq: u64) -> Fate {
    let last = first_seq.saturating_add(len.max(1)) - 1;
    if first_seq == next_seq {
        Fate::Apply
    } else if first_seq > next_seq {
        Fate::Gap
    } else if last < next_seq {
        Fate::Skip
    } else {
        Fate::Overlap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_frames_apply_resends_skip_gaps_stop() {
        // The follower holds 1..=10.
        assert_eq!(fate(11, 3, 11), Fate::Apply);
        assert_eq!(fate(8, 3, 11), Fate::Skip, "8..=10 held");
        assert_eq!(fate(1, 1, 11), Fate::Skip);
        assert_eq!(fate(12, 1, 11), Fate::Gap);
        assert_eq!(fate(9, 3, 11), Fate::Overlap, "9..=11 straddles");
        // An empty log.
        assert_eq!(fate(1, 5, 1), Fate::Apply);
        assert_eq!(fate(2, 5, 1), Fate::Gap);
    }
}
