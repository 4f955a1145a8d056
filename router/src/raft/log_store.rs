//! The Raft log, vote and committed log id in one redb file (`<data_dir>/raft.redb`).
//! Every change is one redb transaction, durable when it commits (redb's default
//! `Immediate` durability fsyncs). Entries are stored as serde_json.

// openraft fixes the storage error type (`StorageError`, over 200 bytes).
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageIOError, Vote};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{NodeId, StorageError, TypeConfig};

const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "last_purged";

fn write_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_logs(AnyError::error(e)).into()
}

fn read_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_logs(AnyError::error(e)).into()
}

/// The log store; cheap to clone (clones share the database).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    /// Open (or create) the log database in `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("raft.redb");
        let named =
            |e: &dyn std::fmt::Display| std::io::Error::other(format!("{}: {e}", path.display()));
        let db = Database::create(&path).map_err(|e| named(&e))?;
        let txn = db.begin_write().map_err(|e| named(&e))?;
        txn.open_table(LOGS).map_err(|e| named(&e))?;
        txn.open_table(META).map_err(|e| named(&e))?;
        txn.commit().map_err(|e| named(&e))?;
        Ok(LogStore { db: Arc::new(db) })
    }

    /// Run `f` with the database on a blocking thread (commits fsync).
    async fn blocking<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StorageError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(write_err)?
    }

    /// One write transaction: remove `remove`, insert `logs`, set `meta`.
    async fn write(
        &self,
        remove: Option<(Bound<u64>, Bound<u64>)>,
        logs: Vec<(u64, Vec<u8>)>,
        meta: Option<(&'static str, Vec<u8>)>,
    ) -> Result<(), StorageError> {
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(write_err)?;
            {
                let mut table = txn.open_table(LOGS).map_err(write_err)?;
                if let Some(range) = remove {
                    table.retain_in(range, |_, _| false).map_err(write_err)?;
                }
                for (index, bytes) in &logs {
                    table.insert(*index, bytes.as_slice()).map_err(write_err)?;
                }
                if let Some((key, bytes)) = &meta {
                    let mut m = txn.open_table(META).map_err(write_err)?;
                    m.insert(*key, bytes.as_slice()).map_err(write_err)?;
                }
            }
            txn.commit().map_err(write_err)
        })
        .await
    }

    async fn write_meta<T: Serialize>(&self, key: &'static str, v: &T) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(v).map_err(write_err)?;
        self.write(None, Vec::new(), Some((key, bytes))).await
    }

    async fn read_meta<T: DeserializeOwned + Send + 'static>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, StorageError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(read_err)?;
            let t = txn.open_table(META).map_err(read_err)?;
            match t.get(key).map_err(read_err)? {
                None => Ok(None),
                Some(v) => serde_json::from_slice(v.value())
                    .map(Some)
                    .map_err(read_err),
            }
        })
        .await
    }
}

fn decode_entry(bytes: &[u8]) -> Result<Entry<TypeConfig>, StorageError> {
    serde_json::from_slice(bytes).map_err(read_err)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(read_err)?;
            let logs = txn.open_table(LOGS).map_err(read_err)?;
            let mut out = Vec::new();
            for item in logs.range::<u64>(range).map_err(read_err)? {
                let (_, v) = item.map_err(read_err)?;
                out.push(decode_entry(v.value())?);
            }
            Ok(out)
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let purged: Option<LogId<NodeId>> = self.read_meta(PURGED).await?;
        let last = self
            .blocking(|db| {
                let txn = db.begin_read().map_err(read_err)?;
                let logs = txn.open_table(LOGS).map_err(read_err)?;
                match logs.last().map_err(read_err)? {
                    None => Ok(None),
                    Some((_, v)) => Ok(Some(decode_entry(v.value())?.log_id)),
                }
            })
            .await?;
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.write_meta(VOTE, vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_meta(VOTE).await
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        self.write_meta(COMMITTED, &committed).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self
            .read_meta::<Option<LogId<NodeId>>>(COMMITTED)
            .await?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded = entries
            .into_iter()
            .map(|e| serde_json::to_vec(&e).map(|b| (e.log_id.index, b)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(write_err)?;
        let result = self.write(None, encoded, None).await;
        callback.log_io_completed(
            result
                .as_ref()
                .map(|_| ())
                .map_err(|e| std::io::Error::other(e.to_string())),
        );
        result
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let range = (Bound::Included(log_id.index), Bound::Unbounded);
        self.write(Some(range), Vec::new(), None).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let range = (Bound::Unbounded, Bound::Included(log_id.index));
        let purged = serde_json::to_vec(&log_id).map_err(write_err)?;
        self.write(Some(range), Vec::new(), Some((PURGED, purged)))
            .await
    }
}
