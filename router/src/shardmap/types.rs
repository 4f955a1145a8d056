//! The shard map: nodes, collections and shard assignments. This is the whole Raft state
//! machine; data never goes through Raft.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The replicated cluster metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardMap {
    /// Data nodes by id.
    pub nodes: BTreeMap<String, NodeRecord>,
    /// Collections by name.
    pub collections: BTreeMap<String, Collection>,
    /// Dropped collections whose data is not yet confirmed deleted everywhere, by
    /// incarnation. (Absent from maps written before drops were tracked.)
    #[serde(default)]
    pub dropping: BTreeMap<u64, Dropping>,
}

/// A data node as the shard map knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node's id, chosen by the operator.
    pub id: String,
    /// The node's gRPC address (`host:port`).
    pub address: String,
    /// Liveness as decided by the Raft leader.
    pub state: Liveness,
    /// The node's failure zone (`node.zone`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Unix milliseconds of the heartbeat that confirmed the current state (leader's
    /// clock); `None` before the first.
    pub last_heartbeat_ms: Option<u64>,
}

/// A node's liveness in the shard map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Liveness {
    /// Registered, no heartbeat yet.
    Joining,
    /// Heartbeats arrive.
    Alive,
    /// Silent longer than the failure timeout.
    Down,
}

pub use vecshard_model::{IndexParams, Metric};

/// A collection's fixed settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionSpec {
    /// The name.
    pub name: String,
    /// Vector dimension.
    pub dimension: u32,
    /// The distance (written as `"L2"`, `"Cosine"`, `"Dot"`, as routers before the model
    /// crate read it).
    #[serde(with = "metric_name")]
    pub metric: Metric,
    /// Number of shards.
    pub shard_count: u32,
    /// `local`, or an object-store URL prefix such as `s3://bucket/prefix` (checked
    /// against `router.allowed_storage` at creation; maps written before that check may
    /// hold other URLs, which are never treated as shared).
    pub storage: String,
    /// Index parameters.
    pub index: IndexParams,
}

impl CollectionSpec {
    /// Whether the shards live on an object store that every node shares (S3), so they
    /// may move between nodes. `local` shards, and any other URL, stay with their node.
    pub fn is_object_store(&self) -> bool {
        crate::storage::is_shared(&self.storage)
    }
}

/// How a collection's shards are laid out in storage; fixed at creation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// Collections created before incarnations reached local paths (maps and logs written
    /// then deserialize to this): a local shard lives at `<data_dir>/<name>/<shard>`, a
    /// path every such incarnation of the name shares, and epochs start at 1.
    #[default]
    Legacy,
    /// A local shard lives at `<data_dir>/<name>-<incarnation>/shard-<nnnn>`, and epochs
    /// start at the incarnation, so the epochs of a name grow across drop and re-create.
    Incarnation,
}

/// A collection in the shard map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    /// Its settings.
    pub spec: CollectionSpec,
    /// The Raft log index that created it: distinguishes a collection from an earlier one
    /// of the same name in storage paths.
    pub incarnation: u64,
    /// Where its shards live (absent from maps written before layouts: legacy).
    #[serde(default)]
    pub layout: Layout,
    /// One assignment per shard, by number.
    pub shards: Vec<Assignment>,
    /// Created by a restore: the backup its shards are copied from when first opened
    /// (absent otherwise, and from maps written before backups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSource>,
    /// Replication of a local-disk collection with a factor above 1 (absent otherwise, so
    /// a factor-1 collection serializes exactly as before replication existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<Replication>,
}

/// How a local-disk collection is replicated (`docs/design/014-replication.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replication {
    /// Copies of every shard, each on its own node: 2 to 5.
    pub factor: u32,
    /// When the primary acknowledges a write.
    pub write_ack: WriteAck,
}

pub use vecshard_model::replication::WriteAck;

/// The cluster backup a restored collection's shards start from (see
/// `docs/design/013-cluster-backups.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreSource {
    /// The backup's location; shard `n`'s checkpoint is at `<location>/shard-<nnnn>`.
    pub location: String,
    /// The CRC32C of each shard checkpoint's manifest file, by shard number.
    pub manifest_crc32c: Vec<u32>,
}

impl Collection {
    /// The incarnation a node uses to locate a local shard: 0 for the legacy layout
    /// (`<data_dir>/<name>/<shard>`).
    pub fn path_incarnation(&self) -> u64 {
        match self.layout {
            Layout::Legacy => 0,
            Layout::Incarnation => self.incarnation,
        }
    }

