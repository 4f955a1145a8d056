//! The backup manifest (`backup.json`) and the status markers around it. See
//! `docs/design/013-cluster-backups.md`.
//!
//! ```text
//! <location>/backup-started.json   written first (create-once): the backup exists
//! <location>/shard-<nnnn>/         one engine checkpoint per shard (written by nodes)
//! <location>/backup-failed.json    written when the backup failed, with the error
//! <location>/backup.json           written last (create-once): the backup is complete
//! ```

use serde::{Deserialize, Serialize};
use vecshard_proto::v1 as pb;

use crate::error::{Error, ErrorKind, Result};
use crate::partition::Partitioner;
use crate::shardmap::CollectionSpec;

/// The manifest's file name; its presence (valid) is what makes a backup complete.
pub const MANIFEST: &str = "backup.json";
/// Written before any checkpoint.
pub const STARTED: &str = "backup-started.json";
/// Written when a backup fails.
pub const FAILED: &str = "backup-failed.json";
/// The manifest format this router writes and reads.
pub const FORMAT: u32 = 1;
/// The one status a manifest can have: it is written only when everything else is.
pub const COMPLETE: &str = "complete";

/// Shard `n`'s checkpoint directory, relative to the backup location.
pub fn shard_dir(n: u32) -> String {
    format!("shard-{n:04}")
}

/// The manifest of a complete backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    /// [`FORMAT`].
    pub format: u32,
    /// Always [`COMPLETE`].
    pub status: String,
    /// The collection's settings when the backup began (name, dimension, metric, shard
    /// count, storage, index parameters).
    pub collection: CollectionSpec,
    /// The collection's incarnation (its id in the shard map).
    pub incarnation: u64,
    /// The shard map version (Raft log index) the backup started at.
    pub shard_map_version: u64,
    /// How keys map to shards.
    pub partitioning: Partitioning,
    /// One entry per shard, by number.
    pub shards: Vec<ShardBackup>,
    /// Live points over all shards.
    pub points: u64,
    /// Bytes of segment files over all shards.
    pub bytes: u64,
    /// When the backup began (Unix ms; the consistency point: every write acknowledged
    /// before it is in the backup).
    pub started_ms: u64,
    /// When the manifest was written (Unix ms).
    pub created_ms: u64,
    /// CRC32C of this manifest serialised with `crc32c` = 0.
    pub crc32c: u32,
}

/// The partitioning of keys onto shards, with golden vectors a restoring router checks
/// against its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partitioning {
    /// The scheme's name.
    pub scheme: String,
    /// Shards on the ring.
    pub shard_count: u32,
    /// The shard of integer keys 0, 1, 2, ….
    pub int_keys: Vec<u32>,
    /// The shard of string keys `key-0`, `key-1`, ….
    pub str_keys: Vec<u32>,
}

/// The scheme [`Partitioning::of`] describes.
pub const SCHEME: &str = "xxh3-64 key hash on a consistent-hash ring, 1024 virtual nodes per shard";
const GOLDEN: u32 = 32;

impl Partitioning {
    /// This router's partitioning for `shard_count` shards.
    pub fn of(shard_count: u32) -> Partitioning {
        let p = Partitioner::new(shard_count);
        let key = |kind| pb::Key { kind: Some(kind) };
        let shard = |k: pb::Key| p.shard_of(&k).unwrap_or(0);
        Partitioning {
            scheme: SCHEME.to_string(),
            shard_count,
            int_keys: (0..GOLDEN)
                .map(|i| shard(key(pb::key::Kind::Int(i as u64))))
                .collect(),
            str_keys: (0..GOLDEN)
                .map(|i| shard(key(pb::key::Kind::Str(format!("key-{i}")))))
                .collect(),
        }
    }
}

