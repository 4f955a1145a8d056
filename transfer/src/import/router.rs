//! `vecshard import --router ADDR --collection C FILE`: upsert a file's points through a
//! router, `parallel` batches in flight, progress counting the acknowledged prefix of the
//! file.

use std::path::Path;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use vecshard_proto::v1 as pb;

use crate::router::Router;
use crate::{Format, Progress, read};
use vecshard_client::status;

/// `vecshard import`: [`import`] showing [`Progress`], the format taken from the file's
/// name unless given.
pub async fn import_file<R: Router>(
    client: R,
    collection: &str,
    file: &Path,
    format: Option<Format>,
    batch: usize,
    parallel: usize,
) -> Result<u64> {
    let (format, progress) = Progress::importing(file, format);
    let imported = import(client, collection, file, format, batch, parallel, |n| {
        progress.acked(n)
    })
    .await;
    progress.finish();
    imported
}

/// Import `file`, read as `format`, `parallel` upserts of `batch` points in flight;
/// `on_ack(n)` after each batch, n = points acknowledged so far (always a prefix of the
/// file). Returns the number imported.
pub async fn import<R: Router>(
    client: R,
    collection: &str,
    file: &Path,
    format: Format,
    batch: usize,
    parallel: usize,
    mut on_ack: impl FnMut(u64),
) -> Result<u64> {
    if batch == 0 || parallel == 0 {
        bail!("--batch and --parallel must be at least 1");
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<pb::Point>>>(parallel * 2);
    let path = file.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || {
        let send = |b: Result<Vec<pb::Point>>| tx.blocking_send(b).is_ok();
        let points = match read::points(&path, format) {
            Ok(p) => p,
            Err(e) => {
                send(Err(e));
                return;
            }
        };
        let mut buf = Vec::with_capacity(batch);
        for p in points {
            match p {
                Ok(p) => buf.push(vecshard_model::proto::point_to_proto(p)),
                Err(e) => {
                    send(Err(e));
                    return;
                }
            }
            if buf.len() == batch
                && !send(Ok(std::mem::replace(&mut buf, Vec::with_capacity(batch))))
            {
                return;
            }
        }
        if !buf.is_empty() {
            send(Ok(buf));
        }
    });
    let batches = futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|b| (b, rx)) });
    let sends = batches
        .map(|b| {
            let mut c = client.clone();
            async move {
                let points = b?;
                let n = points.len() as u64;
                let req = pb::UpsertRequest {
                    collection: collection.to_string(),
                    points,
                };
                c.upsert(req).await.map_err(status)?;
                Ok::<u64, anyhow::Error>(n)
            }
        })
        .buffered(parallel);
    let mut sends = std::pin::pin!(sends);
    let mut acked = 0u64;
    while let Some(r) = sends.next().await {
        let n = r.with_context(|| format!("after {acked} acknowledged points"))?;
        acked += n;
        on_ack(acked);
    }
    reader.await.context("file reader")?;
    Ok(acked)
}
