//! The acknowledgement rule of a replicated shard's primary, as pure bookkeeping: the
//! durable position of every replica, and the writes waiting for enough of them.
//!
//! - `majority`: ⌊RF/2⌋ + 1 replicas, the primary counted, hold the write durable;
//! - `all`: every in-sync replica holds it (the primary is always in sync).
//!
//! Positions only grow, so a write at sequence `s` is acknowledged once every write
//! below it is: waiting writes leave in order.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use vecshard_model::replication::{WriteAck, majority};

/// How many replicas hold a write, against how many the rule needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Replicas (the primary included) that hold it durable and count for the rule.
    pub acknowledged: u32,
    /// Replicas the rule needs.
    pub needed: u32,
    /// The replication factor.
    pub replicas: u32,
}

impl Count {
    /// Whether the rule holds.
    pub fn met(&self) -> bool {
        self.acknowledged >= self.needed
    }
}

#[derive(Debug, Clone)]
struct Follower {
    durable: u64,
    in_sync: bool,
}

/// A write waiting for acknowledgement.
#[derive(Debug)]
struct Waiting<W> {
    seq: u64,
    since: Instant,
    deadline: Instant,
    waiter: W,
}

/// The primary's bookkeeping; `W` is whatever answers a waiting write.
#[derive(Debug)]
pub struct AckTracker<W> {
    rule: WriteAck,
    factor: u32,
    primary: u64,
    followers: BTreeMap<String, Follower>,
    waiting: VecDeque<Waiting<W>>,
}

impl<W> AckTracker<W> {
    /// A tracker for `factor` replicas: the primary, durable up to `durable`, and
    /// `followers` (node id, in sync), positions unknown (0) until they answer.
    pub fn new(rule: WriteAck, factor: u32, durable: u64, followers: &[(String, bool)]) -> Self {
        AckTracker {
            rule,
            factor,
            primary: durable,
            followers: followers
                .iter()
                .map(|(id, in_sync)| {
                    let f = Follower {
                        durable: 0,
                        in_sync: *in_sync,
                    };
                    (id.clone(), f)
                })
                .collect(),
            waiting: VecDeque::new(),
        }
    }

    /// Who holds `seq`, against the rule.
    pub fn count(&self, seq: u64) -> Count {
        let counted =
            |f: &&Follower| f.durable >= seq && (self.rule == WriteAck::Majority || f.in_sync);
        let acknowledged =
            u32::from(self.primary >= seq) + self.followers.values().filter(counted).count() as u32;
        let needed = match self.rule {
            WriteAck::Majority => majority(self.factor),
            WriteAck::All => 1 + self.followers.values().filter(|f| f.in_sync).count() as u32,
        };
        Count {
            acknowledged,
            needed,
            replicas: self.factor,
        }
    }

    /// A follower's durable position. Returns the writes now acknowledged, in order.
    pub fn follower_durable(&mut self, node: &str, durable: u64) -> Vec<W> {
        if let Some(f) = self.followers.get_mut(node) {
            f.durable = f.durable.max(durable);
        }
        self.ready()
    }

    /// The primary's own durable position (its engine acknowledged up to `durable`).
    pub fn primary_durable(&mut self, durable: u64) -> Vec<W> {
        self.primary = self.primary.max(durable);
        self.ready()
    }

    /// A follower's known position (0 until it answered).
    pub fn position(&self, node: &str) -> Option<u64> {
        self.followers.get(node).map(|f| f.durable)
    }

    /// Wait for `seq` from `now` until `deadline`. Returns `waiter` at once if the rule
    /// already holds. Writes must be registered in sequence order.
    pub fn wait(&mut self, seq: u64, now: Instant, deadline: Instant, waiter: W) -> Option<W> {
        if self.waiting.is_empty() && self.count(seq).met() {
            return Some(waiter);
        }
        self.waiting.push_back(Waiting {
            seq,
            since: now,
            deadline,
            waiter,
        });
        None
    }

