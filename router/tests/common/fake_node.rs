//! A small in-memory stand-in for a data node, served over real tonic on 127.0.0.1: it
//! keeps epochs and roles like the real node (not-owner answers with `NotOwner` details),
//! fences writers through a shared "object store" map, keeps local shards on its own
//! "disk" at the real node's paths (`<collection>-<incarnation>/shard-<nnnn>`, or
//! `<collection>/<shard>` for incarnation 0), deletes a dropped shard's data by location,
//! searches by brute force, and registers and heartbeats to routers. Tests can pause it
//! (requests hang, no heartbeats, like SIGSTOP) or stop it (like kill -9).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::internal::v1::node_server::{Node, NodeServer};
use vecshard_proto::internal::v1::router_internal_client::RouterInternalClient;
use vecshard_proto::v1 as pb;

/// Shared object storage: shard root → (claimed writer epoch, points).
#[derive(Default, Clone)]
pub struct ObjectStore(Arc<Mutex<HashMap<String, Stored>>>);

#[derive(Default, Clone)]
pub struct Stored {
    pub epoch: u64,
    pub points: BTreeMap<KeyOrd, pb::Point>,
}

impl ObjectStore {
    pub fn points(&self, root_prefix: &str) -> usize {
        let m = self.0.lock().unwrap();
        m.iter()
            .filter(|(k, _)| k.starts_with(root_prefix))
            .map(|(_, s)| s.points.len())
            .sum()
    }
}

/// Keys in the cluster's order: integers before strings.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum KeyOrd {
    Int(u64),
    Str(Vec<u8>),
}

pub fn key_ord(k: &pb::Key) -> KeyOrd {
    match k.kind.as_ref().unwrap() {
        pb::key::Kind::Int(v) => KeyOrd::Int(*v),
        pb::key::Kind::Str(s) => KeyOrd::Str(s.as_bytes().to_vec()),
    }
}

struct Held {
    epoch: u64,
    role: pi::Role,
    state: pi::ShardState,
    storage: String,
    /// The local path (see [`local_location`]) or the object-store URL.
    location: String,
    metric: i32,
}

/// A node's local shards by path.
type Disk = Mutex<BTreeMap<String, BTreeMap<KeyOrd, pb::Point>>>;

struct Inner {
    id: String,
    shards: Mutex<BTreeMap<(String, u32), Held>>,
    disk: Disk,
    store: ObjectStore,
    paused: watch::Sender<bool>,
    /// What arrived: packed vectors (points and queries), float vectors, calls per RPC.
    seen: Mutex<Seen>,
    /// Heartbeats a router has answered.
    beats: AtomicU64,
    /// Assignments and releases received, in order, with when.
    log: Mutex<Vec<(std::time::Instant, String)>>,
    /// When each heartbeat answered with a lease was sent, and the lease's length.
    leases: Mutex<Vec<(std::time::Instant, Duration)>>,
}

/// What a fake node received, for tests of the router's forwarding.
#[derive(Default, Clone, Debug)]
pub struct Seen {
    pub packed_vectors: usize,
    pub float_vectors: usize,
    pub search_calls: usize,
    pub search_batch_calls: usize,
}

/// Where the real node keeps a local shard, relative to its data directory.
pub fn local_location(collection: &str, incarnation: u64, shard: u32) -> String {
    match incarnation {
        0 => format!("{collection}/{shard}"),
        n => format!("{collection}-{n}/shard-{shard:04}"),
    }
}

#[derive(Clone)]
struct Svc(Arc<Inner>);

pub struct FakeNode {
    pub id: String,
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
}

fn not_owner(
    collection: &str,
    shard: u32,
    caller: u64,
    held: Option<&Held>,
    reason: pi::NotOwnerReason,
) -> Status {
    let detail = pi::NotOwner {
        collection: collection.into(),
        shard,
        caller_epoch: caller,
        node_epoch: held.map(|h| h.epoch),
        node_role: held.map(|h| h.role as i32).unwrap_or(0),
        reason: reason as i32,
    };
    Status::with_details(
        tonic::Code::FailedPrecondition,
        format!("not owner: {collection}/{shard}"),
        detail.encode_to_vec().into(),
    )
}

impl Svc {
    async fn wait_unpaused(&self) {
        let mut rx = self.0.paused.subscribe();
        let _ = rx.wait_for(|p| !*p).await;
    }

