//! Conversions between the shard map's types and the proto types, in one place.

use vecshard_proto::internal::v1 as pi;
use vecshard_proto::v1 as pb;

use vecshard_model::{proto as model_pb, replication, validate};

use serde_json::Value as J;

use crate::backup::Job;
use crate::backup::manifest::{BackupManifest, ShardBackup};
use crate::error::{Error, Result};
use crate::shardmap::{Collection, CollectionSpec, Liveness, Replication, WriteAck};

impl CollectionSpec {
    /// As the proto message.
    pub fn to_proto(&self) -> pb::CollectionSpec {
        pb::CollectionSpec {
            name: self.name.clone(),
            dimension: self.dimension,
            metric: model_pb::metric_to_proto(self.metric) as i32,
            shard_count: self.shard_count,
            storage: self.storage.clone(),
            index: Some(model_pb::index_to_proto(&self.index)),
            replication_factor: 1,
            write_ack: String::new(),
        }
    }

    /// Validate a create request and fill in defaults; the storage must be `local` or lie
    /// under one of the `allowed` object-store prefixes.
    pub fn from_request(
        r: &pb::CreateCollectionRequest,
        default_shards: u32,
        allowed: &[String],
    ) -> Result<Self> {
        validate::collection_name(&r.name)?;
        validate::dimension(r.dimension as usize)?;
        let metric = model_pb::metric_from_proto(r.metric)?;
        let shard_count = if r.shard_count == 0 {
            default_shards
        } else {
            r.shard_count
        };
        validate::shard_count(shard_count)?;
        let storage = crate::storage::collection_storage(&r.storage, allowed)?;
        let index = model_pb::index_from_proto(r.index.as_ref())?;
        Ok(CollectionSpec {
            name: r.name.clone(),
            dimension: r.dimension,
            metric,
            shard_count,
            storage,
            index,
        })
    }
}

impl Collection {
    /// The settings as the proto message, replication included.
    pub fn spec_proto(&self) -> pb::CollectionSpec {
        let mut s = self.spec.to_proto();
        if let Some(r) = self.replication {
            s.replication_factor = r.factor;
            s.write_ack = r.write_ack.as_str().to_string();
        }
        s
    }
}

impl Replication {
    /// A create request's replication: `None` for a factor of 1 (0 in the request means
    /// 1). A factor above 1 needs `local` storage: object-store shards share their storage
    /// and fail over by moving.
    pub fn from_request(
        r: &pb::CreateCollectionRequest,
        spec: &CollectionSpec,
    ) -> Result<Option<Self>> {
        let factor = r.replication_factor.max(1);
        replication::replication_factor(factor)?;
        let write_ack = WriteAck::parse_or_default(&r.write_ack)?;
        if factor == 1 {
            return Ok(None);
        }
        if spec.storage != "local" {
            return Err(Error::invalid(format!(
                "replication_factor {factor} needs local storage; {:?} is an object store, \
                 whose shards share their storage and fail over without replicas",
                spec.storage
            )));
        }
        Ok(Some(Replication { factor, write_ack }))
    }
}

impl Liveness {
    /// As the proto enum.
    pub fn to_proto(self) -> pb::NodeState {
        match self {
            Liveness::Joining => pb::NodeState::Joining,
            Liveness::Alive => pb::NodeState::Alive,
            Liveness::Down => pb::NodeState::Down,
        }
    }
}

/// A node's reported shard state as the public enum.
pub fn shard_state(s: i32) -> pb::ShardState {
    match pi::ShardState::try_from(s) {
        Ok(pi::ShardState::Opening) => pb::ShardState::Opening,
        Ok(pi::ShardState::Serving) => pb::ShardState::Serving,
        Ok(pi::ShardState::Fenced) => pb::ShardState::Fenced,
        Ok(pi::ShardState::Failed) => pb::ShardState::Failed,
        Ok(pi::ShardState::Closed) => pb::ShardState::Closed,
        Ok(pi::ShardState::Unspecified) | Err(_) => pb::ShardState::Unspecified,
    }
}

