//! Operations on the shard map: collections, cluster status, node registration and
//! heartbeats, and the operator's commands (move a shard, add or remove a router).
//! Changes run on the Raft leader; other routers forward them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use openraft::ChangeMembers;
use openraft::error::{ClientWriteError, RaftError};
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::v1 as pb;

use crate::conversions::shard_state;
use crate::core::{Core, LEADER_UNREACHABLE, ProposeError, forward_error};
use crate::error::{Error, ErrorKind, Result};
use crate::raft::state_machine::MapView;
use crate::raft::{NodeId, RouterNode};
use crate::shardmap::{
    Collection, CollectionSpec, Command, CommandResult, Liveness, Move, placement,
};

/// How long a forwarded or retried metadata change may take.
const META_DEADLINE: Duration = Duration::from_secs(15);

impl Core {
    /// Create a collection and place its shards.
    pub async fn create_collection(
        &self,
        req: pb::CreateCollectionRequest,
        forwarded: bool,
    ) -> Result<pb::CreateCollectionResponse> {
        let spec = CollectionSpec::from_request(&req, self.cfg.default_shard_count)?;
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

    /// A shard's state: unassigned, unavailable (owner down), or what its owner reports
    /// at the current epoch (opening until it does).
    pub fn shard_state(&self, view: &MapView, coll: &Collection, n: u32) -> pb::ShardState {
        let a = &coll.shards[n as usize];
        let Some(owner) = &a.owner else {
            return pb::ShardState::Unassigned;
        };
        if !placement::is_live(&view.map, owner) {
            return pb::ShardState::Unavailable;
        }
        self.heartbeats
            .get(owner)
            .and_then(|s| s.shard(&coll.spec.name, n).cloned())
            .filter(|s| s.epoch == a.epoch)
            .map(|s| shard_state(s.state))
            .unwrap_or(pb::ShardState::Opening)
    }

    /// Routers, nodes and every shard's placement.
    pub fn cluster_status(&self) -> pb::ClusterStatusResponse {
        let view = self.view();
        let leader = self.leader().map(|(id, _)| id);
        let routers = view
            .routers
            .iter()
            .map(|(id, n)| pb::RouterInfo {
                id: *id,
                address: n.grpc.clone(),
                leader: Some(*id) == leader,
            })
            .collect();
        let mut held: BTreeMap<&str, Vec<pb::ShardRef>> = BTreeMap::new();
        let mut shards = Vec::new();
        for (name, c) in &view.map.collections {
            for (n, a) in c.shards.iter().enumerate() {
                let r = pb::ShardRef {
                    collection: name.clone(),
                    number: n as u32,
                };
                for holder in a.owner.iter().chain(a.readers.iter()) {
                    held.entry(holder).or_default().push(r.clone());
                }
                shards.push(pb::ShardPlacement {
                    collection: name.clone(),
                    number: n as u32,
                    owner: a.owner.clone().unwrap_or_default(),
                    epoch: a.epoch,
                    readers: a.readers.clone(),
                    state: self.shard_state(&view, c, n as u32) as i32,
                });
            }
        }
        let nodes = view
            .map
            .nodes
            .values()
            .map(|n| pb::NodeInfo {
                id: n.id.clone(),
                address: n.address.clone(),
                state: n.state.to_proto() as i32,
                last_heartbeat_ms_ago: self
                    .heartbeats
                    .get(&n.id)
                    .map(|s| s.at.elapsed().as_millis() as u64),
                shards: held.remove(n.id.as_str()).unwrap_or_default(),
            })
            .collect();
        pb::ClusterStatusResponse {
            routers,
            nodes,
            shards,
        }
    }

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
                    let mut c = crate::api::client::internal(&leader.internal, &self.cfg)?;
                    let req = crate::api::client::forwarded(req, &self.cfg);
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

    /// Operator command: give an object-store shard a new owner (epoch + 1).
    pub async fn move_shard(
        &self,
        collection: &str,
        shard: u32,
        to: &str,
        forwarded: bool,
    ) -> Result<u64> {
        let deadline = Instant::now() + META_DEADLINE;
        let body = serde_json::json!({"collection": collection, "shard": shard, "to": to});
        let epoch = self
            .on_leader(
                deadline,
                forwarded,
                || async {
                    let view = self.view();
                    let m =
                        plan_move(&view, collection, shard, to).map_err(ProposeError::Failed)?;
                    let epoch = m.from_epoch + 1;
                    match self.propose(Command::Move { moves: vec![m] }).await? {
                        CommandResult::Moved { applied: 1 } => {
                            self.control.notify_one();
                            Ok(serde_json::json!({ "epoch": epoch }))
                        }
                        _ => Err(ProposeError::Failed(Error::new(
                            ErrorKind::FailedPrecondition,
                            "the shard changed owner meanwhile; look again and retry",
                        ))),
                    }
                },
                |leader| self.forward_admin(leader, "/v1/cluster/shards/move", body.clone()),
            )
            .await?;
        Ok(epoch["epoch"].as_u64().unwrap_or_default())
    }

    /// Operator command: add a router to the Raft group (as a learner that catches up from
    /// a snapshot, then as a voter).
    pub async fn add_router(&self, id: NodeId, node: RouterNode, forwarded: bool) -> Result<()> {
        let body = serde_json::json!({"id": id, "grpc": node.grpc, "internal": node.internal, "http": node.http});
        self.on_leader(
            Instant::now() + Duration::from_secs(60),
            forwarded,
            || async {
                self.raft
                    .add_learner(id, node.clone(), true)
                    .await
                    .map_err(membership_error)?;
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                    .await
                    .map_err(membership_error)?;
                Ok(serde_json::Value::Null)
            },
            |leader| self.forward_admin(leader, "/v1/cluster/routers", body.clone()),
        )
        .await
        .map(|_| ())
    }

    /// Operator command: forget a data node that is down and holds no shard (a
    /// decommissioned node). A node that still holds shards is refused; move them first.
    pub async fn remove_node(&self, id: &str, forwarded: bool) -> Result<()> {
        let body = serde_json::json!({ "id": id });
        self.on_leader(
            Instant::now() + META_DEADLINE,
            forwarded,
            || async {
                let view = self.view();
                let node = view.map.nodes.get(id).ok_or_else(|| {
                    ProposeError::Failed(Error::not_found(format!("node {id:?} is not registered")))
                })?;
                if node.state != Liveness::Down {
                    return Err(ProposeError::Failed(Error::new(
                        ErrorKind::FailedPrecondition,
                        format!("node {id:?} is not down; stop it first"),
                    )));
                }
                self.propose(Command::RemoveNode { id: id.to_string() })
                    .await?;
                self.heartbeats.forget(id);
                Ok(serde_json::Value::Null)
            },
            |leader| self.forward_admin(leader, "/v1/cluster/nodes/remove", body.clone()),
        )
        .await
        .map(|_| ())
    }

    /// Operator command: remove a router from the Raft group.
    pub async fn remove_router(&self, id: NodeId, forwarded: bool) -> Result<()> {
        let body = serde_json::json!({"id": id});
        self.on_leader(
            Instant::now() + META_DEADLINE,
            forwarded,
            || async {
                if !self.view().routers.contains_key(&id) {
                    return Err(ProposeError::Failed(Error::not_found(format!(
                        "router {id} is not a member"
                    ))));
                }
                self.raft
                    .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                    .await
                    .map_err(membership_error)?;
                Ok(serde_json::Value::Null)
            },
            |leader| self.forward_admin(leader, "/v1/cluster/routers/remove", body.clone()),
        )
        .await
        .map(|_| ())
    }

    /// Forward an admin REST call to the leader; returns its JSON answer.
    async fn forward_admin(
        &self,
        leader: RouterNode,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value> {
        let mut req = self
            .http
            .post(format!("http://{}{path}", leader.http))
            .header(crate::api::FORWARDED_HEADER, "1")
            .json(&body);
        if let Some(k) = self.cfg.api_keys.first() {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.map_err(|e| {
            Error::unavailable(format!("{LEADER_UNREACHABLE}: {}: {e}", leader.http))
        })?;
        let status = resp.status();
        let v: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| Error::unavailable(format!("leader at {}: {e}", leader.http)))?;
        if status.is_success() {
            return Ok(v);
        }
        let code = v["error"]["code"].as_str().unwrap_or("INTERNAL");
        let msg = v["error"]["message"]
            .as_str()
            .unwrap_or("no message")
            .to_string();
        Err(Error::new(crate::status::kind_of_name(code), msg))
    }
}

fn membership_error(e: RaftError<NodeId, ClientWriteError<NodeId, RouterNode>>) -> ProposeError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            ProposeError::NotLeader(f.leader_id.zip(f.leader_node))
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ProposeError::Failed(Error::new(ErrorKind::FailedPrecondition, e.to_string()))
        }
        RaftError::Fatal(f) => ProposeError::Failed(Error::unavailable(f.to_string())),
    }
}

/// Check an operator's move and compute it.
fn plan_move(view: &MapView, collection: &str, shard: u32, to: &str) -> Result<Move> {
    let coll = Core::collection(view, collection)?;
    let a = coll.shards.get(shard as usize).ok_or_else(|| {
        Error::not_found(format!(
            "collection {collection:?} has {} shards; there is no shard {shard}",
            coll.spec.shard_count
        ))
    })?;
    if !coll.spec.is_object_store() {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!("collection {collection:?} keeps its shards on local disk; they cannot move"),
        ));
    }
    if !placement::is_live(&view.map, to) {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!("node {to:?} is not a live node"),
        ));
    }
    if a.owner.as_deref() == Some(to) {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!("node {to:?} already owns shard {shard} of {collection:?}"),
        ));
    }
    Ok(Move {
        collection: collection.to_string(),
        shard,
        from_epoch: a.epoch,
        to: to.to_string(),
    })
}