    /// Check the target; run `f` on the held shard.
    fn with_shard<T>(
        &self,
        t: Option<&pi::ShardTarget>,
        write: bool,
        f: impl FnOnce(&mut Held, &Inner) -> Result<T, Status>,
    ) -> Result<T, Status> {
        let t = t.ok_or_else(|| Status::invalid_argument("no target"))?;
        let mut shards = self.0.shards.lock().unwrap();
        let held = shards.get_mut(&(t.collection.clone(), t.shard));
        let Some(h) = held else {
            return Err(not_owner(
                &t.collection,
                t.shard,
                t.epoch,
                None,
                pi::NotOwnerReason::Unassigned,
            ));
        };
        if h.epoch != t.epoch {
            let reason = if t.epoch < h.epoch {
                pi::NotOwnerReason::StaleCaller
            } else {
                pi::NotOwnerReason::StaleNode
            };
            return Err(not_owner(&t.collection, t.shard, t.epoch, Some(h), reason));
        }
        if write && h.role != pi::Role::Writer {
            return Err(not_owner(
                &t.collection,
                t.shard,
                t.epoch,
                Some(h),
                pi::NotOwnerReason::NotWriter,
            ));
        }
        if h.state == pi::ShardState::Fenced {
            return Err(not_owner(
                &t.collection,
                t.shard,
                t.epoch,
                Some(h),
                pi::NotOwnerReason::Fenced,
            ));
        }
        if h.state != pi::ShardState::Serving {
            return Err(Status::unavailable("opening"));
        }
        f(h, &self.0)
    }
}

/// Apply `f` to the points of a held shard: shared storage (fenced by epoch) or local.
fn points_mut<T>(
    h: &mut Held,
    node: &Inner,
    f: impl FnOnce(&mut BTreeMap<KeyOrd, pb::Point>) -> T,
) -> Result<T, Status> {
    if h.storage == "local" {
        let mut disk = node.disk.lock().unwrap();
        return Ok(f(disk.entry(h.location.clone()).or_default()));
    }
    let mut s = node.store.0.lock().unwrap();
    let stored = s.entry(h.storage.clone()).or_default();
    if stored.epoch > h.epoch && h.role == pi::Role::Writer {
        h.state = pi::ShardState::Fenced;
        return Err(Status::failed_precondition("not owner: fenced in storage"));
    }
    Ok(f(&mut stored.points))
}

fn distance(metric: i32, a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    match pb::Metric::try_from(metric) {
        Ok(pb::Metric::Dot) => -dot,
        Ok(pb::Metric::Cosine) => {
            let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
            let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
            1.0 - dot / (na * nb)
        }
        _ => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
    }
}

fn num(v: &pb::Value) -> Option<f64> {
    match v.kind.as_ref()? {
        pb::value::Kind::IntValue(i) => Some(*i as f64),
        pb::value::Kind::FloatValue(f) => Some(*f),
        _ => None,
    }
}

fn eq(stored: &pb::Value, want: &pb::Value) -> bool {
    match (stored.kind.as_ref(), want.kind.as_ref()) {
        (Some(pb::value::Kind::StringListValue(l)), Some(pb::value::Kind::StringValue(s))) => {
            l.values.contains(s)
        }
        _ => match (num(stored), num(want)) {
            (Some(a), Some(b)) => a == b,
            _ => stored == want,
        },
    }
}

/// A partial filter evaluator: enough for routing tests (and/or/not, eq, ne, in,
/// numeric range, exists).
pub fn matches(f: &pb::Filter, m: &HashMap<String, pb::Value>) -> bool {
    use pb::condition::Op;
    match f.kind.as_ref().unwrap() {
        pb::filter::Kind::And(l) => l.filters.iter().all(|f| matches(f, m)),
        pb::filter::Kind::Or(l) => l.filters.iter().any(|f| matches(f, m)),
        pb::filter::Kind::Not(f) => !matches(f, m),
        pb::filter::Kind::Condition(c) => {
            let v = m.get(&c.field);
            match c.op.as_ref().unwrap() {
                Op::Eq(w) => v.is_some_and(|v| eq(v, w)),
                Op::Ne(w) => v.is_some_and(|v| !eq(v, w)),
                Op::In(l) => v.is_some_and(|v| l.values.iter().any(|w| eq(v, w))),
                Op::Exists(e) => v.is_some() == *e,
                Op::Range(r) => v.and_then(num).is_some_and(|x| {
                    r.gt.as_ref().and_then(num).is_none_or(|b| x > b)
                        && r.gte.as_ref().and_then(num).is_none_or(|b| x >= b)
                        && r.lt.as_ref().and_then(num).is_none_or(|b| x < b)
                        && r.lte.as_ref().and_then(num).is_none_or(|b| x <= b)
                }),
            }
        }
    }
}

