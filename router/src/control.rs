//! The leader's control loop. Every `control_interval_ms` (or when woken), the Raft leader:
//!
//! 1. turns heartbeats into liveness: a node heard from within `failure_timeout_ms`
//!    becomes `Alive`; an `Alive` node silent longer becomes `Down` (a new leader counts
//!    silence from when it took over, so it never judges on heartbeats it could not see);
//! 2. fails over: object-store shards owned by a node that is not alive move to a live
//!    node (a live read replica first) with epoch + 1, once the read lease the owner may
//!    hold ran out (`heartbeats::Leases`); local-disk shards wait;
//! 3. replaces shards whose owner reports them FENCED or FAILED at the current epoch
//!    (object-store: epoch + 1 on the least-loaded live node);
//! 4. keeps `read_replicas` readers per object-store shard;
//! 5. rebalances one object-store shard at a time onto under-loaded nodes, only while every
//!    shard is serving;
//! 6. reconciles nodes with the map: `AssignShard` for an assignment a node does not
//!    report (a new writer only once the writer it replaces released the shard or its
//!    read lease ran out), `ReleaseShard` for a shard a node holds but no longer should
//!    (repeated at most every few seconds until the node's heartbeat reflects it);
//! 7. promotes a replica of a replicated local-disk shard whose primary is down (once its
//!    read lease ran out)
//!    (`docs/design/014-replication.md`, "Promotion"): fences every live replica at
//!    epoch + 1 (`FenceReplica`), collects their positions, and proposes `Promote` once
//!    `shardmap::replication::decide` has enough of them;
//! 8. deletes dropped collections' data: `ReleaseShard` with `delete_data` and the
//!    location on the node `placement::deletions` names (a local shard's owner once it is
//!    alive again), then `DataDeleted` once it answered, until the map's `dropping` is
//!    empty (repeated at most every few seconds while a node fails).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vecshard_proto::internal::v1 as pi;

use crate::core::{Core, ProposeError};
use crate::heartbeats::Seen;
use crate::raft::state_machine::MapView;
use crate::shardmap::replication::{Position, Promotion, decide};
use crate::shardmap::{Assignment, Collection, Command, Liveness, Move, placement};

/// How long the leader waits for a node to reflect an assignment or release before
/// sending it again.
const RESEND_AFTER: Duration = Duration::from_secs(3);
/// Bound on one AssignShard / ReleaseShard call.
const NODE_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// A shard that keeps failing to open is given a new owner at once, then after 1 s, 2 s,
/// 4 s … up to this bound, so a persistent error (bad credentials, a missing bucket)
/// does not churn epochs and storage requests once a second.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Run the control loop until the task is dropped.
pub async fn run(core: Arc<Core>) {
    let mut state = ControlState::default();
    let interval = Duration::from_millis(core.cfg.control_interval_ms);
    loop {
        tokio::select! {
            _ = core.clock.sleep(interval) => {}
            _ = core.control.notified() => {}
        }
        if !core.is_leader() {
            state = ControlState::default();
            continue;
        }
        tick(&core, &mut state).await;
    }
}

/// A dropped shard's copy to delete: (incarnation, shard, the follower's node or `None`
/// for the owner's copy).
type DeletionKey = (u64, u32, Option<String>);

#[derive(Default)]
struct ControlState {
    leader_since: Option<Instant>,
    /// (node, collection, shard, epoch, role or release) → when last sent.
    sent: HashMap<(String, String, u32, u64, i32), Instant>,
    /// (collection, shard) reported broken → (moves so far, earliest next move).
    broken: HashMap<(String, u32), (u32, Instant)>,
    /// (incarnation, shard, follower's node or `None` for the owner's copy) of a dropped
    /// shard → when its deletion was last asked for.
    deleting: HashMap<DeletionKey, Instant>,
    /// Deletions nodes confirmed, to record in the map.
    deleted: Arc<Mutex<Vec<DeletionKey>>>,
    /// (collection, shard, epoch) of a replicated shard whose primary is down → the
    /// fencing round for epoch + 1.
    fencing: HashMap<(String, u32, u64), FenceRound>,
}

