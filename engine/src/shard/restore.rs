//! Restoring a checkpoint into a new shard location: copy its segments, then its manifest
//! (last), so the destination opens as the checkpoint's shard. See
//! `docs/design/007-checkpoints.md` and `docs/design/013-cluster-backups.md`.

use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Manifest, manifest_name};
use crate::paths;
use crate::storage::{self, StorageOptions};

/// What [`restore_checkpoint`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RestoreSummary {
    /// The restored shard's location.
    pub location: String,
    /// Bytes of segment files copied.
    pub bytes: u64,
    /// Segment files copied.
    pub segments: u64,
    /// Files hard-linked or copied server-side (the rest were streamed).
    pub linked: u64,
    /// The destination already had a manifest (a restore that finished before, say
    /// before the node restarted): nothing was copied.
    pub already_there: bool,
}

/// Copy the checkpoint at `src` (one manifest version and its segments, as
/// [`crate::Shard::checkpoint`] writes it) to `dest`, where no shard is yet, so that
/// opening `dest` opens the checkpoint's state. The manifest is written last and only if
/// absent: an interrupted restore leaves segments but no manifest (which does not open)
/// and a repeated one finishes it. A `dest` that already has a manifest is left alone
/// (`already_there`). With `expect_crc32c`, the checkpoint's manifest file must have that
/// CRC32C (the backup manifest records it); segments carry their own checksums.
pub fn restore_checkpoint(
    src: &str,
    dest: &str,
    expect_crc32c: Option<u32>,
) -> Result<RestoreSummary> {
    let target = storage::open_storage(dest, &StorageOptions::default())?;
    let mut summary = RestoreSummary {
        location: target.location().to_string(),
        bytes: 0,
        segments: 0,
        linked: 0,
        already_there: false,
    };
    if !target.list(paths::MANIFEST_DIR)?.is_empty() {
        summary.already_there = true;
        return Ok(summary);
    }
    let source = storage::open_storage(src, &StorageOptions::default())?;
    let versions = source.list(paths::MANIFEST_DIR)?;
    let info = match versions.as_slice() {
        [one] => one,
        [] => {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{src}: no checkpoint there (no manifest/ version)"),
            ));
        }
        many => {
            return Err(Error::corrupt(
                src,
                format!(
                    "{} manifest versions; a checkpoint has exactly one",
                    many.len()
                ),
            ));
        }
    };
    let data = source.get(&info.path)?;
    let version = paths::number_of(&info.path).unwrap_or_default();
    let name = manifest_name(source.location(), version);
    if let Some(want) = expect_crc32c {
        let got = crc32c::crc32c(&data);
        if got != want {
            return Err(Error::corrupt(
                &name,
                format!("CRC32C {got:#010x}, but the backup recorded {want:#010x}"),
            ));
        }
    }
    let manifest = Manifest::decode(&name, &data)?;
    for meta in &manifest.segments {
        if target.copy_from(source.as_ref(), &paths::segment(meta.id))? {
            summary.linked += 1;
        }
        summary.bytes += meta.bytes;
        summary.segments += 1;
    }
    if !target.put_if_absent(&info.path, data)? {
        summary.already_there = true;
    }
    Ok(summary)
}