#[tonic::async_trait]
impl Node for Svc {
    async fn assign_shard(
        &self,
        r: Request<pi::AssignShardRequest>,
    ) -> Result<Response<pi::AssignShardResponse>, Status> {
        self.wait_unpaused().await;
        let r = r.into_inner();
        let mut shards = self.0.shards.lock().unwrap();
        let key = (r.collection.clone(), r.shard);
        if let Some(h) = shards.get(&key) {
            if r.epoch < h.epoch {
                return Err(not_owner(
                    &r.collection,
                    r.shard,
                    r.epoch,
                    Some(h),
                    pi::NotOwnerReason::StaleCaller,
                ));
            }
            if r.epoch == h.epoch && r.role == h.role as i32 {
                return Ok(Response::new(pi::AssignShardResponse {
                    state: h.state as i32,
                }));
            }
        }
        let role = pi::Role::try_from(r.role).unwrap_or(pi::Role::Unspecified);
        let mut state = pi::ShardState::Serving;
        if r.storage != "local" && role == pi::Role::Writer {
            let mut s = self.0.store.0.lock().unwrap();
            let stored = s.entry(r.storage.clone()).or_default();
            if stored.epoch > r.epoch {
                state = pi::ShardState::Fenced;
            } else {
                stored.epoch = r.epoch;
            }
        }
        let location = if r.storage == "local" {
            local_location(&r.collection, r.incarnation, r.shard)
        } else {
            r.storage.clone()
        };
        self.0.log.lock().unwrap().push((
            std::time::Instant::now(),
            format!("assign {}/{}@{} {role:?}", r.collection, r.shard, r.epoch),
        ));
        shards.insert(
            key,
            Held {
                epoch: r.epoch,
                role,
                state,
                storage: r.storage,
                location,
                metric: r.metric,
            },
        );
        Ok(Response::new(pi::AssignShardResponse {
            state: state as i32,
        }))
    }

    async fn release_shard(
        &self,
        r: Request<pi::ReleaseShardRequest>,
    ) -> Result<Response<pi::ReleaseShardResponse>, Status> {
        self.wait_unpaused().await;
        let r = r.into_inner();
        let mut shards = self.0.shards.lock().unwrap();
        let key = (r.collection.clone(), r.shard);
        if r.delete_data && !r.storage.is_empty() {
            // A dropped shard's data, by location, held or not.
            let location = if r.storage == "local" {
                local_location(&r.collection, r.incarnation, r.shard)
            } else {
                r.storage.clone()
            };
            if let Some(h) = shards.get(&key).filter(|h| h.location == location) {
                if h.epoch > r.epoch {
                    return Err(not_owner(
                        &r.collection,
                        r.shard,
                        r.epoch,
                        Some(h),
                        pi::NotOwnerReason::StaleCaller,
                    ));
                }
                shards.remove(&key);
            }
            if r.storage == "local" {
                self.0.disk.lock().unwrap().remove(&location);
            } else {
                self.0.store.0.lock().unwrap().remove(&location);
            }
            return Ok(Response::new(pi::ReleaseShardResponse {}));
        }
        if let Some(h) = shards.get(&key) {
            if h.epoch > r.epoch {
                return Err(not_owner(
                    &r.collection,
                    r.shard,
                    r.epoch,
                    Some(h),
                    pi::NotOwnerReason::StaleCaller,
                ));
            }
            if r.delete_data && h.role == pi::Role::Writer && h.storage != "local" {
                self.0.store.0.lock().unwrap().remove(&h.storage);
            }
            shards.remove(&key);
        }
        self.0.log.lock().unwrap().push((
            std::time::Instant::now(),
            format!("release {}/{}@{}", r.collection, r.shard, r.epoch),
        ));
        Ok(Response::new(pi::ReleaseShardResponse {}))
    }

