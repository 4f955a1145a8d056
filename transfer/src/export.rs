//! `vecshard export`: every point of a collection (key, vector, metadata, payload) through a
//! router's scan, page by page, into JSON lines or Parquet.
//!
//! The file appears only when complete: the export writes `PATH.partial` and renames it at
//! the end; a failed export removes it. Like the scan, an export is not a snapshot: points
//! written during it may or may not appear, every point stored throughout appears once.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vecshard_model::proto::point_from_proto;
use vecshard_proto::v1 as pb;

use crate::router::Router;
use crate::{Format, Progress, write};
use vecshard_client::status;

/// `vecshard export`: [`export`] showing [`Progress`]; `format` from
/// [`Format::for_export`].
pub async fn export_file<R: Router>(
    router: R,
    collection: &str,
    format: Format,
    out: &Path,
) -> Result<u64> {
    let progress = Progress::new(None, "exporting");
    let exported = export(router, collection, format, out, |n| progress.acked(n)).await;
    progress.finish();
    exported
}

/// Points per scan page.
pub const PAGE: u32 = 1000;

/// Export `collection` into `out` as `format`; `on_page(n)` after each page with the points
/// written so far. Returns the number of points exported.
pub async fn export<R: Router>(
    mut router: R,
    collection: &str,
    format: Format,
    out: &Path,
    on_page: impl FnMut(u64),
) -> Result<u64> {
    let spec = router
        .describe(collection)
        .await
        .map_err(status)
        .with_context(|| format!("describe collection {collection}"))?;
    let partial = partial_path(out);
    let writer = write::create(&partial, format, spec.dimension as usize)?;
    let written = scan_into(&mut router, collection, writer, on_page).await;
    let n = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, out)
        .with_context(|| format!("rename {} to {}", partial.display(), out.display()))?;
    Ok(n)
}

async fn scan_into<R: Router>(
    router: &mut R,
    collection: &str,
    mut writer: Box<dyn write::PointWriter>,
    mut on_page: impl FnMut(u64),
) -> Result<u64> {
    let mut cursor = String::new();
    let mut n = 0u64;
    loop {
        let page = router
            .scan(pb::ScanRequest {
                collection: collection.to_string(),
                cursor: cursor.clone(),
                limit: PAGE,
            })
            .await
            .map_err(status)
            .with_context(|| format!("scan {collection} after {n} points"))?;
        let points = page
            .points
            .into_iter()
            .map(point_from_proto)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("a point the router sent after {n} points"))?;
        writer.write(&points)?;
        n += points.len() as u64;
        on_page(n);
        if page.next_cursor.is_empty() {
            writer.finish()?;
            return Ok(n);
        }
        cursor = page.next_cursor;
    }
}

/// Where an export to `out` writes until it is complete.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}