/// The answers of replicas fenced for one promotion, and when each was last asked.
#[derive(Default)]
struct FenceRound {
    answers: Arc<Mutex<Vec<Position>>>,
    asked: HashMap<String, Instant>,
}

async fn propose(core: &Core, cmd: Command) -> bool {
    match core.propose(cmd).await {
        Ok(_) => true,
        Err(ProposeError::NotLeader(_)) => false,
        Err(ProposeError::Failed(e)) => {
            tracing::warn!(error = %e, "control: proposal failed");
            false
        }
    }
}

async fn tick(core: &Arc<Core>, state: &mut ControlState) {
    let since = *state.leader_since.get_or_insert_with(|| core.clock.now());
    let seen = core.heartbeats.all();
    if let Some(cmd) = liveness_changes(core, &core.view(), &seen, since) {
        propose(core, cmd).await;
    }
    let view = core.view();
    // A node's shards move only once the read lease it may hold ran out: until then a
    // deposed writer could still answer a router whose map is behind.
    let mut moves: Vec<Move> = placement::failover_moves(&view.map)
        .into_iter()
        .filter(|m| {
            !core
                .leases
                .held_by_other(&m.collection, m.shard, Some(&m.to))
        })
        .collect();
    moves.extend(broken_shard_moves(
        &view,
        &seen,
        &mut state.broken,
        core.clock.now(),
    ));
    if !moves.is_empty() {
        tracing::info!(?moves, "control: moving shards");
        propose(core, Command::Move { moves }).await;
    }
    promote(core, &core.view(), &seen, state).await;
    let view = core.view();
    for c in placement::reader_changes(&view.map, core.cfg.read_replicas as usize) {
        propose(
            core,
            Command::SetReaders {
                collection: c.collection,
                shard: c.shard,
                epoch: c.epoch,
                readers: c.readers,
            },
        )
        .await;
    }
    let view = core.view();
    if all_serving(&view, &seen)
        && let Some(m) = placement::rebalance_move(&view.map)
    {
        tracing::info!(?m, "control: rebalancing");
        propose(core, Command::Move { moves: vec![m] }).await;
    }
    // Leases the previous leader granted are unknown here: for a lease's length after
    // taking over, a shard some other node reports holding as writer gets no new writer.
    let taking_over = core.clock.since(since) < core.lease_length();
    reconcile(core, &core.view(), &seen, state, taking_over);
    let confirmed = std::mem::take(&mut *state.deleted.lock().unwrap_or_else(|p| p.into_inner()));
    for (incarnation, shard, follower) in confirmed {
        let command = match follower {
            None => Command::DataDeleted { incarnation, shard },
            Some(node) => Command::FollowerDataDeleted {
                incarnation,
                shard,
                node,
            },
        };
        propose(core, command).await;
    }
    delete_dropped(core, &core.view(), state);
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Replicated shards whose primary is down, or alive but reporting its copy failed at the
/// current epoch (a wiped primary refuses to open, note 014): fence the other live
/// replicas at epoch + 1 (asking again every few seconds those that have not answered),
/// and propose `Promote` once the answers decide it. A failed primary is not asked: its
/// copy is not open, so it acknowledges nothing; after the promotion it is a follower and
/// catches up like any other.
async fn promote(
    core: &Core,
    view: &MapView,
    seen: &HashMap<String, Seen>,
    state: &mut ControlState,
) {
    let now = core.clock.now();
    let mut live_rounds = Vec::new();
    for (name, c) in &view.map.collections {
        let Some(replication) = c.replication else {
            continue;
        };
        for (n, a) in c.shards.iter().enumerate() {
            let (Some(owner), Some(set)) = (&a.owner, &a.replicas) else {
                continue;
            };
            let down = view.map.nodes.get(owner).map(|x| x.state) == Some(Liveness::Down);
            if !down && !primary_failed(seen, owner, name, n as u32, a.epoch) {
                continue;
            }
            if down && core.leases.held_by_other(name, n as u32, None) {
                continue;
            }
            let key = (name.clone(), n as u32, a.epoch);
            live_rounds.push(key.clone());
            let round = state.fencing.entry(key).or_default();
            let answered: Vec<String> = round
                .answers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|p| p.node.clone())
                .collect();
            for r in set.replicas.iter().filter(|r| *r != owner) {
                let recently = round
                    .asked
                    .get(r)
                    .is_some_and(|t| now.duration_since(*t) < RESEND_AFTER);
                if answered.contains(r) || recently || !placement::is_live(&view.map, r) {
                    continue;
                }
                round.asked.insert(r.clone(), now);
                spawn_fence(core, view, name, n as u32, a.epoch + 1, r, &round.answers);
            }
            let answers = round
                .answers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Promotion::Promote {
                primary,
                start_seq,
                in_sync,
            } = decide(set, replication, &answers)
            {
                tracing::warn!(collection = %name, shard = n, epoch = a.epoch, lost = %owner,
                    %primary, start_seq, ?in_sync, ?answers, "control: promoting a replica");
                propose(
                    core,
                    Command::Promote {
                        collection: name.clone(),
                        shard: n as u32,
                        from_epoch: a.epoch,
                        from_in_sync: set.in_sync.clone(),
                        primary,
                        start_seq,
                        in_sync,
                    },
                )
                .await;
            }
        }
    }
    state.fencing.retain(|k, _| live_rounds.contains(k));
}

