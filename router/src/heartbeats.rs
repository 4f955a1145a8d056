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
