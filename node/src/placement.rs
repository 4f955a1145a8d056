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
}

impl Role {
    /// Lower-case name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
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
    /// Dimension, metric and index parameters.
    pub spec: ShardSpec,
}

impl Assignment {
    /// The engine location of the shard: `<data_dir>/<collection>/<shard>` for local
    /// shards, the URL otherwise.
    pub fn location(&self, data_dir: &Path) -> String {
        match &self.storage {
            Storage::Local => data_dir
                .join(&self.id.collection)
                .join(self.id.shard.to_string())
                .to_string_lossy()
                .into_owned(),
            Storage::Url(url) => url.clone(),
        }
    }
}

/// Check a collection name: 1 to 255 letters, digits, `_` and `-` (it becomes a
/// directory name, so nothing else is allowed).
pub fn check_collection_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!(
            "collection name must have 1 to 255 characters, got {}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "collection name {name:?} contains {c:?}; use letters, digits, '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_locations() {
        assert!(check_collection_name("docs_v2-a").is_ok());
        for bad in ["", "../x", "a/b", "a b", "é"] {
            assert!(check_collection_name(bad).is_err(), "{bad}");
        }
        let a = Assignment {
            id: ShardId {
                collection: "c".into(),
                shard: 3,
            },
            epoch: 1,
            role: Role::Writer,
            storage: Storage::Local,
            spec: ShardSpec::new(4, vecshard_engine::Metric::L2),
        };
        assert_eq!(a.location(Path::new("/data")), "/data/c/3");
        let b = Assignment {
            storage: Storage::Url("s3://b/p/c/3".into()),
            ..a
        };
        assert_eq!(b.location(Path::new("/data")), "s3://b/p/c/3");
    }
}
