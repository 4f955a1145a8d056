//! Close, statistics, and the background thread that runs flushes, compactions (see
//! `compact.rs`) and refreshes (see `flush.rs`, `refresh.rs`, `gc.rs`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::policy::{MergePolicy, SegmentSize};
use super::{BgSignal, CLOSED, Inner, OPEN, Stats};
use crate::error::Result;

impl Inner {
    pub(super) fn stats(&self) -> Stats {
        let (view, seq) = self.snapshot();
        let cache = self.storage.cache_stats();
        Stats {
            live_points: self.live_points(),
            segments: view.segments().count() as u64,
            memtable_rows: view.memtables().map(|m| m.rows() as u64).sum(),
            segment_bytes: view.segments().map(|s| s.file_bytes()).sum(),
            wal_bytes: self.wal.get().map(|w| w.bytes()).unwrap_or(0),
            manifest_version: self.manifest_version.load(Ordering::Relaxed),
            epoch: self.epoch.load(Ordering::Relaxed),
            visible_seq: seq,
            flushed_seq: self.flushed_seq.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            compactions: self.compactions.load(Ordering::Relaxed),
            merging: self.merging.load(Ordering::Relaxed),
            read_only: self.read_only,
            state: self.status_name(),
            cache_memory_hits: cache.memory_hits,
            cache_disk_hits: cache.disk_hits,
            cache_misses: cache.misses,
            bytes_fetched: cache.bytes_fetched,
            cache_requests: cache.requests,
            cache_resident_bytes: self.storage.cache_resident_bytes(),
            lazy_segments: view.segments().filter(|s| s.is_lazy()).count() as u64,
        }
    }

    pub(super) fn close(&self) -> Result<()> {
        if self.status.load(Ordering::Acquire) == CLOSED {
            return Ok(());
        }
        let flushed = if !self.read_only && self.status.load(Ordering::Acquire) == OPEN {
            self.flush()
        } else {
            Ok(())
        };
        self.status.store(CLOSED, Ordering::Release);
        {
            let mut st = self.bg.state.lock();
            st.shutdown = true;
            self.bg.cv.notify_all();
        }
        self.published_cv.notify_all();
        self.room.notify_all();
        let handle = self.bg_thread.lock().take();
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
        if let Some(wal) = self.wal.get() {
            wal.sync_all()?;
        }
        self.lock.lock().take();
        flushed
    }
}

impl Inner {
    /// Once the shard has taken no writes for `idle_merge_after`: flush the memtable and
    /// merge every segment into one when the policy says so. Returns whether it merged.
    fn idle_merge(&self) -> Result<bool> {
        let policy = MergePolicy::from_options(&self.opts);
        let Some(after) = policy.idle_merge_after else {
            return Ok(false);
        };
        let idle = self.idle_for();
        if idle < after {
            return Ok(false);
        }
        if !self.commit.lock().active.is_empty() {
            self.flush()?;
        }
        let snap = self.flushed_seq.load(Ordering::Relaxed);
        let (view, _) = self.snapshot();
        let sizes: Vec<SegmentSize> = view.segments().map(|s| SegmentSize::of(s, snap)).collect();
        drop(view);
        if !policy.idle_merge(&sizes, idle) {
            return Ok(false);
        }
        tracing::debug!(
            location = self.storage.location(),
            segments = sizes.len(),
            idle_ms = idle.as_millis() as u64,
            "idle: merging every segment into one"
        );
        self.compact(true)
    }
}

/// Start the thread that flushes, compacts and (read-only) refreshes.
pub(super) fn spawn_background(inner: &Arc<Inner>) {
    if !inner.opts.background && inner.opts.refresh_interval.is_none() {
        return;
    }
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let signal: Arc<BgSignal> = inner.bg.clone();
    let period = inner
        .opts
        .refresh_interval
        .unwrap_or(Duration::from_secs(1));
    let spawned = std::thread::Builder::new().name("vecshard-bg".into()).spawn(move || {
        loop {
            {
                let mut st = signal.state.lock();
                if !st.work && !st.shutdown {
                    signal.cv.wait_for(&mut st, period);
                }
                if st.shutdown {
                    return;
                }
                st.work = false;
            }
            let Some(inner) = weak.upgrade() else { return };
            if inner.status.load(Ordering::Acquire) != OPEN {
                return;
            }
            let result = if inner.read_only {
                if inner.opts.refresh_interval.is_some() { inner.refresh().map(|_| ()) } else { Ok(()) }
            } else if inner.opts.background {
                // One merge per round, then another round (flushes first): the policy may
                // want several merges, and a full memtable must not wait behind them.
                super::pool::run(inner.opts.background_threads, || {
                    inner.flush_frozen()?;
                    if inner.compact(false)? {
                        return Ok(true);
                    }
                    inner.idle_merge()
                })
                .map(|merged| {
                    if merged {
                        signal.state.lock().work = true;
                    }
                })
            } else {
                Ok(())
            };
            if let Err(e) = result
                && inner.status.load(Ordering::Acquire) == OPEN
            {
                tracing::warn!(location = inner.storage.location(), error = %e, "background work failed");
            }
        }
    });
    match spawned {
        Ok(h) => *inner.bg_thread.lock() = Some(h),
        Err(e) => tracing::error!(error = %e, "cannot start the background thread"),
    }
}
