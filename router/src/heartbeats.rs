//! This router's own view of node liveness: when each node last sent a heartbeat here and
//! the shard states it reported. Nodes heartbeat every router, so every router has a
//! current view without Raft traffic; the leader turns changes of liveness into Raft
//! commands (see `control.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use vecshard_model::Clock;
use vecshard_proto::internal::v1::{ShardStatus, ShardTarget};

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

/// (collection, shard) → node → (epoch leased, until when).
type Granted = HashMap<(String, u32), HashMap<String, (u64, Instant)>>;

/// The read leases this router granted as leader, by shard and node: the epoch leased and
/// until when (by this router's clock) the node may serve reads of the shard as its writer
/// without asking. The control loop gives a shard a new writer (failover, promotion, a
/// planned move) only once no other node's lease on it runs, or that node released it, so
/// a replaced writer stops reading before a new one takes writes (note 014, "Read leases").
pub struct Leases {
    clock: Arc<dyn Clock>,
    granted: Mutex<Granted>,
}

impl Leases {
    /// No leases yet; times come from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Leases {
            clock,
            granted: Mutex::default(),
        }
    }

    /// Grant `node` a lease of `length` on the shards `decide` returns, if it returns any
    /// (`None`: no grant at all), and return them. `decide` runs under the leases' lock,
    /// so that a grant and a new writer's [`Leases::held_by_other`] check are ordered.
    /// Recorded from now: the node counts from when it sent the heartbeat, which is
    /// earlier, so the node's lease ends first.
    pub fn grant(
        &self,
        node: &str,
        length: std::time::Duration,
        decide: impl FnOnce() -> Option<Vec<ShardTarget>>,
    ) -> Option<Vec<ShardTarget>> {
        let mut granted = self.lock();
        let shards = decide()?;
        let now = self.clock.now();
        granted.retain(|_, nodes| {
            nodes.retain(|_, (_, until)| *until > now);
            !nodes.is_empty()
        });
        let end = now + length;
        for t in &shards {
            let nodes = granted.entry((t.collection.clone(), t.shard)).or_default();
            let entry = nodes.entry(node.to_string()).or_insert((t.epoch, end));
            *entry = (entry.0.max(t.epoch), entry.1.max(end));
        }
        Some(shards)
    }

    /// Whether a node other than `except` may still hold a read lease on the shard.
    pub fn held_by_other(&self, collection: &str, shard: u32, except: Option<&str>) -> bool {
        let now = self.clock.now();
        self.lock()
            .get(&(collection.to_string(), shard))
            .is_some_and(|nodes| {
                nodes
                    .iter()
                    .any(|(n, (_, until))| Some(n.as_str()) != except && *until > now)
            })
    }

    /// `node` released the shard at `epoch`: its lease on it (at that epoch or an older
    /// one) ended with the slot.
    pub fn released(&self, node: &str, collection: &str, shard: u32, epoch: u64) {
        let mut granted = self.lock();
        let key = (collection.to_string(), shard);
        if let Some(nodes) = granted.get_mut(&key) {
            if nodes.get(node).is_some_and(|(e, _)| *e <= epoch) {
                nodes.remove(node);
            }
            if nodes.is_empty() {
                granted.remove(&key);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Granted> {
        self.granted.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vecshard_model::ManualClock;

    use super::*;

    fn shard(epoch: u64) -> Vec<ShardTarget> {
        vec![ShardTarget {
            collection: "c".to_string(),
            shard: 0,
            epoch,
        }]
    }

    /// A grant is held for its length by the router's clock and no longer, by shard; a
    /// refused grant records nothing; a shorter grant never cuts a longer one; the node
    /// itself does not count against its own new assignment; a release at the leased
    /// epoch (not an older one) ends the lease at once.
    #[test]
    fn a_lease_is_held_for_its_length_or_until_released() {
        let clock = ManualClock::new();
        let leases = Leases::new(Arc::new(clock.clone()));
        assert_eq!(leases.grant("a", Duration::from_secs(1), || None), None);
        assert!(!leases.held_by_other("c", 0, None));
        assert_eq!(
            leases.grant("a", Duration::from_secs(5), || Some(shard(3))),
            Some(shard(3))
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            leases.grant("a", Duration::from_secs(1), || Some(shard(3))),
            Some(shard(3))
        );
        assert!(leases.held_by_other("c", 0, None) && leases.held_by_other("c", 0, Some("b")));
        assert!(
            !leases.held_by_other("c", 0, Some("a")),
            "a node's own lease"
        );
        assert!(!leases.held_by_other("c", 1, None), "another shard");
        clock.advance(Duration::from_millis(3_999));
        assert!(
            leases.held_by_other("c", 0, None),
            "the longer grant still runs"
        );
        clock.advance(Duration::from_millis(1));
        assert!(!leases.held_by_other("c", 0, None));

        leases.grant("a", Duration::from_secs(5), || Some(shard(4)));
        leases.released("a", "c", 0, 3);
        assert!(
            leases.held_by_other("c", 0, None),
            "released an older epoch"
        );
        leases.released("a", "c", 0, 4);
        assert!(!leases.held_by_other("c", 0, None));
    }
}
