//! The cluster's state as this router sees it: shard states and cluster status.

use std::collections::BTreeMap;

use vecshard_proto::v1 as pb;

use crate::conversions::shard_state;
use crate::core::Core;
use crate::raft::state_machine::MapView;
use crate::shardmap::{Assignment, Collection, placement};
use vecshard_proto::internal::v1::ShardStatus;

impl Core {
    /// A shard's state: unassigned, unavailable (owner down), or what its owner reports
    /// at the current epoch (opening until it does).
    pub fn shard_state(&self, view: &MapView, coll: &Collection, n: u32) -> pb::ShardState {
        self.shard_report(view, coll, n).0
    }

    /// The shard's state and, when its owner reports it failed or fenced, why.
    pub(crate) fn shard_report(
        &self,
        view: &MapView,
        coll: &Collection,
        n: u32,
    ) -> (pb::ShardState, String) {
        let a = &coll.shards[n as usize];
        let Some(owner) = &a.owner else {
            return (pb::ShardState::Unassigned, String::new());
        };
        if !placement::is_live(&view.map, owner) {
            return (pb::ShardState::Unavailable, String::new());
        }
        self.heartbeats
            .get(owner)
            .and_then(|s| s.shard(&coll.spec.name, n).cloned())
            .filter(|s| s.epoch == a.epoch)
            .map(|s| (shard_state(s.state), s.error))
            .unwrap_or((pb::ShardState::Opening, String::new()))
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
                let followers = a
                    .replicas
                    .iter()
                    .flat_map(|s| s.replicas.iter().filter(|n| a.owner.as_ref() != Some(*n)));
                for holder in a.owner.iter().chain(a.readers.iter()).chain(followers) {
                    held.entry(holder).or_default().push(r.clone());
                }
                let (state, error) = self.shard_report(&view, c, n as u32);
                shards.push(pb::ShardPlacement {
                    collection: name.clone(),
                    number: n as u32,
                    owner: a.owner.clone().unwrap_or_default(),
                    epoch: a.epoch,
                    readers: a.readers.clone(),
                    state: state as i32,
                    error,
                    replicas: replica_infos(a, self.primary_report(&view, c, n as u32)),
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
                zone: n.zone.clone().unwrap_or_default(),
            })
            .collect();
        pb::ClusterStatusResponse {
            routers,
            nodes,
            shards,
        }
    }
}

impl Core {
    /// What a replicated shard's live primary last reported at the map's epoch (with its
    /// followers' lag), if it did.
    fn primary_report(&self, view: &MapView, coll: &Collection, n: u32) -> Option<ShardStatus> {
        let a = &coll.shards[n as usize];
        a.replicas.as_ref()?;
        let owner = a
            .owner
            .as_ref()
            .filter(|o| placement::is_live(&view.map, o))?;
        self.heartbeats
            .get(owner)?
            .shard(&coll.spec.name, n)
            .filter(|s| s.epoch == a.epoch)
            .cloned()
    }
}

/// A replicated shard's replicas as the shard map records them, the primary first, with
/// the lag `report` (the primary's last heartbeat at the map's epoch) gives each.
fn replica_infos(a: &Assignment, report: Option<ShardStatus>) -> Vec<pb::ReplicaInfo> {
    let Some(set) = &a.replicas else {
        return Vec::new();
    };
    let mut nodes: Vec<&String> = set.replicas.iter().collect();
    nodes.sort_by_key(|n| a.owner.as_ref() != Some(*n));
    nodes
        .into_iter()
        .map(|n| pb::ReplicaInfo {
            node: n.clone(),
            role: if a.owner.as_ref() == Some(n) {
                "primary"
            } else {
                "follower"
            }
            .to_string(),
            epoch: a.epoch,
            in_sync: set.in_sync.contains(n),
            ..lag_of(n, a.owner.as_ref() == Some(n), report.as_ref())
        })
        .collect()
}

/// A replica's lag: none for the primary; a follower's as its primary reported it
/// (unknown without a report, or when the report does not name it).
fn lag_of(node: &str, primary: bool, report: Option<&ShardStatus>) -> pb::ReplicaInfo {
    let (lag_seqs, lag_seconds) = match (primary, report) {
        (true, Some(_)) => (Some(0), Some(0.0)),
        (false, Some(r)) => r
            .followers
            .iter()
            .find(|f| f.node == node)
            .map(|f| (Some(f.lag_seqs), Some(f.lag_ms as f64 / 1000.0)))
            .unwrap_or((None, None)),
        (_, None) => (None, None),
    };
    pb::ReplicaInfo {
        lag_seqs,
        lag_seconds,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vecshard_proto::internal::v1::FollowerLag;

    #[test]
    fn a_followers_lag_comes_from_its_primarys_report_and_is_unknown_without_one() {
        let report = ShardStatus {
            followers: vec![FollowerLag {
                node: "n2".into(),
                durable_seq: 90,
                lag_seqs: 10,
                lag_ms: 1_500,
            }],
            ..Default::default()
        };
        let lag = |node, primary, report| {
            let r = lag_of(node, primary, report);
            (r.lag_seqs, r.lag_seconds)
        };
        assert_eq!(lag("n1", true, Some(&report)), (Some(0), Some(0.0)));
        assert_eq!(lag("n2", false, Some(&report)), (Some(10), Some(1.5)));
        // A follower the primary does not report, or no report at all: unknown.
        assert_eq!(lag("n3", false, Some(&report)), (None, None));
        assert_eq!(lag("n2", false, None), (None, None));
        assert_eq!(lag("n1", true, None), (None, None));
    }
}
