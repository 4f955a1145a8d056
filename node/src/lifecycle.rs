//! Shard lifecycle driven by the router: assign (open, or reopen at a higher epoch),
//! release (close, optionally delete), and closing everything at shutdown.
//!
//! Assign and release of one shard are serialised by a per-shard lock that the
//! background open keeps until the engine is open, so a release or a newer assignment
//! always sees a settled engine. An assignment returns as soon as the new slot is in
//! the table (state OPENING); the engine opens on the shard's own actor thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vecshard_engine::paths;
use vecshard_engine::storage::{StorageOptions, open_storage};
use vecshard_engine::{Error as EngineError, ErrorKind};

use crate::actor_system::ActorSystem;
use crate::budget;
use crate::config::NodeConfig;
use crate::error::{NodeError, NotOwnerReason, ShardCtx};
use crate::metrics::Metrics;
use crate::placement::{
    Assignment, ReplicaSet, Role, ShardId, Storage, check_storage_allowed, location,
};
use crate::registry::{Registry, Slot, SlotState, StateName};
use crate::replication::PrimaryPlan;
use crate::replication::store::{ReplicaStore, record_path};
use crate::shard_actor::{Close, Open, OpenPlan, ShardActor};
use crate::shard_actor::{FenceAt, ReplicaCopy};

/// Remove a local shard's directory and its replica record (a replicated copy's), and
/// its collection's directory once empty.
fn delete_local_shard(data_dir: &Path, dir: &Path) -> Result<(), EngineError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(EngineError::new(
                ErrorKind::Io,
                format!("delete {}: {e}", dir.display()),
            ));
        }
    }
    let record = record_path(&dir.to_string_lossy());
    for file in [record.clone(), format!("{record}.tmp")] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(EngineError::new(
                    ErrorKind::Io,
                    format!("delete {file}: {e}"),
                ));
            }
        }
    }
    if let Some(parent) = dir.parent().filter(|p| *p != data_dir) {
        let _ = std::fs::remove_dir(parent);
    }
    Ok(())
}

/// Delete every object of a shard on an object store: segments and WAL first, the
/// manifest versions last (a crash in between leaves a manifest naming missing files,
/// which a later delete finishes).
fn delete_object_store_shard(location: &str) -> Result<(), EngineError> {
    let opts = StorageOptions {
        block_cache_bytes: 0,
        ..StorageOptions::default()
    };
    let storage = open_storage(location, &opts)?;
    for dir in [paths::SEGMENT_DIR, paths::WAL_DIR, paths::MANIFEST_DIR] {
        for object in storage.list(dir)? {
            storage.delete(&object.path)?;
        }
    }
    Ok(())
}

/// Extra mailbox room beyond the write bound, for lifecycle messages.
const LIFECYCLE_MAILBOX_ROOM: usize = 16;

/// Opens and closes shards.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    registry: Arc<Registry>,
    actors: Arc<ActorSystem>,
    metrics: Arc<Metrics>,
    config: Arc<NodeConfig>,
    /// How a replicated shard's primary dials its followers.
    outbound: vecshard_security::Outbound,
    /// Replicated copies' positions and recent frames.
    replicas: Arc<ReplicaStore>,
    /// Serialises the budget check and the insert of every assignment, so two shards
    /// cannot both take the last room.
    admission: Arc<parking_lot::Mutex<()>>,
}

impl Lifecycle {
    /// A lifecycle over `registry`, starting actors in `actors`.
    pub fn new(
        registry: Arc<Registry>,
        actors: Arc<ActorSystem>,
        metrics: Arc<Metrics>,
        config: Arc<NodeConfig>,
        outbound: vecshard_security::Outbound,
    ) -> Self {
        Lifecycle {
            registry,
            actors,
            metrics,
            config,
            outbound,
            replicas: Arc::default(),
            admission: Arc::default(),
        }
    }

