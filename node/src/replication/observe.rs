//! What a replicated shard's primary reports about its followers (note 014,
//! "Observability"): each follower's durable position and lag, the bytes it was sent while
//! catching up, and how long writes waited for their acknowledgement.
//!
//! The primary's shipping tasks update a [`Seen`] per follower; [`FollowerLag`] is the
//! snapshot the node's heartbeat and metrics read.

use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::oneshot;

use crate::error::NodeError;

/// What the primary saw of one follower.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// When it last held the primary's whole log (the primary's start until it did).
    pub matched_at: Instant,
    /// Whether its last answer left it behind the log end (the next frames catch it up).
    pub behind: bool,
    /// Bytes of frames sent to it while it was behind.
    pub catchup_bytes: u64,
}

impl Seen {
    /// A follower not heard from yet, as of `now`.
    pub fn new(now: Instant) -> Self {
        Seen {
            matched_at: now,
            behind: false,
            catchup_bytes: 0,
        }
    }

    /// A call carrying `bytes` of frames, sent at `sent_at` when the primary's last
    /// sequence number was `log_end`, was answered with `durable`.
    pub fn answered(&mut self, sent_at: Instant, bytes: u64, log_end: u64, durable: u64) {
        if self.behind {
            self.catchup_bytes += bytes;
        }
        self.behind = durable < log_end;
        if !self.behind {
            self.matched_at = self.matched_at.max(sent_at);
        }
    }
}

/// One follower against its primary's log, at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowerLag {
    /// The follower's node id.
    pub node: String,
    /// Its last durable sequence number the primary knows (0 until it answered).
    pub durable_seq: u64,
    /// Sequence numbers it is behind the primary's last one.
    pub lag_seqs: u64,
    /// Time since it last held the primary's whole log (zero when it holds it now).
    pub lag: Duration,
    /// Whether the primary counts it as in sync.
    pub in_sync: bool,
    /// Bytes of frames sent to it while it was catching up.
    pub catchup_bytes: u64,
}

impl FollowerLag {
    /// The lag of a follower durable up to `durable_seq` when the primary's last sequence
    /// number is `log_end`, as of `now`.
    pub fn of(node: &str, seen: &Seen, durable_seq: u64, log_end: u64, now: Instant) -> Self {
        let lag_seqs = log_end.saturating_sub(durable_seq);
        FollowerLag {
            node: node.to_string(),
            durable_seq,
            lag_seqs,
            lag: if lag_seqs == 0 {
                Duration::ZERO
            } else {
                now.saturating_duration_since(seen.matched_at)
            },
            in_sync: false,
            catchup_bytes: seen.catchup_bytes,
        }
    }
}

/// Where a replicated write's outcome goes; observes how long it waited for its
/// acknowledgement (or failure) when it is answered.
#[derive(Debug)]
pub struct Reply {
    tx: oneshot::Sender<Result<(), NodeError>>,
    since: Instant,
    waited: Option<Histogram>,
}

impl Reply {
    /// A write starting to wait now; `waited` observes its wait in seconds.
    pub fn new(tx: oneshot::Sender<Result<(), NodeError>>, waited: Option<Histogram>) -> Self {
        Reply {
            tx,
            since: Instant::now(),
            waited,
        }
    }

    /// Answer the write.
    pub fn send(self, result: Result<(), NodeError>) -> Result<(), Result<(), NodeError>> {
        if let Some(h) = &self.waited {
            h.observe(self.since.elapsed().as_secs_f64());
        }
        self.tx.send(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_that_fell_behind_lags_since_it_last_held_the_whole_log() {
        let t0 = Instant::now();
        let mut seen = Seen::new(t0);
        // Up to date with a 10-frame log at t0 + 1 s.
        seen.answered(t0 + Duration::from_secs(1), 500, 10, 10);
        assert!(!seen.behind);
        assert_eq!(seen.catchup_bytes, 0);
        let lag = FollowerLag::of("n2", &seen, 10, 10, t0 + Duration::from_secs(5));
        assert_eq!((lag.lag_seqs, lag.lag), (0, Duration::ZERO));
        // The log grew to 25 while it stayed at 10: behind for 4 s by now.
        let lag = FollowerLag::of("n2", &seen, 10, 25, t0 + Duration::from_secs(5));
        assert_eq!(lag.lag_seqs, 15);
        assert_eq!(lag.lag, Duration::from_secs(4));
        assert_eq!(lag.durable_seq, 10);
    }

    #[test]
    fn bytes_sent_after_an_answer_behind_the_log_end_count_as_catch_up() {
        let t0 = Instant::now();
        let mut seen = Seen::new(t0);
        // A probe after a restart: it answers 3 of a 40-frame log.
        seen.answered(t0, 0, 40, 3);
        assert!(seen.behind);
        // A 4 MiB batch brings it to 30, still behind the log end (now 45).
        seen.answered(t0 + Duration::from_millis(10), 4 << 20, 45, 30);
        assert_eq!(seen.catchup_bytes, 4 << 20);
        assert_eq!(seen.matched_at, t0, "not matched yet");
        // The rest: it holds the whole log again; those bytes counted too.
        let at = t0 + Duration::from_millis(20);
        seen.answered(at, 1000, 45, 45);
        assert_eq!(seen.catchup_bytes, (4 << 20) + 1000);
        assert_eq!(seen.matched_at, at);
        // Steady shipping afterwards is not catch-up.
        seen.answered(at + Duration::from_millis(1), 70, 46, 46);
        assert_eq!(seen.catchup_bytes, (4 << 20) + 1000);
    }

    #[test]
    fn a_reply_observes_its_wait_and_delivers_the_result() {
        let h = Histogram::new([0.001, 1.0]);
        let (tx, rx) = oneshot::channel();
        let reply = Reply::new(tx, Some(h.clone()));
        reply.send(Ok(())).unwrap();
        assert!(rx.blocking_recv().unwrap().is_ok());
        let mut text = String::new();
        let mut reg = prometheus_client::registry::Registry::default();
        reg.register("w", "w", h);
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        assert!(text.contains("w_count 1\n"), "{text}");
    }
}
