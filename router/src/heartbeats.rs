//! This router's own view of node liveness: when each node last sent a heartbeat here and
//! the shard states it reported. Nodes heartbeat every router, so every router has a
//! current view without Raft traffic; the leader turns changes of liveness into Raft
//! commands (see `control.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use vecshard_model::Clock;
use vecshard_proto::internal::v1::ShardStatus;

/// One node's last heartbeat at this router.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When it arrived (by the router's clock).
    pub at: Instant,
    /// The address the node reported.
    pub address: String,
    /// The shards the node reported.
    pub shards: Vec<ShardStatus>,
}

impl Seen {
    /// The reported status of a shard, if the node holds it.
    pub fn shard(&self, collection: &str, shard: u32) -> Option<&ShardStatus> {
        self.shards
            .iter()
            .find(|s| s.collection == collection && s.shard == shard)
    }
}

/// Last heartbeats by node id.
pub struct Heartbeats {
    clock: Arc<dyn Clock>,
    seen: Mutex<HashMap<String, Seen>>,
}

impl Heartbeats {
    /// No heartbeats yet; arrivals are stamped by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Heartbeats {
            clock,
            seen: Mutex::default(),
        }
    }

    /// Record a heartbeat received now.
    pub fn record(&self, node: &str, address: &str, shards: Vec<ShardStatus>) {
        let seen = Seen {
            at: self.clock.now(),
            address: address.to_string(),
            shards,
        };
        self.lock().insert(node.to_string(), seen);
    }

    /// The last heartbeat of a node.
    pub fn get(&self, node: &str) -> Option<Seen> {
        self.lock().get(node).cloned()
    }

    /// Every node's last heartbeat.
    pub fn all(&self) -> HashMap<String, Seen> {
        self.lock().clone()
    }

    /// Forget a node (it was removed from the map).
    pub fn forget(&self, node: &str) {
        self.lock().remove(node);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The read leases this router granted as leader, by node: until when (by this router's
/// clock) the node may serve reads of the shards it holds as writer without asking. The
/// control loop moves or promotes a node's shards away only once its lease ran out, so a
/// deposed writer stops reading before a new one takes writes (note 014, "Read leases").
pub struct Leases {
    clock: Arc<dyn Clock>,
    until: Mutex<HashMap<String, Instant>>,
}

impl Leases {
    /// No leases yet; times come from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Leases {
            clock,
            until: Mutex::default(),
        }
    }

    /// Grant `node` a lease of `length` if `decide` (run under the leases' lock, so that a
    /// grant and a failover's [`Leases::held`] check are ordered) returns something.
    /// Recorded from now: the node counts from when it sent the heartbeat, which is
    /// earlier, so the node's lease ends first.
    pub fn grant<T>(
        &self,
        node: &str,
        length: std::time::Duration,
        decide: impl FnOnce() -> Option<T>,
    ) -> Option<T> {
        let mut until = self.lock();
        let granted = decide()?;
        let end = self.clock.now() + length;
        let slot = until.entry(node.to_string()).or_insert(end);
        *slot = (*slot).max(end);
        Some(granted)
    }

    /// Whether a lease granted to `node` may still be running.
    pub fn held(&self, node: &str) -> bool {
        let now = self.clock.now();
        self.lock().get(node).is_some_and(|end| *end > now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.until.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vecshard_model::ManualClock;

    use super::*;

    /// A grant is held for its length by the router's clock and no longer; a refused grant
    /// (the decision said no) records nothing; a shorter grant never cuts a longer one.
    #[test]
    fn a_lease_is_held_for_its_length_and_a_refusal_records_nothing() {
        let clock = ManualClock::new();
        let leases = Leases::new(Arc::new(clock.clone()));
        assert_eq!(
            leases.grant("a", Duration::from_secs(1), || None::<()>),
            None
        );
        assert!(!leases.held("a"));
        assert_eq!(
            leases.grant("a", Duration::from_secs(5), || Some(7)),
            Some(7)
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            leases.grant("a", Duration::from_secs(1), || Some(())),
            Some(())
        );
        assert!(leases.held("a") && !leases.held("b"));
        clock.advance(Duration::from_millis(3_999));
        assert!(leases.held("a"), "the longer grant still runs");
        clock.advance(Duration::from_millis(1));
        assert!(!leases.held("a"));
    }
}
