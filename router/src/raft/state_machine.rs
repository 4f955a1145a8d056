//! The Raft state machine: the shard map in memory, published to the rest of the router
//! through a `watch` channel after every applied batch, and snapshotted to
//! `<data_dir>/snapshot.json` (written to a temporary file, fsynced, renamed). At start the
//! last snapshot is loaded and openraft re-applies the committed log after it.

// openraft fixes the storage error type (`StorageError`, over 200 bytes).
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{NodeId, RouterNode, StorageError, TypeConfig};
use crate::shardmap::{CommandResult, ShardMap};

/// Everything the state machine holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SmState {
    /// The last applied log id.
    pub last_applied: Option<LogId<NodeId>>,
    /// The last applied membership (the routers).
    pub membership: StoredMembership<NodeId, RouterNode>,
    /// The shard map.
    pub map: ShardMap,
}

/// What the rest of the router reads: the shard map at a version.
#[derive(Debug, Clone, Default)]
pub struct MapView {
    /// The last applied Raft log index (0 before any).
    pub version: u64,
    /// The shard map.
    pub map: ShardMap,
    /// The routers in the Raft group (voters and learners) by id.
    pub routers: BTreeMap<NodeId, RouterNode>,
}

impl MapView {
    fn of(state: &SmState) -> Self {
        MapView {
            version: state.last_applied.map(|l| l.index).unwrap_or(0),
            map: state.map.clone(),
            routers: state
                .membership
                .membership()
                .nodes()
                .map(|(id, n)| (*id, n.clone()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, RouterNode>,
    state: SmState,
}

impl StoredSnapshot {
    fn to_snapshot(&self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let data = serde_json::to_vec(&self.state).map_err(|e| snap_err(Some(&self.meta), e))?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

fn snap_err(
    meta: Option<&SnapshotMeta<NodeId, RouterNode>>,
    e: impl std::fmt::Display,
) -> StorageError {
    StorageIOError::write_snapshot(meta.map(|m| m.signature()), AnyError::error(e)).into()
}

/// The state machine handed to openraft.
pub struct StateMachine {
    dir: PathBuf,
    state: SmState,
    current: Current,
    publish: watch::Sender<Arc<MapView>>,
}

impl StateMachine {
    /// Open in `dir`, loading the last snapshot if there is one. Returns the state machine
    /// and a receiver that always holds the latest applied shard map.
    pub fn open(dir: &Path) -> std::io::Result<(Self, watch::Receiver<Arc<MapView>>)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("snapshot.json");
        let stored: Option<StoredSnapshot> = match std::fs::read(&path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::other(format!("{}: corrupt snapshot: {e}", path.display()))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(std::io::Error::other(format!("{}: {e}", path.display()))),
        };
        let state = stored.as_ref().map(|s| s.state.clone()).unwrap_or_default();
        let (publish, rx) = watch::channel(Arc::new(MapView::of(&state)));
        Ok((
            StateMachine {
                dir: dir.to_path_buf(),
                state,
                current: Arc::new(std::sync::Mutex::new(stored)),
                publish,
            },
            rx,
        ))
    }

    fn publish(&self) {
        self.publish
            .send_replace(Arc::new(MapView::of(&self.state)));
    }
}

type Current = Arc<std::sync::Mutex<Option<StoredSnapshot>>>;

/// Make `snap` the current snapshot and write it to `<dir>/snapshot.json` durably, unless
/// the current one is newer (a build that raced with an installed snapshot).
async fn save(dir: &Path, current: &Current, snap: &StoredSnapshot) -> Result<(), StorageError> {
    let (dir, current, snap) = (dir.to_path_buf(), current.clone(), snap.clone());
    let meta = snap.meta.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut cur = current.lock().unwrap_or_else(|p| p.into_inner());
        if cur
            .as_ref()
            .is_some_and(|c| c.meta.last_log_id > snap.meta.last_log_id)
        {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&snap).map_err(std::io::Error::other)?;
        let tmp = dir.join("snapshot.json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join("snapshot.json"))?;
        std::fs::File::open(&dir)?.sync_all()?;
        *cur = Some(snap);
        Ok(())
    })
    .await
    .map_err(|e| snap_err(Some(&meta), e))?
    .map_err(|e| snap_err(Some(&meta), e))
}

/// Builds a snapshot of the state captured when openraft asked for a builder.
pub struct SnapshotBuilder {
    dir: PathBuf,
    state: SmState,
    current: Current,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let last = self.state.last_applied;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.state.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                last.map(|l| l.leader_id.term).unwrap_or(0),
                last.map(|l| l.index).unwrap_or(0)
            ),
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            state: self.state.clone(),
        };
        save(&self.dir, &self.current, &stored).await?;
        stored.to_snapshot()
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, RouterNode>), StorageError> {
        Ok((self.state.last_applied, self.state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut results = Vec::new();
        for entry in entries {
            self.state.last_applied = Some(entry.log_id);
            results.push(match entry.payload {
                EntryPayload::Blank => CommandResult::Ok,
                EntryPayload::Normal(cmd) => self.state.map.apply(&cmd, entry.log_id.index),
                EntryPayload::Membership(m) => {
                    self.state.membership = StoredMembership::new(Some(entry.log_id), m);
                    CommandResult::Ok
                }
            });
        }
        self.publish();
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            dir: self.dir.clone(),
            state: self.state.clone(),
            current: self.current.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, RouterNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let state: SmState =
            serde_json::from_slice(snapshot.get_ref()).map_err(|e| snap_err(Some(meta), e))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            state: state.clone(),
        };
        save(&self.dir, &self.current, &stored).await?;
        self.state = state;
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let current = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        current.map(|s| s.to_snapshot()).transpose()
    }
}
