//! The `vecshard.internal.v1.Node` gRPC service: convert, check ownership, dispatch
//! (writes to the shard's actor, reads to the read pool), convert back. Every call is
//! counted and timed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use actix::dev::SendError;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};
use vecshard_engine::{Key, Point, Shard};
use vecshard_model::validate;
use vecshard_proto::fast_unary::{BoxFuture, Unary};
use vecshard_proto::internal::v1 as pb;
use vecshard_proto::internal::v1::node_server::Node;

use crate::config::NodeConfig;
use crate::conversions::{
    Target, assignment_from_proto, hit_to_proto, key_from_proto, key_to_proto, keys_from_proto,
    point_to_proto, points_from_proto, search_from_proto, status_to_proto, storage_from_proto,
    target_from_proto,
};
use crate::error::{NodeError, NotOwnerReason};
use crate::error_status::outcome_label;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::placement::ShardId;
use crate::reads::ReadPool;
use crate::registry::{Access, Registry, Slot, StateName};
use crate::shard_actor::{Write, WriteOp};

/// Searches without a filter whose width (`ef`, and `k`) is at most this run on the
/// gRPC worker that received them instead of the read pool: they take tens to hundreds
/// of microseconds, less than the pool's two thread hand-offs add. Exact, filtered and
/// wider searches, scans and large gets use the pool.
const LIGHT_SEARCH_WIDTH: usize = 256;

/// Gets of at most this many keys run on the receiving worker (see
/// [`LIGHT_SEARCH_WIDTH`]).
const LIGHT_GET_KEYS: usize = 64;

/// The header that carries a call's deadline.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Most points in one scan page (larger limits are capped).
pub const MAX_SCAN_PAGE: u32 = 10_000;

/// Everything the service and the node's background tasks share.
#[derive(Debug)]
pub struct NodeState {
    /// Validated configuration.
    pub config: Arc<NodeConfig>,
    /// The shards held.
    pub registry: Arc<Registry>,
    /// Assign and release.
    pub lifecycle: Lifecycle,
    /// The read pool.
    pub reads: Arc<ReadPool>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The gRPC address routers dial.
    pub advertise: String,
    /// Set once shutdown begins: no new assignments.
    pub shutting_down: AtomicBool,
    /// How the node dials routers (TLS, cluster secret).
    pub outbound: vecshard_security::Outbound,
    /// The time the heartbeat timer runs on (the system clock unless a test passes a
    /// manual one to [`crate::start_with_clock`]).
    pub clock: Arc<dyn vecshard_model::Clock>,
}

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct NodeService {
    state: Arc<NodeState>,
}

type Reply<T> = Result<Response<T>, Status>;

/// `Search` served by [`FastUnaryLayer`](vecshard_proto::fast_unary::FastUnaryLayer):
/// the same handler as tonic's route (the router → node hop of every search in a
/// multi-process cluster), without tonic's per-call stack.
#[derive(Debug, Clone)]
pub struct FastSearch(NodeService);

impl FastSearch {
    /// `Search` over the node's state.
    pub fn new(state: Arc<NodeState>) -> Self {
        FastSearch(NodeService::new(state))
    }
}

impl Unary for FastSearch {
    type Req = pb::SearchRequest;
    type Resp = pb::SearchResponse;
    const PATH: &'static str = "/vecshard.internal.v1.Node/Search";

    fn limit(&self) -> (usize, &'static str) {
        (
            self.0.state.config.node.max_message_bytes,
            "node.max_message_bytes",
        )
    }

    fn call(&self, r: Request<pb::SearchRequest>) -> BoxFuture<Reply<pb::SearchResponse>> {
        let svc = self.0.clone();
        Box::pin(async move { svc.search(r).await })
    }
}

impl NodeService {
    /// A service over the node's state.
    pub fn new(state: Arc<NodeState>) -> Self {
        NodeService { state }
    }

    fn observe<T>(&self, id: &ShardId, op: &'static str, r: &Result<T, Status>, started: Instant) {
        self.state
            .metrics
            .observe_request(id, op, outcome_label(r), started.elapsed());
    }

