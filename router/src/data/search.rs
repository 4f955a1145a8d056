//! Scatter-gather search: every shard in parallel under one deadline, enough candidates
//! from each, merged into the global top k. Without `allow_partial` a shard that cannot
//! answer fails the search with an error naming the missing shards; with it, the hits of
//! the shards that answered come back with their coverage.
//!
//! A batch of searches is one scatter: each shard gets one call carrying every search.
//! A search by the key of a stored point first fetches that point's vector, then asks
//! one hit more and leaves the point out. Paging (`offset`) asks every shard for
//! `offset + k` and skips the first `offset` of the merged list.

use std::future::Future;
use std::time::{Duration, Instant};

use vecshard_proto::internal::v1 as pi;
use vecshard_proto::v1 as pb;

use super::call::{Serve, WhenDown, shard_failures};
use super::merge;
use super::nodes::NodeConn;
use crate::core::Core;
use crate::error::{Error, ErrorKind, Result};
use vecshard_model::{Filter, proto as model_pb, validate};

/// One checked search as the shards get it, and what to do with the merged hits.
struct Prepared {
    shard_req: pi::SearchRequest,
    k: usize,
    offset: usize,
    /// The key of the query point, left out of the hits (search by key).
    exclude: Option<pb::Key>,
    packed: bool,
}

/// What the shards answered: the hit lists of each answering shard, and which shards
/// are missing.
struct Gathered<T> {
    answers: Vec<T>,
    total: u32,
    missing: Vec<u32>,
}

impl<T> Gathered<T> {
    fn coverage(&self) -> pb::Coverage {
        pb::Coverage {
            shards_total: self.total,
            shards_answered: self.total - self.missing.len() as u32,
            missing_shards: self.missing.clone(),
        }
    }
}