    async fn upsert(
        &self,
        r: Request<pi::UpsertRequest>,
    ) -> Result<Response<pi::UpsertResponse>, Status> {
        self.wait_unpaused().await;
        let r = r.into_inner();
        self.note_vectors(r.points.iter().map(|p| !p.vector_f32le.is_empty()));
        let mut points = Vec::with_capacity(r.points.len());
        for mut p in r.points {
            p.vector = vecshard_model::proto::vector_from_proto(
                std::mem::take(&mut p.vector),
                &std::mem::take(&mut p.vector_f32le),
            )
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
            points.push(p);
        }
        self.with_shard(r.target.as_ref(), true, |h, node| {
            points_mut(h, node, |pts| {
                for p in points {
                    pts.insert(key_ord(p.key.as_ref().unwrap()), p);
                }
            })
        })?;
        Ok(Response::new(pi::UpsertResponse {}))
    }

    async fn delete(
        &self,
        r: Request<pi::DeleteRequest>,
    ) -> Result<Response<pi::DeleteResponse>, Status> {
        self.wait_unpaused().await;
        let r = r.into_inner();
        self.with_shard(r.target.as_ref(), true, |h, node| {
            points_mut(h, node, |pts| {
                for k in &r.keys {
                    pts.remove(&key_ord(k));
                }
            })
        })?;
        Ok(Response::new(pi::DeleteResponse {}))
    }

    async fn get(&self, r: Request<pi::GetRequest>) -> Result<Response<pi::GetResponse>, Status> {
        self.wait_unpaused().await;
        let r = r.into_inner();
        let points = self.with_shard(r.target.as_ref(), false, |h, node| {
            points_mut(h, node, |pts| {
                r.keys
                    .iter()
                    .filter_map(|k| pts.get(&key_ord(k)).cloned())
                    .collect()
            })
        })?;
        Ok(Response::new(pi::GetResponse { points }))
    }

    async fn search(
        &self,
        r: Request<pi::SearchRequest>,
    ) -> Result<Response<pi::SearchResponse>, Status> {
        self.wait_unpaused().await;
        let r = r.into_inner();
        self.0.seen.lock().unwrap().search_calls += 1;
        self.note_vectors([!r.vector_f32le.is_empty()].into_iter());
        let hits = self.with_shard(r.target.as_ref(), false, |h, node| search_one(h, node, &r))?;
        Ok(Response::new(pi::SearchResponse { hits }))
    }

    async fn search_batch(
        &self,
        r: Request<pi::SearchBatchRequest>,
    ) -> Result<Response<pi::SearchBatchResponse>, Status> {
        self.wait_unpaused().await;
        let r = r.into_inner();
        self.0.seen.lock().unwrap().search_batch_calls += 1;
        self.note_vectors(r.searches.iter().map(|s| !s.vector_f32le.is_empty()));
        let results = self.with_shard(r.target.as_ref(), false, |h, node| {
            r.searches
                .iter()
                .map(|s| search_one(h, node, s).map(|hits| pi::SearchResponse { hits }))
                .collect()
        })?;
        Ok(Response::new(pi::SearchBatchResponse { results }))
    }

    async fn count(
        &self,
        r: Request<pi::CountRequest>,
    ) -> Result<Response<pi::CountResponse>, Status> {
        self.wait_unpaused().await;
        let r = r.into_inner();
        let count = self.with_shard(r.target.as_ref(), false, |h, node| {
            points_mut(h, node, |pts| {
                pts.values()
                    .filter(|p| r.filter.as_ref().is_none_or(|f| matches(f, &p.metadata)))
                    .count() as u64
            })
        })?;
        Ok(Response::new(pi::CountResponse { count }))
    }

    async fn scan(
        &self,
        r: Request<pi::ScanRequest>,
    ) -> Result<Response<pi::ScanResponse>, Status> {
        self.wait_unpaused().await;
        let r = r.into_inner();
        let after = r.start_after.as_ref().map(key_ord);
        let (points, more) = self.with_shard(r.target.as_ref(), false, |h, node| {
            points_mut(h, node, |pts| {
                let iter = pts
                    .iter()
                    .filter(|(k, _)| after.as_ref().is_none_or(|a| *k > a))
                    .map(|(_, p)| p.clone());
                let mut page: Vec<pb::Point> = iter.take(r.limit as usize + 1).collect();
                let more = page.len() > r.limit as usize;
                page.truncate(r.limit as usize);
                (page, more)
            })
        })?;
        let next = if more {
            points.last().and_then(|p| p.key.clone())
        } else {
            None
        };
        Ok(Response::new(pi::ScanResponse {
            points,
            next_start_after: next,
        }))
    }

