//! Connecting the command line to a router.

use std::time::Duration;

use anyhow::{Context, Result};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use vecshard_proto::v1::vec_shard_client::VecShardClient;

/// Adds `authorization: Bearer $VECSHARD_API_KEY` when the variable is set.
#[derive(Clone)]
pub struct ApiKey(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for ApiKey {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            r.metadata_mut().insert("authorization", v.clone());
        }
        Ok(r)
    }
}

pub type Client = VecShardClient<InterceptedService<Channel, ApiKey>>;

/// A client of the router at `addr` (`host:port` or a URL).
pub async fn connect(addr: &str) -> Result<Client> {
    let url = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let channel = Endpoint::from_shared(url.clone())
        .with_context(|| format!("bad router address {addr:?}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to the router at {addr}"))?;
    let key = std::env::var("VECSHARD_API_KEY")
        .ok()
        .map(|k| MetadataValue::try_from(format!("Bearer {k}")))
        .transpose()
        .context("VECSHARD_API_KEY is not a valid header value")?;
    Ok(VecShardClient::with_interceptor(channel, ApiKey(key))
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20))
}

/// A gRPC error as an error that reads well on a terminal.
pub fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", s.code(), s.message())
}