impl Core {
    /// Search every shard of a collection.
    pub async fn search(
        &self,
        req: pb::SearchRequest,
        deadline: Instant,
    ) -> Result<pb::SearchResponse> {
        let name = req.collection.clone();
        let allow_partial = req.allow_partial;
        let q = self.prepare(&name, req, deadline).await?;
        let shard_req = &q.shard_req;
        let g = self
            .scatter(
                &name,
                "search",
                allow_partial,
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
            .await?;
        let coverage = g.coverage();
        let lists = g.answers.into_iter().map(|r| r.hits).collect();
        Ok(finish(&q, lists, coverage))
    }

    /// Many searches of one collection with one call per shard.
    pub async fn search_batch(
        &self,
        req: pb::SearchBatchRequest,
        deadline: Instant,
    ) -> Result<pb::SearchBatchResponse> {
        validate::search_batch_len(req.searches.len())?;
        let name = req.collection;
        let mut prepared = Vec::with_capacity(req.searches.len());
        for (i, s) in req.searches.into_iter().enumerate() {
            let at = |e: Error| e.context(format!("searches[{i}]"));
            if !s.collection.is_empty() && s.collection != name {
                return Err(at(Error::invalid(format!(
                    "collection {:?} differs from the batch's {name:?}; leave it empty",
                    s.collection
                ))));
            }
            if s.allow_partial || s.timeout_ms.is_some() {
                return Err(at(Error::invalid(
                    "allow_partial and timeout_ms are set on the batch, not on its searches",
                )));
            }
            prepared.push(self.prepare(&name, s, deadline).await.map_err(at)?);
        }
        let searches: Vec<pi::SearchRequest> =
            prepared.iter().map(|q| q.shard_req.clone()).collect();
        let searches = &searches;
        let g = self
            .scatter(
                &name,
                "search",
                req.allow_partial,
                deadline,
                |mut c, target, left| {
                    let mut r = tonic::Request::new(pi::SearchBatchRequest {
                        target: Some(target),
                        searches: searches.clone(),
                    });
                    r.set_timeout(left);
                    async move { c.search_batch(r).await }
                },
            )
            .await?;
        let coverage = g.coverage();
        let mut per_shard: Vec<std::vec::IntoIter<pi::SearchResponse>> = Vec::new();
        for a in g.answers {
            if a.results.len() != prepared.len() {
                return Err(Error::internal(format!(
                    "a node answered {} results for a batch of {} searches",
                    a.results.len(),
                    prepared.len()
                )));
            }
            per_shard.push(a.results.into_iter());
        }
        let results = prepared
            .iter()
            .map(|q| {
                let lists = per_shard
                    .iter_mut()
                    .map(|it| it.next().map(|r| r.hits).unwrap_or_default())
                    .collect();
                finish(q, lists, coverage.clone())
            })
            .collect();
        Ok(pb::SearchBatchResponse { results })
    }

    /// Count the points of a collection (matching a filter, when given).
    pub async fn count(&self, req: pb::CountRequest, deadline: Instant) -> Result<u64> {
        let filter = filter_spec(req.filter_spec)?;
        let filter = &filter;
        let g = self
            .scatter(
                &req.collection,
                "count",
                false,
                deadline,
                |mut c, target, left| {
                    let mut r = tonic::Request::new(pi::CountRequest {
                        target: Some(target),
                        filter: filter.clone(),
                    });
                    r.set_timeout(left);
                    async move { c.count(r).await }
                },
            )
            .await?;
        Ok(g.answers.iter().map(|r| r.count).sum())
    }

    /// Check one search against the collection and build the shards' request.
    async fn prepare(
        &self,
        collection: &str,
        req: pb::SearchRequest,
        deadline: Instant,
    ) -> Result<Prepared> {
        let (dim, metric) = {
            let view = self.view();
            let coll = Core::collection(&view, collection)?;
            (coll.spec.dimension as usize, coll.spec.metric)
        };
        validate::search_params(req.k as usize, req.ef.map(|e| e as usize))?;
        validate::search_offset(req.k as usize, req.offset as usize)?;
        let (vector, packed, exclude) = match req.query_key {
            Some(key) => {
                if !req.vector.is_empty() || !req.vector_f32le.is_empty() {
                    return Err(Error::invalid(
                        "query_key and a query vector are both set; set exactly one of vector, vector_f32le and query_key",
                    ));
                }
                let vector = self.stored_vector(collection, &key, deadline).await?;
                (vector, Vec::new(), Some(key))
            }
            None => {
                model_pb::check_vector(&req.vector, &req.vector_f32le, dim, metric)
                    .map_err(|e| e.within("query"))?;
                (req.vector, req.vector_f32le, None)
            }
        };
        let k = req.k as usize;
        let offset = req.offset as usize;
        let shard_k = k + offset + usize::from(exclude.is_some());
        let with_any = req.with_metadata || req.with_payload || req.with_vector;
        Ok(Prepared {
            shard_req: pi::SearchRequest {
                target: None,
                vector,
                vector_f32le: packed,
                k: shard_k as u32,
                filter: filter_spec(req.filter_spec)?,
                ef: req.ef,
                exact: req.exact,
                with_metadata: req.with_metadata,
                with_payload: req.with_payload,
                with_vector: req.with_vector,
            },
            k,
            offset,
            exclude,
            packed: req.packed_hits && !with_any,
        })
    }

    /// The vector of the stored point `key` (NOT_FOUND when there is none).
    async fn stored_vector(
        &self,
        collection: &str,
        key: &pb::Key,
        deadline: Instant,
    ) -> Result<Vec<f32>> {
        model_pb::key_from_proto(Some(key))
            .and_then(|k| validate::key(&k))
            .map_err(|e| e.within("query_key"))?;
        let got = self
            .get(
                pb::GetRequest {
                    collection: collection.to_string(),
                    keys: vec![key.clone()],
                },
                deadline,
            )
            .await?;
        match got.points.into_iter().next() {
            Some(p) => Ok(model_pb::vector_from_proto(p.vector, &p.vector_f32le)?),
            None => Err(Error::not_found(format!(
                "query_key: no point with key {} in collection {collection:?}",
                key_text(key)
            ))),
        }
    }

    /// Call every shard of `collection` in parallel with `call` and gather the answers;
    /// shards that cannot answer fail the whole call unless `allow_partial` (and then
    /// only for availability reasons).
    async fn scatter<T, F, Fut>(
        &self,
        collection: &str,
        what: &str,
        allow_partial: bool,
        deadline: Instant,
        call: F,
    ) -> Result<Gathered<T>>
    where
        F: Fn(NodeConn, pi::ShardTarget, Duration) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let total = {
            let view = self.view();
            Core::collection(&view, collection)?.spec.shard_count
        };
        let when_down = if allow_partial {
            WhenDown::Fail
        } else {
            WhenDown::Wait
        };
        let call = &call;
        let calls = (0..total).map(|shard| async move {
            self.call_shard(
                collection,
                shard,
                Serve::AnyReplica,
                when_down,
                deadline,
                call,
            )
            .await
            .map_err(|e| (shard, e))
        });
        let mut answers = Vec::with_capacity(total as usize);
        let mut failed = Vec::new();
        for r in futures::future::join_all(calls).await {
            match r {
                Ok(a) => answers.push(a),
                Err(f) => failed.push(f),
            }
        }
        let availability_only = failed.iter().all(|(_, e)| {
            matches!(
                e.kind(),
                ErrorKind::Unavailable | ErrorKind::DeadlineExceeded
            )
        });
        if !failed.is_empty() && (!allow_partial || !availability_only) {
            if availability_only && Instant::now() >= deadline {
                // The request's own deadline ran out: that is the answer, not the shards.
                let mut shards: Vec<u32> = failed.iter().map(|(s, _)| *s).collect();
                shards.sort_unstable();
                return Err(Error::new(
                    ErrorKind::DeadlineExceeded,
                    format!(
                        "{what} on {collection:?}: the deadline expired before shards {shards:?} answered"
                    ),
                ));
            }
            return Err(shard_failures(collection, what, failed));
        }
        let mut missing: Vec<u32> = failed.iter().map(|(s, _)| *s).collect();
        missing.sort_unstable();
        Ok(Gathered {
            answers,
            total,
            missing,
        })
    }
}

