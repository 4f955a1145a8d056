//! The primary side of a replicated shard: after its engine made a write durable, the
//! shard's actor hands the frame to the [`Replicator`], which keeps it in the tail, ships
//! it to every follower in order (one `Replicate` call in flight per follower, over one
//! lazily connected HTTP/2 channel each), and answers the write once the
//! acknowledgement rule holds — or, at the write's deadline, fails it with
//! [`NodeError::Unacknowledged`] naming how many replicas had it.
//!
//! A follower's answer is its durable position; a gap (it answered a position below the
//! frames sent) makes the shipper resend from there. A follower the tail no longer
//! reaches back to, or whose log differs (it is past this primary's log, or holds a deposed
//! primary's writes), gets a checkpoint of the shard ([`send_checkpoint`], note 014's
//! checkpoint catch-up) and then the tail from the checkpoint's position, which the tail
//! keeps meanwhile.
//! With `all`, an in-sync follower that holds back a write for `lag_timeout` is dropped
//! from the in-sync set through the routers (`RouterInternal.ShrinkIsr`, committed in the
//! shard map) and only then stops counting (note 014, "The write path").
//! Every frame in the tail was sequenced by this primary at its current epoch, so only
//! writes of the current epoch are ever acknowledged (note 014, "Decided"); a new epoch
//! is a new replicator, and closing this one fails its waiting writes as "not owner".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot, watch};
use vecshard_model::replication::WriteAck;
use vecshard_proto::internal::v1 as pb;
use vecshard_proto::internal::v1::replica_internal_client::ReplicaInternalClient;
use vecshard_proto::internal::v1::router_internal_client::RouterInternalClient;
use vecshard_security::{AuthChannel, Outbound};

use super::ack::{AckTracker, Count};
use super::checkpoint::send_dir;
use super::observe::{FollowerLag, Seen};
use super::tail::{Missing, Tail};
use crate::error::{NodeError, NotOwnerReason, ShardCtx};
use crate::placement::{Peer, ShardId};

pub use super::observe::Reply;

/// Most bytes of frames in one `Replicate` call (at least one frame is sent).
const MAX_BATCH_BYTES: usize = 4 << 20;
/// How often an idle primary asks an up-to-date follower's position again.
const IDLE_PROBE: Duration = Duration::from_secs(1);
/// Pauses between failed calls to a follower grow from the first to the second.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(20), Duration::from_millis(500));

/// What a primary needs to replicate.
#[derive(Debug, Clone)]
pub struct PrimaryPlan {
    /// The other replicas.
    pub followers: Vec<Peer>,
    /// The replication factor (followers + 1).
    pub factor: u32,
    /// The acknowledgement rule.
    pub write_ack: WriteAck,
    /// How to dial followers (TLS, cluster secret).
    pub outbound: Outbound,
    /// The runtime the shipping tasks run on (not the actor's thread).
    pub runtime: tokio::runtime::Handle,
    /// A write's wait without a deadline of its own, and one follower call's deadline.
    pub ack_timeout: Duration,
    /// The tail's bound in bytes.
    pub tail_bytes: usize,
    /// This node's id (the primary's, as the shard map knows it).
    pub node_id: String,
    /// Router addresses to ask for `ShrinkIsr`.
    pub routers: Vec<String>,
    /// With `all`: how long an in-sync follower may hold back a write before it is
    /// dropped from the in-sync set.
    pub lag_timeout: Duration,
    /// Observes how long each write waited for its acknowledgement, in seconds.
    pub ack_wait: Option<prometheus_client::metrics::histogram::Histogram>,
}

#[derive(Debug, Clone, Copy)]
struct Signal {
    /// One past the tail's last sequence number.
    end: u64,
    closed: bool,
}

struct State {
    tail: Tail,
    acks: AckTracker<Reply>,
    closed: bool,
    /// The last failure talking to each follower, for error messages.
    trouble: BTreeMap<String, String>,
    /// Followers whose removal from the in-sync set is being asked for.
    shrinking: BTreeSet<String>,
    /// Followers being added to the in-sync set (`ExpandIsr` in flight).
    expanding: BTreeSet<String>,
    /// Followers catching up from a checkpoint: the tail keeps every frame from their
    /// position on.
    pinned: BTreeMap<String, u64>,
    /// What each follower's answers showed (lag, catch-up bytes).
    seen: BTreeMap<String, Seen>,
}

