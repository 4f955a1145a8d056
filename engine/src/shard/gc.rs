//! Garbage collection after a manifest commit: obsolete files past their grace period and
//! manifest versions far behind the current one.

use std::time::Duration;

use super::Inner;
use crate::error::Result;

/// Manifest versions kept behind the current one (readers may still be reading them).
pub(super) const KEEP_VERSIONS: u64 = 16;

impl Inner {
    pub(super) fn gc_grace_ms(&self) -> u64 {
        let default = if self.storage.supports_append() {
            Duration::ZERO
        } else {
            Duration::from_secs(600)
        };
        self.opts.gc_grace.unwrap_or(default).as_millis() as u64
    }

    pub(super) fn delete_old_versions(&self, version: u64) -> Result<()> {
        let versions = self.commits.versions()?;
        for v in versions
            .into_iter()
            .filter(|v| *v + KEEP_VERSIONS < version)
        {
            self.commits.delete(v)?;
        }
        Ok(())
    }
}
