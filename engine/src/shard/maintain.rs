//! Flush, manifest commits, garbage collection, refresh, close, and the background
//! thread that runs them (and compactions, see `compact.rs`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::view::Container;
use super::{BgSignal, CLOSED, Current, Inner, OPEN, Stats};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{self, Manifest, SegmentMeta};
use crate::memtable::Memtable;
use crate::paths;
use crate::segment::{Segment, SegmentWriter};

/// Manifest versions kept behind the current one (readers may still be reading them).
const KEEP_VERSIONS: u64 = 16;

impl Inner {
    fn gc_grace_ms(&self) -> u64 {
        let default = if self.storage.supports_append() {
            Duration::ZERO
        } else {
            Duration::from_secs(600)
        };
        self.opts.gc_grace.unwrap_or(default).as_millis() as u64
    }

    /// Create the next manifest version from the current one changed by `change`. A lost
    /// race means another writer took over: the shard is fenced. Any other failure leaves
    /// the outcome unknown, so the shard stops taking writes.
    pub(super) fn commit_manifest(&self, change: impl FnOnce(&mut Manifest)) -> Result<()> {
        let mut ms = self.manifest.lock();
        self.check_writable()?;
        let mut next = ms.manifest.clone();
        change(&mut next);
        next.written_ms = manifest::now_ms();
        let version = ms.version + 1;
        match self.commits.create(version, next.encode()) {
            Ok(true) => {}
            Ok(false) => {
                let epoch = self.epoch.load(Ordering::Relaxed);
                let e = match manifest::load_latest(self.commits.as_ref(), self.storage.location())
                {
                    Ok(Some((_, latest))) if latest.writer_epoch > epoch => Error::new(
                        ErrorKind::Fenced,
                        format!(
                            "{}: writer epoch {epoch} was fenced by epoch {}; this handle takes no more writes",
                            self.storage.location(),
                            latest.writer_epoch
                        ),
                    ),
                    _ => Error::new(
                        ErrorKind::Fenced,
                        format!(
                            "{}: manifest version {version} was created by another writer",
                            self.storage.location()
                        ),
                    ),
                };
                self.fail(&e);
                return Err(e);
            }
            Err(e) => {
                self.fail(&e);
                return Err(e);
            }
        }
        ms.version = version;
        self.manifest_version.store(version, Ordering::Relaxed);
        self.flushed_seq.store(next.flushed_seq, Ordering::Relaxed);
        ms.manifest = next;
        let (now, grace) = (manifest::now_ms(), self.gc_grace_ms());
        let storage = &self.storage;
        ms.manifest
            .obsolete
            .retain(|o| now.saturating_sub(o.since_ms) < grace || storage.delete(&o.path).is_err());
        if version > KEEP_VERSIONS
            && version.is_multiple_of(KEEP_VERSIONS)
            && let Err(e) = self.delete_old_versions(version)
        {
            // The version is committed: a failed clean-up must not read as a failed commit
            // (the caller would commit the same change again). The next multiple retries.
            tracing::warn!(location = self.storage.location(), version, error = %e, "cannot delete old manifest versions");
        }
        Ok(())
    }

    fn delete_old_versions(&self, version: u64) -> Result<()> {
        let versions = self.commits.versions()?;
        for v in versions
            .into_iter()
            .filter(|v| *v + KEEP_VERSIONS < version)
        {
            self.commits.delete(v)?;
        }
        Ok(())
    }

    pub(super) fn flush(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.check_writable()?;
        {
            let mut st = self.commit.lock();
            let frozen = if st.active.is_empty() {
                Ok(())
            } else {
                self.freeze(&mut st, 0)
            };
            drop(st);
            frozen.inspect_err(|e| self.fail(e))?;
        }
        self.flush_frozen()?;
        if let Some(wal) = self.wal.get() {
            wal.sync_all()?;
        }
        Ok(())
    }

    /// Flush every frozen memtable, oldest first.
    pub(super) fn flush_frozen(&self) -> Result<()> {
        let _g = self.flush_lock.lock();
        loop {
            let Some(m) = self.commit.lock().frozen.front().cloned() else {
                return Ok(());
            };
            self.wait_published(m.last_seq())?;
            self.flush_memtable(&m)?;
            self.commit.lock().frozen.pop_front();
            self.room.notify_all();
        }
    }

