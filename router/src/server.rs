//! Starting and stopping a router: bind the listeners, open the Raft storage, join or form
//! the Raft group, serve the three interfaces and run the leader's control loop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::codegen::http;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::transport::server::Router;
use tonic::transport::server::TcpIncoming;
use vecshard_proto::fast_unary::FastUnaryLayer;
use vecshard_proto::internal::v1::router_internal_server::RouterInternalServer;
use vecshard_proto::v1::vec_shard_server::VecShardServer;

use crate::api::grpc::{ApiKeys, FastSearch, PublicService};
use crate::api::internal::InternalService;
use crate::api::rest;
use crate::config::RouterConfig;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::raft::log_store::LogStore;
use crate::raft::network::{MAX_RAFT_MESSAGE_BYTES, Network};
use crate::raft::state_machine::StateMachine;
use crate::raft::{NodeId, Raft, RouterNode};
use crate::serving::ServingThreads;
use vecshard_security::TlsFiles;
use vecshard_security::rest_tls::TlsListener;

/// A running router.
pub struct RouterHandle {
    grpc: SocketAddr,
    http: SocketAddr,
    internal: SocketAddr,
    core: Arc<Core>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The threads serving client connections (`router.serving_threads`); dropped (and
    /// so stopped) with the handle.
    _serving: Option<ServingThreads>,
}

impl std::fmt::Debug for RouterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RouterHandle({} grpc={} http={} internal={})",
            self.core.id, self.grpc, self.http, self.internal
        )
    }
}

impl RouterHandle {
    /// The client gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }
    /// The REST address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }
    /// The peer-only internal gRPC address (data nodes register and heartbeat here).
    pub fn internal_addr(&self) -> SocketAddr {
        self.internal
    }
    /// Call the data node that advertises `address` through `service` instead of over
    /// the network: for a node running in this process (`vecshard dev`, or a router and
    /// a node started together), it skips loopback gRPC — the socket round trip and the
    /// thread wake-ups that cost more than a search. Everything else (epochs, "not owner",
    /// errors) is the same, since it is the node's own gRPC service.
    pub fn attach_local_node<S>(&self, address: &str, service: S)
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        use tower::ServiceExt;
        let service = service.map_err(|e| match e {});
        self.core
            .nodes
            .attach_local(address, tower::util::BoxCloneSyncService::new(service));
    }
    /// Call the data node that advertises `address` by calling its service `node`
    /// directly: like [`Self::attach_local_node`], and without encoding messages or an
    /// HTTP/2 stream per call. Messages larger than `max_message_bytes` (the node's
    /// limit) fail with OUT_OF_RANGE, as over gRPC.
    pub fn attach_node_service(
        &self,
        address: &str,
        node: std::sync::Arc<dyn vecshard_proto::internal::v1::node_server::Node>,
        max_message_bytes: usize,
    ) {
        self.core
            .nodes
            .attach_service(address, node, max_message_bytes);
    }
    /// This router's Raft id.
    pub fn id(&self) -> NodeId {
        self.core.id
    }
    /// Whether this router is currently the Raft leader.
    pub fn is_leader(&self) -> bool {
        self.core.is_leader()
    }
    /// The version (last applied Raft index) of this router's shard map.
    pub fn shard_map_version(&self) -> u64 {
        self.core.view().version
    }

    /// Stop serving, stop Raft, and wait for the servers to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.core.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

async fn bind(addr: &str, key: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::invalid(format!("router.{key}: cannot listen on {addr}: {e}")))
}

fn advertise(cfg: &RouterConfig, local: SocketAddr) -> String {
    let host = match &cfg.advertise_host {
        Some(h) => h.clone(),
        None if local.ip().is_unspecified() => "127.0.0.1".into(),
        None => local.ip().to_string(),
    };
    format!("{host}:{}", local.port())
}

fn raft_config(cfg: &RouterConfig) -> Result<openraft::Config> {
    let r = &cfg.raft;
    openraft::Config {
        cluster_name: "vecshard-routers".into(),
        heartbeat_interval: r.heartbeat_ms,
        election_timeout_min: r.election_timeout_min_ms,
        election_timeout_max: r.election_timeout_max_ms,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(r.snapshot_every),
        max_in_snapshot_log_to_keep: r.logs_to_keep,
        snapshot_max_chunk_size: 1 << 20,
        ..Default::default()
    }
    .validate()
    .map_err(|e| Error::invalid(format!("router.raft: {e}")))
}

