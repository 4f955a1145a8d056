//! The read pool: searches, gets and scans run on a fixed set of threads (one per core
//! by default) against the engine's consistent snapshot, never on the async runtime and
//! never behind a shard's writes. The queue in front of it is bounded: when it is full
//! a read gets "busy, retry" instead of waiting without limit.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tokio::sync::{Semaphore, oneshot};

use crate::error::NodeError;

/// A bounded pool for blocking reads.
#[derive(Debug)]
pub struct ReadPool {
    pool: rayon::ThreadPool,
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl ReadPool {
    /// `threads` workers; at most `threads + queue` reads admitted at once.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<ReadPool> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("vecshard-read-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        let capacity = threads.max(1) + queue;
        Ok(ReadPool {
            pool,
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        })
    }

    fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, NodeError> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            NodeError::Busy(format!(
                "busy: {} reads are already running or queued on this node; retry",
                self.capacity
            ))
        })
    }

    /// Run a light read (one that finishes in well under a millisecond, such as a graph
    /// search with a bounded width) on the calling thread: it counts against the same
    /// bound as pooled reads, but skips the two thread hand-offs of the pool, which on
    /// an idle machine cost more than the search itself. Never for a read that may wait
    /// on remote storage (`Shard::reads_may_wait`): it would hold a runtime thread.
    pub fn run_inline<T>(&self, f: impl FnOnce() -> Result<T, NodeError>) -> Result<T, NodeError> {
        let _permit = self.admit()?;
        std::panic::catch_unwind(AssertUnwindSafe(f))
            .unwrap_or_else(|_| Err(NodeError::Internal("a read panicked".into())))
    }

    /// Run `f` on the pool and wait for it; "busy" when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        let permit = self.admit()?;
        let (tx, rx) = oneshot::channel();
        self.pool.spawn(move || {
            let out = std::panic::catch_unwind(AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err(NodeError::Internal("a read panicked".into())));
            drop(permit);
            let _ = tx.send(out);
        });
        rx.await
            .map_err(|_| NodeError::Internal("a read was dropped".into()))?
    }

    /// Reads running or queued.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }
}
