//! Where manifest versions are committed.
//!
//! A commit store holds numbered manifest versions and creates each number at most once:
//! two writers racing for version `n` see exactly one of them win. The default store keeps
//! versions as files `manifest/<20-digit n>` created with [`Storage::put_if_absent`]
//! (local link-without-replace, S3 `If-None-Match: *`). The DynamoDB store (feature
//! `dynamodb`) keeps them in a table instead. Either way WAL units are still created
//! conditionally in the storage, so a writer needs a store whose conditional creates work
//! (checked when it opens: [`crate::storage::check_conditional_create`]).

#[cfg(feature = "dynamodb")]
pub mod dynamo;

use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;
use crate::paths;
use crate::storage::Storage;

/// Numbered, create-once manifest versions.
pub trait CommitStore: Send + Sync + Debug {
    /// The highest committed version, read consistently; `None` for a new shard.
    fn latest_version(&self) -> Result<Option<u64>>;
    /// The manifest bytes of `version`; `NotFound` if it does not exist.
    fn read(&self, version: u64) -> Result<Bytes>;
    /// Create `version` with `bytes` unless it exists; `Ok(false)` if another writer
    /// created it first. A retried create that finds its own bytes counts as created.
    fn create(&self, version: u64, bytes: Bytes) -> Result<bool>;
    /// All committed versions, ascending.
    fn versions(&self) -> Result<Vec<u64>>;
    /// Remove an old version (garbage collection; never the latest).
    fn delete(&self, version: u64) -> Result<()>;
}

/// Manifest versions as create-once files in the shard's own storage.
#[derive(Debug, Clone)]
pub struct StorageCommitStore {
    storage: Arc<dyn Storage>,
}

impl StorageCommitStore {
    /// Versions under `manifest/` of `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        StorageCommitStore { storage }
    }
}

impl CommitStore for StorageCommitStore {
    fn latest_version(&self) -> Result<Option<u64>> {
        Ok(self.versions()?.last().copied())
    }

    fn read(&self, version: u64) -> Result<Bytes> {
        self.storage.get(&paths::manifest(version))
    }

    fn create(&self, version: u64, bytes: Bytes) -> Result<bool> {
        self.storage.put_if_absent(&paths::manifest(version), bytes)
    }

    fn versions(&self) -> Result<Vec<u64>> {
        let mut v: Vec<u64> = self
            .storage
            .list(paths::MANIFEST_DIR)?
            .iter()
            .filter_map(|o| paths::number_of(&o.path))
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    fn delete(&self, version: u64) -> Result<()> {
        self.storage.delete(&paths::manifest(version))
    }
}