    async fn checkpoint_shard(
        &self,
        _: Request<pi::CheckpointShardRequest>,
    ) -> Result<Response<pi::CheckpointShardResponse>, Status> {
        Err(Status::unimplemented(
            "the fake node keeps no data to checkpoint",
        ))
    }

    async fn fence_replica(
        &self,
        _: Request<pi::FenceReplicaRequest>,
    ) -> Result<Response<pi::FenceReplicaResponse>, Status> {
        Err(Status::unimplemented("the fake node keeps no replicas"))
    }

    async fn node_status(
        &self,
        _: Request<pi::NodeStatusRequest>,
    ) -> Result<Response<pi::NodeStatusResponse>, Status> {
        Ok(Response::new(pi::NodeStatusResponse {
            node_id: self.0.id.clone(),
            address: String::new(),
            shards: self.statuses(),
        }))
    }
}

impl Svc {
    fn statuses(&self) -> Vec<pi::ShardStatus> {
        let shards = self.0.shards.lock().unwrap();
        let disk = self.0.disk.lock().unwrap();
        let store = self.0.store.0.lock().unwrap();
        shards
            .iter()
            .map(|((c, n), h)| {
                let fenced = h.role == pi::Role::Writer
                    && h.storage != "local"
                    && store.get(&h.storage).is_some_and(|s| s.epoch > h.epoch);
                let state = if fenced {
                    pi::ShardState::Fenced
                } else {
                    h.state
                };
                let live = if h.storage == "local" {
                    disk.get(&h.location).map_or(0, BTreeMap::len)
                } else {
                    store.get(&h.storage).map(|s| s.points.len()).unwrap_or(0)
                };
                pi::ShardStatus {
                    collection: c.clone(),
                    shard: *n,
                    epoch: h.epoch,
                    role: h.role as i32,
                    state: state as i32,
                    live_points: live as u64,
                    segments: 0,
                    error: String::new(),
                    followers: Vec::new(),
                }
            })
            .collect()
    }
}

impl Svc {
    fn note_vectors(&self, packed: impl Iterator<Item = bool>) {
        let mut seen = self.0.seen.lock().unwrap();
        for p in packed {
            if p {
                seen.packed_vectors += 1;
            } else {
                seen.float_vectors += 1;
            }
        }
    }
}

/// Brute-force search of one held shard.
fn search_one(
    h: &mut Held,
    node: &Inner,
    r: &pi::SearchRequest,
) -> Result<Vec<pi::ShardHit>, Status> {
    let metric = h.metric;
    let q = vecshard_model::proto::vector_from_proto(r.vector.clone(), &r.vector_f32le)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    points_mut(h, node, |pts| {
        let mut hits: Vec<(f32, KeyOrd, pi::ShardHit)> = pts
            .iter()
            .filter(|(_, p)| r.filter.as_ref().is_none_or(|f| matches(f, &p.metadata)))
            .map(|(k, p)| {
                let d = distance(metric, &q, &p.vector);
                let hit = pi::ShardHit {
                    key: p.key.clone(),
                    distance: d,
                    score: if metric == pb::Metric::L2 as i32 {
                        d
                    } else {
                        -d
                    },
                    metadata: if r.with_metadata {
                        p.metadata.clone()
                    } else {
                        HashMap::new()
                    },
                    payload: if r.with_payload {
                        p.payload.clone()
                    } else {
                        Vec::new()
                    },
                    vector: if r.with_vector {
                        p.vector.clone()
                    } else {
                        Vec::new()
                    },
                };
                (d, k.clone(), hit)
            })
            .collect();
        hits.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        hits.truncate(r.k as usize);
        hits.into_iter().map(|h| h.2).collect()
    })
}

