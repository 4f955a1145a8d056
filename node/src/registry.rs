//! The shards a node holds: one [`Slot`] per assignment (shard, epoch, role), its
//! lifecycle state, and the ownership check every shard-level call goes through.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use actix::{Addr, Arbiter};
use parking_lot::{Mutex, RwLock};
use vecshard_engine::{Shard, ShardSpec, Stats};

use crate::conversions::Target;
use crate::error::{NodeError, NotOwnerReason, ShardCtx};
use crate::placement::{Role, ShardId};
use crate::replication::Replicator;
use crate::replication::observe::FollowerLag;
use crate::shard_actor::ShardActor;

/// What a call needs from the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Search, get, scan: writer or reader.
    Read,
    /// Upsert, delete: writer only (the primary, for a replicated shard).
    Write,
    /// A primary's frames: followers only.
    Replicate,
}

/// A slot's lifecycle state.
#[derive(Debug, Clone)]
pub enum SlotState {
    /// The engine is opening (a writer replays its WAL).
    Opening,
    /// Serving calls through this engine handle.
    Serving(Shard),
    /// A newer writer claimed the shard in storage.
    Fenced(String),
    /// Opening or serving failed.
    Failed(vecshard_engine::Error),
    /// Closed after a release or at shutdown.
    Closed,
}

/// The name of a state, for status reports and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateName {
    /// Opening.
    Opening,
    /// Serving.
    Serving,
    /// Fenced.
    Fenced,
    /// Failed.
    Failed,
    /// Closed.
    Closed,
}

impl StateName {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            StateName::Opening => "opening",
            StateName::Serving => "serving",
            StateName::Fenced => "fenced",
            StateName::Failed => "failed",
            StateName::Closed => "closed",
        }
    }
}

/// A shard's reported status.
#[derive(Debug, Clone)]
pub struct SlotStatus {
    /// The shard.
    pub id: ShardId,
    /// The assignment epoch.
    pub epoch: u64,
    /// The role.
    pub role: Role,
    /// The state.
    pub state: StateName,
    /// Live points (0 unless serving).
    pub live_points: u64,
    /// Segments (0 unless serving).
    pub segments: u64,
    /// Why the shard is failed or fenced.
    pub error: String,
    /// The engine's counters, when serving.
    pub stats: Option<Stats>,
    /// Writes queued or running in the shard's actor.
    pub queued_writes: usize,
    /// A replicated primary's followers against its log (`None` elsewhere).
    pub followers: Option<Vec<FollowerLag>>,
}

/// One assignment held by the node.
pub struct Slot {
    /// The shard.
    pub id: ShardId,
    /// The assignment epoch.
    pub epoch: u64,
    /// The role.
    pub role: Role,
    /// The engine location.
    pub location: String,
    /// Dimension, metric, index parameters.
    pub spec: ShardSpec,
    /// Estimated memory while open ([`crate::budget::shard_estimate`]).
    pub memory: u64,
    state: RwLock<SlotState>,
    addr: OnceLock<Addr<ShardActor>>,
    arbiter: Mutex<Option<Arbiter>>,
    /// Writes queued in the actor's mailbox or running (bounded by the mailbox capacity).
    pub queued: AtomicUsize,
    /// A replicated shard's primary: its writes wait for followers' acknowledgements.
    pub primary_of_replicas: bool,
    /// The primary's replication once its engine is open, for status reports.
    replicator: Mutex<Option<Replicator>>,
    /// A writer that another node could replace (a replicated primary, an object-store
    /// writer) in a cluster: reads need a lease from the Raft leader, and this is until
    /// when it runs (`None` before the first grant or after a refusal). `None` here: no
    /// lease needed. Note 014, "Read leases".
    lease: Option<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("id", &self.id)
            .field("epoch", &self.epoch)
            .field("role", &self.role)
            .finish()
    }
}

impl Slot {
    /// A new slot in state `Opening`, estimated to hold `memory` bytes while open.
    pub fn new(
        id: ShardId,
        epoch: u64,
        role: Role,
        location: String,
        spec: ShardSpec,
        memory: u64,
        primary_of_replicas: bool,
    ) -> Self {
        Slot {
            id,
            epoch,
            role,
            location,
            spec,
            memory,
            state: RwLock::new(SlotState::Opening),
            addr: OnceLock::new(),
            arbiter: Mutex::new(None),
            queued: AtomicUsize::new(0),
            primary_of_replicas,
            replicator: Mutex::new(None),
            lease: None,
        }
    }

