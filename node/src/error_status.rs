//! The one place where node and engine errors become gRPC statuses.
//!
//! - engine `InvalidArgument` → INVALID_ARGUMENT with the engine's message;
//! - `NotFound` → NOT_FOUND; `AlreadyExists` → ALREADY_EXISTS;
//! - "not owner" (no assignment, stale epochs, a write to a reader, engine `ReadOnly`,
//!   engine `Fenced`, engine `Closed` after a release) → FAILED_PRECONDITION with a
//!   message starting `not owner:` and a serialized `NotOwner` in the status details;
//! - `Busy`, full mailboxes or read queues, an assignment over the memory budget →
//!   RESOURCE_EXHAUSTED;
//! - `Locked`, `Io`, a shard still opening or failed, a writer without a read lease,
//!   shutdown → UNAVAILABLE;
//! - `Corrupt` → DATA_LOSS (the message names the file); bugs → INTERNAL.

use prost::Message;
use prost::bytes::Bytes;
use tonic::{Code, Status};
use vecshard_engine::ErrorKind;
use vecshard_proto::internal::v1 as pb;

use crate::conversions::role_to_proto;
use crate::error::{NodeError, NotOwnerReason, ShardCtx};

impl From<NodeError> for Status {
    fn from(e: NodeError) -> Status {
        let s = status_of(e);
        if s.message().len() <= vecshard_model::MAX_MESSAGE_BYTES {
            return s;
        }
        let message = vecshard_model::bounded_message(s.message()).into_owned();
        Status::with_details(s.code(), message, Bytes::copy_from_slice(s.details()))
    }
}

/// The status for `e`, before its message is bounded.
fn status_of(e: NodeError) -> Status {
    match e {
        NodeError::Engine { err, ctx } => engine_status(err, ctx),
        NodeError::NotOwner {
            ctx,
            reason,
            detail,
        } => not_owner(&ctx, reason, detail.as_deref()),
        NodeError::ShardFailed { id, err } => failed_shard(&id, &err),
        e @ NodeError::Opening(_) => Status::unavailable(e.to_string()),
        NodeError::Busy(msg) | NodeError::OverBudget(msg) => Status::resource_exhausted(msg),
        NodeError::InvalidArgument(msg) => Status::invalid_argument(msg),
        e @ (NodeError::ShuttingDown
        | NodeError::CatchingUp(..)
        | NodeError::Unconfirmed { .. }) => Status::unavailable(e.to_string()),
        e @ NodeError::Unacknowledged { .. } => shortfall(e),
        NodeError::Unsupported(msg) => Status::unimplemented(msg),
        e @ NodeError::Internal(_) => Status::internal(e.to_string()),
    }
}

/// Map an engine error exhaustively by kind.
fn engine_status(err: vecshard_engine::Error, ctx: ShardCtx) -> Status {
    let msg = format!("shard {}: {}", ctx.id, err.message());
    let code = match err.kind() {
        ErrorKind::InvalidArgument => {
            // The engine's own message, which says which point or field is wrong.
            return Status::invalid_argument(err.message().to_string());
        }
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::ReadOnly => {
            return not_owner(&ctx, NotOwnerReason::NotWriter, Some(err.message()));
        }
        ErrorKind::Fenced => {
            return not_owner(&ctx, NotOwnerReason::Fenced, Some(err.message()));
        }
        ErrorKind::Closed => {
            return not_owner(&ctx, NotOwnerReason::Unassigned, Some(err.message()));
        }
        ErrorKind::Locked | ErrorKind::Io => Code::Unavailable,
        ErrorKind::Corrupt => Code::DataLoss,
        ErrorKind::Busy => Code::ResourceExhausted,
    };
    Status::new(code, msg)
}

/// A call to a shard that failed to open or stopped serving: nothing the caller can
/// fix by changing the request, so UNAVAILABLE (DATA_LOSS when its data is corrupt).
fn failed_shard(id: &crate::placement::ShardId, err: &vecshard_engine::Error) -> Status {
    let code = match err.kind() {
        ErrorKind::Corrupt => Code::DataLoss,
        ErrorKind::InvalidArgument
        | ErrorKind::NotFound
        | ErrorKind::AlreadyExists
        | ErrorKind::ReadOnly
        | ErrorKind::Fenced
        | ErrorKind::Locked
        | ErrorKind::Closed
        | ErrorKind::Busy
        | ErrorKind::Io => Code::Unavailable,
    };
    Status::new(code, format!("shard {id} failed: {err}"))
}

fn reason_to_proto(r: NotOwnerReason) -> pb::NotOwnerReason {
    match r {
        NotOwnerReason::Unassigned => pb::NotOwnerReason::Unassigned,
        NotOwnerReason::StaleCaller => pb::NotOwnerReason::StaleCaller,
        NotOwnerReason::StaleNode => pb::NotOwnerReason::StaleNode,
        NotOwnerReason::NotWriter => pb::NotOwnerReason::NotWriter,
        NotOwnerReason::Fenced => pb::NotOwnerReason::Fenced,
        NotOwnerReason::NotPrimary => pb::NotOwnerReason::NotPrimary,
    }
}