/// Whether `owner` reports its primary copy of shard `n` failed at `epoch`.
fn primary_failed(
    seen: &HashMap<String, Seen>,
    owner: &str,
    collection: &str,
    n: u32,
    epoch: u64,
) -> bool {
    seen.get(owner)
        .and_then(|s| s.shard(collection, n))
        .is_some_and(|s| {
            s.epoch == epoch
                && s.role == pi::Role::Writer as i32
                && s.state == pi::ShardState::Failed as i32
        })
}

fn spawn_fence(
    core: &Core,
    view: &MapView,
    collection: &str,
    shard: u32,
    epoch: u64,
    node: &str,
    answers: &Arc<Mutex<Vec<Position>>>,
) {
    let Some(address) = view.map.nodes.get(node).map(|n| n.address.clone()) else {
        return;
    };
    let Ok(mut client) = core.nodes.get(&address) else {
        return;
    };
    let mut req = tonic::Request::new(pi::FenceReplicaRequest {
        target: Some(pi::ShardTarget {
            collection: collection.to_string(),
            shard,
            epoch,
        }),
    });
    req.set_timeout(NODE_CALL_TIMEOUT);
    let (answers, node) = (answers.clone(), node.to_string());
    let what = format!("fence {collection}/{shard} at epoch {epoch} on {node}");
    tokio::spawn(async move {
        match client.fence_replica(req).await {
            Ok(r) => {
                let r = r.into_inner();
                tracing::info!(
                    last_epoch = r.last_epoch,
                    last_seq = r.last_seq,
                    "control: {what}"
                );
                answers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Position {
                        node,
                        last_epoch: r.last_epoch,
                        last_seq: r.last_seq,
                    });
            }
            Err(e) => tracing::warn!(error = %e, "control: {what} failed"),
        }
    });
}

