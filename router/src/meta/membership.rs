//! Data nodes joining (registration through Raft) and their heartbeats (recorded
//! locally; the leader acts on them in its control loop).

use std::time::{Duration, Instant};

use vecshard_proto::internal::v1 as pi;

use super::META_DEADLINE;
use crate::core::{Core, ProposeError, forward_error};
use crate::error::{Error, Result};
use crate::raft::RouterNode;
use crate::raft::state_machine::MapView;
use crate::shardmap::{Assignment, Command, CommandResult, Liveness};

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
        vecshard_model::validate::zone(&req.zone)?;
        let cmd = Command::RegisterNode {
            id: req.node_id.clone(),
            address: req.address.clone(),
            zone: (!req.zone.is_empty()).then(|| req.zone.clone()),
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
    /// The leader's answer also grants a read lease ([`Core::read_lease`]).
    pub async fn heartbeat(&self, hb: pi::Heartbeat) -> Result<pi::HeartbeatResponse> {
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
        let writer_of: Vec<pi::ShardTarget> = hb
            .shards
            .iter()
            .filter(|s| s.role == pi::Role::Writer as i32)
            .map(|s| pi::ShardTarget {
                collection: s.collection.clone(),
                shard: s.shard,
                epoch: s.epoch,
            })
            .collect();
        self.heartbeats.record(&hb.node_id, &hb.address, hb.shards);
        if !was_live && self.is_leader() {
            self.control.notify_one();
        }
        let (lease_ms, leased) = self.read_lease(&hb.node_id, &writer_of).await;
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
            lease_ms,
            leased,
        })
    }

    /// The read lease for a heartbeat from `node` reporting itself writer of `writer_of`
    /// (collection, shard, epoch): granted only by a leader that a quorum still follows
    /// (so no newer leader can exist that has not seen the node for `failure_timeout_ms`),
    /// only while the node is alive in the map, and only for the shards the map gives the
    /// node at those epochs. Half of `failure_timeout_ms` long: a node the leader stops
    /// hearing from has stopped serving reads long before it is judged down.
    async fn read_lease(
        &self,
        node: &str,
        writer_of: &[pi::ShardTarget],
    ) -> (u64, Vec<pi::ShardTarget>) {
        if writer_of.is_empty() || !self.is_leader() {
            return (0, Vec::new());
        }
        let length = self.lease_length();
        // A healthy quorum answers in a round trip; a slow one grants nothing rather than
        // hold the node's heartbeat past its own timeout.
        let wait = (length / 2).min(Duration::from_millis(500));
        let confirmed = tokio::time::timeout(wait, self.raft.get_read_log_id()).await;
        if !matches!(confirmed, Ok(Ok(_))) {
            return (0, Vec::new());
        }
        let granted = self.leases.grant(node, length, || {
            let view = self.view();
            let alive = view
                .map
                .nodes
                .get(node)
                .is_some_and(|n| n.state == Liveness::Alive);
            if !alive {
                return None;
            }
            let leased = writer_of
                .iter()
                .filter(|t| {
                    view.map
                        .collections
                        .get(&t.collection)
                        .and_then(|c| c.shards.get(t.shard as usize))
                        .is_some_and(|a| a.epoch == t.epoch && a.owner.as_deref() == Some(node))
                })
                .cloned()
                .collect();
            Some(leased)
        });
        match granted {
            Some(leased) => (length.as_millis() as u64, leased),
            None => (0, Vec::new()),
        }
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
        let change = IsrChange {
            collection: &req.collection,
            shard: req.shard,
            epoch: req.epoch,
            primary: &req.node_id,
            follower: &req.follower,
            expand_at: None,
        };
        let applied = self
            .change_isr(&change, forwarded, |leader| {
                let req = req.clone();
                async move {
                    let mut c = crate::api::client::internal(&leader.internal, self)?;
                    let req = crate::api::client::forwarded(req, self);
                    let r = c.shrink_isr(req).await.map_err(forward_error)?;
                    Ok(r.into_inner().applied)
                }
            })
            .await?;
        Ok(pi::ShrinkIsrResponse { applied })
    }

    /// A replicated shard's primary adds a caught-up follower to the in-sync set (through the
    /// leader). Applied only while `node_id` is the shard's primary at `epoch` and the
    /// follower is one of its replicas.
    pub async fn expand_isr(
        &self,
        req: pi::ExpandIsrRequest,
        forwarded: bool,
    ) -> Result<pi::ExpandIsrResponse> {
        let change = IsrChange {
            collection: &req.collection,
            shard: req.shard,
            epoch: req.epoch,
            primary: &req.node_id,
            follower: &req.follower,
            expand_at: Some(req.seq),
        };
        let applied = self
            .change_isr(&change, forwarded, |leader| {
                let req = req.clone();
                async move {
                    let mut c = crate::api::client::internal(&leader.internal, self)?;
                    let req = crate::api::client::forwarded(req, self);
                    let r = c.expand_isr(req).await.map_err(forward_error)?;
                    Ok(r.into_inner().applied)
                }
            })
            .await?;
        Ok(pi::ExpandIsrResponse { applied })
    }

    /// Propose `change` on the leader (or `forward` it there) unless the map already shows
    /// it; whether the map shows it afterwards.
    async fn change_isr<F, FF>(
        &self,
        change: &IsrChange<'_>,
        forwarded: bool,
        forward: F,
    ) -> Result<bool>
    where
        F: Fn(RouterNode) -> FF,
        FF: Future<Output = Result<bool>>,
    {
        let want_in_sync = change.expand_at.is_some();
        let shard_of = |view: &MapView| {
            view.map
                .collections
                .get(change.collection)
                .and_then(|c| c.shards.get(change.shard as usize))
                .cloned()
        };
        let primary_here =
            |a: &Assignment| a.epoch == change.epoch && a.owner.as_deref() == Some(change.primary);
        let done = |view: &MapView| {
            shard_of(view).is_some_and(|a| {
                primary_here(&a)
                    && a.replicas.as_ref().is_some_and(|s| {
                        let has = |set: &[String]| set.iter().any(|n| n == change.follower);
                        has(&s.replicas) && has(&s.in_sync) == want_in_sync
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
                        change.collection, change.shard
                    ))));
                };
                if !primary_here(&a) {
                    return Ok(false);
                }
                if !done(&view) {
                    let (collection, node) =
                        (change.collection.to_string(), change.follower.to_string());
                    let (shard, epoch) = (change.shard, change.epoch);
                    self.propose(match change.expand_at {
                        Some(seq) => Command::ExpandIsr {
                            collection,
                            shard,
                            epoch,
                            node,
                            seq,
                        },
                        None => Command::ShrinkIsr {
                            collection,
                            shard,
                            epoch,
                            node,
                        },
                    })
                    .await?;
                }
                let applied = done(&self.view());
                tracing::info!(collection = %change.collection, shard = change.shard,
                    epoch = change.epoch, follower = %change.follower, applied,
                    expand = want_in_sync, "in-sync set changed at the primary's request");
                Ok(applied)
            },
            forward,
        )
        .await
    }
}

/// A primary's request to change its shard's in-sync set.
struct IsrChange<'a> {
    collection: &'a str,
    shard: u32,
    epoch: u64,
    primary: &'a str,
    follower: &'a str,
    /// `Some(seq)`: add the follower, caught up at `seq`; `None`: drop it.
    expand_at: Option<u64>,
}
