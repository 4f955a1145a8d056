//! `vecshard import` and `vecshard export` through a router: the pipelines are in
//! vecshard-transfer; here the connection and the progress display.

use std::path::Path;

use anyhow::{Result, bail};
use vecshard_transfer::Format;

use super::client::connect;
use crate::progress::Progress;

pub async fn import(
    router: &str,
    collection: &str,
    file: &Path,
    format: Option<Format>,
    batch: usize,
    parallel: usize,
) -> Result<()> {
    let format = Format::or_detect(format, file);
    let client = connect(router).await?;
    let progress = Progress::new(
        vecshard_transfer::read::count_hint(file, format),
        "importing",
    );
    let imported = vecshard_transfer::import::router::import(
        client,
        collection,
        file,
        format,
        batch,
        parallel,
        |n| progress.acked(n),
    )
    .await;
    progress.finish();
    eprintln!("imported {} points into {collection}", imported?);
    Ok(())
}

pub async fn export(
    router: &str,
    collection: &str,
    format: Option<Format>,
    out: &Path,
) -> Result<()> {
    let format = Format::or_detect(format, out);
    if !format.exportable() {
        bail!("cannot export as {format}: use --format jsonl or parquet");
    }
    let client = connect(router).await?;
    let progress = Progress::new(None, "exporting");
    let exported =
        vecshard_transfer::export::export(client, collection, format, out, |n| progress.acked(n))
            .await;
    progress.finish();
    eprintln!(
        "exported {} points of {collection} to {}",
        exported?,
        out.display()
    );
    Ok(())
}