    /// The slot's reads need a read lease (see [`Slot::check_lease`]).
    pub fn leased(mut self) -> Self {
        self.lease = Some(Mutex::new(None));
        self
    }

    /// Whether reads of this slot need a lease.
    pub fn needs_lease(&self) -> bool {
        self.lease.is_some()
    }

    /// Set (a grant: `Some(until)`) or clear (`None`) the read lease.
    pub fn set_lease(&self, until: Option<Instant>) {
        if let Some(lease) = &self.lease {
            let mut l = lease.lock();
            *l = match (until, *l) {
                (Some(new), Some(old)) => Some(new.max(old)),
                (new, _) => new,
            };
        }
    }

    /// Refuse a read when the slot needs a lease and holds none at `now`: a writer that
    /// has not been confirmed by the Raft leader lately may have been replaced.
    pub fn check_lease(&self, now: Instant) -> Result<(), NodeError> {
        let Some(lease) = &self.lease else {
            return Ok(());
        };
        let why = match *lease.lock() {
            Some(until) if until > now => return Ok(()),
            None => "the Raft leader has not confirmed that this node holds the shard at this epoch; another node may hold it now".into(),
            Some(until) => format!(
                "its read lease ran out {} ms ago and the Raft leader has not renewed it; another node may hold the shard now",
                now.saturating_duration_since(until).as_millis()
            ),
        };
        Err(NodeError::Unconfirmed {
            id: self.id.clone(),
            epoch: self.epoch,
            why,
        })
    }

    /// The context of a call with `caller_epoch` for error details.
    pub fn ctx(&self, caller_epoch: u64) -> ShardCtx {
        ShardCtx {
            id: self.id.clone(),
            caller_epoch,
            held: Some((self.epoch, self.role)),
        }
    }

    /// Attach the actor and the arbiter it runs on.
    pub fn attach(&self, addr: Addr<ShardActor>, arbiter: Arbiter) {
        let _ = self.addr.set(addr);
        *self.arbiter.lock() = Some(arbiter);
    }

    /// The shard's actor, once started.
    pub fn addr(&self) -> Option<&Addr<ShardActor>> {
        self.addr.get()
    }

    /// Take the arbiter (to stop and join it after the actor closed).
    pub fn take_arbiter(&self) -> Option<Arbiter> {
        self.arbiter.lock().take()
    }

    /// The current state.
    pub fn state(&self) -> SlotState {
        self.state.read().clone()
    }

    /// The current state's name.
    pub fn state_name(&self) -> StateName {
        match &*self.state.read() {
            SlotState::Opening => StateName::Opening,
            SlotState::Serving(_) => StateName::Serving,
            SlotState::Fenced(_) => StateName::Fenced,
            SlotState::Failed(_) => StateName::Failed,
            SlotState::Closed => StateName::Closed,
        }
    }

    /// Move to a new state. Fenced, failed and closed are final (a later state is
    /// ignored), except that closed follows either.
    pub fn set_state(&self, next: SlotState) {
        let mut s = self.state.write();
        let final_state = matches!(*s, SlotState::Fenced(_) | SlotState::Failed(_));
        if matches!(*s, SlotState::Closed) || (final_state && !matches!(next, SlotState::Closed)) {
            return;
        }
        let name = match &next {
            SlotState::Opening => "opening",
            SlotState::Serving(_) => "serving",
            SlotState::Fenced(_) => "fenced",
            SlotState::Failed(_) => "failed",
            SlotState::Closed => "closed",
        };
        match &next {
            SlotState::Fenced(why) => {
                tracing::warn!(shard = %self.id, epoch = self.epoch, %why, "shard fenced")
            }
            SlotState::Failed(err) => {
                tracing::error!(shard = %self.id, epoch = self.epoch, %err, "shard failed")
            }
            _ => {
                tracing::info!(shard = %self.id, epoch = self.epoch, role = self.role.as_str(), state = name, "shard state")
            }
        }
        *s = next;
    }

