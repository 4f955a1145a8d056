//! The shard actor: owns one shard's engine for its lifecycle (open, close) and its
//! writes. It runs on its own arbiter thread, so the engine's blocking work (WAL
//! replay, fsync, object-store PUTs) never runs on the async runtime.
//!
//! Writes arrive in a bounded mailbox and are applied in arrival order. Writes that
//! queue up while the engine is busy are grouped: the handler only collects a write;
//! once the mailbox is drained the actor applies runs of consecutive upserts (or
//! deletes) as one engine call, so they share one WAL sync. A request that is invalid
//! on its own never fails its neighbours: a group the engine rejects as invalid is
//! retried request by request.
//!
//! Reads do not come here: they use the engine handle on the read pool.
//!
//! Replicated shards (`docs/design/014-replication.md`): a primary's actor hands every
//! write its engine made durable to its [`Replicator`], which answers the write once the
//! acknowledgement rule holds; a follower's actor applies the primary's frames
//! ([`ApplyFrames`]) in order. An unreplicated shard runs none of this.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;
use vecshard_engine::{ErrorKind, Key, Options, Point, Replicated, Shard, ShardSpec, paths};

use crate::error::{NodeError, NotOwnerReason};
use crate::metrics::Metrics;
use crate::placement::{RestoreFrom, Role};
use crate::registry::{Slot, SlotState};
use crate::replication::follow::{Fate, fate};
use crate::replication::store::{ReplicaRecord, ReplicaStore};
use crate::replication::{PrimaryPlan, Replicator};
use vecshard_proto::internal::v1 as pb;

/// How to open the shard's engine.
#[derive(Debug, Clone)]
pub struct OpenPlan {
    /// The engine location.
    pub location: String,
    /// Dimension, metric and index parameters.
    pub spec: ShardSpec,
    /// Writer or reader.
    pub role: Role,
    /// The assignment epoch.
    pub epoch: u64,
    /// Whether the shard lives under the node's data directory.
    pub local: bool,
    /// The node's engine defaults.
    pub options: Options,
    /// READER refresh period.
    pub refresh: Duration,
    /// A WRITER whose location holds no shard yet copies this checkpoint there first.
    pub restore: Option<RestoreFrom>,
    /// A replicated shard's primary: how to ship its writes (`None` otherwise).
    pub primary: Option<PrimaryPlan>,
    /// A replicated shard (primary or follower): where its position and recent frames
    /// are kept (`None` otherwise).
    pub replica: Option<ReplicaCopy>,
}

/// A replicated copy's bookkeeping.
#[derive(Debug, Clone)]
pub struct ReplicaCopy {
    /// Records and recent frames of the node's copies.
    pub store: Arc<ReplicaStore>,
    /// Bytes of recent frames a follower keeps.
    pub tail_bytes: usize,
    /// (epoch, start sequence number) of every promotion, from the shard map.
    pub epoch_starts: Vec<(u64, u64)>,
}

impl OpenPlan {
    /// Open the engine. A writer claims the assignment epoch in storage. A local shard
    /// has exactly one possible writer (its directory's lock) and never moves between
    /// nodes, so when the engine already carries this epoch (the node restarted and the
    /// router re-sent its assignment) it reopens claiming the next engine epoch.
    pub fn open(&self) -> vecshard_engine::Result<Shard> {
        match self.role {
            // A follower's copy is written (by its primary's frames) like a writer's.
            Role::Writer | Role::Follower => {
                if let Some(r) = &self.restore {
                    let done = vecshard_engine::restore_checkpoint(
                        &r.location,
                        &self.location,
                        Some(r.manifest_crc32c),
                    )?;
                    if !done.already_there {
                        tracing::info!(location = %self.location, from = %r.location,
                            bytes = done.bytes, segments = done.segments, "restored from a checkpoint");
                    }
                }
                let opts = Options {
                    epoch: Some(self.epoch),
                    read_only: false,
                    ..self.options.clone()
                };
                match Shard::open_or_create(&self.location, self.spec, opts.clone()) {
                    Err(e) if e.kind() == ErrorKind::Fenced && self.local => {
                        tracing::info!(location = %self.location, epoch = self.epoch, reason = %e,
                            "local shard already carries this epoch; reopening with the next engine epoch");
                        let opts = Options {
                            epoch: None,
                            ..opts
                        };
                        Shard::open_or_create(&self.location, self.spec, opts)
                    }
                    other => other,
                }
            }
            Role::Reader => {
                let opts = Options {
                    read_only: true,
                    epoch: None,
                    refresh_interval: Some(self.refresh),
                    ..self.options.clone()
                };
                let shard = Shard::open(&self.location, opts)?;
                let spec = shard.spec();
                if spec.dim != self.spec.dim || spec.metric != self.spec.metric {
                    let _ = shard.close();
                    return Err(vecshard_engine::Error::new(
                        ErrorKind::InvalidArgument,
                        format!(
                            "the shard at {} is {}-d {}, not {}-d {}",
                            self.location, spec.dim, spec.metric, self.spec.dim, self.spec.metric
                        ),
                    ));
                }
                Ok(shard)
            }
        }
    }
}

