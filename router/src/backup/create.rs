//! Taking a cluster backup: a checkpoint of every shard, then the manifest, last.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use vecshard_proto::internal::v1 as pi;

use super::jobs::Job;
use super::manifest::{
    self, BackupManifest, COMPLETE, FAILED, FORMAT, MANIFEST, Partitioning, STARTED, ShardBackup,
    now_ms, shard_dir,
};
use super::store::{self, Location};
use crate::core::Core;
use crate::data::call::{Serve, WhenDown, shard_failures};
use crate::error::{Error, ErrorKind, Result};
use crate::shardmap::Collection;

/// Shards checkpointed at the same time (each on its owner node).
const PARALLEL_SHARDS: usize = 4;

impl Core {
    /// Back up `collection` to `to`: write the started marker, checkpoint every shard on
    /// its owner (`<to>/shard-<nnnn>`), check the collection is still the same one, then
    /// write the manifest. `to` must be allowed (`router.backup_locations`). On failure the failed marker records why; the manifest is
    /// never written, so the backup never looks complete.
    pub async fn create_backup(
        &self,
        collection: &str,
        to: &str,
        timeout: Duration,
        job: &Job,
    ) -> Result<BackupManifest> {
        let url = self.backup_location(to)?;
        let view = self.view();
        let coll = Core::collection(&view, collection)?.clone();
        let loc = Location::open(&url)?;
        for f in [MANIFEST, STARTED] {
            if loc.get(f).await?.is_some() {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "a backup is already at {url} ({f} exists); choose another location or delete it"
                    ),
                ));
            }
        }
        let started_ms = now_ms();
        let marker = json!({
            "collection": collection,
            "incarnation": coll.incarnation,
            "shard_count": coll.spec.shard_count,
            "started_ms": started_ms,
            "router": self.id,
        });
        if !loc.create(STARTED, marker.to_string().into_bytes()).await? {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("another backup started at {url} meanwhile"),
            ));
        }
        job.set_total(coll.spec.shard_count as u64);
        let deadline = Instant::now() + timeout;
        let done = async {
            let shards = self.checkpoint_all(&coll, &url, deadline, job).await?;
            self.check_unchanged(&coll)?;
            let m = BackupManifest {
                format: FORMAT,
                status: COMPLETE.into(),
                collection: coll.spec.clone(),
                incarnation: coll.incarnation,
                shard_map_version: view.version,
                partitioning: Partitioning::of(coll.spec.shard_count),
                points: shards.iter().map(|s| s.points).sum(),
                bytes: shards.iter().map(|s| s.bytes).sum(),
                shards,
                started_ms,
                created_ms: now_ms(),
                crc32c: 0,
            };
            let bytes = m.clone().encode();
            if !loc.create(MANIFEST, bytes.clone()).await? {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("{url}/{MANIFEST} appeared meanwhile"),
                ));
            }
            BackupManifest::decode(&format!("{url}/{MANIFEST}"), &bytes)
        }
        .await;
        if let Err(e) = &done {
            let failed = json!({
                "collection": collection,
                "failed_ms": now_ms(),
                "code": crate::error_status::code_name(e.kind()),
                "error": e.message(),
            });
            if let Err(w) = loc.put(FAILED, failed.to_string().into_bytes()).await {
                tracing::warn!(error = %w, location = %url, "cannot record the failed backup");
            }
            tracing::warn!(error = %e, collection, location = %url, "backup failed");
        } else {
            tracing::info!(collection, location = %url, "backup complete");
        }
        done
    }

    async fn checkpoint_all(
        &self,
        coll: &Collection,
        url: &str,
        deadline: Instant,
        job: &Job,
    ) -> Result<Vec<ShardBackup>> {
        let name = coll.spec.name.as_str();
        let results: Vec<_> = futures::stream::iter(0..coll.spec.shard_count)
            .map(|n| async move {
                let r = self.checkpoint_shard(name, n, url, deadline).await;
                if let Ok(s) = &r {
                    job.shard_done(s.bytes, s.points);
                }
                r.map_err(|e| (n, e))
            })
            .buffer_unordered(PARALLEL_SHARDS)
            .collect()
            .await;
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for r in results {
            match r {
                Ok(s) => ok.push(s),
                Err(f) => failed.push(f),
            }
        }
        if !failed.is_empty() {
            return Err(shard_failures(name, "backup", failed));
        }
        ok.sort_by_key(|s| s.shard);
        Ok(ok)
    }

    async fn checkpoint_shard(
        &self,
        collection: &str,
        n: u32,
        url: &str,
        deadline: Instant,
    ) -> Result<ShardBackup> {
        let destination = store::join(url, &shard_dir(n));
        let r = self
            .call_shard(
                collection,
                n,
                Serve::Writer,
                WhenDown::Fail,
                deadline,
                |mut c, target, left| {
                    let mut r = tonic::Request::new(pi::CheckpointShardRequest {
                        target: Some(target),
                        destination: destination.clone(),
                    });
                    r.set_timeout(left);
                    async move { c.checkpoint_shard(r).await }
                },
            )
            .await?;
        let view = self.view();
        let a = Core::collection(&view, collection)
            .ok()
            .and_then(|c| c.shards.get(n as usize).cloned())
            .unwrap_or_default();
        Ok(ShardBackup {
            shard: n,
            path: shard_dir(n),
            node: a.owner.unwrap_or_default(),
            epoch: a.epoch,
            points: r.points,
            bytes: r.bytes,
            segments: r.segments,
            seq: r.seq,
            manifest_crc32c: r.manifest_crc32c,
            seconds: r.seconds,
        })
    }

    /// The collection must still be the one the backup began with (not dropped, not
    /// dropped and created again under its name).
    fn check_unchanged(&self, coll: &Collection) -> Result<()> {
        let view = self.view();
        match view.map.collections.get(&coll.spec.name) {
            Some(c) if c.incarnation == coll.incarnation => Ok(()),
            _ => Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!(
                    "collection {:?} was dropped while it was being backed up",
                    coll.spec.name
                ),
            )),
        }
    }
}

/// Where shard `n`'s checkpoint is under the backup `location`.
pub fn shard_location(location: &str, n: u32) -> String {
    store::join(location, &manifest::shard_dir(n))
}