/// One shard's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardBackup {
    /// The shard's number.
    pub shard: u32,
    /// Its checkpoint directory, relative to the backup location (`shard-0003`).
    pub path: String,
    /// The node that wrote it.
    pub node: String,
    /// The shard's epoch then.
    pub epoch: u64,
    /// Live points.
    pub points: u64,
    /// Bytes of segment files.
    pub bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// The shard's sequence number the checkpoint covers.
    pub seq: u64,
    /// CRC32C of the checkpoint's manifest file (which names each segment and its size;
    /// segments carry their own checksums).
    pub manifest_crc32c: u32,
    /// Seconds the checkpoint took.
    pub seconds: f64,
}

impl BackupManifest {
    /// Serialise with the checksum filled in.
    pub fn encode(mut self) -> Vec<u8> {
        self.crc32c = 0;
        let crc = crc32c::crc32c(&serde_json::to_vec(&self).unwrap_or_default());
        self.crc32c = crc;
        serde_json::to_vec_pretty(&self).unwrap_or_default()
    }

    /// Parse and check a manifest read from `at`: format, status, checksum, shard list.
    pub fn decode(at: &str, data: &[u8]) -> Result<BackupManifest> {
        let corrupt = |why: String| {
            Error::new(
                ErrorKind::DataLoss,
                format!("corrupt backup manifest {at}: {why}"),
            )
        };
        let m: BackupManifest = serde_json::from_slice(data).map_err(|e| corrupt(e.to_string()))?;
        if m.format != FORMAT {
            return Err(corrupt(format!(
                "format {} (this router reads format {FORMAT})",
                m.format
            )));
        }
        let mut zeroed = m.clone();
        zeroed.crc32c = 0;
        let crc = crc32c::crc32c(&serde_json::to_vec(&zeroed).unwrap_or_default());
        if crc != m.crc32c {
            return Err(corrupt(format!(
                "checksum {crc:#010x}, the manifest says {:#010x}",
                m.crc32c
            )));
        }
        if m.status != COMPLETE
            || m.shards.len() != m.collection.shard_count as usize
            || m.shards
                .iter()
                .enumerate()
                .any(|(i, s)| s.shard != i as u32)
        {
            return Err(corrupt(
                "its status or shard list does not describe a complete backup".into(),
            ));
        }
        Ok(m)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shardmap::{IndexParams, Metric};

    fn manifest() -> BackupManifest {
        BackupManifest {
            format: FORMAT,
            status: COMPLETE.into(),
            collection: CollectionSpec {
                name: "c".into(),
                dimension: 4,
                metric: Metric::L2,
                shard_count: 1,
                storage: "local".into(),
                index: IndexParams::default(),
            },
            incarnation: 7,
            shard_map_version: 9,
            partitioning: Partitioning::of(1),
            shards: vec![ShardBackup {
                shard: 0,
                path: shard_dir(0),
                node: "n1".into(),
                epoch: 7,
                points: 10,
                bytes: 100,
                segments: 1,
                seq: 10,
                manifest_crc32c: 5,
                seconds: 0.1,
            }],
            points: 10,
            bytes: 100,
            started_ms: 1,
            created_ms: 2,
            crc32c: 0,
        }
    }

    #[test]
    fn round_trip_and_corruption_is_named() {
        let m = manifest();
        let bytes = m.clone().encode();
        let back = BackupManifest::decode("x/backup.json", &bytes).unwrap();
        assert_eq!(back.shards, m.shards);
        assert_ne!(back.crc32c, 0);
        let tampered = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("\"points\": 10", "\"points\": 11");
        let e = BackupManifest::decode("x/backup.json", tampered.as_bytes()).unwrap_err();
        assert!(
            e.message().contains("checksum") && e.message().contains("x/backup.json"),
            "{e}"
        );
        let e = BackupManifest::decode("x/backup.json", &bytes[..bytes.len() / 2]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DataLoss, "{e}");
    }

    #[test]
    fn partitioning_is_pinned() {
        let p = Partitioning::of(4);
        assert_eq!(p, Partitioning::of(4));
        assert!(p.int_keys.iter().chain(&p.str_keys).all(|s| *s < 4));
        assert!(p.int_keys.iter().any(|s| *s != p.int_keys[0]), "{p:?}");
    }
}