    /// With `all`: the in-sync followers that hold back a write waiting since `lag` or
    /// longer at `now` — to be dropped from the in-sync set (through the shard map) so
    /// writes go on without them. Empty with `majority`, which never waits for one
    /// follower in particular.
    pub fn lagging(&self, now: Instant, lag: std::time::Duration) -> Vec<String> {
        let Some(oldest) = self.waiting.front() else {
            return Vec::new();
        };
        if self.rule != WriteAck::All || now.saturating_duration_since(oldest.since) < lag {
            return Vec::new();
        }
        self.followers
            .iter()
            .filter(|(_, f)| f.in_sync && f.durable < oldest.seq)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// When the oldest waiting write will have waited `lag`.
    pub fn lag_check_at(&self, lag: std::time::Duration) -> Option<Instant> {
        (self.rule == WriteAck::All)
            .then(|| self.waiting.front().map(|w| w.since + lag))
            .flatten()
    }

    /// The shard map dropped `node` from the in-sync set: it counts no more. Returns the
    /// writes now acknowledged.
    pub fn out_of_sync(&mut self, node: &str) -> Vec<W> {
        if let Some(f) = self.followers.get_mut(node) {
            f.in_sync = false;
        }
        self.ready()
    }

    /// Whether `node` counts as in sync.
    pub fn is_in_sync(&self, node: &str) -> bool {
        self.followers.get(node).is_some_and(|f| f.in_sync)
    }

    /// `node` is being added to the in-sync set: with `all` every later write waits for
    /// it (it already holds the earlier ones), before the shard map commits the change
    /// too — stricter than holding acknowledgements above its position meanwhile.
    pub fn into_sync(&mut self, node: &str) {
        if let Some(f) = self.followers.get_mut(node) {
            f.in_sync = true;
        }
    }

    /// Writes whose deadline passed at `now`, with their count.
    pub fn expire(&mut self, now: Instant) -> Vec<(W, Count)> {
        let mut out = Vec::new();
        let mut kept = VecDeque::with_capacity(self.waiting.len());
        for w in std::mem::take(&mut self.waiting) {
            if w.deadline <= now {
                let count = self.count(w.seq);
                out.push((w.waiter, count));
            } else {
                kept.push_back(w);
            }
        }
        self.waiting = kept;
        out
    }

    /// The earliest deadline of a waiting write.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting.iter().map(|w| w.deadline).min()
    }

    /// Every waiting write (the primary is closing), with its count.
    pub fn drain(&mut self) -> Vec<(W, Count)> {
        let waiting = std::mem::take(&mut self.waiting);
        waiting
            .into_iter()
            .map(|w| {
                let count = self.count(w.seq);
                (w.waiter, count)
            })
            .collect()
    }

