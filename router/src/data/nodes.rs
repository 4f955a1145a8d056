//! gRPC clients of data nodes (one lazily connected HTTP/2 channel per address, or the
//! node's service itself when it runs in this process) and the classification of a
//! node's error answers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prost::Message;
use tonic::codegen::http;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use vecshard_proto::internal::v1::NotOwner;
use vecshard_proto::internal::v1::node_client::NodeClient;

use vecshard_security::Outbound;

use crate::error::{Error, Result};

/// The largest message exchanged with a node (search results with vectors, scan pages).
pub const MAX_NODE_MESSAGE_BYTES: usize = 256 << 20;

/// How a router reaches a node: an HTTP/2 channel, or — for a node in the same process —
/// the node's gRPC service called directly (same messages, same status codes, no socket
/// and no thread hand-off).
pub type NodeTransport = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    TransportError,
>;

/// A node transport's failure (connecting, or the HTTP/2 connection). A concrete type
/// rather than `tower::BoxError`, whose use here trips the compiler's higher-ranked
/// `Send` checks; tonic reads the cause through `source()` to pick the status code.
#[derive(Debug)]
pub struct TransportError(tower::BoxError);

impl TransportError {
    /// Wrap any transport error.
    pub fn new(e: impl Into<tower::BoxError>) -> Self {
        TransportError(e.into())
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// A client of one data node.
pub type NodeConn = NodeClient<NodeTransport>;

/// Clients of data nodes by address.
pub struct NodeClients {
    connect_timeout: Duration,
    outbound: Outbound,
    clients: Mutex<HashMap<String, NodeConn>>,
    /// Nodes in this process, by the address they advertise.
    local: Mutex<HashMap<String, NodeTransport>>,
}

impl NodeClients {
    /// A pool whose connections time out after `connect_timeout`, dialled as `outbound`
    /// says (TLS, credentials).
    pub fn new(connect_timeout: Duration, outbound: Outbound) -> Self {
        NodeClients {
            connect_timeout,
            outbound,
            clients: Mutex::new(HashMap::new()),
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Reach the node that advertises `address` through `service` from now on.
    pub fn attach_local(&self, address: &str, service: NodeTransport) {
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(address.to_string(), service);
        // A channel opened before this must not keep being used.
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(address);
    }

    /// The client of the node at `address`.
    pub fn get(&self, address: &str) -> Result<NodeConn> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(address) {
            return Ok(c.clone());
        }
        let local = self
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(address)
            .cloned();
        let transport = match local {
            Some(service) => service,
            None => {
                let ch = self
                    .outbound
                    .channel(address, self.connect_timeout)
                    .map_err(|e| {
                        Error::unavailable(format!("bad node address {address:?}: {e}"))
                    })?;
                BoxCloneSyncService::new(
                    ch.map_response(|r| r.map(tonic::body::Body::new))
                        .map_err(TransportError::new),
                )
            }
        };
        let c = NodeClient::new(transport)
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
