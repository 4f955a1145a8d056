//! What the router asks a node to hold: a shard's identity, its role, its epoch and
//! where its data lives. Also the one place local shard paths are built.

use std::fmt;
use std::path::Path;

use vecshard_engine::ShardSpec;

/// A shard of a collection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId {
    /// The collection's name.
    pub collection: String,
    /// The shard's number.
    pub shard: u32,
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.collection, self.shard)
    }
}

/// What a node does with a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The one writer: serves reads and writes.
    Writer,
    /// A read-only replica that follows the writer's manifests.
    Reader,
    /// A follower of a replicated local-disk shard: its own copy, written only by the
    /// primary's frames (`docs/design/014-replication.md`); serves reads.
    Follower,
}

impl Role {
    /// Lower-case name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
            Role::Follower => "follower",
        }
    }
}

/// Where a shard's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Under the node's data directory.
    Local,
    /// The shard's own object-store root, used as is.
    Url(String),
}

/// One shard assignment from the router.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Which shard.
    pub id: ShardId,
    /// The assignment's epoch.
    pub epoch: u64,
    /// The role to take.
    pub role: Role,
    /// Where the data lives.
    pub storage: Storage,
    /// The collection's incarnation (0: created before incarnations).
    pub incarnation: u64,
    /// Dimension, metric and index parameters.
    pub spec: ShardSpec,
    /// A checkpoint to copy into an empty location before opening (a restore).
    pub restore: Option<RestoreFrom>,
    /// The replicas of a replicated local-disk shard (`None`: replication factor 1).
    pub replication: Option<ReplicaSet>,
}

/// The replicas of a replicated shard at the assignment's epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSet {
    /// Every replica, the primary first.
    pub replicas: Vec<Peer>,
    /// When the primary acknowledges a write.
    pub write_ack: vecshard_model::replication::WriteAck,
    /// (epoch, start sequence number) of every promotion.
    pub epoch_starts: Vec<(u64, u64)>,
}

/// One replica of a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The node's id.
    pub node_id: String,
    /// The node's gRPC address.
    pub address: String,
    /// Whether the shard map counts it in the in-sync set.
    pub in_sync: bool,
}

/// A checkpoint a new shard is restored from (one shard of a cluster backup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreFrom {
    /// The checkpoint's location.
    pub location: String,
    /// The CRC32C its manifest file must have.
    pub manifest_crc32c: u32,
}

impl Assignment {
    /// The engine location of the shard (see [`location`]).
    pub fn location(&self, data_dir: &Path) -> String {
        location(data_dir, &self.id, &self.storage, self.incarnation)
    }
}

/// The engine location of a shard: for local shards
/// `<data_dir>/<collection>-<incarnation>/shard-<nnnn>`, or `<data_dir>/<collection>/<shard>`
/// for incarnation 0 (collections created before incarnations); the URL otherwise. The
/// collection name is checked (`vecshard_model::validate::collection_name`), so the path stays inside
/// `data_dir`.
pub fn location(data_dir: &Path, id: &ShardId, storage: &Storage, incarnation: u64) -> String {
    let local = match incarnation {
        0 => data_dir.join(&id.collection).join(id.shard.to_string()),
        n => data_dir
            .join(format!("{}-{n}", id.collection))
            .join(format!("shard-{:04}", id.shard)),
    };
    match storage {
        Storage::Local => local.to_string_lossy().into_owned(),
        Storage::Url(url) => url.clone(),
    }
}

pub use vecshard_model::storage_url::{SHARED_SCHEMES, parse as parse_storage_url};

/// Check that the object-store `url` lies under one of the node's `allowed` prefixes
/// (normalized by [`parse_storage_url`]); the error names the URL and the allowed values.
pub fn check_storage_allowed(url: &str, allowed: &[String]) -> Result<(), String> {
    let allowed_values = if allowed.is_empty() {
        "cluster.allowed_storage is empty: this node opens local shards only".to_string()
    } else {
        format!("cluster.allowed_storage: {}", allowed.join(", "))
    };
    let refuse = |why: &str| {
        format!("storage {url:?} is not allowed on this node: it {why}; {allowed_values}")
    };
    let url = parse_storage_url(url).map_err(|why| refuse(&why))?;
    if allowed
        .iter()
        .any(|p| vecshard_model::storage_url::is_under(&url, p))
    {
        Ok(())
    } else {
        Err(refuse("is outside the allowed prefixes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_locations() {
        let a = Assignment {
            id: ShardId {
                collection: "c".into(),
                shard: 3,
            },
            epoch: 1,
            role: Role::Writer,
            storage: Storage::Local,
            incarnation: 0,
            spec: ShardSpec::new(4, vecshard_engine::Metric::L2),
            restore: None,
            replication: None,
        };
        assert_eq!(a.location(Path::new("/data")), "/data/c/3");
        let new = Assignment {
            incarnation: 42,
            ..a.clone()
        };
        assert_eq!(new.location(Path::new("/data")), "/data/c-42/shard-0003");
        let b = Assignment {
            storage: Storage::Url("s3://b/p/c/3".into()),
            ..a
        };
        assert_eq!(b.location(Path::new("/data")), "s3://b/p/c/3");
    }

    #[test]
    fn storage_urls_must_lie_under_an_allowed_prefix() {
        let allowed = vec!["s3://vecshard/a".to_string()];
        for ok in ["s3://vecshard/a", "s3://vecshard/a/c-7/shard-0000"] {
            check_storage_allowed(ok, &allowed).unwrap();
        }
        for bad in [
            "s3://vecshard/ab",
            "s3://vecshard/a/../b",
            "s3://vecshard/a/./b",
            "s3://vecshard/a//b",
            "s3://vecshard",
            "memory://vecshard/a",
            "file:///vecshard/a",
            "/vecshard/a",
        ] {
            let e = check_storage_allowed(bad, &allowed).unwrap_err();
            assert!(e.contains(bad) && e.contains("s3://vecshard/a"), "{e}");
        }
        let e = check_storage_allowed("s3://vecshard/a", &[]).unwrap_err();
        assert!(e.contains("local shards only"), "{e}");
    }
}
