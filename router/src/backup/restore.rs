//! Restoring a backup as a new collection: same settings and shard count, shards placed
//! by the leader; each owner copies its shard's checkpoint into the new shard's location
//! before opening it (see the node's `RestoreFrom`). Done when every shard serves the
//! point count the manifest recorded.

use std::time::{Duration, Instant};

use serde_json::{Value as J, json};
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::v1 as pb;

use super::catalog::read_complete;
use super::jobs::Job;
use super::manifest::Partitioning;
use crate::core::{Core, ProposeError};
use crate::data::call::{Serve, WhenDown};
use crate::error::{Error, ErrorKind, Result};
use crate::meta::META_DEADLINE;
use crate::shardmap::{CollectionSpec, Command, RestoreSource, placement};

/// How often a restore looks at its shards.
const POLL: Duration = Duration::from_millis(100);

/// What to restore where.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The backup's location.
    pub from: String,
    /// The new collection's name.
    pub as_name: String,
    /// The new collection's storage; `None`: the backed-up collection's.
    pub storage: Option<String>,
}

impl Core {
    /// Restore a complete backup (at an allowed location) as a new collection and wait (until `timeout`) for
    /// every shard to serve its recorded points. `forwarded`: another router asks this
    /// one, the leader, only to create the collection. On failure the new collection is
    /// dropped again.
    pub async fn restore_backup(
        &self,
        req: RestoreRequest,
        timeout: Duration,
        forwarded: bool,
        job: &Job,
    ) -> Result<J> {
        let deadline = Instant::now() + timeout;
        vecshard_model::validate::collection_name(&req.as_name)?;
        let (loc, m) = read_complete(&self.backup_location(&req.from)?).await?;
        let count = m.collection.shard_count;
        if Partitioning::of(count) != m.partitioning {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!(
                    "the backup at {} partitions keys differently from this router ({:?}); it cannot be restored here",
                    loc.url(),
                    m.partitioning.scheme
                ),
            ));
        }
        let storage = req.storage.as_deref().unwrap_or(&m.collection.storage);
        let spec = CollectionSpec {
            name: req.as_name.clone(),
            storage: crate::storage::collection_storage(storage, &self.cfg.allowed_prefixes())?,
            ..m.collection.clone()
        };
        let source = RestoreSource {
            location: loc.url().to_string(),
            manifest_crc32c: m.shards.iter().map(|s| s.manifest_crc32c).collect(),
        };
        let body = json!({"from": req.from, "as": req.as_name, "storage": req.storage});
        let meta_deadline = Instant::now() + META_DEADLINE;
        self.on_leader(
            meta_deadline,
            forwarded,
            || self.restore_here(spec.clone(), source.clone()),
            |leader| self.forward_admin(leader, "/v1/backups/restore", body.clone()),
        )
        .await?;
        if forwarded {
            return Ok(json!({ "collection": req.as_name }));
        }
        job.set_total(count as u64);
        let started = Instant::now();
        match self.wait_restored(&req.as_name, &m, deadline, job).await {
            Ok(points) => Ok(json!({
                "collection": req.as_name,
                "from": loc.url(),
                "shard_count": count,
                "points": points,
                "bytes": m.bytes,
                "seconds": started.elapsed().as_secs_f64(),
            })),
            Err(e) => {
                let dropped = self.drop_collection(req.as_name.clone(), false).await;
                let note = match dropped {
                    Ok(_) => format!("collection {:?} was dropped again", req.as_name),
                    Err(d) => format!("dropping collection {:?} failed too: {d}", req.as_name),
                };
                Err(e.context(format!("restore of {} ({note})", loc.url())))
            }
        }
    }

    async fn restore_here(
        &self,
        spec: CollectionSpec,
        restore: RestoreSource,
    ) -> Result<J, ProposeError> {
        let view = self.view();
        if view.map.collections.contains_key(&spec.name) {
            return Err(ProposeError::Failed(Error::new(
                ErrorKind::AlreadyExists,
                format!("collection {:?} already exists", spec.name),
            )));
        }
        let owners = placement::place_new(&view.map, spec.shard_count).ok_or_else(|| {
            ProposeError::Failed(Error::unavailable(
                "no live data node to place the shards on (start nodes and let them register)",
            ))
        })?;
        self.propose(Command::RestoreCollection {
            spec: spec.clone(),
            owners: owners.into_iter().map(Some).collect(),
            restore,
        })
        .await?;
        self.control.notify_one();
        Ok(json!({ "collection": spec.name }))
    }

    /// Wait until every shard of `name` serves, each with the points the manifest
    /// recorded; fail at once when a shard's owner reports it failed.
    async fn wait_restored(
        &self,
        name: &str,
        m: &super::manifest::BackupManifest,
        deadline: Instant,
        job: &Job,
    ) -> Result<u64> {
        let mut pending: Vec<u32> = (0..m.collection.shard_count).collect();
        let mut total = 0;
        loop {
            let mut still = Vec::new();
            for n in pending {
                let view = self.view();
                let coll = Core::collection(&view, name)?;
                let (state, why) = self.shard_report(&view, coll, n);
                if state == pb::ShardState::Failed || state == pb::ShardState::Fenced {
                    return Err(Error::new(
                        ErrorKind::FailedPrecondition,
                        format!("shard {n} of {name:?} did not open: {why}"),
                    ));
                }
                if state != pb::ShardState::Serving {
                    still.push(n);
                    continue;
                }
                match self.count_shard(name, n).await {
                    Ok(points) => {
                        let want = m.shards[n as usize].points;
                        if points != want {
                            return Err(Error::new(
                                ErrorKind::DataLoss,
                                format!(
                                    "restored shard {n} of {name:?} has {points} points; the backup recorded {want}"
                                ),
                            ));
                        }
                        total += points;
                        job.shard_done(m.shards[n as usize].bytes, points);
                    }
                    Err(_) => still.push(n),
                }
            }
            if still.is_empty() {
                return Ok(total);
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::DeadlineExceeded,
                    format!(
                        "shards {still:?} of {name:?} were not serving before the restore's deadline"
                    ),
                ));
            }
            pending = still;
            tokio::time::sleep(POLL).await;
        }
    }

    /// A shard's points, if its owner serves it now.
    async fn count_shard(&self, name: &str, n: u32) -> Result<u64> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let r = self
            .call_shard(
                name,
                n,
                Serve::Writer,
                WhenDown::Fail,
                deadline,
                |mut c, target, left| {
                    let mut r = tonic::Request::new(pi::CountRequest {
                        target: Some(target),
                        filter: None,
                    });
                    r.set_timeout(left);
                    async move { c.count(r).await }
                },
            )
            .await?;
        Ok(r.count)
    }
}
