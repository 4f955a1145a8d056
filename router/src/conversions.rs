//! Conversions between the shard map's types and the proto types, in one place.

use vecshard_proto::internal::v1 as pi;
use vecshard_proto::v1 as pb;

use vecshard_model::{proto as model_pb, validate};

use crate::error::Result;
use crate::shardmap::{CollectionSpec, Liveness};

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
}
