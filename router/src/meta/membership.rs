//! Data nodes joining (registration through Raft) and their heartbeats (recorded
//! locally; the leader acts on them in its control loop).

use std::time::Instant;

use vecshard_proto::internal::v1 as pi;

use super::META_DEADLINE;
use crate::core::{Core, ProposeError, forward_error};
use crate::error::{Error, Result};
use crate::shardmap::{Command, CommandResult, Liveness};

impl Core {
    /// A data node registers (through the leader).
    pub async fn register_node(
        &self,
        req: pi::RegisterNodeRequest,
        forwarded: bool,
    ) -> Result<pi::RegisterNodeResponse> {
        if req.node_id.is_empty() || req.node_id.len() > 255 {
            return Err(Error::invalid("node_id must have 1 to 255 characters"));
        }
        if !req.address.contains(':') {
            return Err(Error::invalid(format!(
                "node address {:?} is not host:port",
                req.address
            )));
        }
        let cmd = Command::RegisterNode {
            id: req.node_id.clone(),
            address: req.address.clone(),
        };
        self.on_leader(
            Instant::now() + META_DEADLINE,
            forwarded,
            || async {
                let r = self.propose(cmd.clone()).await?;
                self.control.notify_one();
                Ok(pi::RegisterNodeResponse {
                    created: matches!(r, CommandResult::Registered { created: true }),
                })
            },
            |leader| {
                let req = req.clone();
                async move {
                    let mut c = crate::api::client::internal(&leader.internal, self)?;
                    let req = crate::api::client::forwarded(req, self);
                    Ok(c.register_node(req)
                        .await
                        .map_err(forward_error)?
                        .into_inner())
                }
            },
        )
        .await
    }

    /// A node's heartbeat: recorded locally (the leader acts on it in its control loop).
    pub fn heartbeat(&self, hb: pi::Heartbeat) -> Result<pi::HeartbeatResponse> {
        let view = self.view();
        if !view.map.nodes.contains_key(&hb.node_id) {
            return Err(Error::not_found(format!(
                "node {:?} is not registered; call RegisterNode first",
                hb.node_id
            )));
        }
        let was_live = view
            .map
            .nodes
            .get(&hb.node_id)
            .is_some_and(|n| n.state == Liveness::Alive);
        self.heartbeats.record(&hb.node_id, &hb.address, hb.shards);
        if !was_live && self.is_leader() {
            self.control.notify_one();
        }
        Ok(pi::HeartbeatResponse {
            leader_id: self.leader().map(|(id, _)| id),
            routers: view
                .routers
                .iter()
                .map(|(id, n)| pi::RouterEndpoint {
                    id: *id,
                    address: n.internal.clone(),
                })
                .collect(),
            shard_map_version: view.version,
        })
    }
}

impl Core {
    /// A replicated shard's primary drops a follower from the in-sync set (through the
    /// leader). Applied only while `node_id` is the shard's primary at `epoch` and the
    /// follower is one of its replicas.
    pub async fn shrink_isr(
        &self,
        req: pi::ShrinkIsrRequest,
        forwarded: bool,
    ) -> Result<pi::ShrinkIsrResponse> {
        let shard_of = |view: &crate::raft::state_machine::MapView| {
            view.map
                .collections
                .get(&req.collection)
                .and_then(|c| c.shards.get(req.shard as usize))
                .cloned()
        };
        let out_of_isr = |view: &crate::raft::state_machine::MapView| {
            shard_of(view).is_some_and(|a| {
                a.epoch == req.epoch
                    && a.owner.as_deref() == Some(req.node_id.as_str())
                    && a.replicas.as_ref().is_some_and(|s| {
                        s.replicas.contains(&req.follower) && !s.in_sync.contains(&req.follower)
                    })
            })
        };
        self.on_leader(
            Instant::now() + META_DEADLINE,
            forwarded,
            || async {
                let view = self.view();
                let Some(a) = shard_of(&view) else {
                    return Err(ProposeError::Failed(Error::not_found(format!(
                        "collection {:?} has no shard {}",
                        req.collection, req.shard
                    ))));
                };
                let primary_here = a.epoch == req.epoch
                    && a.owner.as_deref() == Some(req.node_id.as_str());
                if !primary_here {
                    return Ok(pi::ShrinkIsrResponse { applied: false });
                }
                if !out_of_isr(&view) {
                    self.propose(Command::ShrinkIsr {
                        collection: req.collection.clone(),
                        shard: req.shard,
                        epoch: req.epoch,
                        node: req.follower.clone(),
                    })
                    .await?;
                }
                let applied = out_of_isr(&self.view());
                tracing::info!(collection = %req.collection, shard = req.shard, epoch = req.epoch,
                    follower = %req.follower, applied, "in-sync set shrunk at the primary's request");
                Ok(pi::ShrinkIsrResponse { applied })
            },
            |leader| {
                let req = req.clone();
                async move {
                    let mut c = crate::api::client::internal(&leader.internal, self)?;
                    let req = crate::api::client::forwarded(req, self);
                    Ok(c.shrink_isr(req).await.map_err(forward_error)?.into_inner())
                }
            },
        )
        .await
    }

    /// A replicated shard's primary adds a caught-up follower to the in-sync set (through the
    /// leader). Applied only while `node_id` is the shard's primary at `epoch` and the
    /// follower is one of its replicas.
    pub async fn expand_isr(
        &self,
        req: pi::ExpandIsrRequest,
        forwarded: bool,
    ) -> Result<pi::ExpandIsrResponse> {
        let shard_of = |view: &crate::raft::state_machine::MapView| {
            view.map
                .collections
                .get(&req.collection)
                .and_then(|c| c.shards.get(req.shard as usize))
                .cloned()
        };
        let in_isr = |view: &crate::raft::state_machine::MapView| {
            shard_of(view).is_some_and(|a| {
                a.epoch == req.epoch
                    && a.owner.as_deref() == Some(req.node_id.as_str())
                    && a.replicas.as_ref().is_some_and(|s| {
                        s.replicas.contains(&req.follower) && s.in_sync.contains(&req.follower)
                    })
            })
        };
        self.on_leader(
            Instant::now() + META_DEADLINE,
            forwarded,
            || async {
                let view = self.view();
                let Some(a) = shard_of(&view) else {
                    return Err(ProposeError::Failed(Error::not_found(format!(
                        "collection {:?} has no shard {}",
                        req.collection, req.shard
                    ))));
                };
                let primary_here = a.epoch == req.epoch
                    && a.owner.as_deref() == Some(req.node_id.as_str());
                if !primary_here {
                    return Ok(pi::ExpandIsrResponse { applied: false });
                }
                if !in_isr(&view) {
                    self.propose(Command::ExpandIsr {
                        collection: req.collection.clone(),
                        shard: req.shard,
                        epoch: req.epoch,
                        node: req.follower.clone(),
                        seq: req.seq,
                    })
                    .await?;
                }
                let applied = in_isr(&self.view());
                tracing::info!(collection = %req.collection, shard = req.shard, epoch = req.epoch,
                    follower = %req.follower, applied, "in-sync set expanded at the primary's request");
                Ok(pi::ExpandIsrResponse { applied })
            },
            |leader| {
                let req = req.clone();
                async move {
                    let mut c = crate::api::client::internal(&leader.internal, self)?;
                    let req = crate::api::client::forwarded(req, self);
                    Ok(c.expand_isr(req).await.map_err(forward_error)?.into_inner())
                }
            },
        )
        .await
    }
}
