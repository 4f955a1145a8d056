//! One shard-level call with the router's retry rules:
//!
//! - the target comes from this router's current shard map (owner and epoch; for reads
//!   that allow it, then the shard's read replicas);
//! - "not owner", an unreachable node, or a shard still opening: wait (backoff from 10 ms
//!   up to 500 ms, or until the shard map changes), re-read the map and retry;
//! - a call in flight is abandoned as soon as the shard's assignment changes in the map
//!   (a stopped node must not hold a request until its deadline);
//! - anything else is final; at the deadline the error names the shard and the last
//!   failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use vecshard_proto::internal::v1::ShardTarget;

use super::nodes::{Failure, NodeConn, classify};
use crate::core::Core;
use crate::error::{Error, ErrorKind, Result};
use crate::raft::state_machine::MapView;
use crate::shardmap::{Assignment, placement};

/// Which holders of a shard may serve a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// Only the owner (writes).
    Writer,
    /// The owner; while a replicated shard's primary is not alive (or always, with
    /// `router.follower_reads`), its live in-sync followers (gets, scans).
    Read,
    /// The owner, then read replicas, or a replicated shard's live in-sync followers
    /// while its primary is not alive (searches).
    AnyReplica,
}

/// What to do when the shard's owner is known to be down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenDown {
    /// Wait for failover until the deadline (object-store shards; a local-disk shard
    /// cannot move, so its call fails at once).
    Wait,
    /// Fail at once.
    Fail,
}

struct Replica {
    node: String,
    address: String,
    epoch: u64,
}

enum Unusable {
    /// The collection or shard is gone: final.
    Gone(Error),
    /// The owner is down (and no replica can serve); `moves`: the shard will fail over
    /// (object store), else it waits for its node.
    Down(String, bool),
    /// Not assigned yet, or the owner is unknown.
    Waiting(String),
}

fn assignment<'a>(view: &'a MapView, collection: &str, shard: u32) -> Result<&'a Assignment> {
    let coll = Core::collection(view, collection)?;
    coll.shards
        .get(shard as usize)
        .ok_or_else(|| Error::not_found(format!("collection {collection:?} has no shard {shard}")))
}

fn replicas(
    view: &MapView,
    collection: &str,
    shard: u32,
    serve: Serve,
    follower_reads: bool,
) -> Result<Vec<Replica>, Unusable> {
    let a = assignment(view, collection, shard).map_err(Unusable::Gone)?;
    let replica = |node: &String| {
        view.map.nodes.get(node).map(|n| Replica {
            node: node.clone(),
            address: n.address.clone(),
            epoch: a.epoch,
        })
    };
    let mut out = Vec::new();
    let owner_live = a
        .owner
        .as_ref()
        .is_some_and(|o| placement::is_live(&view.map, o));
    if let Some(owner) = a.owner.as_ref().filter(|_| owner_live) {
        out.extend(replica(owner));
    }
    // A replicated shard whose primary is gone (or any, with `router.follower_reads`):
    // its in-sync followers serve reads, after the primary (what they applied; with
    // `majority` possibly behind the last acknowledged writes —
    // docs/design/014-replication.md, "Reads"). Writes wait for the primary.
    if (!owner_live || follower_reads)
        && serve != Serve::Writer
        && let Some(set) = &a.replicas
    {
        out.extend(
            set.in_sync
                .iter()
                .filter(|n| a.owner.as_ref() != Some(*n) && placement::is_live(&view.map, n))
                .filter_map(replica),
        );
    }
    if serve == Serve::AnyReplica {
        out.extend(
            a.readers
                .iter()
                .filter(|r| placement::is_live(&view.map, r))
                .filter_map(replica),
        );
    }
    if !out.is_empty() {
        return Ok(out);
    }
    match &a.owner {
        None => Err(Unusable::Waiting("the shard has no owner yet".into())),
        Some(o) => match view.map.nodes.get(o).map(|n| n.state) {
            Some(crate::shardmap::Liveness::Down) => {
                let moves =
                    Core::collection(view, collection).is_ok_and(|c| c.spec.is_object_store());
                let m = if moves {
                    format!("its owner node {o:?} is down; the shard is moving")
                } else {
                    format!("its owner node {o:?} is down and the shard is on that node's disk")
                };
                Err(Unusable::Down(m, moves))
            }
            _ => Err(Unusable::Waiting(format!(
                "its owner node {o:?} has not sent a heartbeat yet"
            ))),
        },
    }
}

/// Resolves when the shard's assignment differs from `current` (never if the map stops).
async fn assignment_changed(
    mut rx: watch::Receiver<Arc<MapView>>,
    collection: &str,
    shard: u32,
    current: Option<Assignment>,
) {
    loop {
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
        let now = assignment(&rx.borrow_and_update(), collection, shard)
            .ok()
            .cloned();
        if now != current {
            return;
        }
    }
}

