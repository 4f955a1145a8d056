//! Protobuf ↔ engine conversions for the node's own messages (targets, assignments,
//! searches, hits, statuses). Keys, values, points, metrics, index parameters and filters
//! convert through the model's one conversion (`vecshard_model::proto`), which also refuses
//! what the wire allows but the model does not (unset oneofs and keys, non-finite floats,
//! filters nested too deep or too broad) with messages naming the part (`filter.and[1]`).

use vecshard_engine::{Hit, Point, ShardSpec};
use vecshard_model::{proto as model_pb, validate};
use vecshard_proto::internal::v1 as pb;
use vecshard_proto::v1 as pb1;

pub use vecshard_model::proto::{key_from_proto, key_to_proto};

use crate::error::NodeError;
use crate::placement::{Assignment, Peer, ReplicaSet, RestoreFrom, Role, ShardId, Storage};
use crate::registry::SlotStatus;

type Result<T> = std::result::Result<T, NodeError>;

/// A call's shard and epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The shard.
    pub id: ShardId,
    /// The caller's epoch.
    pub epoch: u64,
}

/// The shard target of a call; it must be set and name a valid collection.
pub fn target_from_proto(t: Option<pb::ShardTarget>) -> Result<Target> {
    let t = t.ok_or_else(|| NodeError::invalid("target is required"))?;
    validate::collection_name(&t.collection)?;
    Ok(Target {
        id: ShardId {
            collection: t.collection,
            shard: t.shard,
        },
        epoch: t.epoch,
    })
}

/// Keys of a get or delete; each must be set and valid.
pub fn keys_from_proto(keys: Vec<pb1::Key>) -> Result<Vec<vecshard_engine::Key>> {
    Ok(model_pb::keys_from_proto(&keys)?)
}

/// The points of an upsert (`points[3]` in errors). Only what the wire allows but the
/// model does not is refused here; the engine checks the points against the shard (the
/// model's rules), so a bad point fails its own request and not the writes grouped with it.
pub fn points_from_proto(points: Vec<pb1::Point>) -> Result<Vec<Point>> {
    points
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            Ok(model_pb::point_from_proto(p).map_err(|e| e.within(format!("points[{i}]")))?)
        })
        .collect()
}

/// The wire form of a point.
pub fn point_to_proto(p: Point) -> pb1::Point {
    model_pb::point_to_proto(p)
}

/// A role; unspecified or unknown values are refused.
pub fn role_from_proto(r: i32) -> Result<Role> {
    match pb::Role::try_from(r) {
        Ok(pb::Role::Writer) => Ok(Role::Writer),
        Ok(pb::Role::Reader) => Ok(Role::Reader),
        Ok(pb::Role::Follower) => Ok(Role::Follower),
        Ok(pb::Role::Unspecified) | Err(_) => Err(NodeError::invalid(format!(
            "role {r} is not one of ROLE_WRITER, ROLE_READER, ROLE_FOLLOWER"
        ))),
    }
}

/// The wire form of a role.
pub fn role_to_proto(r: Role) -> pb::Role {
    match r {
        Role::Writer => pb::Role::Writer,
        Role::Reader => pb::Role::Reader,
        Role::Follower => pb::Role::Follower,
    }
}

/// Where a shard's data lives, as the router sends it: `local` (or empty) or a URL.
pub fn storage_from_proto(storage: &str) -> Result<Storage> {
    match storage {
        "" | "local" => Ok(Storage::Local),
        url if url.contains("://") => Ok(Storage::Url(url.to_string())),
        other => Err(NodeError::invalid(format!(
            "storage {other:?} is neither `local` nor an object-store URL"
        ))),
    }
}

/// An assignment from the router.
pub fn assignment_from_proto(r: pb::AssignShardRequest) -> Result<Assignment> {
    validate::collection_name(&r.collection)?;
    let storage = storage_from_proto(&r.storage)?;
    validate::dimension(r.dimension as usize)?;
    let role = role_from_proto(r.role)?;
    let replication = r
        .replication
        .map(|set| replica_set_from_proto(set, role, &storage))
        .transpose()?;
    if role == Role::Follower && replication.is_none() {
        return Err(NodeError::invalid(
            "a ROLE_FOLLOWER assignment needs its replica set (`replication`)",
        ));
    }
    Ok(Assignment {
        role,
        replication,
        spec: ShardSpec {
            dim: r.dimension as usize,
            metric: model_pb::metric_from_proto(r.metric)?,
            index: model_pb::index_from_proto(r.index.as_ref())?,
        },
        id: ShardId {
            collection: r.collection,
            shard: r.shard,
        },
        epoch: r.epoch,
        storage,
        incarnation: r.incarnation,
        restore: r.restore.map(|x| RestoreFrom {
            location: x.location,
            manifest_crc32c: x.manifest_crc32c,
        }),
    })
}

