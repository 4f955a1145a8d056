//! The router's shared state: its Raft handle, its copy of the shard map, the node
//! clients, and the few helpers every operation uses (propose to Raft, find the leader).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{Notify, watch};
use vecshard_model::Clock;

use crate::config::RouterConfig;
use crate::data::nodes::NodeClients;
use crate::error::{Error, ErrorKind, Result};
use crate::heartbeats::Heartbeats;
use crate::partition::Partitioner;
use crate::raft::state_machine::MapView;
use crate::raft::{NodeId, Raft, RouterNode};
use crate::shardmap::{Collection, Command, CommandResult, Rejection};

/// Shared state of one router.
pub struct Core {
    /// Settings.
    pub cfg: RouterConfig,
    /// This router's Raft id.
    pub id: NodeId,
    /// This router's advertised addresses.
    pub me: RouterNode,
    /// The Raft handle.
    pub raft: Raft,
    map: watch::Receiver<Arc<MapView>>,
    /// Heartbeats received here.
    pub heartbeats: Heartbeats,
    /// Read leases granted to nodes while this router led.
    pub leases: crate::heartbeats::Leases,
    /// Clients of data nodes.
    pub nodes: NodeClients,
    partitioners: Mutex<HashMap<u32, Arc<Partitioner>>>,
    /// Wakes the leader's control loop early (after a change it should act on).
    pub control: Notify,
    /// Forwards admin REST calls to the leader.
    pub http: reqwest::Client,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
    /// TLS, cluster authentication and API keys.
    pub security: crate::security::Security,
    /// The cap on concurrent client requests.
    pub limit: crate::api::limit::Limit,
    /// The time the control loop, heartbeats and failure detection run on (the system
    /// clock unless a test passes a manual one to [`crate::start_with_clock`]).
    pub clock: Arc<dyn Clock>,
    /// Backup and restore jobs started here.
    pub backups: crate::backup::Jobs,
}

/// The client for REST calls to peer routers: trusts only the cluster CA under TLS.
fn rest_client(connect: Duration, security: &crate::security::Security) -> reqwest::Client {
    let mut b = reqwest::Client::builder().connect_timeout(connect);
    if let Some(tls) = &security.tls {
        match reqwest::Certificate::from_pem(tls.ca_pem()) {
            Ok(ca) => b = b.tls_certs_only([ca]),
            Err(e) => tracing::error!(error = %e, "the cluster CA is unusable for REST calls"),
        }
    }
    b.build().unwrap_or_default()
}

/// Why a proposal did not go through here.
pub enum ProposeError {
    /// This router is not the leader; the leader, if known.
    NotLeader(Option<(NodeId, RouterNode)>),
    /// Anything else.
    Failed(Error),
}

impl Core {
    /// Assemble the shared state.
    pub fn new(
        cfg: RouterConfig,
        security: crate::security::Security,
        me: RouterNode,
        raft: Raft,
        map: watch::Receiver<Arc<MapView>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let connect = Duration::from_millis(cfg.node_connect_timeout_ms);
        Core {
            id: cfg.id,
            limit: crate::api::limit::Limit::new(cfg.max_concurrent_requests),
            nodes: NodeClients::new(connect, security.outbound.clone()),
            cfg,
            me,
            raft,
            map,
            heartbeats: Heartbeats::new(clock.clone()),
            leases: crate::heartbeats::Leases::new(clock.clone()),
            clock,
            partitioners: Mutex::new(HashMap::new()),
            control: Notify::new(),
            http: rest_client(connect, &security),
            metrics: crate::metrics::Metrics::default(),
            security,
            backups: crate::backup::Jobs::default(),
        }
    }

    /// Run a client operation, recording its outcome and latency.
    pub async fn measured<T>(
        &self,
        op: &'static str,
        f: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let r = f.await;
        self.metrics.observe(op, started, &r);
        r
    }

    /// The current shard map.
    pub fn view(&self) -> Arc<MapView> {
        self.map.borrow().clone()
    }

    /// A receiver that sees every new shard map.
    pub fn watch(&self) -> watch::Receiver<Arc<MapView>> {
        self.map.clone()
    }