/// Accepted connections with TCP_NODELAY (small gRPC answers must not wait for Nagle).
fn incoming(l: TcpListener) -> TcpIncoming {
    TcpIncoming::from(l).with_nodelay(Some(true))
}

/// gRPC reports an oversized request as OUT_OF_RANGE; the API promises
/// RESOURCE_EXHAUSTED.
fn oversized_as_resource_exhausted(
    mut r: Response<tonic::body::Body>,
) -> Response<tonic::body::Body> {
    let h = r.headers();
    let too_large = h.get("grpc-status").is_some_and(|s| s == "11")
        && h.get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| m.contains("too%20large") || m.contains("too large"));
    if too_large {
        r.headers_mut()
            .insert("grpc-status", HeaderValue::from_static("8"));
    }
    r
}

/// A gRPC server builder: TLS with this router's certificate when configured, requiring a
/// client certificate of the cluster when `peers_only`.
fn server(tls: Option<&TlsFiles>, peers_only: bool) -> Result<Server> {
    let b = Server::builder().tcp_nodelay(true);
    match tls {
        None => Ok(b),
        Some(t) => b
            .tls_config(t.server(peers_only))
            .map_err(|e| Error::invalid(format!("router TLS settings: {e}"))),
    }
}

/// The gRPC health service (`grpc.health.v1.Health`: the server, `""`, and
/// `vecshard.v1.VecShard` report SERVING) and server reflection over the public API
/// (`grpc.reflection.v1` and `v1alpha`), all open without an API key like `/healthz`.
async fn health_and_reflection<L>(server: Router<L>) -> Result<Router<L>> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    reporter
        .set_serving::<VecShardServer<PublicService>>()
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(vecshard_proto::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let bad = |e: tonic_reflection::server::Error| Error::internal(format!("gRPC reflection: {e}"));
    Ok(server
        .add_service(health)
        .add_service(reflection().build_v1().map_err(bad)?)
        .add_service(reflection().build_v1alpha().map_err(bad)?))
}

/// Start a router.
pub async fn start(cfg: RouterConfig) -> Result<RouterHandle> {
    start_with_clock(cfg, vecshard_model::clock::system()).await
}

