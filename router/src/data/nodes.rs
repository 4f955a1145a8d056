//! gRPC clients of data nodes (one lazily connected HTTP/2 channel per address) and the
//! classification of a node's error answers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prost::Message;
use tonic::transport::Channel;
use vecshard_proto::internal::v1::NotOwner;
use vecshard_proto::internal::v1::node_client::NodeClient;

use crate::error::{Error, Result};
use crate::raft::network::channel;

/// The largest message exchanged with a node (search results with vectors, scan pages).
pub const MAX_NODE_MESSAGE_BYTES: usize = 256 << 20;

/// Clients of data nodes by address.
pub struct NodeClients {
    connect_timeout: Duration,
    clients: Mutex<HashMap<String, NodeClient<Channel>>>,
}

impl NodeClients {
    /// A pool whose connections time out after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Self {
        NodeClients {
            connect_timeout,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client of the node at `address`.
    pub fn get(&self, address: &str) -> Result<NodeClient<Channel>> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(address) {
            return Ok(c.clone());
        }
        let ch = channel(address, self.connect_timeout)
            .map_err(|e| Error::unavailable(format!("bad node address {address:?}: {e}")))?;
        let c = NodeClient::new(ch)
            .max_decoding_message_size(MAX_NODE_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_NODE_MESSAGE_BYTES);
        clients.insert(address.to_string(), c.clone());
        Ok(c)
    }
}

/// What a failed shard-level call means for the caller.
#[derive(Debug)]
pub enum Failure {
    /// The node does not hold the shard at the caller's epoch: refresh the map and retry.
    NotOwner(String),
    /// The node is unreachable, still opening the shard, or timed out: retry (within the
    /// deadline), possibly elsewhere.
    Transient(String),
    /// An answer that retrying will not change; passed to the client.
    Final(Error),
}

/// Classify a node's error status. `what` names the call for messages.
pub fn classify(status: tonic::Status, what: &str) -> Failure {
    use tonic::Code;
    match status.code() {
        Code::FailedPrecondition => {
            let detail = NotOwner::decode(status.details())
                .map(|n| format!(" (reason {:?}, node epoch {:?})", n.reason(), n.node_epoch))
                .unwrap_or_default();
            Failure::NotOwner(format!("{what}: {}{detail}", status.message()))
        }
        Code::Unavailable
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Unknown
        | Code::Aborted => Failure::Transient(format!("{what}: {}", status.message())),
        _ => Failure::Final(Error::from(status).context(what)),
    }
}