impl FakeNode {
    /// Start a node that registers with and heartbeats to `routers` (internal addresses).
    pub async fn start(id: &str, routers: Vec<String>, store: ObjectStore) -> FakeNode {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (paused, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            id: id.to_string(),
            shards: Mutex::new(BTreeMap::new()),
            disk: Mutex::new(BTreeMap::new()),
            store,
            paused,
            seen: Mutex::new(Seen::default()),
            beats: AtomicU64::new(0),
            log: Mutex::default(),
            leases: Mutex::default(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let svc = Svc(inner.clone());
        let mut rx = stop_rx.clone();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(NodeServer::new(svc.clone()))
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                    async move {
                        let _ = rx.wait_for(|s| *s).await;
                    },
                ),
        );
        tokio::spawn(heartbeat_loop(
            svc,
            id.to_string(),
            addr.to_string(),
            routers,
            stop_rx,
        ));
        FakeNode {
            id: id.to_string(),
            addr,
            inner,
            stop,
        }
    }

    /// Like SIGSTOP: requests hang and heartbeats stop until [`FakeNode::resume`].
    pub fn pause(&self) {
        self.inner.paused.send_replace(true);
    }

    /// Like SIGCONT.
    pub fn resume(&self) {
        self.inner.paused.send_replace(false);
    }

    /// Like kill -9: the server and heartbeats stop.
    pub fn kill(&self) {
        self.stop.send_replace(true);
        self.pause();
    }

    /// The local shards on this node's "disk": path → points stored.
    pub fn disk(&self) -> BTreeMap<String, usize> {
        let d = self.inner.disk.lock().unwrap();
        d.iter().map(|(p, pts)| (p.clone(), pts.len())).collect()
    }

    /// How many of its heartbeats routers have answered.
    pub fn heartbeats(&self) -> u64 {
        self.inner.beats.load(Ordering::SeqCst)
    }

    /// When the node received an assignment or release whose log line is `line`.
    pub fn logged(&self, line: &str) -> Option<std::time::Instant> {
        let log = self.inner.log.lock().unwrap();
        log.iter().find(|(_, l)| l == line).map(|(t, _)| *t)
    }

    /// (when sent, length) of every heartbeat a router answered with a lease.
    pub fn leases(&self) -> Vec<(std::time::Instant, Duration)> {
        self.inner.leases.lock().unwrap().clone()
    }

    /// What this node has received so far.
    pub fn seen(&self) -> Seen {
        self.inner.seen.lock().unwrap().clone()
    }

    /// (collection, shard, epoch, role) of every shard held.
    pub fn held(&self) -> Vec<(String, u32, u64, i32)> {
        let s = self.inner.shards.lock().unwrap();
        s.iter()
            .map(|((c, n), h)| (c.clone(), *n, h.epoch, h.role as i32))
            .collect()
    }
}

async fn heartbeat_loop(
    svc: Svc,
    id: String,
    addr: String,
    routers: Vec<String>,
    stop: watch::Receiver<bool>,
) {
    let connect = |r: &str| {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{r}"))
            .unwrap()
            .connect_lazy();
        RouterInternalClient::new(ch)
    };
    // Routers by internal address; learned from heartbeat answers like the real node.
    let mut clients: BTreeMap<String, RouterInternalClient<tonic::transport::Channel>> =
        routers.iter().map(|r| (r.clone(), connect(r))).collect();
    let mut registered = false;
    while !*stop.borrow() {
        if !*svc.0.paused.borrow() {
            let mut learned = Vec::new();
            for c in clients.values_mut() {
                if !registered {
                    let req = pi::RegisterNodeRequest {
                        node_id: id.clone(),
                        address: addr.clone(),
                        zone: String::new(),
                    };
                    registered = c.register_node(req).await.is_ok();
                }
                let hb = pi::Heartbeat {
                    node_id: id.clone(),
                    address: addr.clone(),
                    shards: svc.statuses(),
                };
                let sent = std::time::Instant::now();
                match c.heartbeat(hb).await {
                    Ok(r) => {
                        svc.0.beats.fetch_add(1, Ordering::SeqCst);
                        if r.get_ref().lease_ms > 0 {
                            let length = Duration::from_millis(r.get_ref().lease_ms);
                            svc.0.leases.lock().unwrap().push((sent, length));
                        }
                        learned.extend(r.into_inner().routers.into_iter().map(|e| e.address))
                    }
                    Err(s) if s.code() == tonic::Code::NotFound => registered = false,
                    Err(_) => {}
                }
            }
            for r in learned {
                if let std::collections::btree_map::Entry::Vacant(e) = clients.entry(r) {
                    let c = connect(e.key());
                    e.insert(c);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
