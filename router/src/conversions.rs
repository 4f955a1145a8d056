//! Conversions between the shard map's types and the proto types, in one place.

use vecshard_proto::internal::v1 as pi;
use vecshard_proto::v1 as pb;

use crate::error::{Error, Result};
use crate::shardmap::{CollectionSpec, IndexParams, Liveness, Metric};
use crate::validate::{self, limits};

impl Metric {
    /// The proto enum value.
    pub fn to_proto(self) -> pb::Metric {
        match self {
            Metric::L2 => pb::Metric::L2,
            Metric::Cosine => pb::Metric::Cosine,
            Metric::Dot => pb::Metric::Dot,
        }
    }

    /// From the proto enum value (as carried in a message).
    pub fn from_proto(v: i32) -> Result<Metric> {
        match pb::Metric::try_from(v) {
            Ok(pb::Metric::L2) => Ok(Metric::L2),
            Ok(pb::Metric::Cosine) => Ok(Metric::Cosine),
            Ok(pb::Metric::Dot) => Ok(Metric::Dot),
            Ok(pb::Metric::Unspecified) | Err(_) => {
                Err(Error::invalid("metric is required: l2, cosine or dot"))
            }
        }
    }

    /// `l2`, `cosine` or `dot`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
        }
    }

    /// Parse `l2`, `cosine` or `dot` (and common aliases).
    pub fn parse(s: &str) -> Result<Metric> {
        match s.to_ascii_lowercase().as_str() {
            "l2" | "euclid" | "euclidean" => Ok(Metric::L2),
            "cosine" | "cos" => Ok(Metric::Cosine),
            "dot" | "ip" | "inner_product" => Ok(Metric::Dot),
            other => Err(Error::invalid(format!(
                "unknown metric {other:?} (expected l2, cosine or dot)"
            ))),
        }
    }
}

impl IndexParams {
    /// As the proto message, every field set.
    pub fn to_proto(self) -> pb::IndexParams {
        pb::IndexParams {
            m: Some(self.m),
            ef_construction: Some(self.ef_construction),
            ef_search: Some(self.ef_search),
        }
    }
}

impl CollectionSpec {
    /// As the proto message.
    pub fn to_proto(&self) -> pb::CollectionSpec {
        pb::CollectionSpec {
            name: self.name.clone(),
            dimension: self.dimension,
            metric: self.metric.to_proto() as i32,
            shard_count: self.shard_count,
            storage: self.storage.clone(),
            index: Some(self.index.to_proto()),
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
        if !(1..=limits::MAX_DIM).contains(&r.dimension) {
            return Err(Error::invalid(format!(
                "dimension must be in 1..={}, got {}",
                limits::MAX_DIM,
                r.dimension
            )));
        }
        let metric = Metric::from_proto(r.metric)?;
        let shard_count = if r.shard_count == 0 {
            default_shards
        } else {
            r.shard_count
        };
        if shard_count > limits::MAX_SHARDS {
            return Err(Error::invalid(format!(
                "shard_count must be at most {}, got {shard_count}",
                limits::MAX_SHARDS
            )));
        }
        let storage = crate::storage::collection_storage(&r.storage, allowed)?;
        let d = IndexParams::default();
        let i = r.index.unwrap_or_default();
        let index = IndexParams {
            m: i.m.unwrap_or(d.m),
            ef_construction: i.ef_construction.unwrap_or(d.ef_construction),
            ef_search: i.ef_search.unwrap_or(d.ef_search),
        };
        if !(2..=256).contains(&index.m)
            || !(1..=limits::MAX_EF).contains(&index.ef_construction)
            || !(1..=limits::MAX_EF).contains(&index.ef_search)
        {
            return Err(Error::invalid(format!(
                "index parameters out of range: m={} (2..=256), ef_construction={} and ef_search={} (1..={})",
                index.m,
                index.ef_construction,
                index.ef_search,
                limits::MAX_EF
            )));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
                "metric is required",
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
}