/// One write request.
#[derive(Debug)]
pub enum WriteOp {
    /// Insert or replace points.
    Upsert(Vec<Point>),
    /// Delete keys.
    Delete(Vec<Key>),
}

impl WriteOp {
    fn len(&self) -> usize {
        match self {
            WriteOp::Upsert(p) => p.len(),
            WriteOp::Delete(k) => k.len(),
        }
    }

    fn same_kind(&self, other: &WriteOp) -> bool {
        matches!(
            (self, other),
            (WriteOp::Upsert(_), WriteOp::Upsert(_)) | (WriteOp::Delete(_), WriteOp::Delete(_))
        )
    }
}

/// A write with the channel its outcome goes back on.
#[derive(Debug)]
pub struct Write {
    /// The write.
    pub op: WriteOp,
    /// The caller's epoch (equal to the slot's; checked before sending).
    pub caller_epoch: u64,
    /// When a replicated primary stops waiting for its followers (`None`: unreplicated,
    /// or the node's acknowledgement timeout).
    pub deadline: Option<Instant>,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Result<(), NodeError>>,
}

impl Message for Write {
    type Result = ();
}

/// A follower applies its primary's frames, in order (see [`fate`]).
#[derive(Debug)]
pub struct ApplyFrames {
    /// The primary's epoch.
    pub epoch: u64,
    /// (first sequence number, write), consecutive.
    pub frames: Vec<(u64, Replicated)>,
    /// The same frames as received (kept for a later promotion).
    pub wire: Vec<pb::ReplicaFrame>,
    /// The primary's last sequence number when it sent them.
    pub log_end: u64,
}

/// A follower's position after [`ApplyFrames`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Every write up to this sequence number is durable.
    pub durable_seq: u64,
    /// A frame started after the follower's next sequence number.
    pub gap: bool,
    /// The copy's log is not a prefix of the primary's: it needs a checkpoint.
    pub needs_copy: bool,
}

impl Message for ApplyFrames {
    type Result = Result<Position, NodeError>;
}

/// A follower replaces its copy with the checkpoint received into `staging` (checkpoint
/// catch-up): it is marked as catching up, swapped in and opened; answers its position.
#[derive(Debug)]
pub struct InstallCopy {
    /// The primary's epoch.
    pub epoch: u64,
    /// The verified checkpoint (a sibling directory of the copy's location).
    pub staging: std::path::PathBuf,
    /// Every write up to this sequence number is in the checkpoint.
    pub seq: u64,
}

impl Message for InstallCopy {
    type Result = Result<Position, NodeError>;
}

/// A copy's position without side effects: (durable sequence number, catching up).
#[derive(Debug)]
pub struct GetPosition;

impl Message for GetPosition {
    type Result = Result<(u64, bool), NodeError>;
}

/// Fence the copy at a new epoch; answers (last_epoch, last_seq).
#[derive(Debug)]
pub struct FenceAt(pub u64);

impl Message for FenceAt {
    type Result = Result<(u64, u64), NodeError>;
}

/// Open the engine (sent once, first).
#[derive(Debug)]
pub struct Open;

