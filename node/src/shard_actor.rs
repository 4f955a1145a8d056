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

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;
use vecshard_engine::{ErrorKind, Key, Options, Point, Shard, ShardSpec};

use crate::error::NodeError;
use crate::metrics::Metrics;
use crate::placement::{RestoreFrom, Role};
use crate::registry::{Slot, SlotState};

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
}

impl OpenPlan {
    /// Open the engine. A writer claims the assignment epoch in storage. A local shard
    /// has exactly one possible writer (its directory's lock) and never moves between
    /// nodes, so when the engine already carries this epoch (the node restarted and the
    /// router re-sent its assignment) it reopens claiming the next engine epoch.
    pub fn open(&self) -> vecshard_engine::Result<Shard> {
        match self.role {
            Role::Writer => {
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
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Result<(), NodeError>>,
}

impl Message for Write {
    type Result = ();
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
            self.finish(w.reply, w.caller_epoch, result);
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
                    self.finish(w.reply, w.caller_epoch, result);
                }
            }
            result => {
                for w in group {
                    self.finish(w.reply, w.caller_epoch, result.clone());
                }
            }
        }
    }

    /// One engine call for `requests` grouped requests.
    fn run(
        &self,
        shard: &Shard,
        op: WriteOp,
        requests: usize,
    ) -> Result<(), vecshard_engine::Error> {
        let points = op.len();
        let started = Instant::now();
        let result = match op {
            WriteOp::Upsert(p) => shard.upsert(p),
            WriteOp::Delete(k) => shard.delete(k),
        };
        self.metrics
            .observe_engine_write(&self.slot.id, started.elapsed(), requests, points);
        result.map(|_| ())
    }

    fn finish(
        &mut self,
        reply: oneshot::Sender<Result<(), NodeError>>,
        caller_epoch: u64,
        result: Result<(), vecshard_engine::Error>,
    ) {
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
        match self.shard.take() {
            Some(shard) => shard.close(),
            None => Ok(()),
        }
    }
}

impl Actor for ShardActor {
    type Context = Context<Self>;
}

impl Handler<Open> for ShardActor {
    type Result = ();

    fn handle(&mut self, _: Open, _: &mut Context<Self>) {
        let started = Instant::now();
        match self.plan.open() {
            Ok(shard) => {
                tracing::info!(shard = %self.slot.id, location = %self.plan.location,
                    ms = started.elapsed().as_millis() as u64, "opened");
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