impl State {
    /// Keep the tail from `follower`'s position `at` on (`None`: no longer).
    fn pin(&mut self, follower: &str, at: Option<u64>) {
        match at {
            Some(at) => self.pinned.insert(follower.to_string(), at),
            None => self.pinned.remove(follower),
        };
        self.tail.set_floor(self.pinned.values().min().copied());
    }
}

struct Inner {
    id: ShardId,
    epoch: u64,
    write_ack: WriteAck,
    ack_timeout: Duration,
    lag_timeout: Duration,
    node_id: String,
    routers: Vec<String>,
    outbound: Outbound,
    state: Mutex<State>,
    signal: watch::Sender<Signal>,
    deadlines: Notify,
    /// The engine and its location, for checkpoints.
    shard: vecshard_engine::Shard,
    location: String,
    ack_wait: Option<prometheus_client::metrics::histogram::Histogram>,
}

/// A primary's replication; cheap to clone.
#[derive(Clone)]
pub struct Replicator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Replicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicator")
            .field("id", &self.inner.id)
            .field("epoch", &self.inner.epoch)
            .finish()
    }
}

impl Replicator {
    /// Start replicating shard `id` at `epoch`, whose engine's next sequence number is
    /// `next_seq` (everything below is durable here).
    /// `seed`: frames this node applied as a follower, ending right before `next_seq`,
    /// to resend to followers that missed them. `shard` at `location`: the engine, for
    /// checkpoints sent to followers the tail does not serve.
    pub fn start(
        id: ShardId,
        epoch: u64,
        next_seq: u64,
        seed: Option<Tail>,
        plan: PrimaryPlan,
        shard: vecshard_engine::Shard,
        location: String,
    ) -> Replicator {
        let followers: Vec<(String, bool)> = plan
            .followers
            .iter()
            .map(|p| (p.node_id.clone(), p.in_sync))
            .collect();
        let durable = next_seq.saturating_sub(1);
        let state = State {
            tail: seed
                .filter(|t| t.end() == next_seq)
                .unwrap_or_else(|| Tail::new(next_seq, plan.tail_bytes)),
            acks: AckTracker::new(plan.write_ack, plan.factor, durable, &followers),
            closed: false,
            trouble: BTreeMap::new(),
            shrinking: BTreeSet::new(),
            expanding: BTreeSet::new(),
            pinned: BTreeMap::new(),
            seen: followers
                .iter()
                .map(|(id, _)| (id.clone(), Seen::new(Instant::now())))
                .collect(),
        };
        let (signal, _) = watch::channel(Signal {
            end: next_seq,
            closed: false,
        });
        let inner = Arc::new(Inner {
            id,
            epoch,
            write_ack: plan.write_ack,
            ack_timeout: plan.ack_timeout,
            lag_timeout: plan.lag_timeout,
            node_id: plan.node_id.clone(),
            routers: plan.routers.clone(),
            outbound: plan.outbound.clone(),
            state: Mutex::new(state),
            signal,
            deadlines: Notify::new(),
            shard,
            location,
            ack_wait: plan.ack_wait.clone(),
        });
        for peer in plan.followers {
            let client = client(&plan.outbound, &peer.address, plan.ack_timeout);
            plan.runtime
                .spawn(ship_to(inner.clone(), peer, client, plan.ack_timeout));
        }
        plan.runtime.spawn(expire(inner.clone()));
        Replicator { inner }
    }

    /// A write the engine made durable here: keep it and ship it. Frames come in
    /// sequence order (the shard's actor is the only writer).
    pub fn ship(&self, frame: pb::ReplicaFrame) {
        let (ready, end) = {
            let mut s = self.inner.state.lock();
            s.tail.push(frame);
            let end = s.tail.end();
            (s.acks.primary_durable(end - 1), end)
        };
        answer(ready);
        self.inner.signal.send_modify(|sig| sig.end = end);
    }

    /// Answer `reply` once the write ending at `seq` meets the rule, or fail it at
    /// `deadline` (or after the acknowledgement timeout when it has none).
    pub fn wait(
        &self,
        seq: u64,
        deadline: Option<Instant>,
        reply: oneshot::Sender<Result<(), NodeError>>,
    ) {
        let reply = Reply::new(reply, self.inner.ack_wait.clone());
        let now = Instant::now();
        let deadline = deadline.unwrap_or(now + self.inner.ack_timeout);
        let now_ready = {
            let mut s = self.inner.state.lock();
            if s.closed {
                drop(s);
                let _ = reply.send(Err(self.inner.closed_error()));
                return;
            }
            s.acks.wait(seq, now, deadline, reply)
        };
        match now_ready {
            Some(reply) => {
                let _ = reply.send(Ok(()));
            }
            None => self.inner.deadlines.notify_one(),
        }
    }