impl Message for Open {
    type Result = ();
}

/// Finish the queued writes, close the engine, stop the actor.
#[derive(Debug)]
pub struct Close;

impl Message for Close {
    type Result = Result<(), vecshard_engine::Error>;
}

/// The engine stopped taking writes by itself (fenced or failed): close it, keep the
/// slot's state.
#[derive(Debug)]
pub struct EngineStopped;

impl Message for EngineStopped {
    type Result = ();
}

/// Test hook: block the actor's thread until the first channel's sender is dropped or
/// sends; the second channel says the actor is now blocked.
#[derive(Debug)]
pub struct Hold(pub std::sync::mpsc::Receiver<()>, pub oneshot::Sender<()>);

impl Message for Hold {
    type Result = ();
}

/// The actor of one shard.
pub struct ShardActor {
    slot: Arc<Slot>,
    plan: OpenPlan,
    shard: Option<Shard>,
    pending: Vec<Write>,
    pending_points: usize,
    commit_scheduled: bool,
    group_points: usize,
    metrics: Arc<Metrics>,
    /// A replicated primary's shipping (set once its engine is open).
    replicator: Option<Replicator>,
}

impl ShardActor {
    /// An actor for `slot`; it opens the engine when it receives [`Open`].
    pub fn new(
        slot: Arc<Slot>,
        plan: OpenPlan,
        group_points: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        ShardActor {
            slot,
            plan,
            shard: None,
            pending: Vec::new(),
            pending_points: 0,
            commit_scheduled: false,
            group_points,
            metrics,
            replicator: None,
        }
    }

    /// Apply every collected write, in order, grouping runs of the same kind.
    fn commit(&mut self) {
        self.pending_points = 0;
        let mut batch = std::mem::take(&mut self.pending).into_iter().peekable();
        while let Some(first) = batch.next() {
            let mut group_len = first.op.len();
            let mut group = vec![first];
            while let Some(next) = batch.peek() {
                if !next.op.same_kind(&group[0].op) || group_len + next.op.len() > self.group_points
                {
                    break;
                }
                group_len += next.op.len();
                group.extend(batch.next());
            }
            self.apply_group(group);
        }
    }

    fn apply_group(&mut self, group: Vec<Write>) {
        let Some(shard) = self.shard.clone() else {
            for w in group {
                let refusal = self.refusal(w.caller_epoch);
                self.reply(w.reply, Err(refusal));
            }
            return;
        };
        if group.len() == 1 {
            let w = group.into_iter().next().expect("one write");
            let result = self.run(&shard, w.op, 1);
            self.finish(w.reply, w.caller_epoch, w.deadline, result);
            return;
        }
        let merged = match &group[0].op {
            WriteOp::Upsert(_) => WriteOp::Upsert(
                group
                    .iter()
                    .flat_map(|w| match &w.op {
                        WriteOp::Upsert(p) => p.clone(),
                        WriteOp::Delete(_) => Vec::new(),
                    })
                    .collect(),
            ),
            WriteOp::Delete(_) => WriteOp::Delete(
                group
                    .iter()
                    .flat_map(|w| match &w.op {
                        WriteOp::Delete(k) => k.clone(),
                        WriteOp::Upsert(_) => Vec::new(),
                    })
                    .collect(),
            ),
        };
        let n = group.len();
        match self.run(&shard, merged, n) {
            // Validation happens before anything is logged: nothing was written, so
            // each request gets its own answer.
            Err(e) if e.kind() == ErrorKind::InvalidArgument => {
                for w in group {
                    let result = self.run(&shard, w.op, 1);
                    self.finish(w.reply, w.caller_epoch, w.deadline, result);
                }
            }
            result => {
                for w in group {
                    self.finish(w.reply, w.caller_epoch, w.deadline, result.clone());
                }
            }
        }
    }