/// Start a router whose control loop, heartbeat stamps and failure detection run on
/// `clock` (tests pass a `ManualClock` and advance it; Raft's own timers stay real).
pub async fn start_with_clock(
    cfg: RouterConfig,
    clock: Arc<dyn vecshard_model::Clock>,
) -> Result<RouterHandle> {
    cfg.validate()?;
    let security = crate::security::Security::load(&cfg)?;
    let grpc_l = bind(&cfg.grpc_listen, "grpc_listen").await?;
    let http_l = bind(&cfg.http_listen, "http_listen").await?;
    let internal_l = bind(&cfg.internal_listen, "internal_listen").await?;
    let local = |l: &TcpListener| l.local_addr().map_err(|e| Error::internal(e.to_string()));
    let (grpc, http, internal) = (local(&grpc_l)?, local(&http_l)?, local(&internal_l)?);
    let me = RouterNode {
        grpc: advertise(&cfg, grpc),
        internal: advertise(&cfg, internal),
        http: advertise(&cfg, http),
    };
    let storage_err = |e: std::io::Error| {
        Error::unavailable(format!("router.data_dir {}: {e}", cfg.data_dir.display()))
    };
    let log = LogStore::open(&cfg.data_dir).map_err(storage_err)?;
    let (sm, map_rx) = StateMachine::open(&cfg.data_dir).map_err(storage_err)?;
    let network = Network {
        connect_timeout: Duration::from_millis(cfg.node_connect_timeout_ms),
        outbound: security.outbound.clone(),
    };
    let raft = Raft::new(cfg.id, Arc::new(raft_config(&cfg)?), network, log, sm)
        .await
        .map_err(|e| Error::unavailable(format!("cannot start Raft: {e}")))?;
    security
        .auth
        .warn_if_exposed("router.internal_listen", internal);
    let tls = security.tls.clone();
    let core = Arc::new(Core::new(
        cfg.clone(),
        security,
        me.clone(),
        raft.clone(),
        map_rx,
        clock,
    ));
    let (stop, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut tasks = Vec::new();
    let serving = match cfg.serving_threads {
        0 => None,
        n => Some(ServingThreads::start(n, "vecshard-serve").map_err(|e| {
            Error::internal(format!(
                "router.serving_threads: cannot start {n} threads: {e}"
            ))
        })?),
    };

    let internal_svc = RouterInternalServer::new(InternalService::new(core.clone()))
        .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES);
    let serve_internal = server(tls.as_ref(), true)?
        .add_service(internal_svc)
        .serve_with_incoming_shutdown(incoming(internal_l), stopped());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = serve_internal.await {
            tracing::error!(error = %e, "internal gRPC server stopped");
        }
    }));

    initialize(&cfg, &raft, &me).await?;

    let public_svc = InterceptedService::new(
        VecShardServer::new(PublicService::new(core.clone()))
            .max_decoding_message_size(cfg.max_request_bytes)
            .max_encoding_message_size(usize::MAX),
        ApiKeys(core.clone()),
    );
    let public = server(tls.as_ref(), false)?
        .layer(crate::api::deadline::DeadlineLayer)
        .layer(crate::api::limit::LimitLayer(core.limit.clone()))
        .layer(tower::util::MapResponseLayer::new(
            oversized_as_resource_exhausted,
        ))
        .layer(FastUnaryLayer::new(
            ApiKeys(core.clone()),
            FastSearch::new(core.clone()),
        ))
        .add_service(public_svc);
    let public = health_and_reflection(public).await?;
    let app = rest::router(core.clone());
    match &serving {
        None => {
            let serve_public = public.serve_with_incoming_shutdown(incoming(grpc_l), stopped());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = serve_public.await {
                    tracing::error!(error = %e, "public gRPC server stopped");
                }
            }));
        }
        Some(threads) => {
            let stopped = stopped.clone();
            tasks.push(threads.serve(grpc_l, move |conns| {
                let serve_public = public
                    .clone()
                    .serve_with_incoming_shutdown(conns, stopped());
                async move {
                    if let Err(e) = serve_public.await {
                        tracing::error!(error = %e, "public gRPC server stopped");
                    }
                }
            }));
        }
    }

    match (&tls, &serving) {
        (None, Some(threads)) => {
            let stopped = stopped.clone();
            tasks.push(threads.serve(http_l, move |conns| {
                crate::rest_serve::serve(conns, app.clone(), stopped())
            }));
        }
        // TLS connections are handshaken on this runtime and stay on it.
        (tls, _) => match tls {
            None => tasks.push(tokio::spawn(crate::rest_serve::serve(
                http_l,
                app,
                stopped(),
            ))),
            Some(tls) => {
                let config = tls.rustls_server().map_err(|e| Error::invalid(e.0))?;
                let listener = TlsListener::new(http_l, config)
                    .map_err(|e| Error::invalid(format!("router.http_listen: {e}")))?;
                tasks.push(tokio::spawn(crate::rest_serve::serve(
                    listener,
                    app,
                    stopped(),
                )));
            }
        },
    }

    tasks.push(tokio::spawn(crate::control::run(core.clone())));
    tracing::info!(id = cfg.id, %me, "router started");
    Ok(RouterHandle {
        grpc,
        http,
        internal,
        core,
        stop,
        tasks,
        _serving: serving,
    })
}

/// Form the Raft group on first start: the configured members (or this router alone).
/// A router not among the members waits to be added; a router with Raft state rejoins.
async fn initialize(cfg: &RouterConfig, raft: &Raft, me: &RouterNode) -> Result<()> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| Error::unavailable(format!("Raft: {e}")))?;
    if initialized {
        return Ok(());
    }
    let members: BTreeMap<NodeId, RouterNode> = if cfg.members.is_empty() {
        BTreeMap::from([(cfg.id, me.clone())])
    } else if cfg.members.iter().any(|m| m.id == cfg.id) {
        // Every member must propose the same configuration: use the configured addresses
        // verbatim, this router's included.
        cfg.members
            .iter()
            .map(|m| {
                let node = RouterNode {
                    grpc: m.grpc.clone(),
                    internal: m.internal.clone(),
                    http: m.http.clone(),
                };
                (m.id, node)
            })
            .collect()
    } else {
        tracing::info!(
            id = cfg.id,
            "not an initial member: waiting to be added to the Raft group"
        );
        return Ok(());
    };
    match raft.initialize(members).await {
        Ok(()) => Ok(()),
        Err(openraft::error::RaftError::APIError(
            openraft::error::InitializeError::NotAllowed(_),
        )) => Ok(()),
        Err(e) => Err(Error::unavailable(format!(
            "cannot form the Raft group: {e}"
        ))),
    }
}