/// A request's filter, in either form, as the shards get it (checked).
fn filter_spec<F: Into<FilterSpec>>(spec: Option<F>) -> Result<Option<pb::Filter>> {
    match spec.map(Into::into) {
        None => Ok(None),
        Some(FilterSpec::Message(f)) => {
            model_pb::filter_from_proto(&f)?;
            Ok(Some(f))
        }
        Some(FilterSpec::Json(text)) => {
            Ok(Some(model_pb::filter_to_proto(&Filter::parse_str(&text)?)))
        }
    }
}

/// The two forms of a filter in search and count requests.
enum FilterSpec {
    Message(pb::Filter),
    Json(String),
}

impl From<pb::search_request::FilterSpec> for FilterSpec {
    fn from(f: pb::search_request::FilterSpec) -> Self {
        match f {
            pb::search_request::FilterSpec::Filter(f) => FilterSpec::Message(f),
            pb::search_request::FilterSpec::FilterJson(t) => FilterSpec::Json(t),
        }
    }
}

impl From<pb::count_request::FilterSpec> for FilterSpec {
    fn from(f: pb::count_request::FilterSpec) -> Self {
        match f {
            pb::count_request::FilterSpec::Filter(f) => FilterSpec::Message(f),
            pb::count_request::FilterSpec::FilterJson(t) => FilterSpec::Json(t),
        }
    }
}

/// The merged top hits of one search: its page (after `offset`), without the query
/// point, packed when asked and possible.
fn finish(
    q: &Prepared,
    lists: Vec<Vec<pi::ShardHit>>,
    coverage: pb::Coverage,
) -> pb::SearchResponse {
    let merged = merge::top_k(lists, q.shard_req.k as usize);
    let hits: Vec<pb::Hit> = merged
        .into_iter()
        .filter(|h| q.exclude.is_none() || h.key != q.exclude)
        .skip(q.offset)
        .take(q.k)
        .map(|h| pb::Hit {
            key: h.key,
            score: h.score,
            metadata: h.metadata,
            payload: h.payload,
            vector: h.vector,
        })
        .collect();
    let packed = if q.packed {
        model_pb::pack_hits(hits.iter().map(|h| (h.key.as_ref(), h.score)))
    } else {
        None
    };
    match packed {
        Some(p) => pb::SearchResponse {
            hits: Vec::new(),
            coverage: Some(coverage),
            packed: Some(p),
        },
        None => pb::SearchResponse {
            hits,
            coverage: Some(coverage),
            packed: None,
        },
    }
}

fn key_text(k: &pb::Key) -> String {
    match &k.kind {
        Some(pb::key::Kind::Int(v)) => v.to_string(),
        Some(pb::key::Kind::Str(s)) => format!("{s:?}"),
        None => "(unset)".into(),
    }
}