impl Core {
    /// Call shard `shard` of `collection` with `f(client, target, time_left)` under the
    /// retry rules above.
    pub async fn call_shard<T, F, Fut>(
        &self,
        collection: &str,
        shard: u32,
        serve: Serve,
        when_down: WhenDown,
        deadline: Instant,
        f: F,
    ) -> Result<T>
    where
        F: Fn(NodeConn, ShardTarget, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut rx = self.watch();
        let mut backoff = Duration::from_millis(10);
        let mut last: String;
        loop {
            let view = rx.borrow_and_update().clone();
            match replicas(&view, collection, shard, serve, self.cfg.follower_reads) {
                Err(Unusable::Gone(e)) => return Err(e),
                Err(Unusable::Down(m, moves)) if when_down == WhenDown::Fail || !moves => {
                    return Err(Error::unavailable(format!(
                        "shard {shard} of {collection:?}: {m}"
                    )));
                }
                Err(Unusable::Down(m, _) | Unusable::Waiting(m)) => {
                    self.metrics.retry("waiting");
                    last = m;
                }
                Ok(reps) => {
                    let current = assignment(&view, collection, shard).ok().cloned();
                    let attempt = self.attempt(&reps, collection, shard, deadline, &f);
                    tokio::select! {
                        r = attempt => match r {
                            Ok(v) => return Ok(v),
                            Err(Failure::Final(e)) => return Err(e),
                            Err(Failure::NotOwner(m)) => {
                                self.metrics.retry("not_owner");
                                last = m;
                            }
                            Err(Failure::Transient(m)) => {
                                self.metrics.retry("transient");
                                last = m;
                            }
                        },
                        _ = assignment_changed(rx.clone(), collection, shard, current) => {
                            self.metrics.retry("moved");
                            last = "the shard moved while a call was in flight".into();
                            backoff = Duration::from_millis(10);
                        }
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::unavailable(format!(
                    "shard {shard} of {collection:?}: {last}"
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff.min(left)) => {}
                _ = rx.changed() => {}
            }
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }
}

impl Core {
    /// One attempt over a shard's replicas (owner first). Without hedging, replica i is
    /// tried when replica i - 1 has failed; with `hedge_after_ms`, replica i also starts
    /// i × that delay after the first, and the first answer wins.
    async fn attempt<T, F, Fut>(
        &self,
        reps: &[Replica],
        collection: &str,
        shard: u32,
        deadline: Instant,
        f: &F,
    ) -> Result<T, Failure>
    where
        F: Fn(NodeConn, ShardTarget, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let call = |i: usize, rep: &Replica, delay: Duration| {
            let what = format!("node {:?} ({})", rep.node, rep.address);
            let client = self.nodes.get(&rep.address);
            let target = ShardTarget {
                collection: collection.to_string(),
                shard,
                epoch: rep.epoch,
            };
            async move {
                if i > 0 && !delay.is_zero() {
                    tokio::time::sleep(delay * i as u32).await;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Failure::Transient(format!("{what}: no time left")));
                }
                // The deadline is also enforced here: a node in this process is called
                // without the gRPC server that would apply the request's timeout.
                let call = f(client.map_err(Failure::Final)?, target, left);
                match tokio::time::timeout(left, call).await {
                    Ok(Ok(resp)) => Ok(resp.into_inner()),
                    Ok(Err(status)) => Err(classify(status, &what)),
                    Err(_) => Err(Failure::Transient(format!("{what}: timed out"))),
                }
            }
        };
        let hedge = Duration::from_millis(self.cfg.hedge_after_ms);
        if hedge.is_zero() || reps.len() == 1 {
            let mut last = Failure::Transient("no replica to call".into());
            for (i, rep) in reps.iter().enumerate() {
                if i > 0 && Instant::now() >= deadline {
                    break;
                }
                match call(i, rep, Duration::ZERO).await {
                    Ok(v) => return Ok(v),
                    Err(Failure::Final(e)) => return Err(Failure::Final(e)),
                    Err(other) => last = other,
                }
            }
            return Err(last);
        }
        let calls = reps
            .iter()
            .enumerate()
            .map(|(i, rep)| Box::pin(call(i, rep, hedge)));
        futures::future::select_ok(calls).await.map(|(v, _)| v)
    }
}

/// Combine per-shard failures into one error naming the shards. A failure that is not
/// about availability (bad input, data loss, …) wins, since retrying will not help.
pub fn shard_failures(collection: &str, what: &str, mut failed: Vec<(u32, Error)>) -> Error {
    failed.sort_by_key(|(s, _)| *s);
    if let Some((s, e)) = failed.iter().find(|(_, e)| {
        !matches!(
            e.kind(),
            ErrorKind::Unavailable | ErrorKind::DeadlineExceeded
        )
    }) {
        return e
            .clone()
            .context(format!("{what} on shard {s} of {collection:?}"));
    }
    let shards: Vec<String> = failed.iter().map(|(s, _)| s.to_string()).collect();
    let details: Vec<&str> = failed.iter().map(|(_, e)| e.message()).collect();
    Error::unavailable(format!(
        "{what} failed: shards [{}] of {collection:?} did not answer: {}",
        shards.join(", "),
        details.join("; ")
    ))
}
