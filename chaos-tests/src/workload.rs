//! The clients: each runs its own seeded stream of upserts (new points and overwrites of
//! the same keys with new vectors and metadata), deletes, gets and searches against a
//! random router, and records every operation with its outcome in the history.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use vecshard_proto::v1 as pb;

use crate::ROUTERS;
use crate::history::{Call, History, Hit, Op, Outcome};
use crate::model::{self, Key, Seen};
use crate::routers::{Client, GRACE, OP_DEADLINE, Routers};

/// A collection of the run.
#[derive(Clone, Debug)]
pub struct Collection {
    pub name: String,
    pub shards: u32,
    /// `local` or an `s3://` URL.
    pub storage: String,
    /// Copies of each shard (local storage only; above 1 with `write_ack` majority).
    pub replication_factor: u32,
}

impl Collection {
    /// Whether its shards have replicas (note 014).
    pub fn replicated(&self) -> bool {
        self.replication_factor > 1
    }
}

/// The replicated collection (replication factor 3, `write_ack` majority) whose
/// primary the nemesis kills, isolates, and whose follower copies it wipes.
pub const REPLICATED: &str = "replicas";

/// Keys per collection: few enough that overwrites and deletes hit written keys often.
pub const KEYS: u64 = 300;

/// What the clients share with the run.
pub struct Shared {
    pub history: History,
    pub routers: Routers,
    pub collections: Vec<Collection>,
    /// Number of clients (ids 0..clients).
    pub clients: u64,
    /// Held (read) by every operation; the run takes it (write) for a quiet point.
    pub gate: tokio::sync::RwLock<()>,
    pub stop: AtomicBool,
}

/// Classify a router's error: only refusals that happen before anything is sent are
/// definite; anything else may have applied, in part (one shard of a batch) or later.
pub fn outcome_of(s: &tonic::Status) -> Outcome {
    let what = format!("{:?}: {}", s.code(), s.message());
    match s.code() {
        tonic::Code::InvalidArgument
        | tonic::Code::Unauthenticated
        | tonic::Code::PermissionDenied => Outcome::Failed(what),
        tonic::Code::Ok
        | tonic::Code::Cancelled
        | tonic::Code::Unknown
        | tonic::Code::DeadlineExceeded
        | tonic::Code::NotFound
        | tonic::Code::AlreadyExists
        | tonic::Code::ResourceExhausted
        | tonic::Code::FailedPrecondition
        | tonic::Code::Aborted
        | tonic::Code::OutOfRange
        | tonic::Code::Unimplemented
        | tonic::Code::Internal
        | tonic::Code::Unavailable
        | tonic::Code::DataLoss => Outcome::Unknown(what),
    }
}

/// Call `router` with `f` — or, if it has no address now (stopped, cut off), the next
/// router that has one — and wait for the answer up to the routers' deadline plus grace.
/// Returns the outcome, the answer and the router called.
pub async fn call<T, F, Fut>(
    shared: &Shared,
    router: &'static str,
    f: F,
) -> (Outcome, Option<T>, &'static str)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let first = ROUTERS.iter().position(|r| *r == router).unwrap_or(0);
    let mut unreachable = Vec::new();
    let mut chosen = None;
    for i in 0..ROUTERS.len() {
        let r = ROUTERS[(first + i) % ROUTERS.len()];
        match shared.routers.client(r) {
            Ok(c) => {
                chosen = Some((r, c));
                break;
            }
            Err(e) => unreachable.push(format!("{e:#}")),
        }
    }
    let Some((router, client)) = chosen else {
        // Nothing was sent.
        let why = format!("not sent: {}", unreachable.join("; "));
        return (Outcome::Failed(why), None, router);
    };
    // The request carries no grpc-timeout: tonic would cancel it on the client at that
    // very moment, hiding whether the router answers by its own deadline.
    match tokio::time::timeout(OP_DEADLINE + GRACE, f(client)).await {
        Ok(Ok(r)) => (Outcome::Ok, Some(r.into_inner()), router),
        Ok(Err(s)) => {
            if matches!(
                s.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
            ) {
                shared.routers.forget(router);
            }
            (outcome_of(&s), None, router)
        }
        Err(_) => {
            shared.routers.forget(router);
            let why = format!(
                "no answer within {:?} (the routers' deadline is {OP_DEADLINE:?})",
                OP_DEADLINE + GRACE
            );
            (Outcome::Hung(why), None, router)
        }
    }
}

/// A hit as a point, to check its contents like a read point.
fn seen_hit(h: pb::Hit) -> Result<Hit, String> {
    let p = pb::Point {
        key: h.key,
        vector: h.vector,
        metadata: h.metadata,
        payload: h.payload,
        ..Default::default()
    };
    Ok(Hit {
        seen: Seen::of_point(&p)?,
        score: h.score,
    })
}

/// Decode read points; a point that names no write is recorded as damage of write 0.
fn seen_points(points: &[pb::Point]) -> Vec<Seen> {
    points
        .iter()
        .map(|p| {
            Seen::of_point(p).unwrap_or_else(|e| Seen {
                key: Key::from_pb(p.key.as_ref()).unwrap_or(Key::Str(String::new())),
                w: 0,
                damage: Some(e),
            })
        })
        .collect()
}