    /// Take an assignment. Returns the shard's state right after accepting it.
    pub async fn assign(&self, a: Assignment) -> Result<StateName, NodeError> {
        if let Storage::Url(url) = &a.storage {
            check_storage_allowed(url, &self.config.allowed_storage())
                .map_err(NodeError::invalid)?;
        }
        let guard = self.registry.lifecycle_lock(&a.id).lock_owned().await;
        let held = self.registry.get(&a.id);
        if let Some(old) = &held {
            if a.epoch < old.epoch {
                return Err(NodeError::not_owner(
                    old.ctx(a.epoch),
                    NotOwnerReason::StaleCaller,
                ));
            }
            if a.epoch == old.epoch {
                if a.role != old.role {
                    return Err(NodeError::invalid(format!(
                        "shard {} is held at epoch {} as {}; an assignment at the same epoch cannot change the role",
                        a.id,
                        a.epoch,
                        old.role.as_str()
                    )));
                }
                if old.spec.dim != a.spec.dim || old.spec.metric != a.spec.metric {
                    return Err(NodeError::invalid(format!(
                        "shard {} is held at epoch {} as {}-d {}, not {}-d {}",
                        a.id, a.epoch, old.spec.dim, old.spec.metric, a.spec.dim, a.spec.metric
                    )));
                }
                match old.state_name() {
                    // A failed open is retried by repeating the assignment.
                    StateName::Failed => {}
                    state => return Ok(state),
                }
            }
        }
        let local = a.storage == Storage::Local;
        let primary = match (&a.replication, a.role) {
            (Some(set), Role::Writer) => Some(self.primary_plan(&a.id, set)),
            _ => None,
        };
        let plan = OpenPlan {
            location: a.location(&self.config.node.data_dir),
            spec: a.spec,
            role: a.role,
            epoch: a.epoch,
            local,
            options: self.config.engine_options(local),
            refresh: self.config.reader_refresh(),
            restore: a.restore.clone(),
            primary,
            replica: a.replication.as_ref().map(|set| ReplicaCopy {
                store: self.replicas.clone(),
                tail_bytes: self.config.node.replica_tail_bytes,
                epoch_starts: set.epoch_starts.clone(),
            }),
        };
        let slot = Slot::new(
            a.id.clone(),
            a.epoch,
            a.role,
            plan.location.clone(),
            a.spec,
            budget::shard_estimate(
                &plan.options,
                a.role,
                local,
                a.replication
                    .as_ref()
                    .map_or(0, |_| self.config.node.replica_tail_bytes as u64),
            ),
            plan.primary.is_some(),
        );
        // A writer another node could replace answers reads only under the Raft
        // leader's lease (note 014, "Read leases"); a local unreplicated shard never
        // moves, and a node outside a cluster has no leader to ask.
        let replaceable = a.role == Role::Writer && (!local || plan.primary.is_some());
        let slot = Arc::new(if replaceable && !self.config.cluster.routers.is_empty() {
            slot.leased()
        } else {
            slot
        });
        self.admit(&slot, held.as_ref())?;
        tracing::info!(shard = %a.id, epoch = a.epoch, role = a.role.as_str(), location = %plan.location, "assigned");
        let this = self.clone();
        tokio::spawn(async move {
            let _serialised = guard;
            if let Some(old) = held {
                // Replaced by the newer assignment: not reported as closed.
                if let Err(e) = this.close_slot(&old).await {
                    tracing::warn!(shard = %old.id, epoch = old.epoch, error = %e, "closing the replaced assignment failed");
                }
            }
            this.open_slot(slot, plan).await;
        });
        Ok(StateName::Opening)
    }

    /// How this node, the primary, replicates to the other replicas of `set`.
    fn primary_plan(&self, id: &ShardId, set: &ReplicaSet) -> PrimaryPlan {
        let me = &self.config.node.id;
        let followers: Vec<_> = set
            .replicas
            .iter()
            .filter(|p| &p.node_id != me)
            .cloned()
            .collect();
        PrimaryPlan {
            factor: set.replicas.len() as u32,
            followers,
            write_ack: set.write_ack,
            outbound: self.outbound.clone(),
            runtime: tokio::runtime::Handle::current(),
            ack_timeout: std::time::Duration::from_millis(self.config.node.replica_ack_timeout_ms),
            tail_bytes: self.config.node.replica_tail_bytes,
            node_id: me.clone(),
            routers: self.config.cluster.routers.clone(),
            lag_timeout: std::time::Duration::from_millis(self.config.node.replica_lag_timeout_ms),
            ack_wait: Some(self.metrics.ack_wait(id)),
        }
    }

