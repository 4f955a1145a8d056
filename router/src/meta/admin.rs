//! The operator's commands: move a shard, forget a node, add or remove a router.
//! Sent to any router's REST API; a follower forwards them to the leader.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use openraft::ChangeMembers;
use openraft::error::{ClientWriteError, RaftError};

use super::META_DEADLINE;
use crate::core::{Core, LEADER_UNREACHABLE, ProposeError};
use crate::error::{Error, ErrorKind, Result};
use crate::raft::state_machine::MapView;
use crate::raft::{NodeId, RouterNode};
use crate::shardmap::{Command, CommandResult, Liveness, Move, placement};

impl Core {
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
    pub(crate) async fn forward_admin(
        &self,
        leader: RouterNode,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value> {
        let mut req = self
            .http
            .post(format!(
                "{}://{}{path}",
                self.security.http_scheme(),
                leader.http
            ))
            .header(crate::api::FORWARDED_HEADER, "1")
            .json(&body);
        if let Some(k) = self.security.keys.forwarding_key() {
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
        Err(Error::new(crate::error_status::kind_of_name(code), msg))
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