    /// Where shard `n` keeps its data: `local`, or
    /// `<storage>/<name>-<incarnation>/shard-<nnnn>` on the object store.
    pub fn shard_storage(&self, n: u32) -> String {
        if self.spec.storage == "local" {
            return "local".to_string();
        }
        format!(
            "{}/{}-{}/shard-{n:04}",
            self.spec.storage.trim_end_matches('/'),
            self.spec.name,
            self.incarnation
        )
    }
}

/// A dropped collection whose shards' data some node still has to delete. It leaves the
/// map once every shard's deletion is confirmed (or its node is removed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dropping {
    /// The collection as it was when dropped: settings, incarnation, layout, and the last
    /// owner and epoch of every shard.
    pub collection: Collection,
    /// Shards whose deletion no node has confirmed yet: a local shard's owner deletes it
    /// (it is the only node with the files); any live node deletes an object-store shard.
    pub pending: BTreeSet<u32>,
    /// Followers' copies of replicated local shards not yet deleted: (shard, node). Each
    /// follower deletes its own copy (left out of the serialized map when empty).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub followers: BTreeSet<(u32, String)>,
}

/// Who holds one shard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The writer's node id; `None` while unassigned.
    pub owner: Option<String>,
    /// Grows every time the owner changes; 1 at creation.
    pub epoch: u64,
    /// Nodes serving read-only replicas (object-store shards only), same epoch.
    pub readers: Vec<String>,
    /// The replicas of a replicated shard (absent for a replication factor of 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<ReplicaSet>,
}

/// Who holds a replicated shard's copies. The primary is the assignment's `owner`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaSet {
    /// Every replica, the primary included, on distinct nodes; the replication factor's
    /// count of them.
    pub replicas: Vec<String>,
    /// The in-sync set: replicas known to hold every acknowledged write (the primary is
    /// always one).
    pub in_sync: Vec<String>,
    /// One entry per promotion: the epoch it started and the last sequence number the
    /// new primary held when it took over. Empty until the first promotion.
    pub epoch_starts: Vec<(u64, u64)>,
}

impl Assignment {
    /// Whether `node` holds a copy of this shard as its owner, a reader or a replica.
    pub fn held_by(&self, node: &str) -> bool {
        self.owner.as_deref() == Some(node)
            || self.readers.iter().any(|r| r == node)
            || self
                .replicas
                .as_ref()
                .is_some_and(|s| s.replicas.iter().any(|r| r == node))
    }
}