/// Liveness transitions (and address changes, as re-registrations) to commit.
fn liveness_changes(
    core: &Core,
    view: &MapView,
    seen: &HashMap<String, Seen>,
    since: Instant,
) -> Option<Command> {
    let timeout = Duration::from_millis(core.cfg.failure_timeout_ms);
    let clock = core.clock.as_ref();
    let mut changes = Vec::new();
    for n in view.map.nodes.values() {
        let last = seen.get(&n.id).map(|s| s.at);
        let silent = clock.since(last.unwrap_or(since).max(since));
        let fresh = last.is_some_and(|t| clock.since(t) < timeout);
        match n.state {
            Liveness::Alive if silent >= timeout && !fresh => {
                changes.push((n.id.clone(), Liveness::Down))
            }
            Liveness::Joining | Liveness::Down if fresh => {
                changes.push((n.id.clone(), Liveness::Alive))
            }
            _ => {}
        }
    }
    if !changes.is_empty() {
        tracing::info!(?changes, "control: node liveness");
        return Some(Command::SetLiveness {
            changes,
            at_ms: unix_ms(),
        });
    }
    view.map.nodes.values().find_map(|n| {
        let s = seen.get(&n.id)?;
        (s.address != n.address && !s.address.is_empty()).then(|| Command::RegisterNode {
            id: n.id.clone(),
            address: s.address.clone(),
            zone: n.zone.clone(),
        })
    })
}

/// Object-store shards whose owner reports them fenced or failed at the current epoch get
/// a new epoch (on the least-loaded live node other than the owner, or the owner itself),
/// with a growing pause between repeated moves of the same shard.
fn broken_shard_moves(
    view: &MapView,
    seen: &HashMap<String, Seen>,
    backoff: &mut HashMap<(String, u32), (u32, Instant)>,
    now: Instant,
) -> Vec<Move> {
    let mut moves = Vec::new();
    backoff.retain(|(name, _), _| view.map.collections.contains_key(name));
    for (name, c) in &view.map.collections {
        if !c.spec.is_object_store() {
            continue;
        }
        for (n, a) in c.shards.iter().enumerate() {
            let Some(owner) = &a.owner else { continue };
            let Some(s) = seen.get(owner).and_then(|s| s.shard(name, n as u32)) else {
                continue;
            };
            let key = (name.clone(), n as u32);
            let state = pi::ShardState::try_from(s.state);
            if s.epoch == a.epoch && state == Ok(pi::ShardState::Serving) {
                backoff.remove(&key);
            }
            let broken = matches!(state, Ok(pi::ShardState::Fenced | pi::ShardState::Failed));
            if s.epoch == a.epoch && s.role == pi::Role::Writer as i32 && broken {
                let (tries, next) = backoff.get(&key).copied().unwrap_or((0, now));
                if now < next {
                    continue;
                }
                let pause = Duration::from_secs(1 << tries.min(5)).min(MAX_RETRY_AFTER);
                backoff.insert(key, (tries + 1, now + pause));
                let to = placement::live_nodes(&view.map)
                    .find(|x| *x != owner)
                    .unwrap_or(owner)
                    .to_string();
                tracing::warn!(collection = %name, shard = n, state = s.state, error = %s.error, "control: owner reports the shard broken; new epoch");
                moves.push(Move {
                    collection: name.clone(),
                    shard: n as u32,
                    from_epoch: a.epoch,
                    to,
                });
            }
        }
    }
    moves
}

/// Whether every object-store shard's owner reports it serving at the current epoch.
fn all_serving(view: &MapView, seen: &HashMap<String, Seen>) -> bool {
    let movable = view
        .map
        .collections
        .iter()
        .filter(|(_, c)| c.spec.is_object_store());
    movable.into_iter().all(|(name, c)| {
        c.shards.iter().enumerate().all(|(n, a)| {
            a.owner
                .as_ref()
                .and_then(|o| seen.get(o))
                .and_then(|s| s.shard(name, n as u32))
                .is_some_and(|s| s.epoch == a.epoch && s.state == pi::ShardState::Serving as i32)
        })
    })
}

/// One desired holding of a shard by a node.
struct Want<'a> {
    coll: &'a Collection,
    shard: u32,
    epoch: u64,
    role: pi::Role,
    /// A replicated shard's replicas, with their addresses.
    replication: Option<pi::ReplicaSet>,
}

