//! A client of an in-process cluster's router.

use std::path::Path;

use tonic::transport::Endpoint;
use vecshard_proto::fast_unary::OneFrameChannel;
use vecshard_proto::v1::vec_shard_client::VecShardClient;

use crate::ClusterError;

/// A client of a router's public API.
pub type Client = VecShardClient<OneFrameChannel>;

/// A client of the router at `addr` (`host:port`): TLS verified against `ca` (a PEM file)
/// when given, plaintext otherwise. Accepts answers up to 256 MiB.
pub async fn connect(addr: &str, ca: Option<&Path>) -> Result<Client, ClusterError> {
    let fail = |message: String| ClusterError::Connect {
        addr: addr.to_string(),
        message,
    };
    let scheme = if ca.is_some() { "https" } else { "http" };
    let mut endpoint =
        Endpoint::from_shared(format!("{scheme}://{addr}")).map_err(|e| fail(e.to_string()))?;
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|e| fail(format!("{}: {e}", ca.display())))?;
        endpoint = endpoint
            .tls_config(vecshard_security::tls::client_trusting(&pem))
            .map_err(|e| fail(e.to_string()))?;
    }
    let channel = vecshard_proto::coalesce::connect(&endpoint)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(VecShardClient::new(channel)
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20))
}