    /// Fence this node's copy of a replicated shard at `epoch` (above the one held) and
    /// answer its position (last epoch, last sequence number).
    pub async fn fence(&self, id: &ShardId, epoch: u64) -> Result<(u64, u64), NodeError> {
        let ctx = |held: Option<&Arc<Slot>>| ShardCtx {
            id: id.clone(),
            caller_epoch: epoch,
            held: held.map(|s| (s.epoch, s.role)),
        };
        let Some(slot) = self.registry.get(id) else {
            return Err(NodeError::not_owner(ctx(None), NotOwnerReason::Unassigned));
        };
        if slot.epoch >= epoch {
            return Err(NodeError::not_owner(
                ctx(Some(&slot)),
                NotOwnerReason::StaleCaller,
            ));
        }
        let addr = slot.addr().ok_or_else(|| NodeError::Opening(id.clone()))?;
        addr.send(FenceAt(epoch))
            .await
            .map_err(|_| NodeError::not_owner(ctx(Some(&slot)), NotOwnerReason::Unassigned))?
    }

    /// Hold `slot` if its memory estimate fits the node's budget (the slot it replaces
    /// does not count). Otherwise refuse: the shard shows FAILED with the reason (unless
    /// an engine is still held for it, which stays as it is), and the caller gets
    /// RESOURCE_EXHAUSTED. Repeating the assignment retries.
    fn admit(&self, slot: &Arc<Slot>, held: Option<&Arc<Slot>>) -> Result<(), NodeError> {
        let _one_at_a_time = self.admission.lock();
        let (used, count) = self.registry.memory_in_use(&slot.id);
        let budget = self.config.node.memory_budget_bytes;
        if let Err(why) = budget::admit(budget, used, count, slot.memory, &slot.id) {
            let engine_held = held
                .is_some_and(|h| matches!(h.state_name(), StateName::Opening | StateName::Serving));
            if !engine_held {
                slot.set_state(SlotState::Failed(EngineError::new(ErrorKind::Busy, &why)));
                self.registry.insert(slot.clone());
            }
            tracing::warn!(shard = %slot.id, epoch = slot.epoch, reason = %why, "assignment refused");
            return Err(NodeError::OverBudget(why));
        }
        self.registry.insert(slot.clone());
        Ok(())
    }

    async fn open_slot(&self, slot: Arc<Slot>, plan: OpenPlan) {
        let (actor_slot, metrics) = (slot.clone(), self.metrics.clone());
        let group = self.config.node.write_group_points;
        let mailbox = self.config.node.mailbox_capacity + LIFECYCLE_MAILBOX_ROOM;
        let spawned = self
            .actors
            .spawn(mailbox, move || {
                ShardActor::new(actor_slot, plan, group, metrics)
            })
            .await;
        match spawned {
            Ok((addr, arbiter)) => {
                slot.attach(addr.clone(), arbiter);
                if addr.send(Open).await.is_err() {
                    slot.set_state(SlotState::Failed(EngineError::new(
                        ErrorKind::Io,
                        "the shard's actor stopped while opening",
                    )));
                }
            }
            Err(e) => slot.set_state(SlotState::Failed(EngineError::new(
                ErrorKind::Io,
                format!("cannot start the shard's actor: {e}"),
            ))),
        }
    }

    /// Close a slot through its actor (queued writes finish first), then stop its
    /// arbiter thread.
    async fn close_slot(&self, slot: &Arc<Slot>) -> Result<(), NodeError> {
        let result = match slot.addr() {
            Some(addr) => addr.send(Close).await.unwrap_or(Ok(())),
            None => Ok(()),
        };
        slot.set_state(SlotState::Closed);
        if let Some(arbiter) = slot.take_arbiter() {
            arbiter.stop();
            let _ = tokio::task::spawn_blocking(move || arbiter.join()).await;
        }
        result.map_err(|err| NodeError::Engine {
            err,
            ctx: slot.ctx(slot.epoch),
        })
    }