/// The replica set a replicated shard's holders are assigned with: every replica (the
/// primary first) with its address and whether it is in sync, and the rule.
fn replica_set(view: &MapView, coll: &Collection, a: &Assignment) -> Option<pi::ReplicaSet> {
    let (set, r) = (a.replicas.as_ref()?, coll.replication?);
    let mut ids: Vec<&String> = a.owner.iter().collect();
    ids.extend(set.replicas.iter().filter(|n| Some(*n) != a.owner.as_ref()));
    let replicas = ids
        .into_iter()
        .map(|id| pi::ReplicaPeer {
            node_id: id.clone(),
            address: view
                .map
                .nodes
                .get(id)
                .map(|n| n.address.clone())
                .unwrap_or_default(),
            in_sync: set.in_sync.contains(id),
        })
        .collect();
    Some(pi::ReplicaSet {
        replicas,
        write_ack: r.write_ack.as_str().to_string(),
        epoch_starts: set
            .epoch_starts
            .iter()
            .map(|(epoch, start_seq)| pi::EpochStart {
                epoch: *epoch,
                start_seq: *start_seq,
            })
            .collect(),
    })
}

/// Send AssignShard / ReleaseShard calls so that live nodes hold what the map says.
fn reconcile(
    core: &Arc<Core>,
    view: &MapView,
    seen: &HashMap<String, Seen>,
    state: &mut ControlState,
    taking_over: bool,
) {
    let now = core.clock.now();
    state
        .sent
        .retain(|_, t| now.duration_since(*t) < RESEND_AFTER);
    for node in view
        .map
        .nodes
        .values()
        .filter(|n| n.state == Liveness::Alive)
    {
        let Some(hb) = seen.get(&node.id) else {
            continue;
        };
        let mut wants: Vec<Want> = Vec::new();
        for c in view.map.collections.values() {
            for (n, a) in c.shards.iter().enumerate() {
                let follows = a
                    .replicas
                    .as_ref()
                    .is_some_and(|s| s.replicas.contains(&node.id));
                let role = if a.owner.as_deref() == Some(node.id.as_str()) {
                    pi::Role::Writer
                } else if a.readers.contains(&node.id) {
                    pi::Role::Reader
                } else if follows {
                    pi::Role::Follower
                } else {
                    continue;
                };
                wants.push(Want {
                    coll: c,
                    shard: n as u32,
                    epoch: a.epoch,
                    role,
                    replication: replica_set(view, c, a),
                });
            }
        }
        for w in &wants {
            let held = hb.shard(&w.coll.spec.name, w.shard);
            let ok = held.is_some_and(|s| {
                s.epoch == w.epoch
                    && s.role == w.role as i32
                    && s.state != pi::ShardState::Closed as i32
            });
            let key = (
                node.id.clone(),
                w.coll.spec.name.clone(),
                w.shard,
                w.epoch,
                w.role as i32,
            );
            if ok || state.sent.contains_key(&key) {
                continue;
            }
            // A new writer waits until the one it replaces cannot read any more: released
            // (below, in this or an earlier tick) or its read lease ran out.
            let name = &w.coll.spec.name;
            if w.role == pi::Role::Writer
                && (core.leases.held_by_other(name, w.shard, Some(&node.id))
                    || (taking_over && writer_elsewhere(seen, name, w.shard, &node.id)))
            {
                continue;
            }
            state.sent.insert(key, now);
            spawn_assign(core, &node.address, w);
        }
        for s in &hb.shards {
            // A held shard the node should hold at another epoch or role is upgraded by
            // its AssignShard, not released.
            let wanted = wants
                .iter()
                .any(|w| w.coll.spec.name == s.collection && w.shard == s.shard);
            let key = (node.id.clone(), s.collection.clone(), s.shard, s.epoch, -1);
            if wanted || s.state == pi::ShardState::Closed as i32 || state.sent.contains_key(&key) {
                continue;
            }
            state.sent.insert(key, now);
            spawn_release(core, &node.id, &node.address, s);
        }
    }
}