    /// One engine call for `requests` grouped requests; returns the write's last
    /// sequence number. A replicated primary ships the durable write to its followers.
    fn run(
        &self,
        shard: &Shard,
        op: WriteOp,
        requests: usize,
    ) -> Result<u64, vecshard_engine::Error> {
        let points = op.len();
        let started = Instant::now();
        // Only this actor writes, so the next sequence number is the write's first.
        let frame = self
            .replicator
            .as_ref()
            .map(|_| crate::conversions::frame_to_proto(self.slot.epoch, shard.next_seq(), &op));
        let result = match op {
            WriteOp::Upsert(p) => shard.upsert(p),
            WriteOp::Delete(k) => shard.delete(k),
        };
        self.metrics
            .observe_engine_write(&self.slot.id, started.elapsed(), requests, points);
        if let (Some(rep), Some(frame), Ok(_)) = (&self.replicator, frame, &result) {
            rep.ship(frame);
        }
        result
    }

    fn finish(
        &mut self,
        reply: oneshot::Sender<Result<(), NodeError>>,
        caller_epoch: u64,
        deadline: Option<Instant>,
        result: Result<u64, vecshard_engine::Error>,
    ) {
        if let (Some(rep), Ok(last_seq)) = (&self.replicator, &result) {
            // Durable here; the replicator answers once enough replicas have it.
            self.slot.queued.fetch_sub(1, Ordering::Relaxed);
            rep.wait(*last_seq, deadline, reply);
            return;
        }
        let result = result.map(|_| ());
        let stopped = match &result {
            Err(e) if e.kind() != ErrorKind::InvalidArgument => self.slot.note_engine_error(e),
            _ => false,
        };
        let answer = result.map_err(|err| NodeError::Engine {
            err,
            ctx: self.slot.ctx(caller_epoch),
        });
        self.reply(reply, answer);
        if stopped {
            let _ = self.close_engine();
        }
    }

    fn reply(&self, reply: oneshot::Sender<Result<(), NodeError>>, answer: Result<(), NodeError>) {
        self.slot.queued.fetch_sub(1, Ordering::Relaxed);
        let _ = reply.send(answer);
    }

    /// Why a write cannot be applied when there is no open engine.
    fn refusal(&self, caller_epoch: u64) -> NodeError {
        match self
            .slot
            .serving(caller_epoch, crate::registry::Access::Write)
        {
            Err(e) => e,
            Ok(_) => NodeError::Internal(format!("shard {} has no open engine", self.slot.id)),
        }
    }

    fn close_engine(&mut self) -> Result<(), vecshard_engine::Error> {
        if let Some(rep) = self.replicator.take() {
            self.slot.set_replicator(None);
            rep.close();
        }
        match self.shard.take() {
            Some(shard) => shard.close(),
            None => Ok(()),
        }
    }
}

impl Actor for ShardActor {
    type Context = Context<Self>;
}

impl Drop for ShardActor {
    fn drop(&mut self) {
        // However the actor ends, its shipping tasks end and its waiting writes fail.
        if let Some(rep) = self.replicator.take() {
            self.slot.set_replicator(None);
            rep.close();
        }
    }
}

impl Handler<Open> for ShardActor {
    type Result = ();

    fn handle(&mut self, _: Open, _: &mut Context<Self>) {
        let started = Instant::now();
        if let Err(e) = self
            .mark_new_follower_copy()
            .and_then(|()| self.refuse_wiped_primary())
        {
            self.slot.set_state(SlotState::Failed(e));
            return;
        }
        match self.plan.open() {
            Ok(shard) => {
                tracing::info!(shard = %self.slot.id, location = %self.plan.location,
                    ms = started.elapsed().as_millis() as u64, "opened");
                if let Some(plan) = self.plan.primary.clone() {
                    match self.start_primary(&shard, plan) {
                        Ok(r) => {
                            self.slot.set_replicator(Some(r.clone()));
                            self.replicator = Some(r);
                        }
                        Err(e) => {
                            let _ = shard.close();
                            self.slot.set_state(SlotState::Failed(e));
                            return;
                        }
                    }
                }
                self.shard = Some(shard.clone());
                self.slot.set_state(SlotState::Serving(shard));
            }
            Err(e) if e.kind() == ErrorKind::Fenced => {
                self.slot
                    .set_state(SlotState::Fenced(e.message().to_string()));
            }
            Err(e) => self.slot.set_state(SlotState::Failed(e)),
        }
    }
}