    /// Queue a write on the shard's actor and wait for its outcome. The mailbox bound
    /// is checked here: a full one is "busy", never a longer queue.
    async fn write(
        &self,
        t: &Target,
        timeout: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
        make: impl FnOnce(&Slot) -> Result<WriteOp, NodeError>,
    ) -> Result<(), NodeError> {
        let (slot, _) = self.state.registry.lookup(t, Access::Write)?;
        let deadline = if slot.primary_of_replicas {
            timeout
                .and_then(|v| crate::replica_service::answer_by(v.to_str().ok()?, Instant::now()))
        } else {
            None
        };
        let op = make(&slot)?;
        let addr = slot
            .addr()
            .ok_or_else(|| NodeError::Opening(t.id.clone()))?;
        let cap = self.state.config.node.mailbox_capacity;
        let busy = || {
            NodeError::Busy(format!(
                "busy: shard {} has {cap} writes queued (mailbox full); retry",
                t.id
            ))
        };
        if slot.queued.fetch_add(1, Ordering::AcqRel) >= cap {
            slot.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(busy());
        }
        let (reply, outcome) = oneshot::channel();
        let sent = addr.try_send(Write {
            op,
            caller_epoch: t.epoch,
            deadline,
            reply,
        });
        if let Err(e) = sent {
            slot.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(match e {
                SendError::Full(_) => busy(),
                SendError::Closed(_) => {
                    NodeError::not_owner(slot.ctx(t.epoch), NotOwnerReason::Unassigned)
                }
            });
        }
        // A dropped reply means the actor stopped (the shard was released) first.
        outcome.await.unwrap_or_else(|_| {
            Err(NodeError::not_owner(
                slot.ctx(t.epoch),
                NotOwnerReason::Unassigned,
            ))
        })
    }