    /// Every follower against the log end, now.
    pub fn followers(&self) -> Vec<FollowerLag> {
        let now = Instant::now();
        let s = self.inner.state.lock();
        let log_end = s.tail.end().saturating_sub(1);
        s.seen
            .iter()
            .map(|(node, seen)| {
                let durable = s.acks.position(node).unwrap_or(0);
                FollowerLag {
                    in_sync: s.acks.is_in_sync(node),
                    ..FollowerLag::of(node, seen, durable, log_end, now)
                }
            })
            .collect()
    }

    /// Stop: waiting writes fail as "not owner" (the router retries them on the current
    /// primary), and the shipping tasks end.
    pub fn close(&self) {
        let waiting = {
            let mut s = self.inner.state.lock();
            s.closed = true;
            s.acks.drain()
        };
        for (reply, _) in waiting {
            let _ = reply.send(Err(self.inner.closed_error()));
        }
        self.inner.signal.send_modify(|sig| sig.closed = true);
        self.inner.deadlines.notify_one();
    }
}

impl Inner {
    fn closed_error(&self) -> NodeError {
        NodeError::NotOwner {
            ctx: ShardCtx {
                id: self.id.clone(),
                caller_epoch: self.epoch,
                held: None,
            },
            reason: NotOwnerReason::Unassigned,
            detail: Some(
                "the primary closed before its replicas acknowledged the write".to_string(),
            ),
        }
    }

    fn shortfall(&self, count: Count, trouble: &BTreeMap<String, String>) -> NodeError {
        let detail = (!trouble.is_empty()).then(|| {
            trouble
                .iter()
                .map(|(node, why)| format!("{node}: {why}"))
                .collect::<Vec<_>>()
                .join("; ")
        });
        NodeError::Unacknowledged {
            id: self.id.clone(),
            acknowledged: count.acknowledged,
            needed: count.needed,
            replicas: count.replicas,
            rule: self.write_ack.as_str(),
            detail,
        }
    }

    fn note_trouble(&self, node: &str, why: Option<String>) {
        let mut s = self.state.lock();
        match why {
            Some(why) => s.trouble.insert(node.to_string(), why),
            None => s.trouble.remove(node),
        };
    }
}

fn answer(ready: Vec<Reply>) {
    for reply in ready {
        let _ = reply.send(Ok(()));
    }
}

type Client = ReplicaInternalClient<AuthChannel>;

fn client(outbound: &Outbound, address: &str, timeout: Duration) -> Result<Client, String> {
    let endpoint = outbound
        .endpoint(address)
        .map_err(|e| format!("bad address {address:?}: {e}"))?
        .connect_timeout(timeout)
        .http2_keep_alive_interval(timeout)
        .keep_alive_timeout(timeout)
        .keep_alive_while_idle(true);
    Ok(ReplicaInternalClient::new(outbound.connect_lazy(&endpoint))
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX))
}