impl Handler<Write> for ShardActor {
    type Result = ();

    fn handle(&mut self, w: Write, ctx: &mut Context<Self>) {
        self.pending_points += w.op.len();
        self.pending.push(w);
        if self.pending_points >= self.group_points {
            self.commit();
            return;
        }
        if !self.commit_scheduled {
            // Runs once the mailbox is drained: everything queued by then is grouped.
            self.commit_scheduled = true;
            ctx.spawn(actix::fut::ready(()).map(|(), act: &mut Self, _| {
                act.commit_scheduled = false;
                act.commit();
            }));
        }
    }
}

impl ShardActor {
    /// A follower about to create its copy empty (no manifest at its local location)
    /// marks it as catching up first, durably: until it reaches its primary's log end it
    /// answers no fence (note 014, "a wiped replica does not answer fences").
    fn mark_new_follower_copy(&self) -> Result<(), vecshard_engine::Error> {
        let (Role::Follower, true, Some(copy)) =
            (self.plan.role, self.plan.local, self.plan.replica.as_ref())
        else {
            return Ok(());
        };
        if no_manifest(&self.plan.location)? {
            copy.store
                .update(&self.plan.location, |r| r.catching_up = true)
                .map_err(|e| vecshard_engine::Error::new(ErrorKind::Io, e))?;
            tracing::info!(shard = %self.slot.id, location = %self.plan.location,
                "new follower copy: catching up, answers no fence until it reaches the primary's log end");
        }
        Ok(())
    }

    /// A replicated primary whose local copy has no manifest (new or wiped) opens only if
    /// every follower answers that it holds no write ([`crate::replication::wiped`]).
    fn refuse_wiped_primary(&self) -> Result<(), vecshard_engine::Error> {
        let (Some(plan), true) = (self.plan.primary.as_ref(), self.plan.local) else {
            return Ok(());
        };
        if !no_manifest(&self.plan.location)? {
            return Ok(());
        }
        let (id, epoch, ask) = (self.slot.id.clone(), self.slot.epoch, plan.clone());
        let patience = plan.ack_timeout.max(Duration::from_secs(10));
        let (tx, rx) = std::sync::mpsc::channel();
        plan.runtime.spawn(async move {
            let answers =
                crate::replication::wiped::ask_followers(&id, epoch, &ask, patience).await;
            let _ = tx.send(answers);
        });
        let answers = rx
            .recv_timeout(patience * (plan.followers.len() as u32 + 1))
            .unwrap_or_default();
        let refused = if answers.len() < plan.followers.len() {
            Err("this primary's copy is empty and its followers were not asked in time: it does not open as primary".to_string())
        } else {
            crate::replication::wiped::verdict(&answers)
        };
        match refused {
            Ok(()) => {
                tracing::info!(shard = %self.slot.id, ?answers, "empty primary copy: no follower holds writes, opening a new shard");
                Ok(())
            }
            Err(why) => {
                tracing::error!(shard = %self.slot.id, location = %self.plan.location, %why, "refusing to open as primary");
                Err(vecshard_engine::Error::new(ErrorKind::Corrupt, why))
            }
        }
    }

    /// A replicated primary starts at its epoch: its copy's last epoch becomes this one
    /// (durably: its log is the log this epoch starts from), and it resends what it applied
    /// as a follower, if that ends where its log does.
    fn start_primary(
        &self,
        shard: &Shard,
        plan: PrimaryPlan,
    ) -> Result<Replicator, vecshard_engine::Error> {
        let (id, epoch, next) = (self.slot.id.clone(), self.slot.epoch, shard.next_seq());
        let seed = match &self.plan.replica {
            Some(copy) => {
                copy.store
                    .update(&self.plan.location, |r| {
                        r.last_epoch = r.last_epoch.max(epoch)
                    })
                    .map_err(|e| vecshard_engine::Error::new(ErrorKind::Io, e))?;
                copy.store.take_tail(&self.plan.location, next)
            }
            None => None,
        };
        Ok(Replicator::start(
            id,
            epoch,
            next,
            seed,
            plan,
            shard.clone(),
            self.plan.location.clone(),
        ))
    }

