//! Raft RPCs to peer routers over `RouterInternal` (tonic), each openraft message and its
//! result serialized with serde_json into the opaque `payload` bytes.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use vecshard_proto::internal::v1::router_internal_client::RouterInternalClient;
use vecshard_proto::internal::v1::{RaftRequest, RaftResponse};
use vecshard_security::{AuthChannel, Outbound};

use super::{NodeId, RouterNode, TypeConfig};

/// The largest Raft message a router accepts or sends (snapshot chunks are far smaller).
pub const MAX_RAFT_MESSAGE_BYTES: usize = 64 << 20;

/// Creates a connection per peer.
#[derive(Clone)]
pub struct Network {
    /// Bound on connecting to a peer.
    pub connect_timeout: Duration,
    /// How peers are dialled (TLS, credentials).
    pub outbound: Outbound,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &RouterNode) -> Connection {
        let client = self
            .outbound
            .channel(&node.internal, self.connect_timeout)
            .map(|c| {
                RouterInternalClient::new(c)
                    .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES)
            });
        Connection {
            target,
            client: client.map_err(|e| e.to_string()),
        }
    }
}

/// A connection to one peer.
pub struct Connection {
    target: NodeId,
    client: Result<RouterInternalClient<AuthChannel>, String>,
}

#[derive(Clone, Copy)]
enum Rpc {
    Append,
    Vote,
    Snapshot,
}

impl Connection {
    async fn call<Req, Resp, E>(
        &mut self,
        rpc: Rpc,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, RouterNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let client = match &mut self.client {
            Ok(c) => c,
            Err(e) => {
                let e = std::io::Error::other(format!("bad peer address: {e}"));
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
        };
        let payload =
            serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut request = tonic::Request::new(RaftRequest { payload });
        request.set_timeout(option.hard_ttl());
        let response = match rpc {
            Rpc::Append => client.append_entries(request).await,
            Rpc::Vote => client.vote(request).await,
            Rpc::Snapshot => client.install_snapshot(request).await,
        };
        let RaftResponse { payload } = response
            .map_err(|s| RPCError::Unreachable(Unreachable::new(&s)))?
            .into_inner();
        let result: Result<Resp, E> = serde_json::from_slice(&payload)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, RouterNode, E>>;

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.call(Rpc::Append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.call(Rpc::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.call(Rpc::Vote, &rpc, &option).await
    }
}