/// Ship the tail to one follower, in order, until the replicator closes.
async fn ship_to(inner: Arc<Inner>, peer: Peer, client: Result<Client, String>, timeout: Duration) {
    let mut client = match client {
        Ok(c) => c,
        Err(why) => {
            tracing::error!(shard = %inner.id, follower = %peer.node_id, %why, "cannot replicate to a follower");
            inner.note_trouble(&peer.node_id, Some(why));
            return;
        }
    };
    let mut rx = inner.signal.subscribe();
    // The follower's next sequence number; unknown until it answered.
    let mut next: Option<u64> = None;
    let mut backoff = BACKOFF.0;
    loop {
        if rx.borrow_and_update().closed {
            return;
        }
        // The lock is released before any await below.
        let from = next.map(|n| (n, inner.state.lock().tail.from(n, MAX_BATCH_BYTES)));
        let frames = match from {
            None => Vec::new(),
            Some((n, from)) => match from {
                Ok(frames) => frames,
                Err(missing) => {
                    let why = match missing {
                        Missing::Behind { start } => format!(
                            "its position {n} is behind the primary's tail (from {start}): it gets a checkpoint"
                        ),
                        Missing::Ahead { end } => format!(
                            "its position {n} is past the primary's last write ({}): its log differs, it gets a checkpoint",
                            end - 1
                        ),
                    };
                    tracing::warn!(shard = %inner.id, follower = %peer.node_id, %why, "follower needs a checkpoint");
                    inner.note_trouble(&peer.node_id, Some(why));
                    next = catch_up(&inner, &peer, &mut client).await;
                    continue;
                }
            },
        };
        if next.is_some() && frames.is_empty() {
            // Up to date: wait for the next frame (or the close). An idle shard asks the
            // follower's position again now and then, so a follower that restarted (or was
            // wiped) meanwhile catches up without waiting for a write.
            tokio::select! {
                changed = rx.changed() => if changed.is_err() {
                    return;
                },
                _ = tokio::time::sleep(IDLE_PROBE) => next = None,
            }
            continue;
        }
        let sent = frames.len();
        let bytes: u64 = frames
            .iter()
            .map(|f| prost::Message::encoded_len(f) as u64)
            .sum();
        let log_end = inner.state.lock().tail.end().saturating_sub(1);
        let sent_at = Instant::now();
        let mut req = tonic::Request::new(pb::ReplicateRequest {
            target: Some(pb::ShardTarget {
                collection: inner.id.collection.clone(),
                shard: inner.id.shard,
                epoch: inner.epoch,
            }),
            frames,
            log_end,
        });
        req.set_timeout(timeout);
        match tokio::time::timeout(timeout, client.replicate(req)).await {
            Ok(Ok(resp)) => {
                let r = resp.into_inner();
                if r.needs_copy {
                    let why = format!(
                        "its log (to {}) is not a prefix of the primary's: it gets a checkpoint",
                        r.durable_seq
                    );
                    tracing::warn!(shard = %inner.id, follower = %peer.node_id, %why, "follower needs a checkpoint");
                    inner.note_trouble(&peer.node_id, Some(why));
                    next = catch_up(&inner, &peer, &mut client).await;
                    continue;
                }
                if r.gap && sent > 0 {
                    tracing::debug!(shard = %inner.id, follower = %peer.node_id, durable = r.durable_seq, "gap: resending from the follower's position");
                }
                next = Some(r.durable_seq + 1);
                backoff = BACKOFF.0;
                let (ready, expand) = {
                    let mut s = inner.state.lock();
                    s.trouble.remove(&peer.node_id);
                    if let Some(seen) = s.seen.get_mut(&peer.node_id) {
                        seen.answered(sent_at, bytes, log_end, r.durable_seq);
                    }
                    // A position past this primary's log holds writes it never
                    // sequenced: it counts for nothing (the next turn sends a checkpoint).
                    let ahead = r.durable_seq >= s.tail.end();
                    let ready = if ahead {
                        Vec::new()
                    } else {
                        s.acks.follower_durable(&peer.node_id, r.durable_seq)
                    };
                    if s.pinned.contains_key(&peer.node_id) {
                        let caught_up = r.durable_seq + 1 >= s.tail.end();
                        s.pin(&peer.node_id, (!caught_up).then_some(r.durable_seq + 1));
                    }
                    // Caught up with the whole log while out of the in-sync set: ask the
                    // shard map to add it (catch-up, note 014). Exactly at the end: a
                    // follower past it holds writes this primary never sequenced.
                    let caught_up = r.durable_seq + 1 == s.tail.end();
                    let expand = caught_up
                        && !s.acks.is_in_sync(&peer.node_id)
                        && !s.shrinking.contains(&peer.node_id)
                        && s.expanding.insert(peer.node_id.clone());
                    if expand {
                        s.acks.into_sync(&peer.node_id);
                    }
                    (ready, expand)
                };
                answer(ready);
                if expand {
                    tokio::spawn(expand_isr(
                        inner.clone(),
                        peer.node_id.clone(),
                        r.durable_seq,
                    ));
                }
            }
            failed => {
                let why = match failed {
                    Ok(Err(status)) => format!("{}: {}", peer.address, status.message()),
                    _ => format!("{}: no answer within {timeout:?}", peer.address),
                };
                tracing::debug!(shard = %inner.id, follower = %peer.node_id, %why, "replicate call failed");
                inner.note_trouble(&peer.node_id, Some(why));
                inner.state.lock().pin(&peer.node_id, None);
                next = None;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
            }
        }
    }
}

