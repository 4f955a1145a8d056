//! Upserts and deletes: validate, split by shard (stable key hash on the ring), send each
//! shard's part to its owner in parallel (in order within a shard, in messages of at most
//! a few MiB), retrying per the rules in `call.rs`.

use std::collections::BTreeMap;
use std::time::Instant;

use prost::Message;
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::v1 as pb;

use super::call::{Serve, WhenDown, shard_failures};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::partition::Partitioner;
use vecshard_model::{proto as model_pb, validate};

/// Largest message the router sends to a node (nodes accept 4 MiB by default).
const MAX_CHUNK_BYTES: usize = 3 << 20;

/// Split `items` into consecutive chunks of at most [`MAX_CHUNK_BYTES`] encoded.
fn chunks<T: Message>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let (mut cur, mut size) = (Vec::new(), 0);
    for item in items {
        let len = item.encoded_len() + 8;
        if !cur.is_empty() && size + len > MAX_CHUNK_BYTES {
            out.push(std::mem::take(&mut cur));
            size = 0;
        }
        size += len;
        cur.push(item);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Group items by the shard of their key, keeping their order.
pub(crate) fn by_shard<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> Option<&pb::Key>,
    p: &Partitioner,
) -> BTreeMap<u32, Vec<T>> {
    let mut groups: BTreeMap<u32, Vec<T>> = BTreeMap::new();
    for item in items {
        let shard = key(&item).and_then(|k| p.shard_of(k)).unwrap_or(0);
        groups.entry(shard).or_default().push(item);
    }
    groups
}

impl Core {
    /// Insert or replace points; returns once every point is durable.
    pub async fn upsert(&self, req: pb::UpsertRequest, deadline: Instant) -> Result<()> {
        let view = self.view();
        let coll = Core::collection(&view, &req.collection)?;
        let (dim, metric) = (coll.spec.dimension as usize, coll.spec.metric);
        model_pb::check_points(&req.points, dim, metric)?;
        let part = self.partitioner(coll.spec.shard_count);
        let groups = by_shard(req.points, |p| p.key.as_ref(), &part);
        let name = &req.collection;
        let sends = groups.into_iter().map(|(shard, points)| async move {
            for chunk in chunks(points) {
                self.call_shard(
                    name,
                    shard,
                    Serve::Writer,
                    WhenDown::Wait,
                    deadline,
                    |mut c, target, left| {
                        let mut r = tonic::Request::new(pi::UpsertRequest {
                            target: Some(target),
                            points: chunk.clone(),
                        });
                        r.set_timeout(left);
                        async move { c.upsert(r).await }
                    },
                )
                .await
                .map_err(|e| (shard, e))?;
            }
            Ok(())
        });
        finish(name, "upsert", futures::future::join_all(sends).await)
    }

    /// Delete points by key; returns once every deletion is durable.
    pub async fn delete(&self, req: pb::DeleteRequest, deadline: Instant) -> Result<()> {
        let view = self.view();
        let coll = Core::collection(&view, &req.collection)?;
        validate::batch_len(req.keys.len(), "delete")?;
        model_pb::keys_from_proto(&req.keys)?;
        let part = self.partitioner(coll.spec.shard_count);
        let groups = by_shard(req.keys, |k| Some(k), &part);
        let name = &req.collection;
        let sends = groups.into_iter().map(|(shard, keys)| async move {
            for chunk in chunks(keys) {
                self.call_shard(
                    name,
                    shard,
                    Serve::Writer,
                    WhenDown::Wait,
                    deadline,
                    |mut c, target, left| {
                        let mut r = tonic::Request::new(pi::DeleteRequest {
                            target: Some(target),
                            keys: chunk.clone(),
                        });
                        r.set_timeout(left);
                        async move { c.delete(r).await }
                    },
                )
                .await
                .map_err(|e| (shard, e))?;
            }
            Ok(())
        });
        finish(name, "delete", futures::future::join_all(sends).await)
    }
}

fn finish(collection: &str, what: &str, results: Vec<Result<(), (u32, Error)>>) -> Result<()> {
    let failed: Vec<_> = results.into_iter().filter_map(Result::err).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(shard_failures(collection, what, failed))
    }
}
