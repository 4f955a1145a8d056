//! The `vecshard.internal.v1.ReplicaInternal` gRPC service: a follower takes its
//! primary's frames (`docs/design/014-replication.md`). Any cluster member may call it
//! (primaries are nodes); the shard check is the usual one — the follower must hold the
//! shard as FOLLOWER at exactly the caller's epoch, serving.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::{Request, Response, Status, Streaming};
use vecshard_proto::internal::v1 as pb;
use vecshard_proto::internal::v1::replica_internal_server::ReplicaInternal;

use crate::conversions::{frames_from_proto, target_from_proto};
use crate::error::{NodeError, NotOwnerReason};
use crate::registry::Access;
use crate::replication::checkpoint::Incoming;
use crate::service::NodeState;
use crate::shard_actor::{ApplyFrames, GetPosition, InstallCopy};

/// The replication service of a node.
#[derive(Debug, Clone)]
pub struct ReplicaService {
    state: Arc<NodeState>,
}

impl ReplicaService {
    /// A service over the node's state.
    pub fn new(state: Arc<NodeState>) -> Self {
        ReplicaService { state }
    }
}

#[tonic::async_trait]
impl ReplicaInternal for ReplicaService {
    async fn replicate(
        &self,
        req: Request<pb::ReplicateRequest>,
    ) -> Result<Response<pb::ReplicateResponse>, Status> {
        let started = Instant::now();
        let r = req.into_inner();
        let t = target_from_proto(r.target)?;
        let out = async {
            let (slot, _) = self.state.registry.lookup(&t, Access::Replicate)?;
            let frames = frames_from_proto(r.frames.clone())?;
            let addr = slot
                .addr()
                .ok_or_else(|| NodeError::Opening(t.id.clone()))?;
            addr.send(ApplyFrames {
                epoch: t.epoch,
                frames,
                wire: r.frames,
                log_end: r.log_end,
            })
            .await
            .map_err(|_| NodeError::not_owner(slot.ctx(t.epoch), NotOwnerReason::Unassigned))?
        }
        .await
        .map(|p| {
            Response::new(pb::ReplicateResponse {
                durable_seq: p.durable_seq,
                gap: p.gap,
                needs_copy: p.needs_copy,
            })
        })
        .map_err(Status::from);
        self.state.metrics.observe_request(
            &t.id,
            "replicate",
            crate::error_status::outcome_label(&out),
            started.elapsed(),
        );
        out
    }

    async fn install_checkpoint(
        &self,
        req: Request<Streaming<pb::CheckpointChunk>>,
    ) -> Result<Response<pb::ReplicateResponse>, Status> {
        let started = Instant::now();
        let mut stream = req.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("an empty checkpoint stream"))?;
        let t = target_from_proto(first.target.clone())?;
        let (slot, _) = self
            .state
            .registry
            .lookup(&t, Access::Replicate)
            .map_err(Status::from)?;
        let staging = std::path::PathBuf::from(format!("{}.incoming", slot.location));
        let seq = first.seq;
        let out = receive(&mut stream, first, staging.clone(), &t.id).await;
        let out = match out {
            Ok((dir, bytes)) => {
                tracing::info!(shard = %t.id, seq, bytes, ms = started.elapsed().as_millis() as u64,
                    "received a checkpoint from the primary");
                let addr = slot
                    .addr()
                    .ok_or_else(|| NodeError::Opening(t.id.clone()))
                    .map_err(Status::from)?;
                let installed = addr
                    .send(InstallCopy {
                        epoch: t.epoch,
                        staging: dir,
                        seq,
                    })
                    .await
                    .map_err(|_| {
                        NodeError::not_owner(slot.ctx(t.epoch), NotOwnerReason::Unassigned)
                    })
                    .and_then(|r| r);
                installed.map_err(Status::from)
            }
            Err(e) => Err(e),
        };
        if out.is_err() {
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(staging)).await;
        }
        let out = out.map(|p| {
            Response::new(pb::ReplicateResponse {
                durable_seq: p.durable_seq,
                gap: false,
                needs_copy: false,
            })
        });
        self.state.metrics.observe_request(
            &t.id,
            "install_checkpoint",
            crate::error_status::outcome_label(&out),
            started.elapsed(),
        );
        out
    }

    async fn position(
        &self,
        req: Request<pb::PositionRequest>,
    ) -> Result<Response<pb::PositionResponse>, Status> {
        let t = target_from_proto(req.into_inner().target)?;
        let (slot, _) = self
            .state
            .registry
            .lookup(&t, Access::Replicate)
            .map_err(Status::from)?;
        let addr = slot
            .addr()
            .ok_or_else(|| Status::from(NodeError::Opening(t.id.clone())))?;
        let (durable_seq, catching_up) = addr
            .send(GetPosition)
            .await
            .map_err(|_| {
                Status::from(NodeError::not_owner(
                    slot.ctx(t.epoch),
                    NotOwnerReason::Unassigned,
                ))
            })?
            .map_err(Status::from)?;
        Ok(Response::new(pb::PositionResponse {
            durable_seq,
            catching_up,
        }))
    }
}

/// Receive a checkpoint stream whose first message is `first` into `staging`, checking
/// every file's CRC; the verified directory and the bytes received.
async fn receive(
    stream: &mut Streaming<pb::CheckpointChunk>,
    first: pb::CheckpointChunk,
    staging: std::path::PathBuf,
    id: &crate::placement::ShardId,
) -> Result<(std::path::PathBuf, u64), Status> {
    let bad = |e: String| Status::from(NodeError::invalid(format!("shard {id}: {e}")));
    let blocking = |e: tokio::task::JoinError| Status::internal(e.to_string());
    let mut inc = tokio::task::spawn_blocking(move || Incoming::new(staging))
        .await
        .map_err(blocking)?
        .map_err(bad)?;
    let mut next = Some(first);
    while let Some(chunk) = next.take() {
        let done = chunk.done;
        inc = tokio::task::spawn_blocking(move || inc.take(chunk).map(|()| inc))
            .await
            .map_err(blocking)?
            .map_err(bad)?;
        if done {
            break;
        }
        next = stream.message().await?;
        if next.is_none() {
            return Err(bad(
                "the checkpoint stream ended before its last chunk".into()
            ));
        }
    }
    let bytes = inc.bytes();
    let dir = tokio::task::spawn_blocking(move || inc.finish())
        .await
        .map_err(blocking)?
        .map_err(bad)?;
    Ok((dir, bytes))
}

/// When a replicated primary answers a write whose call carries `grpc_timeout` (the
/// `grpc-timeout` header, such as `2999m`) received at `now`: a tenth of the timeout
/// (at least 20 ms, at most 1 s) before the caller gives up, so the caller hears why.
pub fn answer_by(grpc_timeout: &str, now: Instant) -> Option<Instant> {
    let timeout = vecshard_model::deadline::parse_grpc_timeout(grpc_timeout)?;
    let margin = (timeout / 10).clamp(Duration::from_millis(20), Duration::from_secs(1));
    Some(now + timeout.saturating_sub(margin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_answered_before_its_caller_gives_up() {
        let now = Instant::now();
        assert_eq!(
            answer_by("3000m", now),
            Some(now + Duration::from_millis(2700))
        );
        assert_eq!(answer_by("30S", now), Some(now + Duration::from_secs(29)));
        assert_eq!(
            answer_by("100000u", now),
            Some(now + Duration::from_millis(80))
        );
        assert_eq!(answer_by("10m", now), Some(now));
        for bad in ["", "m", "12x", "-1S", "1.5S"] {
            assert_eq!(answer_by(bad, now), None, "{bad}");
        }
    }
}
