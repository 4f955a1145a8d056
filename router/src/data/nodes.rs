//! gRPC clients of data nodes (one lazily connected HTTP/2 channel per address, or the
//! node's service itself when it runs in this process) and the classification of a
//! node's error answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prost::Message;
use tonic::codegen::http;
use tonic::{IntoRequest, Response, Status};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::internal::v1::NotOwner;
use vecshard_proto::internal::v1::node_client::NodeClient;
use vecshard_proto::internal::v1::node_server::Node;

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

/// A client of one data node: over a transport (an HTTP/2 channel, or a node's tower
/// service in this process), or — for a node in this process attached with
/// [`NodeClients::attach_service`] — the node's service trait called directly: the same
/// messages, answers and status codes, without encoding a message, an HTTP/2 stream or a
/// task hand-off.
#[derive(Clone)]
pub enum NodeConn {
    /// Through a transport.
    Remote(NodeClient<NodeTransport>),
    /// The node's service, called directly.
    Local(LocalNode),
}

/// A node service in this process and its message size limit (as its gRPC server would
/// apply it: larger requests or answers fail with OUT_OF_RANGE).
#[derive(Clone)]
pub struct LocalNode {
    node: Arc<dyn Node>,
    /// The smaller of the node's `max_message_bytes` and [`MAX_NODE_MESSAGE_BYTES`].
    max_bytes: usize,
}

impl LocalNode {
    fn check<M: Message>(&self, what: &str, m: &M) -> Result<(), Status> {
        let len = m.encoded_len();
        if len > self.max_bytes {
            return Err(Status::out_of_range(format!(
                "Error, {what} message length too large: found {len} bytes, the limit is: {} bytes",
                self.max_bytes
            )));
        }
        Ok(())
    }
}

/// [`NodeConn`]'s calls: the names and messages of `vecshard.internal.v1.Node`.
macro_rules! node_calls {
    ($($name:ident($req:ident) -> $resp:ident;)*) => {
        impl NodeConn {
            $(
                #[doc = concat!("`Node.", stringify!($name), "`.")]
                pub async fn $name(
                    &mut self,
                    r: impl IntoRequest<pi::$req>,
                ) -> Result<Response<pi::$resp>, Status> {
                    match self {
                        NodeConn::Remote(c) => c.$name(r).await,
                        NodeConn::Local(l) => {
                            let r = r.into_request();
                            l.check("decoded", r.get_ref())?;
                            let answer = l.node.$name(r).await?;
                            l.check("encoded", answer.get_ref())?;
                            Ok(answer)
                        }
                    }
                }
            )*
        }
    };
}

node_calls! {
    assign_shard(AssignShardRequest) -> AssignShardResponse;
    release_shard(ReleaseShardRequest) -> ReleaseShardResponse;
    upsert(UpsertRequest) -> UpsertResponse;
    delete(DeleteRequest) -> DeleteResponse;
    get(GetRequest) -> GetResponse;
    search(SearchRequest) -> SearchResponse;
    search_batch(SearchBatchRequest) -> SearchBatchResponse;
    count(CountRequest) -> CountResponse;
    scan(ScanRequest) -> ScanResponse;
    node_status(NodeStatusRequest) -> NodeStatusResponse;
    checkpoint_shard(CheckpointShardRequest) -> CheckpointShardResponse;
    fence_replica(FenceReplicaRequest) -> FenceReplicaResponse;
}

/// How a node in this process is reached.
#[derive(Clone)]
enum Attached {
    Transport(NodeTransport),
    Service(LocalNode),
}

/// Clients of data nodes by address.
pub struct NodeClients {
    connect_timeout: Duration,
    outbound: Outbound,
    /// Read on every shard call, written when a node is first called or attached.
    clients: RwLock<HashMap<String, NodeConn>>,
    /// Nodes in this process, by the address they advertise.
    local: Mutex<HashMap<String, Attached>>,
}