/// A change to the shard map, proposed by the leader and applied on every router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A node joins or changes its address.
    RegisterNode {
        /// Node id.
        id: String,
        /// gRPC address.
        address: String,
        /// Failure zone (entries written before zones: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zone: Option<String>,
    },
    /// The leader changed nodes' liveness.
    SetLiveness {
        /// (node id, new state).
        changes: Vec<(String, Liveness)>,
        /// Leader's unix milliseconds.
        at_ms: u64,
    },
    /// Create a collection with its initial placement (owners by shard number); its
    /// incarnation is the entry's log index, and its epochs start at 1 (legacy layout) or
    /// at the incarnation.
    CreateCollection {
        /// Settings.
        spec: CollectionSpec,
        /// Owner per shard.
        owners: Vec<Option<String>>,
        /// The layout (entries written before layouts: legacy).
        #[serde(default)]
        layout: Layout,
    },
    /// Drop a collection: it leaves `collections` at once (the name is free again) and
    /// waits in `dropping` until its data is deleted.
    DropCollection {
        /// Name.
        name: String,
    },
    /// A node deleted the data of a dropped collection's shard.
    DataDeleted {
        /// The dropped collection's incarnation.
        incarnation: u64,
        /// Shard number.
        shard: u32,
    },
    /// A follower's copy of a dropped replicated shard is deleted. (Routers of a build
    /// before it cannot read it; replicated collections already need every router
    /// upgraded.)
    FollowerDataDeleted {
        /// The dropped collection's incarnation.
        incarnation: u64,
        /// Shard number.
        shard: u32,
        /// The follower's node.
        node: String,
    },
    /// Give shards new owners. Each move applies only if the shard is still at `from_epoch`;
    /// it then gets `from_epoch + 1`.
    Move {
        /// The moves.
        moves: Vec<Move>,
    },
    /// Set a shard's read replicas (epoch unchanged); applies only at `epoch`.
    SetReaders {
        /// Collection.
        collection: String,
        /// Shard number.
        shard: u32,
        /// The epoch the change was computed for.
        epoch: u64,
        /// The replicas.
        readers: Vec<String>,
    },
    /// Forget a node that is down and owns nothing.
    RemoveNode {
        /// Node id.
        id: String,
    },
    /// Create a replicated local-disk collection (incarnation layout): for each shard its
    /// replicas on distinct nodes, the first one the primary (owner). Collections with a
    /// replication factor of 1 use `CreateCollection`.
    CreateReplicated {
        /// Settings.
        spec: CollectionSpec,
        /// Factor and acknowledgement rule.
        replication: Replication,
        /// Replicas per shard, primary first.
        replicas: Vec<Vec<String>>,
        /// Whether the followers start in the in-sync set (they will receive every write
        /// from the first); otherwise only the primary does. Routers that do not ship
        /// writes to followers yet (replication step 1) propose `false`, so that a later
        /// build never trusts a follower that missed writes.
        #[serde(default)]
        followers_in_sync: bool,
    },
    /// Make `primary` the primary of a replicated shard whose primary is lost
    /// (`docs/design/014-replication.md`, "Promotion"). Applies only if the shard is still
    /// at `from_epoch` with the in-sync set `from_in_sync`; then epoch + 1, `(epoch + 1,
    /// start_seq)` joins `epoch_starts` and the in-sync set becomes `in_sync`.
    Promote {
        /// Collection.
        collection: String,
        /// Shard number.
        shard: u32,
        /// The epoch the decision was computed at.
        from_epoch: u64,
        /// The in-sync set it was computed from.
        from_in_sync: Vec<String>,
        /// The new primary (a replica).
        primary: String,
        /// Its last sequence number when fenced.
        start_seq: u64,
        /// The new in-sync set, the primary first (replicas only).
        in_sync: Vec<String>,
    },
    /// The primary drops a follower from the in-sync set (only at `epoch`; never the
    /// primary).
    ShrinkIsr {
        /// Collection.
        collection: String,
        /// Shard number.
        shard: u32,
        /// The primary's epoch.
        epoch: u64,
        /// The follower.
        node: String,
    },
    /// A caught-up follower joins the in-sync set (only at `epoch`); the primary
    /// acknowledges nothing above `seq` until this is applied.
    ExpandIsr {
        /// Collection.
        collection: String,
        /// Shard number.
        shard: u32,
        /// The primary's epoch.
        epoch: u64,
        /// The follower.
        node: String,
        /// The follower's durable sequence number.
        seq: u64,
    },
    /// Create a collection (incarnation layout) whose shards start from a backup's
    /// checkpoints, as `CreateCollection` otherwise.
    RestoreCollection {
        /// Settings.
        spec: CollectionSpec,
        /// Owner per shard.
        owners: Vec<Option<String>>,
        /// The backup.
        restore: RestoreSource,
    },
}

/// One shard's change of owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// Collection.
    pub collection: String,
    /// Shard number.
    pub shard: u32,
    /// The epoch the move was computed for.
    pub from_epoch: u64,
    /// The new owner.
    pub to: String,
}

/// What applying a command did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CommandResult {
    /// Applied (or a no-op, such as a blank or membership entry).
    #[default]
    Ok,
    /// A node registration: whether the id was new.
    Registered {
        /// True for a new node id.
        created: bool,
    },
    /// Moves: how many applied (the rest were stale).
    Moved {
        /// Applied moves.
        applied: usize,
    },
    /// Refused; nothing changed.
    Rejected(Rejection),
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    /// A collection with the name exists.
    AlreadyExists(String),
    /// The named thing does not exist.
    NotFound(String),
    /// The state does not allow it.
    Conflict(String),
}

/// The shard map's spelling of a metric (`"L2"`, `"Cosine"`, `"Dot"`), kept so that routers
/// of older and newer builds read each other's Raft log; either spelling is read.
mod metric_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use vecshard_model::Metric;

    pub fn serialize<S: Serializer>(m: &Metric, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match m {
            Metric::L2 => "L2",
            Metric::Cosine => "Cosine",
            Metric::Dot => "Dot",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Metric, D::Error> {
        Metric::deserialize(d)
    }
}
