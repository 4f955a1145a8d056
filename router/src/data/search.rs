//! Scatter-gather search: every shard in parallel under one deadline, k candidates from
//! each, merged into the global top k. Without `allow_partial` a shard that cannot answer
//! fails the search with an error naming the missing shards; with it, the hits of the
//! shards that answered come back with their coverage.

use std::time::Instant;

use vecshard_proto::internal::v1 as pi;
use vecshard_proto::v1 as pb;

use super::call::{Serve, WhenDown, shard_failures};
use super::merge;
use crate::core::Core;
use crate::error::{ErrorKind, Result};
use vecshard_model::{Filter, proto as model_pb, validate};

impl Core {
    /// Search every shard of a collection.
    pub async fn search(
        &self,
        req: pb::SearchRequest,
        deadline: Instant,
    ) -> Result<pb::SearchResponse> {
        let view = self.view();
        let coll = Core::collection(&view, &req.collection)?;
        validate::vector(&req.vector, coll.spec.dimension as usize, coll.spec.metric)
            .map_err(|e| e.within("query"))?;
        validate::search_params(req.k as usize, req.ef.map(|e| e as usize))?;
        let filter = match req.filter_spec {
            None => None,
            Some(pb::search_request::FilterSpec::Filter(f)) => {
                model_pb::filter_from_proto(&f)?;
                Some(f)
            }
            Some(pb::search_request::FilterSpec::FilterJson(text)) => {
                Some(model_pb::filter_to_proto(&Filter::parse_str(&text)?))
            }
        };
        let shard_req = pi::SearchRequest {
            target: None,
            vector: req.vector,
            k: req.k,
            filter,
            ef: req.ef,
            exact: req.exact,
            with_metadata: req.with_metadata,
            with_payload: req.with_payload,
            with_vector: req.with_vector,
        };
        let when_down = if req.allow_partial {
            WhenDown::Fail
        } else {
            WhenDown::Wait
        };
        let name = &req.collection;
        let total = coll.spec.shard_count;
        let calls = (0..total).map(|shard| {
            let shard_req = &shard_req;
            async move {
                self.call_shard(
                    name,
                    shard,
                    Serve::AnyReplica,
                    when_down,
                    deadline,
                    |mut c, target, left| {
                        let mut r = tonic::Request::new(pi::SearchRequest {
                            target: Some(target),
                            ..shard_req.clone()
                        });
                        r.set_timeout(left);
                        async move { c.search(r).await }
                    },
                )
                .await
                .map(|r| r.hits)
                .map_err(|e| (shard, e))
            }
        });
        let mut lists = Vec::with_capacity(total as usize);
        let mut failed = Vec::new();
        for r in futures::future::join_all(calls).await {
            match r {
                Ok(hits) => lists.push(hits),
                Err(f) => failed.push(f),
            }
        }
        let availability_only = failed.iter().all(|(_, e)| {
            matches!(
                e.kind(),
                ErrorKind::Unavailable | ErrorKind::DeadlineExceeded
            )
        });
        if !failed.is_empty() && (!req.allow_partial || !availability_only) {
            return Err(shard_failures(name, "search", failed));
        }
        let mut missing: Vec<u32> = failed.iter().map(|(s, _)| *s).collect();
        missing.sort_unstable();
        let hits = merge::top_k(lists, req.k as usize)
            .into_iter()
            .map(|h| pb::Hit {
                key: h.key,
                score: h.score,
                metadata: h.metadata,
                payload: h.payload,
                vector: h.vector,
            })
            .collect();
        Ok(pb::SearchResponse {
            hits,
            coverage: Some(pb::Coverage {
                shards_total: total,
                shards_answered: total - missing.len() as u32,
                missing_shards: missing,
            }),
        })
    }
}
