//! Starting and stopping a node: listeners, the actor system, the read pool, the gRPC
//! and HTTP servers, the heartbeat task; and the graceful shutdown that undoes them in
//! order (stop accepting, finish in-flight calls, close every engine).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use vecshard_proto::fast_unary::FastUnaryLayer;
use vecshard_proto::internal::v1::node_server::NodeServer;
use vecshard_proto::internal::v1::replica_internal_server::ReplicaInternalServer;
use vecshard_security::{ClusterAuth, Credentials, MembersOnly, Outbound, RouterOnly};

use crate::actor_system::ActorSystem;
use crate::config::{ConfigError, NodeConfig};
use crate::heartbeat;
use crate::http::{self, HttpState};
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::placement::ShardId;
use crate::reads::ReadPool;
use crate::registry::Registry;
use crate::replica_service::ReplicaService;
use crate::service::{FastSearch, NodeService, NodeState};
use crate::shard_actor::Hold;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not bind.
    #[error("cannot listen on {what} address {addr}: {source}")]
    Bind {
        /// `gRPC` or `HTTP`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory cannot be created.
    #[error("data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS settings are unusable.
    #[error("cluster.tls: {0}")]
    Tls(tonic::transport::Error),
    /// The gRPC reflection service could not be built (a bug in the embedded schema).
    #[error("gRPC reflection: {0}")]
    Reflection(tonic_reflection::server::Error),
    /// A thread or pool could not start.
    #[error("cannot start {what}: {source}")]
    Thread {
        /// What.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    state: Arc<NodeState>,
    actors: Arc<ActorSystem>,
    ready: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
    stop_serving: watch::Sender<bool>,
    stop_http: watch::Sender<bool>,
    grpc: JoinHandle<Result<(), tonic::transport::Error>>,
    http: JoinHandle<std::io::Result<()>>,
    heartbeat: JoinHandle<()>,
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

/// The node's gRPC service with its configured message limits.
fn grpc_service(state: &Arc<NodeState>) -> NodeServer<NodeService> {
    let max = state.config.node.max_message_bytes;
    NodeServer::new(NodeService::new(state.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max)
}

fn replica_service(state: &Arc<NodeState>) -> ReplicaInternalServer<ReplicaService> {
    let max = state.config.node.max_message_bytes;
    ReplicaInternalServer::new(ReplicaService::new(state.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max)
}

/// Start a node on the current tokio runtime. Ports may be 0; the handle reports the
/// bound addresses.
pub async fn start(config: NodeConfig) -> Result<NodeHandle, StartError> {
    start_with_clock(config, vecshard_model::clock::system()).await
}

/// Start a node whose heartbeat timer runs on `clock` (tests pass a `ManualClock` and
/// advance it).
pub async fn start_with_clock(
    config: NodeConfig,
    clock: Arc<dyn vecshard_model::Clock>,
) -> Result<NodeHandle, StartError> {
    let config = Arc::new(config.validated()?);
    let (tls, secret) = config.security()?;
    let auth = Arc::new(ClusterAuth::new(tls.is_some(), secret.clone()));
    let outbound = Outbound::new(tls.as_ref(), Credentials::new(secret));
    let data_dir = config.node.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let grpc_listener = bind("gRPC", config.grpc_listen()).await?;
    let http_listener = bind("HTTP", config.http_listen()).await?;
    let local = |l: &TcpListener, what, addr| {
        l.local_addr()
            .map_err(|source| StartError::Bind { what, addr, source })
    };
    let grpc_addr = local(&grpc_listener, "gRPC", config.grpc_listen())?;
    let http_addr = local(&http_listener, "HTTP", config.http_listen())?;
    let advertise = if config.node.advertise_addr.is_empty() {
        grpc_addr.to_string()
    } else {
        config.node.advertise_addr.clone()
    };

    let registry = Arc::new(Registry::default());
    let reads = Arc::new(
        ReadPool::new(config.search_threads(), config.node.read_queue).map_err(|source| {
            StartError::Thread {
                what: "the read pool",
                source,
            }
        })?,
    );
    let metrics = Arc::new(Metrics::new(registry.clone(), reads.clone()));
    let actors = ActorSystem::start().map_err(|source| StartError::Thread {
        what: "the actor system",
        source,
    })?;
    let lifecycle = Lifecycle::new(
        registry.clone(),
        actors.clone(),
        metrics.clone(),
        config.clone(),
        outbound.clone(),
    );
    let state = Arc::new(NodeState {
        config: config.clone(),
        registry,
        lifecycle,
        reads,
        metrics: metrics.clone(),
        advertise,
        shutting_down: AtomicBool::new(false),
        outbound,
        clock,
    });

    let (stop_serving, serving_rx) = watch::channel(false);
    let (stop_http, http_rx) = watch::channel(false);
    // Over the network only routers may call (the in-process `service()` is trusted).
    auth.warn_if_exposed("node.grpc_addr", grpc_addr);
    let auth_for_reflection = auth.clone();
    let replica_service =
        InterceptedService::new(replica_service(&state), MembersOnly(auth.clone()));
    let service = InterceptedService::new(grpc_service(&state), RouterOnly(auth.clone()));
    let incoming = TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
    let mut server = Server::builder();
    if let Some(tls) = &tls {
        server = server
            .tls_config(tls.server(true))
            .map_err(StartError::Tls)?;
    }
    let mut server = server.layer(FastUnaryLayer::new(
        RouterOnly(auth.clone()),
        FastSearch::new(state.clone()),
    ));
    // Health (`grpc.health.v1`) is open, like the HTTP `/healthz`; reflection shows the
    // internal API, so only routers may use it.
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    health_reporter
        .set_serving::<NodeServer<NodeService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(vecshard_proto::internal::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(StartError::Reflection)?;
    let grpc = tokio::spawn(
        server
            .add_service(service)
            .add_service(replica_service)
            .add_service(health)
            .add_service(InterceptedService::new(
                reflection,
                RouterOnly(auth_for_reflection),
            ))
            .serve_with_incoming_shutdown(incoming, signalled(serving_rx.clone())),
    );

    let ready = Arc::new(AtomicBool::new(false));
    let stopping = Arc::new(AtomicBool::new(false));
    let app = http::router(HttpState {
        ready: ready.clone(),
        stopping: stopping.clone(),
        metrics,
    });
    let http = tokio::spawn(async move {
        axum::serve(http_listener, app)
            .with_graceful_shutdown(signalled(http_rx))
            .await
    });
    let heartbeat = tokio::spawn(heartbeat::run(state.clone(), ready.clone(), serving_rx));
    tracing::info!(node = %config.node.id, %grpc_addr, %http_addr, advertise = %state.advertise, "node started");
    Ok(NodeHandle {
        grpc_addr,
        http_addr,
        state,
        actors,
        ready,
        stopping,
        stop_serving,
        stop_http,
        grpc,
        http,
        heartbeat,
    })
}

async fn signalled(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Keeps a shard's actor thread blocked until dropped (a test hook).
#[derive(Debug)]
pub struct WriteHold {
    _release: std::sync::mpsc::Sender<()>,
}

impl NodeHandle {
    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The node's gRPC service itself, for a router in the same process to call without
    /// a socket (the same service, limits and answers as over the network).
    pub fn service(&self) -> NodeServer<NodeService> {
        grpc_service(&self.state)
    }

    /// The node's service as a trait object, for a router in the same process to call
    /// directly (no encoding, no HTTP/2), and the message size limit its gRPC server
    /// applies ([`Self::max_message_bytes`]).
    pub fn direct_service(&self) -> Arc<NodeService> {
        Arc::new(NodeService::new(self.state.clone()))
    }

    /// The largest message the node's gRPC service accepts or sends.
    pub fn max_message_bytes(&self) -> usize {
        self.state.config.node.max_message_bytes
    }

    /// The gRPC address the node gives routers.
    pub fn advertise_addr(&self) -> &str {
        &self.state.advertise
    }

    /// The node's id.
    pub fn node_id(&self) -> &str {
        &self.state.config.node.id
    }

    /// Whether `/readyz` answers ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.stopping.load(Ordering::Acquire)
    }

    /// Test hook: block the actor thread of a serving shard until the returned guard
    /// is dropped. Writes queue behind it (and get "busy" once the mailbox is full);
    /// reads are unaffected. `None` if the shard is not held or has no actor yet.
    #[doc(hidden)]
    pub async fn hold_writes(&self, collection: &str, shard: u32) -> Option<WriteHold> {
        let id = ShardId {
            collection: collection.to_string(),
            shard,
        };
        let slot = self.state.registry.get(&id)?;
        let addr = slot.addr()?.clone();
        let (release, wait) = std::sync::mpsc::channel();
        let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
        addr.do_send(Hold(wait, held_tx));
        held_rx.await.ok()?;
        Some(WriteHold { _release: release })
    }

    /// Graceful shutdown: refuse new calls and finish in-flight ones (bounded by
    /// `node.shutdown_timeout_ms`), close every shard's engine (queued writes first),
    /// then stop the HTTP server and the actor system.
    pub async fn shutdown(self) {
        let bound = Duration::from_millis(self.state.config.node.shutdown_timeout_ms);
        self.stopping.store(true, Ordering::Release);
        self.state.shutting_down.store(true, Ordering::Release);
        let _ = self.stop_serving.send(true);
        let mut grpc = self.grpc;
        match tokio::time::timeout(bound, &mut grpc).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "gRPC server stopped with an error"),
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(
                    ?bound,
                    "in-flight calls did not finish in time; closing shards anyway"
                );
                grpc.abort();
            }
        }
        let _ = self.heartbeat.await;
        self.state.lifecycle.close_all().await;
        let _ = self.stop_http.send(true);
        let _ = self.http.await;
        let actors = self.actors;
        let _ = tokio::task::spawn_blocking(move || actors.stop()).await;
        tracing::info!(node = %self.state.config.node.id, "node stopped");
    }
}