fn spawn_assign(core: &Core, address: &str, w: &Want) {
    let Ok(mut client) = core.nodes.get(address) else {
        return;
    };
    let spec = &w.coll.spec;
    let mut req = tonic::Request::new(pi::AssignShardRequest {
        collection: spec.name.clone(),
        shard: w.shard,
        epoch: w.epoch,
        role: w.role as i32,
        storage: w.coll.shard_storage(w.shard),
        dimension: spec.dimension,
        metric: vecshard_model::proto::metric_to_proto(spec.metric) as i32,
        index: Some(vecshard_model::proto::index_to_proto(&spec.index)),
        incarnation: w.coll.path_incarnation(),
        replication: w.replication.clone(),
        restore: w.coll.restore.as_ref().map(|r| pi::RestoreFrom {
            location: crate::backup::shard_location(&r.location, w.shard),
            manifest_crc32c: r
                .manifest_crc32c
                .get(w.shard as usize)
                .copied()
                .unwrap_or(0),
        }),
    });
    req.set_timeout(NODE_CALL_TIMEOUT);
    let what = format!(
        "assign {}/{} epoch {} to {address}",
        spec.name, w.shard, w.epoch
    );
    tokio::spawn(async move {
        match client.assign_shard(req).await {
            Ok(_) => tracing::info!("control: {what}"),
            Err(e) => tracing::warn!(error = %e, "control: {what} failed"),
        }
    });
}

/// Whether a node other than `node` last reported holding the shard as writer (open).
fn writer_elsewhere(
    seen: &HashMap<String, Seen>,
    collection: &str,
    shard: u32,
    node: &str,
) -> bool {
    seen.iter().any(|(id, s)| {
        id != node
            && s.shard(collection, shard).is_some_and(|st| {
                st.role == pi::Role::Writer as i32 && st.state != pi::ShardState::Closed as i32
            })
    })
}

/// Release a shard a node holds but should not; once it answered, its read lease on the
/// shard is over, and the control loop runs again to assign the shard's new writer.
fn spawn_release(core: &Arc<Core>, node: &str, address: &str, s: &pi::ShardStatus) {
    let Ok(mut client) = core.nodes.get(address) else {
        return;
    };
    let mut req = tonic::Request::new(pi::ReleaseShardRequest {
        collection: s.collection.clone(),
        shard: s.shard,
        epoch: s.epoch,
        ..Default::default()
    });
    req.set_timeout(NODE_CALL_TIMEOUT);
    let what = format!(
        "release {}/{} epoch {} on {address}",
        s.collection, s.shard, s.epoch
    );
    let (core, node, collection, shard, epoch) = (
        core.clone(),
        node.to_string(),
        s.collection.clone(),
        s.shard,
        s.epoch,
    );
    tokio::spawn(async move {
        match client.release_shard(req).await {
            Ok(_) => {
                tracing::info!("control: {what}");
                core.leases.released(&node, &collection, shard, epoch);
                core.control.notify_one();
            }
            Err(e) => tracing::warn!(error = %e, "control: {what} failed"),
        }
    });
}