impl NodeClients {
    /// A pool whose connections time out after `connect_timeout`, dialled as `outbound`
    /// says (TLS, credentials).
    pub fn new(connect_timeout: Duration, outbound: Outbound) -> Self {
        NodeClients {
            connect_timeout,
            outbound,
            clients: RwLock::new(HashMap::new()),
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Reach the node that advertises `address` through `service` from now on.
    pub fn attach_local(&self, address: &str, service: NodeTransport) {
        self.attach(address, Attached::Transport(service));
    }

    /// Reach the node that advertises `address` by calling its service `node` directly
    /// from now on; messages larger than `max_message_bytes` (the node's limit) fail
    /// as they would over gRPC.
    pub fn attach_service(&self, address: &str, node: Arc<dyn Node>, max_message_bytes: usize) {
        let max_bytes = max_message_bytes.min(MAX_NODE_MESSAGE_BYTES);
        self.attach(address, Attached::Service(LocalNode { node, max_bytes }));
    }

    fn attach(&self, address: &str, how: Attached) {
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(address.to_string(), how);
        // A client made before this must not keep being used.
        self.clients
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(address);
    }

    /// The client of the node at `address`.
    pub fn get(&self, address: &str) -> Result<NodeConn> {
        if let Some(c) = self
            .clients
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(address)
        {
            return Ok(c.clone());
        }
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
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
            Some(Attached::Service(node)) => {
                let c = NodeConn::Local(node);
                clients.insert(address.to_string(), c.clone());
                return Ok(c);
            }
            Some(Attached::Transport(service)) => service,
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
        let c = NodeConn::Remote(
            NodeClient::new(transport)
                .max_decoding_message_size(MAX_NODE_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_NODE_MESSAGE_BYTES),
        );
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
    if crate::error_status::is_transport_failure(&status) {
        // The node did not answer (the connection or stream broke): like unreachable.
        return Failure::Transient(format!("{what}: {}", status.message()));
    }
    match status.code() {
        Code::FailedPrecondition => {
            let detail = NotOwner::decode(status.details())
                .map(|n| format!(" (reason {:?}, node epoch {:?})", n.reason(), n.node_epoch))
                .unwrap_or_default();
            Failure::NotOwner(format!("{what}: {}{detail}", status.message()))
        }
        // A replicated primary could not get a write acknowledged by enough replicas
        // before the deadline: retrying would wait again, so the answer is final.
        Code::Unavailable
            if pi::ReplicationShortfall::decode(status.details()).is_ok_and(|d| d.replicas > 0) =>
        {
            Failure::Final(Error::unavailable(format!("{what}: {}", status.message())))
        }
        Code::Unavailable
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Unknown
        | Code::Aborted => Failure::Transient(format!("{what}: {}", status.message())),
        _ => Failure::Final(Error::from(status).context(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that resets every stream with NO_ERROR, as a node does to a request that
    /// races its shutdown. Returns its address.
    async fn resetting_server() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(tcp).await else {
                        return;
                    };
                    while let Some(Ok((_req, mut respond))) = conn.accept().await {
                        respond.send_reset(h2::Reason::NO_ERROR);
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_reset_stream_is_transient_and_a_node_answer_of_internal_is_final() {
        let addr = resetting_server().await;
        let mut node = NodeClient::connect(format!("http://{addr}")).await.unwrap();
        let status = node
            .upsert(pi::UpsertRequest::default())
            .await
            .expect_err("the stream was reset");
        // tonic calls a NO_ERROR reset Internal; the router must not pass that on as final.
        assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
        assert!(
            matches!(classify(status.clone(), "upsert"), Failure::Transient(m) if m.starts_with("upsert: ")),
            "{status:?}"
        );
        assert_eq!(
            Error::from(status).kind(),
            crate::error::ErrorKind::Unavailable
        );

        // The same code sent by a node is its answer.
        let answered = tonic::Status::internal("engine invariant broken");
        assert!(matches!(
            classify(answered, "upsert"),
            Failure::Final(e) if e.kind() == crate::error::ErrorKind::Internal
        ));
    }
}