    fn ready(&mut self) -> Vec<W> {
        let mut out = Vec::new();
        while let Some(first) = self.waiting.front() {
            if !self.count(first.seq).met() {
                break;
            }
            out.extend(self.waiting.pop_front().map(|w| w.waiter));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn followers(ids: &[(&str, bool)]) -> Vec<(String, bool)> {
        ids.iter().map(|(id, s)| (id.to_string(), *s)).collect()
    }

    #[test]
    fn majority_of_three_needs_one_follower_and_releases_in_order() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        let mut t = AckTracker::new(
            WriteAck::Majority,
            3,
            0,
            &followers(&[("b", true), ("c", true)]),
        );
        assert!(t.primary_durable(10).is_empty());
        assert_eq!(t.wait(4, Instant::now(), later, "w4"), None);
        assert_eq!(t.wait(10, Instant::now(), later, "w10"), None);
        assert_eq!(
            t.count(4),
            Count {
                acknowledged: 1,
                needed: 2,
                replicas: 3
            }
        );
        // b holds up to 6: w4 goes, w10 waits.
        assert_eq!(t.follower_durable("b", 6), vec!["w4"]);
        // A stale (lower) answer never lowers a position.
        assert!(t.follower_durable("b", 2).is_empty());
        assert_eq!(t.position("b"), Some(6));
        assert_eq!(t.follower_durable("c", 10), vec!["w10"]);
        // Already acknowledged: answered at once.
        assert_eq!(t.wait(10, Instant::now(), later, "again"), Some("again"));
        // Unknown nodes count for nothing.
        assert!(t.follower_durable("x", 100).is_empty());
        assert_eq!(t.count(11).acknowledged, 0);
    }

    #[test]
    fn the_primary_counts_only_once_it_is_durable() {
        let later = Instant::now() + Duration::from_secs(5);
        let mut t = AckTracker::new(WriteAck::Majority, 2, 0, &followers(&[("b", true)]));
        assert_eq!(t.wait(3, Instant::now(), later, 1), None);
        assert!(t.follower_durable("b", 3).is_empty(), "majority of 2 is 2");
        assert_eq!(t.primary_durable(3), vec![1]);
    }

    #[test]
    fn all_needs_every_in_sync_follower_and_ignores_the_others() {
        let later = Instant::now() + Duration::from_secs(5);
        let mut t = AckTracker::new(
            WriteAck::All,
            3,
            5,
            &followers(&[("b", true), ("c", false)]),
        );
        assert_eq!(t.count(5).needed, 2);
        assert_eq!(t.wait(5, Instant::now(), later, "w"), None);
        assert!(t.follower_durable("c", 5).is_empty(), "c is not in sync");
        assert_eq!(t.count(5).acknowledged, 1);
        assert_eq!(t.follower_durable("b", 5), vec!["w"]);
    }

    #[test]
    fn with_all_a_silent_in_sync_follower_is_named_after_the_lag_and_dropping_it_releases() {
        let now = Instant::now();
        let lag = Duration::from_secs(2);
        let mut t = AckTracker::new(WriteAck::All, 3, 4, &followers(&[("b", true), ("c", true)]));
        assert_eq!(t.wait(4, now, now + Duration::from_secs(30), "w"), None);
        assert_eq!(t.lag_check_at(lag), Some(now + lag));
        assert!(t.follower_durable("b", 4).is_empty(), "c is in sync too");
        assert!(t.lagging(now + Duration::from_secs(1), lag).is_empty());
        assert_eq!(t.lagging(now + lag, lag), vec!["c".to_string()]);
        assert_eq!(t.out_of_sync("c"), vec!["w"]);
        assert_eq!(t.count(5).needed, 2);
        // Majority never names a follower.
        let mut m = AckTracker::new(
            WriteAck::Majority,
            3,
            4,
            &followers(&[("b", true), ("c", true)]),
        );
        assert_eq!(m.wait(4, now, now + Duration::from_secs(30), "w"), None);
        assert!(m.lagging(now + lag, lag).is_empty());
        assert_eq!(m.lag_check_at(lag), None);
    }

    #[test]
    fn deadlines_expire_writes_with_their_count() {
        let now = Instant::now();
        let mut t = AckTracker::new(
            WriteAck::Majority,
            5,
            9,
            &followers(&[("b", true), ("c", true), ("d", true), ("e", true)]),
        );
        t.follower_durable("b", 9);
        assert_eq!(
            t.wait(9, Instant::now(), now + Duration::from_millis(10), "short"),
            None
        );
        assert_eq!(
            t.wait(9, Instant::now(), now + Duration::from_secs(10), "long"),
            None
        );
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(10)));
        assert!(t.expire(now).is_empty());
        let gone = t.expire(now + Duration::from_millis(10));
        assert_eq!(
            gone,
            vec![(
                "short",
                Count {
                    acknowledged: 2,
                    needed: 3,
                    replicas: 5
                }
            )]
        );
        let drained = t.drain();
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].0, "long");
        assert_eq!(t.next_deadline(), None);
    }
}