/// FAILED_PRECONDITION, `not owner: …`, with a bare `NotOwner` as the details.
fn not_owner(ctx: &ShardCtx, reason: NotOwnerReason, detail: Option<&str>) -> Status {
    let detail_msg = pb::NotOwner {
        collection: ctx.id.collection.clone(),
        shard: ctx.id.shard,
        caller_epoch: ctx.caller_epoch,
        node_epoch: ctx.held.map(|(e, _)| e),
        node_role: ctx
            .held
            .map_or(pb::Role::Unspecified, |(_, r)| role_to_proto(r)) as i32,
        reason: reason_to_proto(reason) as i32,
    };
    let held = match ctx.held {
        Some((e, r)) => format!("the node holds epoch {e} as {}", r.as_str()),
        None => "the node holds no assignment for it".to_string(),
    };
    let why = match reason {
        NotOwnerReason::Unassigned => "not assigned here",
        NotOwnerReason::StaleCaller => "the caller's epoch is stale",
        NotOwnerReason::StaleNode => "the node has not received this epoch",
        NotOwnerReason::NotWriter => "writes need the writer role",
        NotOwnerReason::Fenced => "fenced by a newer writer",
        NotOwnerReason::NotPrimary => "not primary: a follower takes writes only from its primary",
    };
    let mut msg = format!(
        "not owner: shard {} at caller epoch {}: {why}; {held}",
        ctx.id, ctx.caller_epoch
    );
    if let Some(d) = detail {
        msg.push_str(" (");
        msg.push_str(d);
        msg.push(')');
    }
    Status::with_details(
        Code::FailedPrecondition,
        msg,
        Bytes::from(detail_msg.encode_to_vec()),
    )
}

/// UNAVAILABLE with a `ReplicationShortfall` as the details: the router passes it on
/// instead of retrying the write.
fn shortfall(e: NodeError) -> Status {
    let NodeError::Unacknowledged {
        id,
        acknowledged,
        needed,
        replicas,
        ..
    } = &e
    else {
        return Status::unavailable(e.to_string());
    };
    let detail = pb::ReplicationShortfall {
        collection: id.collection.clone(),
        shard: id.shard,
        acknowledged: *acknowledged,
        needed: *needed,
        replicas: *replicas,
    };
    Status::with_details(
        Code::Unavailable,
        e.to_string(),
        Bytes::from(detail.encode_to_vec()),
    )
}

/// The outcome label of a call for metrics: `ok` or the gRPC code in snake case.
pub fn outcome_label<T>(r: &Result<T, Status>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(s) => match s.code() {
            Code::Ok => "ok",
            Code::Cancelled => "cancelled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "not_owner",
            Code::Aborted => "aborted",
            Code::OutOfRange => "out_of_range",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data_loss",
            Code::Unauthenticated => "unauthenticated",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{Role, ShardId};
    use vecshard_engine::Error;

    fn ctx() -> ShardCtx {
        ShardCtx {
            id: ShardId {
                collection: "c".into(),
                shard: 1,
            },
            caller_epoch: 3,
            held: Some((4, Role::Writer)),
        }
    }

    #[test]
    fn every_engine_kind_has_a_code() {
        for (kind, code) in [
            (ErrorKind::InvalidArgument, Code::InvalidArgument),
            (ErrorKind::NotFound, Code::NotFound),
            (ErrorKind::AlreadyExists, Code::AlreadyExists),
            (ErrorKind::ReadOnly, Code::FailedPrecondition),
            (ErrorKind::Fenced, Code::FailedPrecondition),
            (ErrorKind::Locked, Code::Unavailable),
            (ErrorKind::Closed, Code::FailedPrecondition),
            (ErrorKind::Corrupt, Code::DataLoss),
            (ErrorKind::Busy, Code::ResourceExhausted),
            (ErrorKind::Io, Code::Unavailable),
        ] {
            let s: Status = NodeError::Engine {
                err: Error::new(kind, "boom"),
                ctx: ctx(),
            }
            .into();
            assert_eq!(s.code(), code, "{kind:?}");
            assert!(s.message().contains("boom"), "{kind:?}: {}", s.message());
        }
    }

    #[test]
    fn not_owner_carries_the_detail() {
        let s: Status = NodeError::Engine {
            err: Error::new(ErrorKind::ReadOnly, "read-only"),
            ctx: ctx(),
        }
        .into();
        assert!(s.message().starts_with("not owner:"), "{}", s.message());
        let d = pb::NotOwner::decode(s.details()).unwrap();
        assert_eq!(d.reason(), pb::NotOwnerReason::NotWriter);
        assert_eq!((d.caller_epoch, d.node_epoch), (3, Some(4)));
        assert_eq!(d.node_role(), pb::Role::Writer);
        assert_eq!((d.collection.as_str(), d.shard), ("c", 1));
    }
}