/// Send `peer` a checkpoint; its next sequence number after it, or `None` (after a
/// pause) when that failed.
async fn catch_up(inner: &Arc<Inner>, peer: &Peer, client: &mut Client) -> Option<u64> {
    match send_checkpoint(inner, peer, client).await {
        Ok(durable) => Some(durable + 1),
        Err(why) => {
            tracing::warn!(shard = %inner.id, follower = %peer.node_id, %why, "sending a checkpoint failed");
            inner.note_trouble(&peer.node_id, Some(why));
            inner.state.lock().pin(&peer.node_id, None);
            tokio::time::sleep(BACKOFF.1).await;
            None
        }
    }
}

/// Checkpoint the shard into a staging directory next to it (hard links; writes go on)
/// and stream it to `peer` (`InstallCheckpoint`), the tail keeping every frame after the
/// checkpoint meanwhile. Returns the follower's durable position after installing it.
async fn send_checkpoint(
    inner: &Arc<Inner>,
    peer: &Peer,
    client: &mut Client,
) -> Result<u64, String> {
    // Everything shipped so far is durable here, so the checkpoint (which flushes
    // first) covers it: the tail keeps what comes after.
    {
        let mut s = inner.state.lock();
        let end = s.tail.end();
        s.pin(&peer.node_id, Some(end));
    }
    let started = Instant::now();
    let staging = format!("{}.outgoing-{}", inner.location, peer.node_id);
    let (shard, dir) = (inner.shard.clone(), staging.clone());
    let summary = tokio::task::spawn_blocking(move || {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("remove {dir}: {e}")),
        }
        shard
            .checkpoint(&dir)
            .map_err(|e| format!("checkpoint into {dir}: {e}"))
    })
    .await
    .map_err(|e| format!("checkpoint task: {e}"))??;
    inner.state.lock().pin(&peer.node_id, Some(summary.seq + 1));
    let target = pb::ShardTarget {
        collection: inner.id.collection.clone(),
        shard: inner.id.shard,
        epoch: inner.epoch,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let dir = std::path::PathBuf::from(&staging);
    let seq = summary.seq;
    let sender = tokio::task::spawn_blocking(move || {
        send_dir(&dir, target, seq, |c| tx.blocking_send(c).is_ok())
    });
    let answer = client
        .install_checkpoint(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await;
    let sent = sender.await;
    let dir = staging.clone();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    let r = answer
        .map_err(|s| format!("{}: installing a checkpoint: {}", peer.address, s.message()))?
        .into_inner();
    let bytes = sent.map_err(|e| format!("checkpoint stream task: {e}"))??;
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(shard = %inner.id, follower = %peer.node_id, seq, bytes,
        ms = (secs * 1000.0) as u64, mb_per_s = bytes as f64 / 1e6 / secs.max(1e-9),
        durable = r.durable_seq, "sent a checkpoint; the follower catches up from the tail");
    if let Some(seen) = inner.state.lock().seen.get_mut(&peer.node_id) {
        seen.catchup_bytes += bytes;
    }
    Ok(r.durable_seq)
}

/// Fail waiting writes at their deadlines, and (with `all`) have followers that hold
/// back writes dropped from the in-sync set, until the replicator closes.
async fn expire(inner: Arc<Inner>) {
    loop {
        let next = {
            let s = inner.state.lock();
            if s.closed {
                return;
            }
            let lag = s
                .acks
                .lag_check_at(inner.lag_timeout)
                .filter(|_| s.shrinking.is_empty());
            match (s.acks.next_deadline(), lag) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        let sleep = match next {
            Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)),
            None => tokio::time::sleep(Duration::from_secs(3600)),
        };
        tokio::select! {
            _ = sleep => {}
            _ = inner.deadlines.notified() => {}
        }
        let lagging: Vec<String> = {
            let mut s = inner.state.lock();
            let lagging: Vec<String> = s
                .acks
                .lagging(Instant::now(), inner.lag_timeout)
                .into_iter()
                .filter(|n| !s.shrinking.contains(n))
                .collect();
            s.shrinking.extend(lagging.iter().cloned());
            lagging
        };
        for follower in lagging {
            tokio::spawn(shrink(inner.clone(), follower));
        }
        let failed: Vec<(Reply, NodeError)> = {
            let mut s = inner.state.lock();
            let expired = s.acks.expire(Instant::now());
            expired
                .into_iter()
                .map(|(reply, count)| (reply, inner.shortfall(count, &s.trouble)))
                .collect()
        };
        for (reply, err) in failed {
            tracing::warn!(shard = %inner.id, error = %err, "replicated write not acknowledged in time");
            let _ = reply.send(Err(err));
        }
    }
}