/// The replica set of an assignment: local storage, a writer or follower, 2 or more
/// replicas on distinct nodes, a known acknowledgement rule.
fn replica_set_from_proto(
    set: pb::ReplicaSet,
    role: Role,
    storage: &Storage,
) -> Result<ReplicaSet> {
    if *storage != Storage::Local || role == Role::Reader {
        return Err(NodeError::invalid(
            "only a local-disk WRITER or FOLLOWER assignment has a replica set",
        ));
    }
    let write_ack = vecshard_model::replication::WriteAck::parse_or_default(&set.write_ack)?;
    let replicas: Vec<Peer> = set
        .replicas
        .into_iter()
        .map(|p| Peer {
            node_id: p.node_id,
            address: p.address,
            in_sync: p.in_sync,
        })
        .collect();
    let mut ids: Vec<&str> = replicas.iter().map(|p| p.node_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    if replicas.len() < 2 || ids.len() != replicas.len() {
        return Err(NodeError::invalid(format!(
            "a replica set needs 2 or more replicas on distinct nodes, got {:?}",
            replicas.iter().map(|p| &p.node_id).collect::<Vec<_>>()
        )));
    }
    Ok(ReplicaSet {
        replicas,
        write_ack,
        epoch_starts: set
            .epoch_starts
            .iter()
            .map(|e| (e.epoch, e.start_seq))
            .collect(),
    })
}

/// Frames of a `Replicate` call as the engine applies them: (first sequence number,
/// write); a frame must hold points or keys, not both.
pub fn frames_from_proto(
    frames: Vec<pb::ReplicaFrame>,
) -> Result<Vec<(u64, vecshard_engine::Replicated)>> {
    frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let write = match (f.points.is_empty(), f.keys.is_empty()) {
                (false, true) => vecshard_engine::Replicated::Upsert(
                    points_from_proto(f.points).map_err(in_frame(i))?,
                ),
                (true, false) => vecshard_engine::Replicated::Delete(
                    keys_from_proto(f.keys).map_err(in_frame(i))?,
                ),
                _ => {
                    return Err(NodeError::invalid(format!(
                        "frames[{i}] must hold points or keys (not both, not neither)"
                    )));
                }
            };
            Ok((f.first_seq, write))
        })
        .collect()
}

fn in_frame(i: usize) -> impl Fn(NodeError) -> NodeError {
    move |e| match e {
        NodeError::InvalidArgument(m) => NodeError::InvalidArgument(format!("frames[{i}]: {m}")),
        other => other,
    }
}

/// The wire form of a write the primary's engine sequenced at `epoch` from `first_seq`.
pub fn frame_to_proto(
    epoch: u64,
    first_seq: u64,
    op: &crate::shard_actor::WriteOp,
) -> pb::ReplicaFrame {
    use crate::shard_actor::WriteOp;
    match op {
        WriteOp::Upsert(points) => pb::ReplicaFrame {
            epoch,
            first_seq,
            points: points.iter().cloned().map(point_to_proto).collect(),
            keys: Vec::new(),
        },
        WriteOp::Delete(keys) => pb::ReplicaFrame {
            epoch,
            first_seq,
            points: Vec::new(),
            keys: keys.iter().map(key_to_proto).collect(),
        },
    }
}

/// A search request (the target is taken out by the caller).
pub fn search_from_proto(r: pb::SearchRequest) -> Result<vecshard_engine::SearchRequest> {
    Ok(vecshard_engine::SearchRequest {
        vector: model_pb::vector_from_proto(r.vector, &r.vector_f32le)?,
        k: r.k as usize,
        filter: r
            .filter
            .as_ref()
            .map(model_pb::filter_from_proto)
            .transpose()?,
        ef: r.ef.map(|e| e as usize),
        exact: r.exact,
        with_metadata: r.with_metadata,
        with_payload: r.with_payload,
        with_vector: r.with_vector,
    })
}

/// The wire form of a hit.
pub fn hit_to_proto(h: Hit) -> pb::ShardHit {
    pb::ShardHit {
        key: Some(key_to_proto(&h.key)),
        distance: h.distance,
        score: h.score,
        metadata: h
            .metadata
            .as_ref()
            .map(model_pb::metadata_to_proto)
            .unwrap_or_default(),
        payload: h.payload.unwrap_or_default(),
        vector: h.vector.unwrap_or_default(),
    }
}

/// The wire form of a shard's status.
pub fn status_to_proto(s: SlotStatus) -> pb::ShardStatus {
    use crate::registry::StateName;
    let state = match s.state {
        StateName::Opening => pb::ShardState::Opening,
        StateName::Serving => pb::ShardState::Serving,
        StateName::Fenced => pb::ShardState::Fenced,
        StateName::Failed => pb::ShardState::Failed,
        StateName::Closed => pb::ShardState::Closed,
    };
    pb::ShardStatus {
        collection: s.id.collection,
        shard: s.id.shard,
        epoch: s.epoch,
        role: role_to_proto(s.role) as i32,
        state: state as i32,
        live_points: s.live_points,
        segments: s.segments as u32,
        error: s.error,
        followers: s
            .followers
            .unwrap_or_default()
            .into_iter()
            .map(|f| pb::FollowerLag {
                node: f.node,
                durable_seq: f.durable_seq,
                lag_seqs: f.lag_seqs,
                lag_ms: f.lag.as_millis() as u64,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vecshard_engine::Value;

    #[test]
    fn points_round_trip_and_unset_keys_are_named() {
        let p = Point::new("k", vec![1.0, 2.0])
            .with("tags", Value::StrList(vec!["a".into()]))
            .with("n", Value::Float(0.5))
            .with_payload(b"{}".to_vec());
        let wire = point_to_proto(p.clone());
        assert_eq!(points_from_proto(vec![wire]).unwrap(), vec![p]);
        let e = points_from_proto(vec![pb1::Point::default()]).unwrap_err();
        assert!(
            e.to_string().contains("points[0].key: the key is required"),
            "{e}"
        );
    }
}
