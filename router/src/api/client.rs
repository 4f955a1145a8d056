//! Clients one router uses to reach another (forwarding to the leader).

use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use vecshard_proto::internal::v1::router_internal_client::RouterInternalClient;
use vecshard_proto::v1::vec_shard_client::VecShardClient;

use super::FORWARDED_HEADER;
use crate::config::RouterConfig;
use crate::error::{Error, Result};
use crate::raft::network::channel;

fn connect(addr: &str, cfg: &RouterConfig) -> Result<Channel> {
    channel(addr, Duration::from_millis(cfg.node_connect_timeout_ms))
        .map_err(|e| Error::unavailable(format!("bad router address {addr:?}: {e}")))
}

/// The public API of the router at `addr`.
pub fn public(addr: &str, cfg: &RouterConfig) -> Result<VecShardClient<Channel>> {
    Ok(VecShardClient::new(connect(addr, cfg)?))
}

/// The internal API of the router at `addr`.
pub fn internal(addr: &str, cfg: &RouterConfig) -> Result<RouterInternalClient<Channel>> {
    Ok(RouterInternalClient::new(connect(addr, cfg)?))
}

/// A request marked as forwarded, with this cluster's API key if it has one.
pub fn forwarded<T>(msg: T, cfg: &RouterConfig) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert(FORWARDED_HEADER, MetadataValue::from_static("1"));
    if let Some(v) = cfg
        .api_keys
        .first()
        .and_then(|k| MetadataValue::try_from(format!("Bearer {k}")).ok())
    {
        r.metadata_mut().insert("authorization", v);
    }
    r.set_timeout(Duration::from_secs(15));
    r
}
