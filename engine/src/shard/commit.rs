//! Manifest commits: the next version from the current one, fenced on a lost race.

use std::sync::atomic::Ordering;

use super::Inner;
use super::gc::KEEP_VERSIONS;
use crate::error::{Error, ErrorKind, Result};
use crate::failpoints::{self, fail_point};
use crate::manifest::{self, Manifest};

impl Inner {
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
}