    /// The engine handle for a call needing `access`, or why the call is refused.
    pub fn serving(&self, caller_epoch: u64, access: Access) -> Result<Shard, NodeError> {
        let refused = match (access, self.role) {
            (Access::Write, Role::Reader) => Some((NotOwnerReason::NotWriter, None)),
            (Access::Write, Role::Follower) => Some((
                NotOwnerReason::NotPrimary,
                Some("this node follows the shard; write to its primary".to_string()),
            )),
            (Access::Replicate, Role::Writer | Role::Reader) => Some((
                NotOwnerReason::Unassigned,
                Some(format!(
                    "this node holds the shard as {}, not as a follower",
                    self.role.as_str()
                )),
            )),
            (Access::Read | Access::Write | Access::Replicate, _) => None,
        };
        if let Some((reason, detail)) = refused {
            return Err(NodeError::NotOwner {
                ctx: self.ctx(caller_epoch),
                reason,
                detail,
            });
        }
        match &*self.state.read() {
            SlotState::Serving(shard) => Ok(shard.clone()),
            SlotState::Opening => Err(NodeError::Opening(self.id.clone())),
            SlotState::Fenced(why) => Err(NodeError::NotOwner {
                ctx: self.ctx(caller_epoch),
                reason: NotOwnerReason::Fenced,
                detail: Some(why.clone()),
            }),
            SlotState::Failed(err) => Err(NodeError::ShardFailed {
                id: self.id.clone(),
                err: err.clone(),
            }),
            SlotState::Closed => Err(NodeError::not_owner(
                self.ctx(caller_epoch),
                NotOwnerReason::Unassigned,
            )),
        }
    }

    /// The slot's status. Reads engine stats (may wait for a manifest commit: call off
    /// the async runtime). An engine that fenced or failed itself in the background is
    /// noticed here and the slot follows it.
    pub fn status(&self) -> SlotStatus {
        let state = self.state();
        let stats = match &state {
            SlotState::Serving(shard) => Some(shard.stats()),
            _ => None,
        };
        if let Some(st) = &stats {
            match st.state {
                "fenced" | "failed" => self.engine_stopped(st.state),
                _ => {}
            }
        }
        let (state_name, error) = match self.state() {
            SlotState::Opening => (StateName::Opening, String::new()),
            SlotState::Serving(_) => (StateName::Serving, String::new()),
            SlotState::Fenced(why) => (StateName::Fenced, why),
            SlotState::Failed(e) => (StateName::Failed, e.to_string()),
            SlotState::Closed => (StateName::Closed, String::new()),
        };
        SlotStatus {
            id: self.id.clone(),
            epoch: self.epoch,
            role: self.role,
            state: state_name,
            live_points: stats.as_ref().map_or(0, |s| s.live_points),
            segments: stats.as_ref().map_or(0, |s| s.segments),
            error,
            stats: stats.filter(|_| state_name == StateName::Serving),
            queued_writes: self.queued.load(Ordering::Relaxed),
            followers: self.replicator.lock().as_ref().map(Replicator::followers),
        }
    }

    /// The primary's replication started (`Some`) or ended (`None`).
    pub fn set_replicator(&self, replicator: Option<Replicator>) {
        *self.replicator.lock() = replicator;
    }

    /// The engine stopped taking writes by itself (a background flush found a newer
    /// writer, or storage failed): record why and let the actor close it.
    fn engine_stopped(&self, engine_state: &str) {
        let SlotState::Serving(shard) = self.state() else {
            return;
        };
        // Any call on a stopped engine returns the error that stopped it (a search
        // checks that first, before its arguments).
        let probe = vecshard_engine::SearchRequest::new(Vec::new(), 1);
        let err = shard.search(&probe).err().unwrap_or_else(|| {
            vecshard_engine::Error::new(
                vecshard_engine::ErrorKind::Io,
                format!("the engine reports state {engine_state}"),
            )
        });
        self.note_engine_error(&err);
    }

    /// After an engine error: if the engine stopped for good, move the slot to fenced
    /// or failed and ask the actor to close the engine. Returns whether it did.
    pub fn note_engine_error(&self, err: &vecshard_engine::Error) -> bool {
        let SlotState::Serving(shard) = self.state() else {
            return false;
        };
        let next = match shard.stats().state {
            "fenced" => SlotState::Fenced(err.message().to_string()),
            "failed" => SlotState::Failed(err.clone()),
            _ if err.kind() == vecshard_engine::ErrorKind::Fenced => {
                SlotState::Fenced(err.message().to_string())
            }
            _ => return false,
        };
        self.set_state(next);
        if let Some(addr) = self.addr() {
            addr.do_send(crate::shard_actor::EngineStopped);
        }
        true
    }
}

/// Every slot, by shard.
#[derive(Debug, Default)]
pub struct Registry {
    slots: RwLock<BTreeMap<ShardId, Arc<Slot>>>,
    /// Closed slots not yet reported.
    closed: Mutex<Vec<SlotStatus>>,
    /// Serialises assign and release per shard.
    locks: Mutex<HashMap<ShardId, Arc<tokio::sync::Mutex<()>>>>,
    /// A read was refused for want of a lease: the heartbeat loop sends a round now.
    pub lease_wanted: tokio::sync::Notify,
}

