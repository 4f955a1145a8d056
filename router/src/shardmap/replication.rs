//! The promotion rule for replicated local-disk shards
//! (`docs/design/014-replication.md`, "Promotion"): a pure function of the replica set and
//! the positions that fenced replicas answered, so the leader's control loop and the model
//! test in `tests.rs` use the same code.

use vecshard_model::replication::majority;

use super::types::{ReplicaSet, Replication, WriteAck};

/// What a replica answered when the leader fenced it at a new epoch: the epoch of the
/// primary that wrote its last frame and that frame's sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The replica's node.
    pub node: String,
    /// The epoch of its last frame (0: none).
    pub last_epoch: u64,
    /// The sequence number of its last frame (0: none).
    pub last_seq: u64,
}

impl Position {
    fn key(&self) -> (u64, u64) {
        (self.last_epoch, self.last_seq)
    }
}

/// The leader's decision for a shard whose primary is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Promotion {
    /// Promote `primary` (its `last_seq` starts the new epoch); `in_sync` are the
    /// replicas that answered the very same position: they hold exactly its log.
    Promote {
        /// The new primary.
        primary: String,
        /// Its last sequence number.
        start_seq: u64,
        /// The new in-sync set (the primary first).
        in_sync: Vec<String>,
    },
    /// Not enough answers to be sure every acknowledged write is seen; wait and fence
    /// again. `have` answered, `need` are needed (for `all`: one in-sync replica).
    Wait {
        /// Usable answers.
        have: usize,
        /// Answers needed.
        need: usize,
    },
}

/// Decide a promotion from the answers of fenced replicas.
///
/// - `majority`: ⌊RF/2⌋ + 1 answers are needed — any majority that acknowledged a write
///   shares a replica with them.
/// - `all`: one answer from an in-sync replica is needed — each holds every acknowledged
///   write.
///
/// Among the answers the highest `(last_epoch, last_seq)` wins; on a tie an in-sync
/// replica, then the smaller node id. Answers from nodes that are not replicas of the
/// shard, and repeated answers of one node, are ignored.
pub fn decide(set: &ReplicaSet, replication: Replication, answers: &[Position]) -> Promotion {
    let mut usable: Vec<&Position> = Vec::new();
    for a in answers {
        if set.replicas.contains(&a.node) && !usable.iter().any(|u| u.node == a.node) {
            usable.push(a);
        }
    }
    let in_isr = |p: &Position| set.in_sync.contains(&p.node);
    let (have, need) = match replication.write_ack {
        WriteAck::Majority => (usable.len(), majority(replication.factor) as usize),
        WriteAck::All => (usize::from(usable.iter().any(|p| in_isr(p))), 1),
    };
    if have < need {
        return Promotion::Wait { have, need };
    }
    let Some(best) = usable.iter().copied().max_by(|a, b| {
        (a.key(), in_isr(a), std::cmp::Reverse(&a.node)).cmp(&(
            b.key(),
            in_isr(b),
            std::cmp::Reverse(&b.node),
        ))
    }) else {
        return Promotion::Wait { have: 0, need };
    };
    let mut in_sync = vec![best.node.clone()];
    in_sync.extend(
        usable
            .iter()
            .filter(|p| p.node != best.node && p.key() == best.key())
            .map(|p| p.node.clone()),
    );
    Promotion::Promote {
        primary: best.node.clone(),
        start_seq: best.last_seq,
        in_sync,
    }
}
