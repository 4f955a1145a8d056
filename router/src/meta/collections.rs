//! Collections: create (placement on the leader), drop, list, describe.

use std::time::Instant;

use vecshard_proto::v1 as pb;

use super::META_DEADLINE;
use crate::core::{Core, ProposeError, forward_error};
use crate::error::{Error, ErrorKind, Result};
use crate::shardmap::{CollectionSpec, Command, Layout, Replication, placement};

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
        let replication = Replication::from_request(&req, &spec)?;
        if let Some(r) = replication
            && !self.cfg.allow_replication
        {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!(
                    "replication_factor {} is turned off on this cluster \
                     (router.allow_replication = false)",
                    r.factor
                ),
            ));
        }
        let deadline = Instant::now() + META_DEADLINE;
        self.on_leader(
            deadline,
            forwarded,
            || self.create_here(spec.clone(), replication),
            |leader| {
                let req = req.clone();
                async move {
                    let mut c = crate::api::client::public(&leader.grpc, self)?;
                    let req = crate::api::client::forwarded(req, self);
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
        replication: Option<Replication>,
    ) -> Result<pb::CreateCollectionResponse, ProposeError> {
        let view = self.view();
        if view.map.collections.contains_key(&spec.name) {
            return Err(ProposeError::Failed(Error::new(
                ErrorKind::AlreadyExists,
                format!("collection {:?} already exists", spec.name),
            )));
        }
        if let Some(r) = replication {
            let replicas = placement::place_replicated(&view.map, spec.shard_count, r.factor)
                .map_err(|e| {
                    ProposeError::Failed(Error::new(
                        ErrorKind::FailedPrecondition,
                        format!(
                            "replication_factor {} needs {} live data nodes, {} {} alive",
                            e.factor,
                            e.factor,
                            e.live,
                            if e.live == 1 { "is" } else { "are" }
                        ),
                    ))
                })?;
            self.propose(Command::CreateReplicated {
                spec: spec.clone(),
                replication: r,
                replicas,
                // Followers take every write from the first (docs/design/014-replication.md,
                // step 2): they start in sync.
                followers_in_sync: true,
            })
            .await?;
            self.control.notify_one();
            let mut spec = spec.to_proto();
            spec.replication_factor = r.factor;
            spec.write_ack = r.write_ack.as_str().to_string();
            return Ok(pb::CreateCollectionResponse { spec: Some(spec) });
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
            layout: Layout::Incarnation,
        })
        .await?;
        self.control.notify_one();
        Ok(pb::CreateCollectionResponse {
            spec: Some(spec.to_proto()),
        })
    }

    /// Drop a collection: it leaves the map at once (the name is free again), and waits in
    /// the map's `dropping` until its data is deleted on every node that has some — the
    /// leader's control loop asks each (a node that is down, when it returns).
    pub async fn drop_collection(
        &self,
        name: String,
        forwarded: bool,
    ) -> Result<pb::DropCollectionResponse> {
        vecshard_model::validate::collection_name(&name)?;
        let deadline = Instant::now() + META_DEADLINE;
        self.on_leader(
            deadline,
            forwarded,
            || self.drop_here(name.clone()),
            |leader| {
                let req = pb::DropCollectionRequest { name: name.clone() };
                async move {
                    let mut c = crate::api::client::public(&leader.grpc, self)?;
                    let req = crate::api::client::forwarded(req, self);
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
        if !self.view().map.collections.contains_key(&name) {
            return Err(ProposeError::Failed(Error::not_found(format!(
                "collection {name:?} does not exist"
            ))));
        }
        self.propose(Command::DropCollection { name }).await?;
        self.control.notify_one();
        Ok(pb::DropCollectionResponse {})
    }

    /// Every collection's settings, by name.
    pub fn list_collections(&self) -> pb::ListCollectionsResponse {
        pb::ListCollectionsResponse {
            collections: self
                .view()
                .map
                .collections
                .values()
                .map(|c| c.spec_proto())
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
            spec: Some(coll.spec_proto()),
            shards,
        })
    }
}
