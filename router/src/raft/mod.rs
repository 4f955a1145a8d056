//! The Raft group of routers that replicates the shard map (openraft 0.9, storage v2).
//!
//! - [`log_store`]: log entries, vote and committed id in a redb file.
//! - [`state_machine`]: the shard map in memory, snapshots in a file (fsync + rename).
//! - [`network`]: Raft RPCs to peers over the `RouterInternal` gRPC service, payloads
//!   serialized with serde_json.
//!
//! The Raft transport is for trusted cluster peers only: the internal listener must not be
//! reachable by clients.

pub mod log_store;
pub mod network;
pub mod state_machine;

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::shardmap::{Command, CommandResult};

openraft::declare_raft_types!(
    /// Raft type configuration of the shard-map group.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = u64,
        Node = RouterNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A router as a member of the Raft group: its three advertised addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterNode {
    /// Client gRPC API (`vecshard.v1.VecShard`), `host:port`.
    pub grpc: String,
    /// Peer-only gRPC (`RouterInternal`: Raft, node registration and heartbeats).
    pub internal: String,
    /// Client REST/JSON API.
    pub http: String,
}

impl std::fmt::Display for RouterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "grpc={} internal={} http={}",
            self.grpc, self.internal, self.http
        )
    }
}

/// The openraft handle of this router.
pub type Raft = openraft::Raft<TypeConfig>;
/// Raft node ids.
pub type NodeId = u64;
/// Errors from openraft storage.
pub type StorageError = openraft::StorageError<NodeId>;
