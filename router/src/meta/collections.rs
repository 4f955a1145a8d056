//! Collections: create (placement on the leader), drop, list, describe.

use std::time::{Duration, Instant};

use vecshard_proto::internal::v1 as pi;
use vecshard_proto::v1 as pb;

use super::META_DEADLINE;
use crate::core::{Core, ProposeError, forward_error};
use crate::error::{Error, ErrorKind, Result};
use crate::raft::state_machine::MapView;
use crate::shardmap::{Collection, CollectionSpec, Command, placement};

impl Core {
    /// Create a collection and place its shards.
    pub async fn create_collection(
        &self,
        req: pb::CreateCollectionRequest,
        forwarded: bool,
    ) -> Result<pb::CreateCollectionResponse> {
        let spec = CollectionSpec::from_request(
            &req,
            self.cfg.default_shard_count,
            &self.cfg.allowed_prefixes(),
        )?;
        let deadline = Instant::now() + META_DEADLINE;
        self.on_leader(
            deadline,
            forwarded,
            || self.create_here(spec.clone()),
            |leader| {
                let req = req.clone();
                async move {
                    let mut c = crate::api::client::public(&leader.grpc, &self.cfg)?;
                    let req = crate::api::client::forwarded(req, &self.cfg);
                    Ok(c.create_collection(req)
                        .await
                        .map_err(forward_error)?
                        .into_inner())
                }
            },
        )
        .await
    }

    async fn create_here(
        &self,
        spec: CollectionSpec,
    ) -> Result<pb::CreateCollectionResponse, ProposeError> {
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
        let owners = owners.into_iter().map(Some).collect();
        self.propose(Command::CreateCollection {
            spec: spec.clone(),
            owners,
        })
        .await?;
        self.control.notify_one();
        Ok(pb::CreateCollectionResponse {
            spec: Some(spec.to_proto()),
        })
    }

    /// Drop a collection: remove it from the map, then close its shards and delete their
    /// data (best effort on nodes that are down: their data stays behind).
    pub async fn drop_collection(
        &self,
        name: String,
        forwarded: bool,
    ) -> Result<pb::DropCollectionResponse> {
        crate::validate::collection_name(&name)?;
        let deadline = Instant::now() + META_DEADLINE;
        self.on_leader(
            deadline,
            forwarded,
            || self.drop_here(name.clone()),
            |leader| {
                let req = pb::DropCollectionRequest { name: name.clone() };
                async move {
                    let mut c = crate::api::client::public(&leader.grpc, &self.cfg)?;
                    let req = crate::api::client::forwarded(req, &self.cfg);
                    Ok(c.drop_collection(req)
                        .await
                        .map_err(forward_error)?
                        .into_inner())
                }
            },
        )
        .await
    }

    async fn drop_here(&self, name: String) -> Result<pb::DropCollectionResponse, ProposeError> {
        let view = self.view();
        let Some(coll) = view.map.collections.get(&name).cloned() else {
            return Err(ProposeError::Failed(Error::not_found(format!(
                "collection {name:?} does not exist"
            ))));
        };
        self.propose(Command::DropCollection { name }).await?;
        self.release_dropped(&view, &coll).await;
        Ok(pb::DropCollectionResponse {})
    }

    /// Close a dropped collection's shards on their nodes; the writer deletes the data.
    async fn release_dropped(&self, view: &MapView, coll: &Collection) {
        let mut calls = Vec::new();
        for (n, a) in coll.shards.iter().enumerate() {
            let holders = a
                .owner
                .iter()
                .map(|o| (o, true))
                .chain(a.readers.iter().map(|r| (r, false)));
            for (node, writer) in holders {
                let Some(rec) = view.map.nodes.get(node) else {
                    continue;
                };
                let Ok(mut client) = self.nodes.get(&rec.address) else {
                    continue;
                };
                let mut req = tonic::Request::new(pi::ReleaseShardRequest {
                    collection: coll.spec.name.clone(),
                    shard: n as u32,
                    epoch: a.epoch,
                    delete_data: writer,
                });
                req.set_timeout(Duration::from_secs(10));
                calls.push(async move {
                    if let Err(e) = client.release_shard(req).await {
                        tracing::warn!(node = %rec.id, error = %e, "release of a dropped shard failed; its data stays behind");
                    }
                });
            }
        }
        futures::future::join_all(calls).await;
    }

    /// Every collection's settings, by name.
    pub fn list_collections(&self) -> pb::ListCollectionsResponse {
        pb::ListCollectionsResponse {
            collections: self
                .view()
                .map
                .collections
                .values()
                .map(|c| c.spec.to_proto())
                .collect(),
        }
    }

    /// One collection's settings and shards.
    pub fn describe_collection(&self, name: &str) -> Result<pb::DescribeCollectionResponse> {
        let view = self.view();
        let coll = Core::collection(&view, name)?;
        let shards = (0..coll.spec.shard_count)
            .map(|n| {
                let a = &coll.shards[n as usize];
                let reported = a
                    .owner
                    .as_ref()
                    .and_then(|o| self.heartbeats.get(o))
                    .and_then(|s| s.shard(name, n).cloned())
                    .filter(|s| s.epoch == a.epoch);
                pb::ShardInfo {
                    number: n,
                    owner_node: a.owner.clone().unwrap_or_default(),
                    epoch: a.epoch,
                    state: self.shard_state(&view, coll, n) as i32,
                    live_points: reported.map(|s| s.live_points),
                }
            })
            .collect();
        Ok(pb::DescribeCollectionResponse {
            spec: Some(coll.spec.to_proto()),
            shards,
        })
    }
}