/// Ask the routers to add `follower`, caught up at `seq`, to the in-sync set (it counts
/// for `all` from the moment this is asked). A refusal (the shard moved on) stops it
/// counting again.
async fn expand_isr(inner: Arc<Inner>, follower: String, seq: u64) {
    tracing::info!(shard = %inner.id, epoch = inner.epoch, %follower, seq,
        "a follower caught up with the primary's log; asking to add it to the in-sync set");
    let change = IsrChange::Expand(seq);
    let Some(applied) = ask_routers(&inner, &follower, change).await else {
        return;
    };
    let ready = {
        let mut s = inner.state.lock();
        s.expanding.remove(&follower);
        if applied {
            Vec::new()
        } else {
            s.acks.out_of_sync(&follower)
        }
    };
    tracing::info!(shard = %inner.id, epoch = inner.epoch, %follower, applied,
        "in-sync set expanded");
    answer(ready);
}

/// Ask the routers to drop `follower` from the in-sync set; once the shard map says so,
/// it stops counting and the writes it held back are acknowledged. A refusal (the shard
/// moved on) leaves them to their deadlines.
async fn shrink(inner: Arc<Inner>, follower: String) {
    tracing::warn!(shard = %inner.id, epoch = inner.epoch, %follower, lag = ?inner.lag_timeout,
        "an in-sync follower holds back writes; asking to drop it from the in-sync set");
    let Some(applied) = ask_routers(&inner, &follower, IsrChange::Shrink).await else {
        return;
    };
    let ready = {
        let mut s = inner.state.lock();
        s.shrinking.remove(&follower);
        if applied {
            s.acks.out_of_sync(&follower)
        } else {
            Vec::new()
        }
    };
    tracing::info!(shard = %inner.id, epoch = inner.epoch, %follower, applied,
        released = ready.len(), "in-sync set shrunk");
    answer(ready);
    inner.deadlines.notify_one();
}

/// A change of the in-sync set the primary asks the routers for.
#[derive(Debug, Clone, Copy)]
enum IsrChange {
    /// Add the follower, caught up at this sequence number.
    Expand(u64),
    /// Drop the follower.
    Shrink,
}

/// Ask the routers, one after the other and again with backoff, for `change` of
/// `follower` until one answers: whether the shard map applied it. `None` once the
/// primary closed.
async fn ask_routers(inner: &Inner, follower: &str, change: IsrChange) -> Option<bool> {
    let mut backoff = BACKOFF.0;
    loop {
        if inner.state.lock().closed {
            return None;
        }
        for addr in &inner.routers {
            let Ok(channel) = inner.outbound.channel(addr, inner.ack_timeout) else {
                continue;
            };
            let mut client = RouterInternalClient::new(channel);
            let (node_id, collection) = (inner.node_id.clone(), inner.id.collection.clone());
            let (shard, epoch, follower) = (inner.id.shard, inner.epoch, follower.to_string());
            let answer = match change {
                IsrChange::Expand(seq) => {
                    let mut req = tonic::Request::new(pb::ExpandIsrRequest {
                        node_id,
                        collection,
                        shard,
                        epoch,
                        follower,
                        seq,
                    });
                    req.set_timeout(inner.ack_timeout);
                    client.expand_isr(req).await.map(|r| r.into_inner().applied)
                }
                IsrChange::Shrink => {
                    let mut req = tonic::Request::new(pb::ShrinkIsrRequest {
                        node_id,
                        collection,
                        shard,
                        epoch,
                        follower,
                    });
                    req.set_timeout(inner.ack_timeout);
                    client.shrink_isr(req).await.map(|r| r.into_inner().applied)
                }
            };
            match answer {
                Ok(applied) => return Some(applied),
                Err(e) => {
                    tracing::debug!(shard = %inner.id, router = %addr, ?change, error = %e,
                        "changing the in-sync set failed");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}