impl BackupManifest {
    /// As the proto message.
    pub fn to_proto(&self) -> pb::BackupManifest {
        pb::BackupManifest {
            format: self.format,
            collection: Some(self.collection.to_proto()),
            incarnation: self.incarnation,
            shard_map_version: self.shard_map_version,
            shards: self.shards.iter().map(ShardBackup::to_proto).collect(),
            points: self.points,
            bytes: self.bytes,
            started_ms: self.started_ms,
            created_ms: self.created_ms,
            crc32c: self.crc32c,
            partitioning_scheme: self.partitioning.scheme.clone(),
        }
    }
}

impl ShardBackup {
    /// As the proto message.
    pub fn to_proto(&self) -> pb::BackupShard {
        pb::BackupShard {
            shard: self.shard,
            path: self.path.clone(),
            node: self.node.clone(),
            epoch: self.epoch,
            points: self.points,
            bytes: self.bytes,
            segments: self.segments,
            seq: self.seq,
            manifest_crc32c: self.manifest_crc32c,
            seconds: self.seconds,
        }
    }
}

fn str_of(v: &J) -> String {
    match v {
        J::Null => String::new(),
        J::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn u64_of(v: &J) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The `manifest` field of a backup's JSON (a job's result, a description) as proto;
/// `None` when absent.
fn manifest_of(v: &J) -> Option<pb::BackupManifest> {
    serde_json::from_value::<BackupManifest>(v.clone())
        .ok()
        .map(|m| m.to_proto())
}

/// A backup's summary (an entry of `list_backups`, the head of `describe_backup`) as
/// proto.
pub fn backup_summary(v: &J) -> pb::BackupSummary {
    let status = match v["status"].as_str() {
        Some("complete") => pb::BackupStatus::Complete,
        Some("incomplete") => pb::BackupStatus::Incomplete,
        Some("failed") => pb::BackupStatus::Failed,
        Some("corrupt") => pb::BackupStatus::Corrupt,
        _ => pb::BackupStatus::Unspecified,
    };
    pb::BackupSummary {
        location: str_of(&v["location"]),
        name: str_of(&v["name"]),
        status: status as i32,
        collection: str_of(&v["collection"]),
        shard_count: u64_of(&v["shard_count"]) as u32,
        points: u64_of(&v["points"]),
        bytes: u64_of(&v["bytes"]),
        started_ms: u64_of(&v["started_ms"]),
        created_ms: u64_of(&v["created_ms"]),
        error: str_of(&v["error"]),
    }
}

/// A backup's description (`describe_backup`) as proto.
pub fn backup_description(v: &J) -> pb::DescribeBackupResponse {
    pb::DescribeBackupResponse {
        backup: Some(backup_summary(v)),
        manifest: manifest_of(&v["manifest"]),
    }
}

/// A job, with its progress and (once ended) its outcome, as proto.
pub fn backup_job(job: &Job) -> pb::BackupJob {
    use pb::backup_job::Result as Outcome;
    let v = job.to_json();
    let state = match v["state"].as_str() {
        Some("done") => pb::BackupJobState::Done,
        Some("failed") => pb::BackupJobState::Failed,
        _ => pb::BackupJobState::Running,
    };
    let r = &v["result"];
    let result = match (state, job.kind) {
        (pb::BackupJobState::Done, "backup") => manifest_of(&r["manifest"]).map(Outcome::Backup),
        (pb::BackupJobState::Done, _) => Some(Outcome::Restore(pb::RestoreResult {
            collection: str_of(&r["collection"]),
            location: str_of(&r["from"]),
            shard_count: u64_of(&r["shard_count"]) as u32,
            points: u64_of(&r["points"]),
            bytes: u64_of(&r["bytes"]),
            seconds: r["seconds"].as_f64().unwrap_or(0.0),
        })),
        _ => None,
    };
    pb::BackupJob {
        id: job.id.clone(),
        kind: job.kind.to_string(),
        location: job.location.clone(),
        collection: job.collection.clone(),
        state: state as i32,
        shards_total: u64_of(&v["shards_total"]),
        shards_done: u64_of(&v["shards_done"]),
        bytes_done: u64_of(&v["bytes_done"]),
        points_done: u64_of(&v["points_done"]),
        elapsed_s: v["elapsed_s"].as_f64().unwrap_or(0.0),
        result,
        error_code: str_of(&v["error"]["code"]),
        error_message: str_of(&v["error"]["message"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shardmap::IndexParams;

    #[test]
    fn create_requests_get_defaults_and_checks() {
        let mut r = pb::CreateCollectionRequest {
            name: "docs-1".into(),
            dimension: 8,
            metric: pb::Metric::Cosine as i32,
            ..Default::default()
        };
        let allowed = ["s3://bucket/prefix".to_string()];
        let s = CollectionSpec::from_request(&r, 3, &allowed).unwrap();
        assert_eq!(
            (s.shard_count, s.storage.as_str(), s.index),
            (3, "local", IndexParams::default())
        );
        r.storage = "s3://bucket/prefix/".into();
        assert_eq!(
            CollectionSpec::from_request(&r, 3, &allowed)
                .unwrap()
                .storage,
            "s3://bucket/prefix"
        );
        for (bad, needle) in [
            (
                pb::CreateCollectionRequest {
                    name: "a b".into(),
                    ..r.clone()
                },
                "contains ' '",
            ),
            (
                pb::CreateCollectionRequest {
                    name: String::new(),
                    ..r.clone()
                },
                "1 to 255",
            ),
            (
                pb::CreateCollectionRequest {
                    dimension: 0,
                    ..r.clone()
                },
                "dimension",
            ),
            (
                pb::CreateCollectionRequest {
                    metric: 0,
                    ..r.clone()
                },
                "metric 0 is not one of",
            ),
            (
                pb::CreateCollectionRequest {
                    storage: "bucket".into(),
                    ..r.clone()
                },
                "storage \"bucket\" is not allowed",
            ),
            (
                pb::CreateCollectionRequest {
                    shard_count: 5000,
                    ..r.clone()
                },
                "shard_count",
            ),
        ] {
            let e = CollectionSpec::from_request(&bad, 3, &allowed).unwrap_err();
            assert!(e.message().contains(needle), "{e}");
        }
    }

    #[test]
    fn replication_is_checked_and_only_for_local_storage() {
        let allowed = ["s3://bucket/prefix".to_string()];
        let req = |rf: u32, ack: &str, storage: &str| pb::CreateCollectionRequest {
            name: "r".into(),
            dimension: 4,
            metric: pb::Metric::L2 as i32,
            storage: storage.into(),
            replication_factor: rf,
            write_ack: ack.into(),
            ..Default::default()
        };
        let check = |r: &pb::CreateCollectionRequest| {
            let spec = CollectionSpec::from_request(r, 1, &allowed)?;
            Replication::from_request(r, &spec)
        };
        assert_eq!(check(&req(0, "", "")).unwrap(), None);
        assert_eq!(check(&req(1, "all", "s3://bucket/prefix")).unwrap(), None);
        assert_eq!(
            check(&req(3, "", "local")).unwrap(),
            Some(Replication {
                factor: 3,
                write_ack: WriteAck::Majority
            })
        );
        assert_eq!(
            check(&req(5, "all", "")).unwrap(),
            Some(Replication {
                factor: 5,
                write_ack: WriteAck::All
            })
        );
        for (bad, needles) in [
            (req(6, "", ""), &["replication_factor", "1..=5", "6"][..]),
            (req(3, "quorum", ""), &["write_ack", "quorum"][..]),
            (req(1, "some", ""), &["write_ack", "some"][..]),
            (
                req(2, "", "s3://bucket/prefix"),
                &[
                    "replication_factor 2",
                    "local storage",
                    "s3://bucket/prefix",
                ][..],
            ),
        ] {
            let e = check(&bad).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::InvalidArgument, "{e}");
            for n in needles {
                assert!(e.message().contains(n), "{n}: {e}");
            }
        }
    }
}
