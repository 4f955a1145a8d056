//! `vecshard import --router ADDR --collection C FILE`: upsert a file's points through a
//! router, `parallel` batches in flight, progress counting the acknowledged prefix of the
//! file (a bar on a terminal, `acked N` lines in a pipe).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use vecshard_proto::v1 as pb;

use super::client::{Client, connect, status};
use crate::datafile;
use crate::progress::Progress;

pub async fn run(
    router: &str,
    collection: &str,
    file: PathBuf,
    batch: usize,
    parallel: usize,
) -> Result<u64> {
    if batch == 0 || parallel == 0 {
        bail!("--batch and --parallel must be at least 1");
    }
    let client = connect(router).await?;
    let progress = Progress::new(datafile::count_hint(&file), "importing");
    let acked = import(client, collection, &file, batch, parallel, |n| {
        progress.acked(n)
    })
    .await?;
    progress.finish();
    eprintln!("imported {acked} points into {collection}");
    Ok(acked)
}

/// Import `file`; `on_ack(n)` after each batch, n = points acknowledged so far (always a
/// prefix of the file). Returns the number imported.
pub async fn import(
    client: Client,
    collection: &str,
    file: &Path,
    batch: usize,
    parallel: usize,
    mut on_ack: impl FnMut(u64),
) -> Result<u64> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<pb::Point>>>(parallel * 2);
    let path = file.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || {
        let send = |b: Result<Vec<pb::Point>>| tx.blocking_send(b).is_ok();
        let points = match datafile::points(&path) {
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