    /// Release a shard held at `epoch` or older; deleting its data if asked (writers
    /// only).
    pub async fn release(&self, id: ShardId, epoch: u64, delete: bool) -> Result<(), NodeError> {
        let lock = self.registry.lifecycle_lock(&id);
        let _serialised = lock.lock().await;
        let Some(slot) = self.registry.get(&id) else {
            return Ok(());
        };
        if slot.epoch > epoch {
            return Err(NodeError::not_owner(
                slot.ctx(epoch),
                NotOwnerReason::StaleCaller,
            ));
        }
        self.registry.remove(&slot);
        let closed = self.close_slot(&slot).await;
        self.registry.note_closed(&slot);
        tracing::info!(shard = %id, epoch = slot.epoch, delete, "released");
        if let Err(e) = &closed {
            // Acknowledged writes are in the WAL already: nothing is lost.
            tracing::warn!(shard = %id, error = %e, "closing the engine reported an error");
        }
        if delete && matches!(slot.role, Role::Writer | Role::Follower) {
            self.delete_location(slot.location.clone(), slot.ctx(slot.epoch))
                .await?;
        }
        Ok(())
    }

    /// Delete a dropped collection's shard data at the location `storage` and
    /// `incarnation` name, whether or not this node holds the shard (it may have restarted,
    /// or released it already). A shard held at that location, at `epoch` or older, is
    /// closed first; one held elsewhere (a newer incarnation) is left alone.
    pub async fn delete_dropped(
        &self,
        id: ShardId,
        epoch: u64,
        storage: Storage,
        incarnation: u64,
    ) -> Result<(), NodeError> {
        if let Storage::Url(url) = &storage {
            check_storage_allowed(url, &self.config.allowed_storage())
                .map_err(NodeError::invalid)?;
        }
        let location = location(&self.config.node.data_dir, &id, &storage, incarnation);
        let lock = self.registry.lifecycle_lock(&id);
        let _serialised = lock.lock().await;
        let held = self.registry.get(&id).filter(|s| s.location == location);
        let ctx = match &held {
            Some(slot) => slot.ctx(epoch),
            None => ShardCtx {
                id: id.clone(),
                caller_epoch: epoch,
                held: None,
            },
        };
        if let Some(slot) = held {
            if slot.epoch > epoch {
                return Err(NodeError::not_owner(ctx, NotOwnerReason::StaleCaller));
            }
            self.registry.remove(&slot);
            if let Err(e) = self.close_slot(&slot).await {
                tracing::warn!(shard = %id, error = %e, "closing the engine reported an error");
            }
            self.registry.note_closed(&slot);
        }
        tracing::info!(shard = %id, incarnation, %location, "deleting a dropped shard's data");
        self.delete_location(location, ctx).await
    }

    /// Delete a shard's data at `location` (a local directory or an object-store root).
    async fn delete_location(&self, location: String, ctx: ShardCtx) -> Result<(), NodeError> {
        let data_dir = self.config.node.data_dir.clone();
        self.replicas.forget(&location);
        tokio::task::spawn_blocking(move || {
            let deleted = if location.contains("://") {
                delete_object_store_shard(&location)
            } else {
                delete_local_shard(&data_dir, &PathBuf::from(&location))
            };
            deleted.map_err(|err| NodeError::Engine { err, ctx })
        })
        .await
        .map_err(|e| NodeError::Internal(format!("delete task: {e}")))?
    }

    /// Close every shard (shutdown). Opens in progress finish first.
    pub async fn close_all(&self) {
        for slot in self.registry.all() {
            let lock = self.registry.lifecycle_lock(&slot.id);
            let _serialised = lock.lock().await;
            let Some(current) = self.registry.get(&slot.id) else {
                continue;
            };
            self.registry.remove(&current);
            if let Err(e) = self.close_slot(&current).await {
                tracing::warn!(shard = %current.id, error = %e, "closing at shutdown reported an error");
            }
        }
    }
}
