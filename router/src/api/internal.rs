//! The peer-only gRPC service `vecshard.internal.v1.RouterInternal`: node registration and
//! heartbeats, and the Raft transport (serde_json payloads). Serve it only where cluster
//! peers (routers and data nodes) can reach it, never to clients. Every call is checked
//! against the cluster authentication (`vecshard_security::auth`): Raft only from
//! routers, a node's registration and heartbeats only from that node.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Request, Response, Status};
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::internal::v1::router_internal_server::RouterInternal;

use crate::core::Core;

/// The service.
pub struct InternalService {
    core: Arc<Core>,
}

impl InternalService {
    /// A service on `core`.
    pub fn new(core: Arc<Core>) -> Self {
        InternalService { core }
    }
}

fn decode<T: DeserializeOwned>(r: Request<pi::RaftRequest>) -> Result<T, Status> {
    serde_json::from_slice(&r.get_ref().payload)
        .map_err(|e| Status::invalid_argument(format!("undecodable Raft message: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Result<Response<pi::RaftResponse>, Status> {
    serde_json::to_vec(v)
        .map(|payload| Response::new(pi::RaftResponse { payload }))
        .map_err(|e| Status::internal(format!("cannot encode Raft answer: {e}")))
}

#[tonic::async_trait]
impl RouterInternal for InternalService {
    async fn register_node(
        &self,
        r: Request<pi::RegisterNodeRequest>,
    ) -> Result<Response<pi::RegisterNodeResponse>, Status> {
        let forwarded = r.metadata().contains_key(super::FORWARDED_HEADER);
        let node = r.get_ref().node_id.clone();
        self.core.security.auth.require_node(&r, &node, forwarded)?;
        let answer = self.core.register_node(r.into_inner(), forwarded).await?;
        Ok(Response::new(answer))
    }

    async fn heartbeat(
        &self,
        r: Request<pi::Heartbeat>,
    ) -> Result<Response<pi::HeartbeatResponse>, Status> {
        let node = r.get_ref().node_id.clone();
        self.core.security.auth.require_node(&r, &node, false)?;
        Ok(Response::new(self.core.heartbeat(r.into_inner()).await?))
    }

    async fn shrink_isr(
        &self,
        r: Request<pi::ShrinkIsrRequest>,
    ) -> Result<Response<pi::ShrinkIsrResponse>, Status> {
        let forwarded = r.metadata().contains_key(super::FORWARDED_HEADER);
        let node = r.get_ref().node_id.clone();
        self.core.security.auth.require_node(&r, &node, forwarded)?;
        let answer = self.core.shrink_isr(r.into_inner(), forwarded).await?;
        Ok(Response::new(answer))
    }

    async fn expand_isr(
        &self,
        r: Request<pi::ExpandIsrRequest>,
    ) -> Result<Response<pi::ExpandIsrResponse>, Status> {
        let forwarded = r.metadata().contains_key(super::FORWARDED_HEADER);
        let node = r.get_ref().node_id.clone();
        self.core.security.auth.require_node(&r, &node, forwarded)?;
        let answer = self.core.expand_isr(r.into_inner(), forwarded).await?;
        Ok(Response::new(answer))
    }

    async fn append_entries(
        &self,
        r: Request<pi::RaftRequest>,
    ) -> Result<Response<pi::RaftResponse>, Status> {
        self.core.security.auth.require_router(&r)?;
        encode(&self.core.raft.append_entries(decode(r)?).await)
    }

    async fn vote(
        &self,
        r: Request<pi::RaftRequest>,
    ) -> Result<Response<pi::RaftResponse>, Status> {
        self.core.security.auth.require_router(&r)?;
        encode(&self.core.raft.vote(decode(r)?).await)
    }

    async fn install_snapshot(
        &self,
        r: Request<pi::RaftRequest>,
    ) -> Result<Response<pi::RaftResponse>, Status> {
        self.core.security.auth.require_router(&r)?;
        encode(&self.core.raft.install_snapshot(decode(r)?).await)
    }
}
