//! Clients one router uses to reach another (forwarding to the leader).

use std::time::Duration;

use tonic::metadata::MetadataValue;
use vecshard_proto::internal::v1::router_internal_client::RouterInternalClient;
use vecshard_proto::v1::vec_shard_client::VecShardClient;

use super::FORWARDED_HEADER;
use crate::core::Core;
use crate::error::{Error, Result};
use vecshard_security::AuthChannel;

fn connect(addr: &str, core: &Core) -> Result<AuthChannel> {
    let timeout = Duration::from_millis(core.cfg.node_connect_timeout_ms);
    core.security
        .outbound
        .channel(addr, timeout)
        .map_err(|e| Error::unavailable(format!("bad router address {addr:?}: {e}")))
}

/// The public API of the router at `addr`.
pub fn public(addr: &str, core: &Core) -> Result<VecShardClient<AuthChannel>> {
    Ok(VecShardClient::new(connect(addr, core)?))
}

/// The internal API of the router at `addr`.
pub fn internal(addr: &str, core: &Core) -> Result<RouterInternalClient<AuthChannel>> {
    Ok(RouterInternalClient::new(connect(addr, core)?))
}

/// A request marked as forwarded, with a key that has every right if the cluster has keys.
pub fn forwarded<T>(msg: T, core: &Core) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert(FORWARDED_HEADER, MetadataValue::from_static("1"));
    if let Some(v) = core
        .security
        .keys
        .forwarding_key()
        .and_then(|k| MetadataValue::try_from(format!("Bearer {k}")).ok())
    {
        r.metadata_mut().insert("authorization", v);
    }
    r.set_timeout(Duration::from_secs(15));
    r
}
