//! The node's error: what went wrong with a call, with enough context (the shard, the
//! epochs, the role) to build the not-owner detail. Converted to a gRPC status in
//! exactly one place, [`crate::error_status`].

use crate::placement::{Role, ShardId};

/// Why a node refuses a call as "not owner".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotOwnerReason {
    /// The node holds no assignment for the shard.
    Unassigned,
    /// The caller's epoch is older than the node's.
    StaleCaller,
    /// The caller's epoch is newer than the node's.
    StaleNode,
    /// A write was sent to a reader.
    NotWriter,
    /// A newer writer claimed the shard in storage.
    Fenced,
    /// A client write was sent to a follower of a replicated shard.
    NotPrimary,
}

/// The shard a call was for and what the node holds for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardCtx {
    /// The shard.
    pub id: ShardId,
    /// The epoch the caller sent.
    pub caller_epoch: u64,
    /// The epoch and role the node holds, if any.
    pub held: Option<(u64, Role)>,
}

/// An error answering a call.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The engine failed; `ctx` is the shard it was working on.
    #[error("shard {}: {err}", ctx.id)]
    Engine {
        /// The engine's error.
        err: vecshard_engine::Error,
        /// The shard.
        ctx: ShardCtx,
    },
    /// The node does not serve this shard at this epoch in this role.
    #[error("not owner: shard {} ({reason:?}, caller epoch {}, node holds {:?}){}", ctx.id, ctx.caller_epoch, ctx.held, detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    NotOwner {
        /// The shard and epochs.
        ctx: ShardCtx,
        /// Why.
        reason: NotOwnerReason,
        /// More words for the log (e.g. the fencing message).
        detail: Option<String>,
    },
    /// The shard failed to open or stopped serving; `err` says why.
    #[error("shard {id} failed: {err}")]
    ShardFailed {
        /// The shard.
        id: ShardId,
        /// The engine error that stopped it.
        err: vecshard_engine::Error,
    },
    /// The shard is still opening (replaying its WAL); retry shortly.
    #[error("shard {0} is opening; retry shortly")]
    Opening(ShardId),
    /// An assignment beyond the node's memory budget; the message names the budget, the
    /// ask and what is used.
    #[error("{0}")]
    OverBudget(String),
    /// Backpressure: a queue is full; retry later.
    #[error("{0}")]
    Busy(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// A replicated write is durable on the primary but the acknowledgement rule was not
    /// met before the write's deadline.
    #[error("shard {}: the write is durable on {acknowledged} of {replicas} replicas before its deadline; write_ack {rule} needs {needed}{}", id, detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Unacknowledged {
        /// The shard.
        id: crate::placement::ShardId,
        /// Replicas (the primary included) that had the write durable.
        acknowledged: u32,
        /// Replicas the rule needs.
        needed: u32,
        /// The replication factor.
        replicas: u32,
        /// The rule's name.
        rule: &'static str,
        /// Which followers did not answer, and why.
        detail: Option<String>,
    },
    /// A replicated copy that is catching up (its directory was new or wiped and it has
    /// not reached the primary's log end since) cannot answer a fence: its position says
    /// nothing about which acknowledged writes it holds (note 014).
    #[error("shard {0}: {1}")]
    CatchingUp(crate::placement::ShardId, String),
    /// A writer slot whose read lease ran out (or was never granted): it may have been
    /// replaced, so it answers no reads until the Raft leader confirms it again.
    #[error("shard {id} at epoch {epoch}: {why}")]
    Unconfirmed {
        /// The shard.
        id: crate::placement::ShardId,
        /// The epoch of the slot (and of the call: lookups check they agree).
        epoch: u64,
        /// Why, in words.
        why: String,
    },
    /// Something the node cannot do (yet).
    #[error("{0}")]
    Unsupported(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl NodeError {
    /// A "not owner" answer.
    pub fn not_owner(ctx: ShardCtx, reason: NotOwnerReason) -> Self {
        NodeError::NotOwner {
            ctx,
            reason,
            detail: None,
        }
    }

    /// An invalid-argument answer.
    pub fn invalid(msg: impl Into<String>) -> Self {
        NodeError::InvalidArgument(msg.into())
    }
}

impl From<vecshard_model::ValidationError> for NodeError {
    /// A broken rule of the data model is an invalid argument naming the field.
    fn from(e: vecshard_model::ValidationError) -> Self {
        NodeError::InvalidArgument(e.to_string())
    }
}
