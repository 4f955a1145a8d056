//! Backup and restore jobs running on this router, with their progress, so a client can
//! start one and poll it (the CLI's progress bars). Jobs live in this router's memory
//! only: a restarted router forgets them, and the backup's files say what became of it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value as J, json};

use crate::error::Error;

/// Finished jobs kept for polling.
const KEEP_FINISHED: usize = 64;

/// One running or finished job.
#[derive(Debug)]
pub struct Job {
    /// The job's id.
    pub id: String,
    /// `backup` or `restore`.
    pub kind: &'static str,
    /// The backup location.
    pub location: String,
    /// The collection backed up, or the one restored into.
    pub collection: String,
    started: Instant,
    shards_total: AtomicU64,
    shards_done: AtomicU64,
    bytes_done: AtomicU64,
    points_done: AtomicU64,
    outcome: Mutex<Option<Result<J, Error>>>,
}

impl Job {
    /// Set how many shards the job covers.
    pub fn set_total(&self, shards: u64) {
        self.shards_total.store(shards, Ordering::Relaxed);
    }

    /// One more shard done, with its bytes and points.
    pub fn shard_done(&self, bytes: u64, points: u64) {
        self.shards_done.fetch_add(1, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
        self.points_done.fetch_add(points, Ordering::Relaxed);
    }

    /// Record how it ended.
    pub fn finish(&self, outcome: Result<J, Error>) {
        *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    }

    /// Whether it ended.
    pub fn finished(&self) -> bool {
        self.outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// The job as the REST API shows it.
    pub fn to_json(&self) -> J {
        let outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        let (state, result, error) = match &*outcome {
            None => ("running", J::Null, J::Null),
            Some(Ok(r)) => ("done", r.clone(), J::Null),
            Some(Err(e)) => (
                "failed",
                J::Null,
                json!({"code": crate::error_status::code_name(e.kind()), "message": e.message()}),
            ),
        };
        json!({
            "id": self.id,
            "kind": self.kind,
            "location": self.location,
            "collection": self.collection,
            "state": state,
            "shards_total": self.shards_total.load(Ordering::Relaxed),
            "shards_done": self.shards_done.load(Ordering::Relaxed),
            "bytes_done": self.bytes_done.load(Ordering::Relaxed),
            "points_done": self.points_done.load(Ordering::Relaxed),
            "elapsed_s": self.started.elapsed().as_secs_f64(),
            "result": result,
            "error": error,
        })
    }
}

/// The jobs of this router.
#[derive(Debug, Default)]
pub struct Jobs {
    next: AtomicU64,
    jobs: Mutex<BTreeMap<u64, Arc<Job>>>,
}

impl Jobs {
    /// Register a new job.
    pub fn start(&self, kind: &'static str, location: &str, collection: &str) -> Arc<Job> {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Arc::new(Job {
            id: format!("{kind}-{n}"),
            kind,
            location: location.to_string(),
            collection: collection.to_string(),
            started: Instant::now(),
            shards_total: AtomicU64::new(0),
            shards_done: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            points_done: AtomicU64::new(0),
            outcome: Mutex::new(None),
        });
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.insert(n, job.clone());
        let finished: Vec<u64> = jobs
            .iter()
            .filter(|(_, j)| j.finished())
            .map(|(n, _)| *n)
            .collect();
        for n in finished
            .iter()
            .take(finished.len().saturating_sub(KEEP_FINISHED))
        {
            jobs.remove(n);
        }
        job
    }

    /// A job by id.
    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.values().find(|j| j.id == id).cloned()
    }

    /// Whether a job that has not finished works on `location`.
    pub fn running_at(&self, location: &str) -> bool {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.values()
            .any(|j| j.location == location && !j.finished())
    }
}