    fn flush_memtable(&self, m: &Arc<Memtable>) -> Result<()> {
        let rows = m.rows();
        let tombstones = m.tombstones();
        let flushed_seq = m.last_seq();
        let wal = self.wal.get().ok_or_else(Error::closed)?;
        if rows == 0 && tombstones.is_empty() {
            let lowest = wal.lowest_needed(flushed_seq);
            self.commit_manifest(|man| {
                man.flushed_seq = man.flushed_seq.max(flushed_seq);
                man.wal_min_unit = lowest;
            })?;
            let mut cur = self.current.write();
            cur.view = Arc::new(cur.view.replace(m.container, None));
        } else {
            let mut w = SegmentWriter::new(self.spec.dim, self.spec.metric, rows);
            for row in 0..rows as u32 {
                let r = m
                    .row(row)
                    .ok_or_else(|| Error::new(ErrorKind::Io, "memtable row missing at flush"))?;
                w.push(m.vector(row), m.seq(row), &r.key, &r.metadata, &r.payload);
            }
            let index = m.index().to_bytes(rows as u32, m.vectors());
            let bytes = w.finish(flushed_seq, &tombstones, index);
            let size = bytes.len() as u64;
            let id = self.write_segment(bytes)?;
            let seg = Arc::new(Segment::open(
                self.storage.as_ref(),
                id,
                m.container,
                self.spec,
                Some(m.deleted.clone()),
            )?);
            let lowest = wal.lowest_needed(flushed_seq);
            self.commit_manifest(|man| {
                man.segments.push(SegmentMeta {
                    id,
                    rows: rows as u64,
                    bytes: size,
                    max_seq: flushed_seq,
                });
                man.flushed_seq = flushed_seq;
                man.wal_min_unit = lowest;
            })?;
            let mut cur = self.current.write();
            cur.view = Arc::new(cur.view.replace(m.container, Some(Container::Seg(seg))));
        }
        // Committed: a WAL unit that cannot be deleted now is retried at the next flush.
        if let Err(e) = wal.collect_garbage(flushed_seq) {
            tracing::warn!(location = self.storage.location(), error = %e, "cannot delete covered WAL units");
        }
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Store a new segment file under a fresh id.
    pub(super) fn write_segment(&self, bytes: Vec<u8>) -> Result<u64> {
        let id = self.next_segment.fetch_add(1, Ordering::Relaxed);
        if !self
            .storage
            .put_if_absent(&paths::segment(id), bytes.into())?
        {
            let e = Error::new(
                ErrorKind::Fenced,
                format!(
                    "{}/{} already exists: another writer is using this epoch",
                    self.storage.location(),
                    paths::segment(id)
                ),
            );
            self.fail(&e);
            return Err(e);
        }
        Ok(id)
    }

    pub(super) fn refresh(&self) -> Result<bool> {
        self.check_open()?;
        if !self.read_only {
            return Ok(false);
        }
        let _g = self.flush_lock.lock();
        let mut last_err = None;
        for _ in 0..8 {
            let Some((version, m)) =
                manifest::load_latest(self.commits.as_ref(), self.storage.location())?
            else {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("no shard at {}", self.storage.location()),
                ));
            };
            if version <= self.manifest.lock().version {
                return Ok(false);
            }
            match self.load_version(&m) {
                Ok(()) => {
                    let mut ms = self.manifest.lock();
                    ms.version = version;
                    self.manifest_version.store(version, Ordering::Relaxed);
                    self.flushed_seq.store(m.flushed_seq, Ordering::Relaxed);
                    self.epoch.store(m.writer_epoch, Ordering::Relaxed);
                    ms.manifest = m;
                    return Ok(true);
                }
                // A segment was garbage-collected between listing and opening: re-read.
                Err(e) if e.kind() == ErrorKind::NotFound => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| Error::new(ErrorKind::Io, "refresh kept racing the writer")))
    }

    fn load_version(&self, m: &Manifest) -> Result<()> {
        let (view, _) = self.snapshot();
        let mut segments = Vec::with_capacity(m.segments.len());
        for meta in &m.segments {
            match view.segments().find(|s| s.id == meta.id) {
                Some(s) => segments.push(s.clone()),
                None => {
                    let container = self.next_container.fetch_add(1, Ordering::Relaxed);
                    segments.push(Arc::new(Segment::open(
                        self.storage.as_ref(),
                        meta.id,
                        container,
                        self.spec,
                        None,
                    )?));
                }
            }
        }
        let pk = super::open::resolve(&segments);
        let containers = segments.into_iter().map(Container::Seg).collect();
        let mut published = self.published.lock();
        // Readers take the key index and then the view: swap both while holding the key
        // index, or a reader could pair the new index with the old view.
        let mut pk_guard = self.pk.write();
        *pk_guard = pk;
        *self.current.write() = Current {
            view: Arc::new(super::View { containers }),
            seq: m.flushed_seq,
        };
        drop(pk_guard);
        *published = m.flushed_seq;
        Ok(())
    }

    pub(super) fn stats(&self) -> Stats {
        let (view, seq) = self.snapshot();
        let cache = self.storage.cache_stats();
        Stats {
            live_points: self.pk.read().len() as u64,
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
            read_only: self.read_only,
            state: self.status_name(),
            cache_memory_hits: cache.memory_hits,
            cache_disk_hits: cache.disk_hits,
            cache_misses: cache.misses,
            bytes_fetched: cache.bytes_fetched,
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
                inner.flush_frozen().and_then(|_| inner.compact(false).map(|_| ()))
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