/// Ask nodes to delete dropped shards' data (see `placement::deletions`); a node's answer
/// is recorded in the map by the next tick.
fn delete_dropped(core: &Core, view: &MapView, state: &mut ControlState) {
    let now = core.clock.now();
    state
        .deleting
        .retain(|_, t| now.duration_since(*t) < RESEND_AFTER);
    for d in placement::deletions(&view.map) {
        let key = (d.incarnation, d.shard, d.follower.then(|| d.node.clone()));
        let (Some(dropped), Some(node)) = (
            view.map.dropping.get(&d.incarnation),
            view.map.nodes.get(&d.node),
        ) else {
            continue;
        };
        let c = &dropped.collection;
        let Some(a) = c.shards.get(d.shard as usize) else {
            continue;
        };
        if state.deleting.contains_key(&key) {
            continue;
        }
        let Ok(mut client) = core.nodes.get(&node.address) else {
            continue;
        };
        state.deleting.insert(key.clone(), now);
        let mut req = tonic::Request::new(pi::ReleaseShardRequest {
            collection: c.spec.name.clone(),
            shard: d.shard,
            epoch: a.epoch,
            delete_data: true,
            storage: c.shard_storage(d.shard),
            incarnation: c.path_incarnation(),
        });
        req.set_timeout(NODE_CALL_TIMEOUT);
        let what = format!(
            "delete dropped {}/{} (incarnation {}) on {}",
            c.spec.name, d.shard, d.incarnation, node.id
        );
        let confirmed = state.deleted.clone();
        tokio::spawn(async move {
            match client.release_shard(req).await {
                Ok(_) => {
                    tracing::info!("control: {what}");
                    confirmed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(key);
                }
                Err(e) => tracing::warn!(error = %e, "control: {what} failed; retrying"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shardmap::{CollectionSpec, IndexParams, Metric, ShardMap};
    use vecshard_model::Clock;

    fn view() -> MapView {
        let mut map = ShardMap::default();
        for (i, id) in ["a", "b"].into_iter().enumerate() {
            let address = format!("127.0.0.1:{}", 9000 + i);
            map.apply(
                &Command::RegisterNode {
                    id: id.into(),
                    address,
                    zone: None,
                },
                1 + i as u64,
            );
        }
        let changes = vec![("a".into(), Liveness::Alive), ("b".into(), Liveness::Alive)];
        map.apply(&Command::SetLiveness { changes, at_ms: 5 }, 3);
        let spec = CollectionSpec {
            name: "c".into(),
            dimension: 4,
            metric: Metric::L2,
            shard_count: 1,
            storage: "s3://bucket/prefix".into(),
            index: IndexParams::default(),
        };
        let owners = vec![Some("a".to_string())];
        let layout = crate::shardmap::Layout::Incarnation;
        map.apply(
            &Command::CreateCollection {
                spec,
                owners,
                layout,
            },
            4,
        );
        MapView {
            version: 4,
            map,
            routers: Default::default(),
        }
    }

    fn seen(view: &MapView, state: pi::ShardState) -> HashMap<String, Seen> {
        let a = &view.map.collections["c"].shards[0];
        let status = pi::ShardStatus {
            collection: "c".into(),
            shard: 0,
            epoch: a.epoch,
            role: pi::Role::Writer as i32,
            state: state as i32,
            error: "403 Forbidden".into(),
            ..Default::default()
        };
        let seen = Seen {
            at: Instant::now(),
            address: "127.0.0.1:9000".into(),
            shards: vec![status],
        };
        HashMap::from([(a.owner.clone().unwrap_or_default(), seen)])
    }

    #[test]
    fn a_shard_that_keeps_failing_is_moved_with_growing_pauses() {
        let clock = vecshard_model::ManualClock::new();
        let v = view();
        let failed = seen(&v, pi::ShardState::Failed);
        let mut backoff = HashMap::new();
        let moves = |seen: &HashMap<String, Seen>, backoff: &mut _| {
            broken_shard_moves(&v, seen, backoff, clock.now()).len()
        };
        assert_eq!(moves(&failed, &mut backoff), 1);
        // Still failing: no second move until the 1 s pause has passed.
        clock.advance(Duration::from_millis(999));
        assert_eq!(moves(&failed, &mut backoff), 0);
        clock.advance(Duration::from_millis(1));
        assert_eq!(moves(&failed, &mut backoff), 1);
        // The next pause is 2 s, then 4 s.
        clock.advance(Duration::from_millis(1999));
        assert_eq!(moves(&failed, &mut backoff), 0);
        clock.advance(Duration::from_millis(1));
        assert_eq!(moves(&failed, &mut backoff), 1);
        assert_eq!(backoff[&("c".to_string(), 0)].0, 3);
        clock.advance(Duration::from_secs(4));
        assert_eq!(moves(&failed, &mut backoff), 1);
        // Serving at its epoch clears the history.
        let serving = seen(&v, pi::ShardState::Serving);
        assert_eq!(moves(&serving, &mut backoff), 0);
        assert!(backoff.is_empty());
    }
}
