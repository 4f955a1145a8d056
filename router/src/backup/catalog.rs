//! Looking at backups: list, describe, delete. A backup's status comes from its files
//! alone: `complete` with a valid manifest, `corrupt` with an invalid one, `failed` with
//! the failed marker, `incomplete` with only the started marker (running, or
//! interrupted).

use serde_json::{Value as J, json};

use super::manifest::{BackupManifest, FAILED, MANIFEST, STARTED};
use super::store::{self, Location};
use crate::core::Core;
use crate::error::{Error, ErrorKind, Result};

/// What is at a location.
enum Found {
    Complete(Box<BackupManifest>),
    Corrupt(Error),
    Failed(J),
    Incomplete(J),
    Nothing,
}

async fn inspect(loc: &Location) -> Result<Found> {
    if let Some(bytes) = loc.get(MANIFEST).await? {
        let at = store::join(loc.url(), MANIFEST);
        return Ok(match BackupManifest::decode(&at, &bytes) {
            Ok(m) => Found::Complete(Box::new(m)),
            Err(e) => Found::Corrupt(e),
        });
    }
    let parse = |b: Vec<u8>| serde_json::from_slice::<J>(&b).unwrap_or(J::Null);
    if let Some(b) = loc.get(FAILED).await? {
        return Ok(Found::Failed(parse(b)));
    }
    if let Some(b) = loc.get(STARTED).await? {
        return Ok(Found::Incomplete(parse(b)));
    }
    Ok(Found::Nothing)
}

fn summary(url: &str, found: &Found) -> Option<J> {
    let name = url.rsplit('/').next().unwrap_or(url);
    Some(match found {
        Found::Complete(m) => json!({
            "location": url, "name": name, "status": "complete",
            "collection": m.collection.name, "shard_count": m.collection.shard_count,
            "points": m.points, "bytes": m.bytes,
            "started_ms": m.started_ms, "created_ms": m.created_ms,
        }),
        Found::Corrupt(e) => json!({
            "location": url, "name": name, "status": "corrupt", "error": e.message(),
        }),
        Found::Failed(f) => json!({
            "location": url, "name": name, "status": "failed",
            "collection": f["collection"], "error": f["error"],
        }),
        Found::Incomplete(s) => json!({
            "location": url, "name": name, "status": "incomplete",
            "collection": s["collection"], "started_ms": s["started_ms"],
        }),
        Found::Nothing => return None,
    })
}

/// The manifest of the complete backup at `location`, or a clear error: no backup
/// there, an incomplete or failed one, a corrupt manifest.
pub async fn read_complete(location: &str) -> Result<(Location, BackupManifest)> {
    let loc = Location::open(location)?;
    let url = loc.url().to_string();
    match inspect(&loc).await? {
        Found::Complete(m) => Ok((loc, *m)),
        Found::Corrupt(e) => Err(e),
        Found::Failed(f) => Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!(
                "the backup at {url} failed ({}); it cannot be restored",
                f["error"]
            ),
        )),
        Found::Incomplete(_) => Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!(
                "the backup at {url} is incomplete (still running, or interrupted): it has no {MANIFEST}"
            ),
        )),
        Found::Nothing => Err(Error::not_found(format!(
            "no backup at {url} (no {MANIFEST})"
        ))),
    }
}

impl Core {
    /// The backup at `location` (if any) and every backup directly under it. Like every
    /// operation here, `location` must be allowed (`router.backup_locations`).
    pub async fn list_backups(&self, location: &str) -> Result<Vec<J>> {
        let loc = Location::open(&self.backup_location(location)?)?;
        let mut out = Vec::new();
        out.extend(summary(loc.url(), &inspect(&loc).await?));
        for child in loc.children().await? {
            let c = Location::open(&child)?;
            out.extend(summary(c.url(), &inspect(&c).await?));
        }
        Ok(out)
    }

    /// The backup at `location`: its status, and its manifest when complete.
    pub async fn describe_backup(&self, location: &str) -> Result<J> {
        let loc = Location::open(&self.backup_location(location)?)?;
        let found = inspect(&loc).await?;
        let mut s = summary(loc.url(), &found)
            .ok_or_else(|| Error::not_found(format!("no backup at {}", loc.url())))?;
        match found {
            Found::Complete(m) => s["manifest"] = serde_json::to_value(*m).unwrap_or_default(),
            Found::Corrupt(e) => return Err(e),
            _ => {}
        }
        Ok(s)
    }

    /// Delete the backup at `location` (any status): every file under it. Never touches
    /// a collection: a location that is, or holds, or lies in a collection's storage is
    /// refused, and so is one a job on this router is writing.
    pub async fn delete_backup(&self, location: &str) -> Result<J> {
        let loc = Location::open(&self.backup_location(location)?)?;
        let url = loc.url().to_string();
        if matches!(inspect(&loc).await?, Found::Nothing) {
            return Err(Error::not_found(format!("no backup at {url}")));
        }
        if self.backups.running_at(&url) {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!("a backup or restore job on this router is using {url}; wait for it"),
            ));
        }
        let view = self.view();
        let overlaps = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
        if let Some(c) = view.map.collections.values().find(|c| {
            c.spec.storage != "local"
                && (overlaps(&url, &c.spec.storage) || overlaps(&c.spec.storage, &url))
        }) {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!(
                    "{url} overlaps the storage of collection {:?} ({}); refusing to delete",
                    c.spec.name, c.spec.storage
                ),
            ));
        }
        let files = loc.delete_all().await?;
        tracing::info!(location = %url, files, "backup deleted");
        Ok(json!({ "location": url, "files_deleted": files }))
    }
}
