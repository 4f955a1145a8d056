//! Refresh: a read-only handle follows the writer's newest manifest.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::view::Container;
use super::{Current, Inner};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{self, Manifest};
use crate::pk_index::PkIndex;
use crate::segment::{LazyReads, Segment};

impl Inner {
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
                        &self.storage,
                        meta,
                        container,
                        self.spec,
                        None,
                        LazyReads::from(&self.opts),
                    )?));
                }
            }
        }
        super::open::seqs_for_snapshots(&segments, m.flushed_seq)?;
        let pending = super::open::pending_keys(&segments, m);
        let pk = match pending {
            Some(_) => PkIndex::default(),
            None => super::open::resolve(&segments)?,
        };
        let containers = segments.into_iter().map(Container::Seg).collect();
        let mut published = self.published.lock();
        // Readers take the key index and then the view: swap both while holding the key
        // index, or a reader could pair the new index with the old view.
        let mut pending_guard = self.pending_keys.lock();
        let mut pk_guard = self.pk.write();
        *pk_guard = pk;
        self.keys_pending
            .store(pending.is_some(), Ordering::Release);
        *pending_guard = pending;
        drop(pending_guard);
        *self.current.write() = Current {
            view: Arc::new(super::View { containers }),
            seq: m.flushed_seq,
        };
        drop(pk_guard);
        *published = m.flushed_seq;
        Ok(())
    }
}
