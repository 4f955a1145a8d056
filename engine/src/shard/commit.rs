//! Manifest commits: the next version from the current one, fenced on a lost race.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use roaring::RoaringBitmap;

use super::Inner;
use super::gc::KEEP_VERSIONS;
use crate::error::{Error, ErrorKind, Result};
use crate::failpoints::{self, fail_point};
use crate::manifest::{self, Manifest};
use crate::segment::Segment;

/// A segment a commit adds, whose deletion marks the published view does not hold yet.
pub(super) enum Added<'a> {
    /// A flushed memtable's segment (it carries the memtable's marks).
    Flushed(&'a Segment),
    /// A merged segment: row `r` came from row `origin[r].1` of input `origin[r].0`, and
    /// is dead when that input row is.
    Merged {
        id: u64,
        origin: &'a [(usize, u32)],
        inputs: &'a [Arc<Segment>],
    },
}

impl Added<'_> {
    fn id(&self) -> u64 {
        match self {
            Added::Flushed(s) => s.id,
            Added::Merged { id, .. } => *id,
        }
    }

    fn dead_at(&self, seq: u64) -> RoaringBitmap {
        match self {
            Added::Flushed(s) => s.deleted.dead_at(s.rows(), seq),
            Added::Merged { origin, inputs, .. } => (0u32..)
                .zip(origin.iter())
                .filter(|(_, (i, r))| inputs[*i].deleted.get(*r) <= seq)
                .map(|(row, _)| row)
                .collect(),
        }
    }
}

impl Inner {
    /// Create the next manifest version from the current one changed by `change`. A lost
    /// race means another writer took over: the shard is fenced. Any other failure leaves
    /// the outcome unknown, so the shard stops taking writes.
    pub(super) fn commit_manifest(&self, change: impl FnOnce(&mut Manifest)) -> Result<()> {
        self.commit_manifest_adding(change, None)
    }

    /// [`Inner::commit_manifest`] for a change that adds the segment `added`; the version
    /// records every segment's deletion vector at its `flushed_seq`.
    pub(super) fn commit_manifest_adding(
        &self,
        change: impl FnOnce(&mut Manifest),
        added: Option<Added<'_>>,
    ) -> Result<()> {
        let mut ms = self.manifest.lock();
        self.check_writable()?;
        let mut next = ms.manifest.clone();
        change(&mut next);
        next.deletes = self.deletion_vectors(&next, added.as_ref());
        next.written_ms = manifest::now_ms();
        let version = ms.version + 1;
        fail_point!(failpoints::MANIFEST_CREATE_BEFORE);
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
        if let Err(e) = failpoints::check(failpoints::MANIFEST_CREATE_AFTER) {
            self.fail(&e);
            return Err(e);
        }
        ms.version = version;
        self.manifest_version.store(version, Ordering::Relaxed);
        self.flushed_seq.store(next.flushed_seq, Ordering::Relaxed);
        ms.manifest = next;
        let (now, grace) = (manifest::now_ms(), self.gc_grace_ms());
        let storage = &self.storage;
        // Files a running checkpoint copies stay listed; a commit after it deletes them.
        let pins = self.pins.lock();
        ms.manifest.obsolete.retain(|o| {
            now.saturating_sub(o.since_ms) < grace
                || pins.contains(&o.path)
                || storage.delete(&o.path).is_err()
        });
        drop(pins);
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

    /// The dead rows of each of `m`'s segments at `m.flushed_seq`: every operation up to
    /// it is published, so the marks are complete. `None` when a segment is neither
    /// `added` nor in the published view (a compaction committed but not yet published
    /// while this commit runs): that version then records none, and readers rebuild.
    fn deletion_vectors(
        &self,
        m: &Manifest,
        added: Option<&Added<'_>>,
    ) -> Option<BTreeMap<u64, RoaringBitmap>> {
        let (view, _) = self.snapshot();
        let mut out = BTreeMap::new();
        for meta in &m.segments {
            let dead = match added.filter(|a| a.id() == meta.id) {
                Some(a) => a.dead_at(m.flushed_seq),
                None => {
                    let s = view.segments().find(|s| s.id == meta.id)?;
                    s.deleted.dead_at(s.rows(), m.flushed_seq)
                }
            };
            if !dead.is_empty() {
                out.insert(meta.id, dead);
            }
        }
        Some(out)
    }
}