impl Registry {
    /// The slot held for a shard.
    pub fn get(&self, id: &ShardId) -> Option<Arc<Slot>> {
        self.slots.read().get(id).cloned()
    }

    /// Hold `slot` for its shard, returning the one it replaces.
    pub fn insert(&self, slot: Arc<Slot>) -> Option<Arc<Slot>> {
        self.slots.write().insert(slot.id.clone(), slot)
    }

    /// Forget the slot (if it is still the one held) and report it as closed once.
    pub fn remove(&self, slot: &Arc<Slot>) {
        let mut slots = self.slots.write();
        if slots.get(&slot.id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(&slot.id);
        }
    }

    /// Report a closed slot in the next status.
    pub fn note_closed(&self, slot: &Slot) {
        self.closed.lock().push(SlotStatus {
            id: slot.id.clone(),
            epoch: slot.epoch,
            role: slot.role,
            state: StateName::Closed,
            live_points: 0,
            segments: 0,
            error: String::new(),
            stats: None,
            queued_writes: 0,
            followers: None,
        });
    }

    /// Estimated memory of the slots that hold (or are opening) an engine, other than
    /// `except`'s, and how many they are.
    pub fn memory_in_use(&self, except: &ShardId) -> (u64, usize) {
        self.slots
            .read()
            .values()
            .filter(|s| &s.id != except)
            .filter(|s| matches!(s.state_name(), StateName::Opening | StateName::Serving))
            .fold((0, 0), |(bytes, n), s| (bytes + s.memory, n + 1))
    }

    /// Every slot held.
    pub fn all(&self) -> Vec<Arc<Slot>> {
        self.slots.read().values().cloned().collect()
    }

    /// The per-shard lock that serialises assign and release.
    pub fn lifecycle_lock(&self, id: &ShardId) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().entry(id.clone()).or_default().clone()
    }

    /// The slot and engine for a call, after the ownership check: the node holds the
    /// shard at exactly the caller's epoch, in a role allowing `access`, serving.
    pub fn lookup(&self, t: &Target, access: Access) -> Result<(Arc<Slot>, Shard), NodeError> {
        let Some(slot) = self.get(&t.id) else {
            return Err(NodeError::not_owner(
                ShardCtx {
                    id: t.id.clone(),
                    caller_epoch: t.epoch,
                    held: None,
                },
                NotOwnerReason::Unassigned,
            ));
        };
        if t.epoch != slot.epoch {
            let reason = if t.epoch < slot.epoch {
                NotOwnerReason::StaleCaller
            } else {
                NotOwnerReason::StaleNode
            };
            return Err(NodeError::not_owner(slot.ctx(t.epoch), reason));
        }
        let shard = slot.serving(t.epoch, access)?;
        Ok((slot, shard))
    }

    /// Apply the Raft leader's heartbeat answer: the slots in `leased` (at their epochs)
    /// read until `until`; the other leased-kind writer slots the heartbeat reported
    /// (`reported`) lose their lease, since the leader's map no longer gives them to this
    /// node at that epoch.
    pub fn grant_leases(&self, until: Instant, leased: &[Target], reported: &[SlotStatus]) {
        for slot in self.all() {
            if !slot.needs_lease() {
                continue;
            }
            if leased
                .iter()
                .any(|t| t.id == slot.id && t.epoch == slot.epoch)
            {
                slot.set_lease(Some(until));
            } else if reported
                .iter()
                .any(|r| r.id == slot.id && r.epoch == slot.epoch && r.role == Role::Writer)
            {
                slot.set_lease(None);
            }
        }
    }

    /// Status of every slot and of the closed slots not yet reported, ordered by shard.
    /// `drain_closed`: count the closed slots as reported now. Blocking: call off the
    /// async runtime.
    pub fn statuses(&self, drain_closed: bool) -> Vec<SlotStatus> {
        let mut out: Vec<SlotStatus> = self.all().iter().map(|s| s.status()).collect();
        let closed = if drain_closed {
            std::mem::take(&mut *self.closed.lock())
        } else {
            self.closed.lock().clone()
        };
        out.extend(closed);
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Count the closed slots in `reported` as reported (a router received them).
    pub fn forget_closed(&self, reported: &[SlotStatus]) {
        self.closed.lock().retain(|c| {
            !reported
                .iter()
                .any(|r| r.state == StateName::Closed && r.id == c.id && r.epoch == c.epoch)
        });
    }
}
