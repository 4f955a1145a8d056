//! Flush: frozen memtables become segments, committed in the manifest.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Inner;
use super::commit::Added;
use super::view::Container;
use crate::error::{Error, ErrorKind, Result};
use crate::failpoints::{self, fail_point};
use crate::manifest::SegmentMeta;
use crate::memtable::Memtable;
use crate::paths;
use crate::segment::{self, LazyReads, Segment, SegmentWriter};

impl Inner {
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
            let bytes = w
                .finish(self.opts.segment_format, flushed_seq, &tombstones, index)
                .map_err(|e| Error::new(ErrorKind::Io, format!("laying out a segment: {e}")))?;
            let (size, tail_bytes) = (bytes.len() as u64, segment::tail_bytes(&bytes));
            let id = self.write_segment(bytes)?;
            let meta = SegmentMeta {
                id,
                rows: rows as u64,
                bytes: size,
                max_seq: flushed_seq,
                tail_bytes,
            };
            let seg = Arc::new(Segment::open(
                &self.storage,
                &meta,
                m.container,
                self.spec,
                Some(m.deleted.clone()),
                LazyReads::from(&self.opts),
            )?);
            let lowest = wal.lowest_needed(flushed_seq);
            let change = |man: &mut crate::manifest::Manifest| {
                man.segments.push(meta.clone());
                man.flushed_seq = flushed_seq;
                man.wal_min_unit = lowest;
            };
            self.commit_manifest_adding(change, Some(Added::Flushed(&seg)))?;
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
        fail_point!(failpoints::SEGMENT_UPLOAD_BEFORE);
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
        fail_point!(failpoints::SEGMENT_UPLOAD_AFTER);
        Ok(id)
    }
}
