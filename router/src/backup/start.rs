//! Starting backup and restore jobs, the one way the REST and gRPC APIs both do it: check
//! the request (location allowed, collection known, name valid, timeout), register the
//! job, run it on its own task. The caller then answers with the job at once, or waits
//! for its end ([`Started::outcome`]).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value as J, json};
use tokio::task::JoinHandle;

use super::jobs::Job;
use super::restore::RestoreRequest;
use crate::core::Core;
use crate::error::{Error, Result};

/// Time a backup or restore may take when the request does not say.
pub const DEFAULT_TIMEOUT_S: u64 = 3600;

/// A job that runs.
#[derive(Debug)]
pub struct Started {
    /// The job (its id, progress and, once ended, outcome).
    pub job: Arc<Job>,
    task: JoinHandle<Result<J>>,
}

impl Started {
    /// Wait for the job to end: what it produced, or its error.
    pub async fn outcome(self) -> Result<J> {
        self.task
            .await
            .map_err(|e| Error::internal(format!("{} task: {e}", self.job.kind)))?
    }
}

fn timeout(s: Option<u64>) -> Result<Duration> {
    match s {
        Some(0) => Err(Error::invalid("timeout_s must be at least 1")),
        s => Ok(Duration::from_secs(s.unwrap_or(DEFAULT_TIMEOUT_S))),
    }
}

/// Run `work` for `job` on its own task, recording how it ended in the job.
fn spawn<F>(job: Arc<Job>, work: F) -> Started
where
    F: Future<Output = Result<J>> + Send + 'static,
{
    let recorder = job.clone();
    let task = tokio::spawn(async move {
        let r = work.await;
        recorder.finish(r.clone());
        r
    });
    Started { job, task }
}

impl Core {
    /// Start backing up `collection` to `to` (see [`Core::create_backup`]). The job's
    /// result is `{location, manifest}`.
    pub fn start_backup(
        self: &Arc<Self>,
        collection: &str,
        to: &str,
        timeout_s: Option<u64>,
    ) -> Result<Started> {
        let to = self.backup_location(to)?;
        let timeout = timeout(timeout_s)?;
        Core::collection(&self.view(), collection)?;
        let job = self.backups.start("backup", &to, collection);
        let (core, j, collection) = (self.clone(), job.clone(), collection.to_string());
        Ok(spawn(job, async move {
            let m = core.create_backup(&collection, &to, timeout, &j).await?;
            Ok(json!({ "location": to, "manifest": m }))
        }))
    }

    /// Start restoring a backup (see [`Core::restore_backup`]). The job's result is
    /// `{collection, from, shard_count, points, bytes, seconds}`.
    pub fn start_restore(
        self: &Arc<Self>,
        mut req: RestoreRequest,
        timeout_s: Option<u64>,
        forwarded: bool,
    ) -> Result<Started> {
        req.from = self.backup_location(&req.from)?;
        vecshard_model::validate::collection_name(&req.as_name)?;
        let timeout = timeout(timeout_s)?;
        let job = self.backups.start("restore", &req.from, &req.as_name);
        let (core, j) = (self.clone(), job.clone());
        Ok(spawn(job, async move {
            core.restore_backup(req, timeout, forwarded, &j).await
        }))
    }
}