    fn copy(&self) -> Result<&ReplicaCopy, NodeError> {
        self.plan.replica.as_ref().ok_or_else(|| {
            NodeError::invalid(format!("shard {} is not replicated here", self.slot.id))
        })
    }

    /// This copy's durable replica record, unless it is fenced above a caller at `epoch`.
    fn unfenced_record(
        &self,
        copy: &ReplicaCopy,
        location: &str,
        epoch: u64,
    ) -> Result<ReplicaRecord, NodeError> {
        let record = copy.store.record(location).map_err(NodeError::Internal)?;
        if epoch < record.fenced_epoch {
            return Err(NodeError::NotOwner {
                ctx: self.slot.ctx(epoch),
                reason: NotOwnerReason::StaleCaller,
                detail: Some(format!(
                    "this copy is fenced at epoch {} for a promotion",
                    record.fenced_epoch
                )),
            });
        }
        Ok(record)
    }
}

/// Whether the local shard directory `location` holds no manifest (new or wiped).
fn no_manifest(location: &str) -> Result<bool, vecshard_engine::Error> {
    let manifests = std::path::Path::new(location).join(paths::MANIFEST_DIR);
    match std::fs::read_dir(&manifests) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(vecshard_engine::Error::new(
            ErrorKind::Io,
            format!("read {}: {e}", manifests.display()),
        )),
    }
}

/// Whether a copy whose last frame is of `last_epoch` and whose log ends at `last_seq`
/// is a prefix of the current primary's log: it must not reach past the start of the
/// first epoch after `last_epoch` (`epoch_starts`: every promotion's epoch and start).
fn diverged(epoch_starts: &[(u64, u64)], last_epoch: u64, last_seq: u64) -> Result<(), String> {
    let next_start = epoch_starts
        .iter()
        .filter(|(e, _)| *e > last_epoch)
        .min_by_key(|(e, _)| *e);
    match next_start {
        Some((epoch, start)) if last_seq > *start => Err(format!(
            "this copy holds writes up to {last_seq} of epoch {last_epoch}, but epoch {epoch} started from {start}: it holds writes no primary kept and needs a new copy"
        )),
        _ => Ok(()),
    }
}

impl Handler<FenceAt> for ShardActor {
    type Result = Result<(u64, u64), NodeError>;

    fn handle(&mut self, FenceAt(epoch): FenceAt, _: &mut Context<Self>) -> Self::Result {
        let shard = self
            .shard
            .clone()
            .ok_or_else(|| NodeError::Opening(self.slot.id.clone()))?;
        let store = &self.copy()?.store;
        let held = store
            .record(&self.plan.location)
            .map_err(NodeError::Internal)?;
        if held.catching_up {
            return Err(NodeError::CatchingUp(
                self.slot.id.clone(),
                format!(
                    "this copy was created empty while the shard map named it a replica (a new or wiped data directory) and has not caught up with its primary yet (it holds {} writes): it answers no fence, so a promotion cannot count it as holding acknowledged writes",
                    shard.next_seq() - 1
                ),
            ));
        }
        let record = store
            .update(&self.plan.location, |r| {
                r.fenced_epoch = r.fenced_epoch.max(epoch)
            })
            .map_err(NodeError::Internal)?;
        tracing::info!(shard = %self.slot.id, epoch, last_epoch = record.last_epoch,
            last_seq = shard.next_seq() - 1, "fenced for a promotion");
        Ok((record.last_epoch, shard.next_seq() - 1))
    }
}

impl Handler<ApplyFrames> for ShardActor {
    type Result = Result<Position, NodeError>;