    /// Run a read against the engine's snapshot: on the read pool, or on this thread
    /// when `light` says it is cheap (see [`ReadPool::run_inline`]).
    async fn read<T: Send + 'static>(
        &self,
        t: &Target,
        light: impl FnOnce(&Shard) -> bool,
        f: impl FnOnce(&Shard) -> vecshard_engine::Result<T> + Send + 'static,
    ) -> Result<T, NodeError> {
        let (slot, shard) = self.state.registry.lookup(t, Access::Read)?;
        if let Err(e) = slot.check_lease(self.state.clock.now()) {
            // Ask for a heartbeat round now: a router retries shortly.
            self.state.registry.lease_wanted.notify_one();
            self.state.metrics.lease_refused(&t.id);
            return Err(e);
        }
        // A read that may wait on an object store's requests is never run inline: on the
        // runtime's few threads a cold search would hold up heartbeats and every other
        // call, and the node would look dead to the routers.
        let light = !shard.reads_may_wait() && light(&shard);
        let epoch = t.epoch;
        let read = move || {
            f(&shard).map_err(|err| {
                slot.note_engine_error(&err);
                NodeError::Engine {
                    err,
                    ctx: slot.ctx(epoch),
                }
            })
        };
        if light {
            self.state.reads.run_inline(read)
        } else {
            self.state.reads.run(read).await
        }
    }
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn assign_shard(
        &self,
        req: Request<pb::AssignShardRequest>,
    ) -> Reply<pb::AssignShardResponse> {
        if self.state.shutting_down.load(Ordering::Acquire) {
            return Err(NodeError::ShuttingDown.into());
        }
        let started = Instant::now();
        let a = assignment_from_proto(req.into_inner())?;
        let id = a.id.clone();
        let r = self
            .state
            .lifecycle
            .assign(a)
            .await
            .map(|state| {
                let state = match state {
                    StateName::Serving => pb::ShardState::Serving,
                    StateName::Opening => pb::ShardState::Opening,
                    StateName::Fenced => pb::ShardState::Fenced,
                    StateName::Failed => pb::ShardState::Failed,
                    StateName::Closed => pb::ShardState::Closed,
                };
                Response::new(pb::AssignShardResponse {
                    state: state as i32,
                })
            })
            .map_err(Status::from);
        self.observe(&id, "assign", &r, started);
        r
    }

    async fn release_shard(
        &self,
        req: Request<pb::ReleaseShardRequest>,
    ) -> Reply<pb::ReleaseShardResponse> {
        let started = Instant::now();
        let r = req.into_inner();
        vecshard_model::validate::collection_name(&r.collection).map_err(NodeError::from)?;
        let id = ShardId {
            collection: r.collection,
            shard: r.shard,
        };
        let lifecycle = &self.state.lifecycle;
        let released = if r.delete_data && !r.storage.is_empty() {
            match storage_from_proto(&r.storage) {
                Ok(storage) => {
                    lifecycle
                        .delete_dropped(id.clone(), r.epoch, storage, r.incarnation)
                        .await
                }
                Err(e) => Err(e),
            }
        } else {
            lifecycle.release(id.clone(), r.epoch, r.delete_data).await
        };
        let out = released
            .map(|()| Response::new(pb::ReleaseShardResponse {}))
            .map_err(Status::from);
        self.observe(&id, "release", &out, started);
        out
    }

    async fn upsert(&self, req: Request<pb::UpsertRequest>) -> Reply<pb::UpsertResponse> {
        let started = Instant::now();
        let timeout = req.metadata().get(GRPC_TIMEOUT).cloned();
        let r = req.into_inner();
        let t = target_from_proto(r.target)?;
        let points = r.points;
        let out = async {
            validate::batch_len(points.len(), "upsert")?;
            self.write(&t, timeout, |_| {
                let points: Vec<Point> = points_from_proto(points)?;
                Ok(WriteOp::Upsert(points))
            })
            .await
        }
        .await
        .map(|()| Response::new(pb::UpsertResponse {}))
        .map_err(Status::from);
        self.observe(&t.id, "upsert", &out, started);
        out
    }

    async fn delete(&self, req: Request<pb::DeleteRequest>) -> Reply<pb::DeleteResponse> {
        let started = Instant::now();
        let timeout = req.metadata().get(GRPC_TIMEOUT).cloned();
        let r = req.into_inner();
        let t = target_from_proto(r.target)?;
        let keys = r.keys;
        let out = async {
            validate::batch_len(keys.len(), "delete")?;
            let keys = keys_from_proto(keys)?;
            self.write(&t, timeout, |_| Ok(WriteOp::Delete(keys))).await
        }
        .await
        .map(|()| Response::new(pb::DeleteResponse {}))
        .map_err(Status::from);
        self.observe(&t.id, "delete", &out, started);
        out
    }

    async fn get(&self, req: Request<pb::GetRequest>) -> Reply<pb::GetResponse> {
        let started = Instant::now();
        let r = req.into_inner();
        let t = target_from_proto(r.target)?;
        let keys = r.keys;
        let out = async {
            validate::batch_len(keys.len(), "get")?;
            let keys: Vec<Key> = keys_from_proto(keys)?;
            let light = keys.len() <= LIGHT_GET_KEYS;
            self.read(
                &t,
                |_| light,
                move |shard| {
                    let mut found = Vec::new();
                    for k in &keys {
                        found.extend(shard.get(k)?);
                    }
                    Ok(found)
                },
            )
            .await
        }
        .await
        .map(|points| {
            Response::new(pb::GetResponse {
                points: points.into_iter().map(point_to_proto).collect(),
            })
        })
        .map_err(Status::from);
        self.observe(&t.id, "get", &out, started);
        out
    }

    async fn search(&self, req: Request<pb::SearchRequest>) -> Reply<pb::SearchResponse> {
        let started = Instant::now();
        let mut r = req.into_inner();
        let t = target_from_proto(r.target.take())?;
        let out = async {
            // The engine checks the vector (dimension, finite values) with a precise
            // message before it searches.
            let q = search_from_proto(r)?;
            let (plain, k, ef) = (!q.exact && q.filter.is_none(), q.k, q.ef);
            let light = move |shard: &Shard| {
                let ef = ef.unwrap_or(shard.spec().index.ef_search);
                plain && k.max(ef) <= LIGHT_SEARCH_WIDTH
            };
            self.read(&t, light, move |shard| shard.search(&q)).await
        }
        .await
        .map(|hits| {
            Response::new(pb::SearchResponse {
                hits: hits.into_iter().map(hit_to_proto).collect(),
            })
        })
        .map_err(Status::from);
        self.observe(&t.id, "search", &out, started);
        out
    }

    async fn search_batch(
        &self,
        req: Request<pb::SearchBatchRequest>,
    ) -> Reply<pb::SearchBatchResponse> {
        let started = Instant::now();
        let mut r = req.into_inner();
        let t = target_from_proto(r.target.take())?;
        let out = async {
            validate::search_batch_len(r.searches.len())?;
            let queries = r
                .searches
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    search_from_proto(s).map_err(|e| match e {
                        NodeError::InvalidArgument(m) => {
                            NodeError::InvalidArgument(format!("searches[{i}]: {m}"))
                        }
                        other => other,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            // One read for the whole batch: on the pool, as it is rarely light.
            self.read(
                &t,
                |_| false,
                move |shard| queries.iter().map(|q| shard.search(q)).collect(),
            )
            .await
        }
        .await
        .map(|lists: Vec<Vec<vecshard_engine::Hit>>| {
            Response::new(pb::SearchBatchResponse {
                results: lists
                    .into_iter()
                    .map(|hits| pb::SearchResponse {
                        hits: hits.into_iter().map(hit_to_proto).collect(),
                    })
                    .collect(),
            })
        })
        .map_err(Status::from);
        self.observe(&t.id, "search_batch", &out, started);
        out
    }

    async fn count(&self, req: Request<pb::CountRequest>) -> Reply<pb::CountResponse> {
        let started = Instant::now();
        let r = req.into_inner();
        let t = target_from_proto(r.target)?;
        let out = async {
            let filter = r
                .filter
                .as_ref()
                .map(vecshard_model::proto::filter_from_proto)
                .transpose()?;
            let light = filter.is_none();
            self.read(&t, |_| light, move |shard| shard.count(filter.as_ref()))
                .await
        }
        .await
        .map(|count| Response::new(pb::CountResponse { count }))
        .map_err(Status::from);
        self.observe(&t.id, "count", &out, started);
        out
    }

    async fn scan(&self, req: Request<pb::ScanRequest>) -> Reply<pb::ScanResponse> {
        let started = Instant::now();
        let r = req.into_inner();
        let t = target_from_proto(r.target)?;
        let out = async {
            if r.limit == 0 {
                return Err(NodeError::invalid("scan limit must be at least 1"));
            }
            let limit = r.limit.min(MAX_SCAN_PAGE) as usize;
            let after = r
                .start_after
                .map(|k| key_from_proto(Some(&k)).map_err(|e| e.within("start_after")))
                .transpose()?;
            self.read(
                &t,
                |_| false,
                move |shard| shard.scan(after.as_ref(), limit),
            )
            .await
            .map(|points| {
                let next = (points.len() == limit)
                    .then(|| points.last().map(|p| key_to_proto(&p.key)))
                    .flatten();
                (points, next)
            })
        }
        .await
        .map(|(points, next)| {
            Response::new(pb::ScanResponse {
                points: points.into_iter().map(point_to_proto).collect(),
                next_start_after: next,
            })
        })
        .map_err(Status::from);
        self.observe(&t.id, "scan", &out, started);
        out
    }

    async fn checkpoint_shard(
        &self,
        req: Request<pb::CheckpointShardRequest>,
    ) -> Reply<pb::CheckpointShardResponse> {
        let started = Instant::now();
        let r = req.into_inner();
        let t = target_from_proto(r.target)?;
        let out = async {
            let dest = r.destination.trim().to_string();
            if dest.is_empty() {
                return Err(NodeError::invalid("checkpoint destination is empty"));
            }
            let (slot, shard) = self.state.registry.lookup(&t, Access::Write)?;
            let epoch = t.epoch;
            // A long copy: on a blocking thread, not the read pool (searches go on).
            tokio::task::spawn_blocking(move || {
                shard.checkpoint(&dest).map_err(|err| NodeError::Engine {
                    err,
                    ctx: slot.ctx(epoch),
                })
            })
            .await
            .map_err(|e| NodeError::Internal(format!("checkpoint task: {e}")))?
        }
        .await
        .map(|c| {
            tracing::info!(shard = %t.id, location = %c.location, points = c.points, bytes = c.bytes, "checkpoint written");
            Response::new(pb::CheckpointShardResponse {
                location: c.location,
                points: c.points,
                bytes: c.bytes,
                segments: c.segments,
                seq: c.seq,
                manifest_crc32c: c.manifest_crc32c,
                seconds: c.duration.as_secs_f64(),
            })
        })
        .map_err(Status::from);
        self.observe(&t.id, "checkpoint", &out, started);
        out
    }

    async fn fence_replica(
        &self,
        req: Request<pb::FenceReplicaRequest>,
    ) -> Reply<pb::FenceReplicaResponse> {
        let started = Instant::now();
        let t = target_from_proto(req.into_inner().target)?;
        let out = self
            .state
            .lifecycle
            .fence(&t.id, t.epoch)
            .await
            .map(|(last_epoch, last_seq)| {
                Response::new(pb::FenceReplicaResponse {
                    last_epoch,
                    last_seq,
                })
            })
            .map_err(Status::from);
        self.observe(&t.id, "fence", &out, started);
        out
    }

    async fn node_status(
        &self,
        _: Request<pb::NodeStatusRequest>,
    ) -> Reply<pb::NodeStatusResponse> {
        let registry = self.state.registry.clone();
        // Standalone, this answer is where closed shards are reported (once); with
        // routers, heartbeats report them.
        let standalone = self.state.config.cluster.routers.is_empty();
        let statuses = tokio::task::spawn_blocking(move || registry.statuses(standalone))
            .await
            .map_err(|e| Status::internal(format!("status task: {e}")))?;
        Ok(Response::new(pb::NodeStatusResponse {
            node_id: self.state.config.node.id.clone(),
            address: self.state.advertise.clone(),
            shards: statuses.into_iter().map(status_to_proto).collect(),
        }))
    }
}