    /// A collection from a view, or NOT_FOUND.
    pub fn collection<'a>(view: &'a MapView, name: &str) -> Result<&'a Collection> {
        view.map
            .collections
            .get(name)
            .ok_or_else(|| Error::not_found(format!("collection {name:?} does not exist")))
    }

    /// The partitioner for collections of `shards` shards (built once, then shared).
    pub fn partitioner(&self, shards: u32) -> Arc<Partitioner> {
        let mut p = self.partitioners.lock().unwrap_or_else(|p| p.into_inner());
        p.entry(shards)
            .or_insert_with(|| Arc::new(Partitioner::new(shards)))
            .clone()
    }

    /// The Raft leader as this router knows it.
    pub fn leader(&self) -> Option<(NodeId, RouterNode)> {
        let m = self.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, node))
    }

    /// Whether this router can serve (`/readyz`): it follows a known leader, or it leads
    /// and a quorum acknowledged it within the longest election timeout (a leader cut off
    /// from its majority keeps believing it leads; this is how it stops answering ready).
    pub fn readiness(&self) -> std::result::Result<(), String> {
        let m = self.raft.metrics().borrow().clone();
        let Some(leader) = m.current_leader else {
            return Err("no Raft leader known".into());
        };
        if leader != self.id {
            return Ok(());
        }
        let limit = self.cfg.raft.election_timeout_max_ms;
        match m.millis_since_quorum_ack {
            Some(ms) if ms <= limit => Ok(()),
            Some(ms) => Err(format!(
                "leading without a quorum's acknowledgement for {ms} ms (limit {limit} ms)"
            )),
            None => Err("leading without a quorum's acknowledgement yet".into()),
        }
    }

    /// Whether this router is the Raft leader.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.id)
    }

    /// How long a read lease granted on a heartbeat answer runs: half of
    /// `failure_timeout_ms`, so a node the leader stops hearing from has stopped reading
    /// long before it is judged down (note 014, "Read leases").
    pub fn lease_length(&self) -> Duration {
        Duration::from_millis(self.cfg.failure_timeout_ms / 2)
    }

    /// Commit a command through Raft (this router must be the leader). A rejection by the
    /// state machine comes back as an error.
    pub async fn propose(&self, cmd: Command) -> Result<CommandResult, ProposeError> {
        match self.raft.client_write(cmd).await {
            Ok(resp) => match resp.data {
                CommandResult::Rejected(r) => Err(ProposeError::Failed(rejection(r))),
                ok => Ok(ok),
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ProposeError::NotLeader(f.leader_id.zip(f.leader_node)))
            }
            Err(e) => Err(ProposeError::Failed(Error::unavailable(format!(
                "shard map (Raft) is unavailable: {e}"
            )))),
        }
    }

    /// Run `local` if this router is the leader, else `forward` to the leader (unless
    /// `forwarded`: a request another router forwarded here is not forwarded again); retry
    /// while leadership is unknown or moving, until `deadline` (2 s for a forwarded one).
    pub async fn on_leader<T, L, LF, F, FF>(
        &self,
        deadline: Instant,
        forwarded: bool,
        local: L,
        forward: F,
    ) -> Result<T>
    where
        L: Fn() -> LF,
        LF: Future<Output = Result<T, ProposeError>>,
        F: Fn(RouterNode) -> FF,
        FF: Future<Output = Result<T>>,
    {
        let deadline = if forwarded {
            deadline.min(Instant::now() + Duration::from_secs(2))
        } else {
            deadline
        };
        let mut last = String::from("no Raft leader is known");
        loop {
            match self.leader() {
                Some((id, _)) if id == self.id => match local().await {
                    Ok(v) => return Ok(v),
                    Err(ProposeError::Failed(e)) => return Err(e),
                    Err(ProposeError::NotLeader(_)) => last = "leadership moved".into(),
                },
                Some((id, _)) if forwarded => last = format!("router {id} is the leader"),
                Some((id, node)) => match forward(node.clone()).await {
                    Err(e)
                        if e.message().starts_with(NOT_LEADER)
                            || e.message().starts_with(LEADER_UNREACHABLE) =>
                    {
                        last = format!("leader {id}: {e}");
                    }
                    other => return other,
                },
                None => {}
            }
            if Instant::now() + Duration::from_millis(50) >= deadline {
                return Err(Error::unavailable(format!("{NOT_LEADER}; {last}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// How an error from a call forwarded to the leader starts when that router was not the
/// leader (after all).
pub const NOT_LEADER: &str = "the shard map cannot be changed right now: no Raft leader here";
/// How an error starts when the leader could not be reached.
pub const LEADER_UNREACHABLE: &str = "leader unreachable";

/// A failed forwarded call as an error: transport failures (and answers from a router that
/// turned out not to be the leader) are marked retryable for [`Core::on_leader`].
pub fn forward_error(s: tonic::Status) -> Error {
    if std::error::Error::source(&s).is_some() {
        return Error::unavailable(format!("{LEADER_UNREACHABLE}: {}", s.message()));
    }
    Error::from(s)
}

/// A state-machine rejection as an error.
pub fn rejection(r: Rejection) -> Error {
    match r {
        Rejection::AlreadyExists(m) => Error::new(ErrorKind::AlreadyExists, m),
        Rejection::NotFound(m) => Error::not_found(m),
        Rejection::Conflict(m) => Error::new(ErrorKind::FailedPrecondition, m),
    }
}