    fn handle(&mut self, m: ApplyFrames, _: &mut Context<Self>) -> Self::Result {
        let Some(shard) = self.shard.clone() else {
            return Err(NodeError::Opening(self.slot.id.clone()));
        };
        let copy = self.copy()?.clone();
        let location = self.plan.location.clone();
        let record = self.unfenced_record(&copy, &location, m.epoch)?;
        let mut last_epoch = record.last_epoch;
        let needs_copy = |why: String| -> Result<Position, NodeError> {
            tracing::warn!(shard = %self.slot.id, %why, "this copy's log differs from the primary's: it needs a checkpoint");
            Ok(Position {
                durable_seq: shard.next_seq() - 1,
                gap: false,
                needs_copy: true,
            })
        };
        // A deposed primary's writes past the next epoch's start: a new copy (note 014,
        // "Catch-up and divergence"), whether or not frames came.
        if let Err(why) = diverged(&copy.epoch_starts, last_epoch, shard.next_seq() - 1) {
            return needs_copy(why);
        }
        for ((first_seq, write), mut wire) in m.frames.into_iter().zip(m.wire) {
            // The epoch of the primary that sequenced the frame (a promoted primary
            // resends frames of earlier epochs as they were).
            if wire.epoch == 0 {
                wire.epoch = m.epoch;
            }
            let frame_epoch = wire.epoch;
            let len = match &write {
                Replicated::Upsert(p) => p.len(),
                Replicated::Delete(k) => k.len(),
            } as u64;
            let next = shard.next_seq();
            match fate(first_seq, len, next) {
                Fate::Apply => {
                    if last_epoch != frame_epoch {
                        if let Err(why) = diverged(&copy.epoch_starts, last_epoch, next - 1) {
                            return needs_copy(why);
                        }
                        // Durable before any frame of the epoch is.
                        copy.store
                            .update(&location, |r| r.last_epoch = frame_epoch)
                            .map_err(NodeError::Internal)?;
                        last_epoch = frame_epoch;
                    }
                    let started = Instant::now();
                    let applied = shard.apply_replicated(first_seq, write);
                    self.metrics.observe_engine_write(
                        &self.slot.id,
                        started.elapsed(),
                        1,
                        len as usize,
                    );
                    if let Err(err) = applied {
                        self.slot.note_engine_error(&err);
                        return Err(NodeError::Engine {
                            err,
                            ctx: self.slot.ctx(m.epoch),
                        });
                    }
                    copy.store.applied(&location, wire, copy.tail_bytes);
                }
                Fate::Skip => {}
                Fate::Gap => {
                    return Ok(Position {
                        durable_seq: next - 1,
                        gap: true,
                        needs_copy: false,
                    });
                }
                Fate::Overlap => {
                    return needs_copy(format!(
                        "a frame of {len} from sequence number {first_seq} straddles this follower's next {next}"
                    ));
                }
            }
        }
        let durable_seq = shard.next_seq() - 1;
        if record.catching_up && durable_seq >= m.log_end {
            copy.store
                .update(&location, |r| r.catching_up = false)
                .map_err(NodeError::Internal)?;
            tracing::info!(shard = %self.slot.id, durable_seq, log_end = m.log_end,
                "caught up with the primary's log end: this copy answers fences again");
        }
        Ok(Position {
            durable_seq,
            gap: false,
            needs_copy: false,
        })
    }
}

impl Handler<GetPosition> for ShardActor {
    type Result = Result<(u64, bool), NodeError>;

    fn handle(&mut self, _: GetPosition, _: &mut Context<Self>) -> Self::Result {
        let shard = self
            .shard
            .clone()
            .ok_or_else(|| NodeError::Opening(self.slot.id.clone()))?;
        let record = self
            .copy()?
            .store
            .record(&self.plan.location)
            .map_err(NodeError::Internal)?;
        Ok((shard.next_seq() - 1, record.catching_up))
    }
}

impl Handler<InstallCopy> for ShardActor {
    type Result = Result<Position, NodeError>;