/// One client: operations until `stop`, pausing while a quiet point holds the gate.
pub async fn client(shared: Arc<Shared>, id: u64, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(model::mix(seed ^ model::mix(id)));
    let mut seq = 0u64;
    let process = format!("client-{id}");
    while !shared.stop.load(Ordering::Acquire) {
        let _gate = shared.gate.read().await;
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let router = ROUTERS[rng.random_range(0..ROUTERS.len())];
        // Mostly the object-store collection (its shards move under faults), then the
        // replicated local one (its primaries move), then the unreplicated local one.
        let coll = match rng.random_range(0..10) {
            0..=4 => 0,
            5..=7 => 2,
            _ => 1,
        }
        .min(shared.collections.len() - 1);
        let name = shared.collections[coll].name.clone();
        let invoke = shared.history.now();
        let roll: f64 = rng.random();
        let (outcome, call, router) = if roll < 0.45 {
            let keys = pick_keys(&mut rng, 4);
            let writes: Vec<(Key, u64)> = keys
                .into_iter()
                .map(|k| {
                    seq += 1;
                    (k, id << 32 | seq)
                })
                .collect();
            let points = writes.iter().map(|(k, w)| model::point(k, *w)).collect();
            let req = pb::UpsertRequest {
                collection: name,
                points,
            };
            let (o, _, r) = call(&shared, router, |mut c| async move { c.upsert(req).await }).await;
            (o, Call::Upsert { coll, writes }, r)
        } else if roll < 0.60 {
            let keys = pick_keys(&mut rng, 2);
            let req = pb::DeleteRequest {
                collection: name,
                keys: keys.iter().map(Key::to_pb).collect(),
            };
            let (o, _, r) = call(&shared, router, |mut c| async move { c.delete(req).await }).await;
            (o, Call::Delete { coll, keys }, r)
        } else if roll < 0.75 {
            let keys = pick_keys(&mut rng, 5);
            let req = pb::GetRequest {
                collection: name,
                keys: keys.iter().map(Key::to_pb).collect(),
            };
            let (o, answer, r) =
                call(&shared, router, |mut c| async move { c.get(req).await }).await;
            let found = answer.map(|a| seen_points(&a.points)).unwrap_or_default();
            (o, Call::Get { coll, keys, found }, r)
        } else {
            let client_filter = rng
                .random_bool(0.3)
                .then(|| rng.random_range(0..shared.clients));
            search(
                &shared,
                router,
                coll,
                rng.random::<u32>() as u64 | 1 << 62,
                rng.random_range(1..=15),
                rng.random_bool(0.5),
                client_filter,
            )
            .await
        };
        let complete = shared.history.now();
        shared.history.push_op(Op {
            id: shared.history.next_id(),
            process: process.clone(),
            router: router.to_string(),
            invoke_us: invoke,
            complete_us: complete,
            outcome,
            call,
        });
    }
}

/// One search (any process): the outcome, the call with its hits, the router called.
pub async fn search(
    shared: &Shared,
    router: &'static str,
    coll: usize,
    query: u64,
    k: u32,
    exact: bool,
    client_filter: Option<u64>,
) -> (Outcome, Call, &'static str) {
    let filter = client_filter.map(|c| pb::Filter {
        kind: Some(pb::filter::Kind::Condition(pb::Condition {
            field: "client".into(),
            op: Some(pb::condition::Op::Eq(pb::Value {
                kind: Some(pb::value::Kind::IntValue(c as i64)),
            })),
        })),
    });
    let req = pb::SearchRequest {
        collection: shared.collections[coll].name.clone(),
        vector: model::vector(query),
        k,
        filter_spec: filter.map(pb::search_request::FilterSpec::Filter),
        ef: None,
        exact,
        with_metadata: true,
        with_payload: true,
        with_vector: true,
        allow_partial: false,
        timeout_ms: Some(OP_DEADLINE.as_millis() as u32),
        ..Default::default()
    };
    let (mut o, r, router) = call(shared, router, |mut c| async move { c.search(req).await }).await;
    let mut hits = Vec::new();
    let mut coverage = (0, 0);
    if let Some(r) = r {
        coverage = r
            .coverage
            .map_or((0, 0), |c| (c.shards_answered, c.shards_total));
        for h in r.hits {
            match seen_hit(h) {
                Ok(h) => hits.push(h),
                Err(e) => o = Outcome::Unknown(format!("undecodable hit: {e}")),
            }
        }
    }
    let call = Call::Search {
        coll,
        query,
        k,
        exact,
        client_filter,
        hits,
        coverage,
    };
    (o, call, router)
}

/// 1..=max distinct keys: mostly integers, some strings.
fn pick_keys(rng: &mut SmallRng, max: usize) -> Vec<Key> {
    let n = rng.random_range(1..=max);
    let mut keys = Vec::with_capacity(n);
    while keys.len() < n {
        let k = if rng.random_bool(0.8) {
            Key::Int(rng.random_range(0..KEYS))
        } else {
            Key::Str(format!("k{}", rng.random_range(0..KEYS / 4)))
        };
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

/// Every point of collection `coll` through `router`, page by page, as one operation of
/// the checker (recorded in the history).
pub async fn scan(shared: &Shared, router: &'static str, coll: usize) -> Op {
    let invoke = shared.history.now();
    let mut found = Vec::new();
    let mut cursor = String::new();
    let outcome = loop {
        let req = pb::ScanRequest {
            collection: shared.collections[coll].name.clone(),
            cursor: cursor.clone(),
            limit: 500,
        };
        let (o, r, _) = call(shared, router, |mut c| async move { c.scan(req).await }).await;
        let Some(page) = r else { break o };
        found.extend(seen_points(&page.points));
        if page.next_cursor.is_empty() {
            break Outcome::Ok;
        }
        cursor = page.next_cursor;
    };
    let op = Op {
        id: shared.history.next_id(),
        process: "checker".into(),
        router: router.to_string(),
        invoke_us: invoke,
        complete_us: shared.history.now(),
        outcome,
        call: Call::Scan { coll, found },
    };
    shared.history.push_op(op.clone());
    op
}