    fn handle(&mut self, m: InstallCopy, _: &mut Context<Self>) -> Self::Result {
        let copy = self.copy()?.clone();
        let location = self.plan.location.clone();
        if self.plan.role != Role::Follower || !self.plan.local {
            return Err(NodeError::invalid(format!(
                "shard {}: only a local follower copy takes a checkpoint",
                self.slot.id
            )));
        }
        self.unfenced_record(&copy, &location, m.epoch)?;
        let started = Instant::now();
        let io = |what: &str, e: std::io::Error| NodeError::Internal(format!("{what}: {e}"));
        // Durably catching up before the old copy goes: a crash from here on leaves an
        // empty or partial copy that answers no fence. The checkpoint's frames were
        // sequenced at or before the primary's epoch; the copy's log is now a prefix of
        // that primary's.
        copy.store
            .update(&location, |r| {
                r.catching_up = true;
                r.last_epoch = m.epoch;
            })
            .map_err(NodeError::Internal)?;
        self.slot.set_state(SlotState::Opening);
        if let Err(e) = self.close_engine() {
            tracing::warn!(shard = %self.slot.id, error = %e, "closing the replaced copy reported an error");
        }
        copy.store.forget_tail(&location);
        let old = format!("{location}.replaced");
        let swap = || -> Result<(), NodeError> {
            match std::fs::remove_dir_all(&old) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&format!("remove {old}"), e)),
            }
            match std::fs::rename(&location, &old) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&format!("rename {location}"), e)),
            }
            std::fs::rename(&m.staging, &location)
                .map_err(|e| io(&format!("rename {}", m.staging.display()), e))?;
            if let Some(parent) = std::path::Path::new(&location).parent() {
                std::fs::File::open(parent)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| io(&format!("sync {}", parent.display()), e))?;
            }
            std::fs::remove_dir_all(&old).map_err(|e| io(&format!("remove {old}"), e))
        };
        let opened = swap().and_then(|()| {
            self.plan.open().map_err(|err| NodeError::Engine {
                err,
                ctx: self.slot.ctx(m.epoch),
            })
        });
        let shard = match opened {
            Ok(shard) => shard,
            Err(e) => {
                tracing::error!(shard = %self.slot.id, error = %e, "installing a checkpoint failed");
                // Open whatever is at the location again (an empty copy if the swap got
                // that far: it is marked as catching up) so the primary can retry.
                match self.plan.open() {
                    Ok(shard) => {
                        self.shard = Some(shard.clone());
                        self.slot.set_state(SlotState::Serving(shard));
                    }
                    Err(err) => self.slot.set_state(SlotState::Failed(err)),
                }
                return Err(e);
            }
        };
        let durable_seq = shard.next_seq() - 1;
        tracing::info!(shard = %self.slot.id, seq = m.seq, durable_seq,
            ms = started.elapsed().as_millis() as u64,
            "installed the primary's checkpoint; catching up from its tail");
        self.shard = Some(shard.clone());
        self.slot.set_state(SlotState::Serving(shard));
        Ok(Position {
            durable_seq,
            gap: false,
            needs_copy: false,
        })
    }
}

impl Handler<Close> for ShardActor {
    type Result = Result<(), vecshard_engine::Error>;

    fn handle(&mut self, _: Close, ctx: &mut Context<Self>) -> Self::Result {
        self.commit();
        let result = self.close_engine();
        self.slot.set_state(SlotState::Closed);
        ctx.stop();
        result
    }
}

impl Handler<EngineStopped> for ShardActor {
    type Result = ();

    fn handle(&mut self, _: EngineStopped, _: &mut Context<Self>) {
        self.commit();
        let _ = self.close_engine();
    }
}

impl Handler<Hold> for ShardActor {
    type Result = ();

    fn handle(&mut self, Hold(release, held): Hold, _: &mut Context<Self>) {
        let _ = held.send(());
        let _ = release.recv();
    }
}

#[cfg(test)]
mod tests {
    use super::diverged;

    #[test]
    fn a_copy_past_the_next_epochs_start_has_diverged() {
        // Epoch 5 started from 100, epoch 8 from 140.
        let starts = [(5, 100), (8, 140)];
        assert!(diverged(&starts, 4, 100).is_ok(), "a prefix");
        assert!(diverged(&starts, 4, 90).is_ok());
        let e = diverged(&starts, 4, 101).unwrap_err();
        assert!(e.contains("epoch 5 started from 100"), "{e}");
        assert!(diverged(&starts, 5, 140).is_ok());
        assert!(diverged(&starts, 5, 141).is_err());
        assert!(diverged(&starts, 8, 10_000).is_ok(), "the current epoch");
        assert!(diverged(&[], 0, 10_000).is_ok(), "never promoted");
    }
}
