//! Reaching a router: TLS settings and the API key.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{ClientTlsConfig, Endpoint};
use vecshard_proto::fast_unary::OneFrameChannel;
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

/// A client of a router's gRPC API (answers up to 256 MiB).
pub type Client = VecShardClient<InterceptedService<OneFrameChannel, ApiKey>>;

/// How to verify routers: against a CA certificate, the system's roots, or not at all
/// (plaintext, unless an address is `https://`).
#[derive(Clone, Default)]
pub struct Connector {
    tls: Option<ClientTlsConfig>,
}

impl Connector {
    /// From the command line's `--ca FILE` (PEM; implies TLS) and `--tls` (the system's
    /// roots unless `ca` is given). Neither: plaintext.
    pub fn new(ca: Option<&Path>, tls: bool) -> Result<Self> {
        let tls = match (ca, tls) {
            (Some(ca), _) => {
                let pem = std::fs::read(ca).with_context(|| format!("--ca {}", ca.display()))?;
                Some(vecshard_security::tls::client_trusting(&pem))
            }
            (None, true) => Some(ClientTlsConfig::new().with_native_roots()),
            (None, false) => None,
        };
        Ok(Connector { tls })
    }

    /// Whether routers are reached over TLS (`--tls` or `--ca`).
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A client of the router at `addr` (`host:port` or a URL), with the API key of
    /// `VECSHARD_API_KEY` when set.
    pub async fn connect(&self, addr: &str) -> Result<Client> {
        let url = match (addr.contains("://"), &self.tls) {
            (true, _) => addr.to_string(),
            (false, Some(_)) => format!("https://{addr}"),
            (false, None) => format!("http://{addr}"),
        };
        let mut endpoint = Endpoint::from_shared(url.clone())
            .with_context(|| format!("bad router address {addr:?}"))?;
        if url.starts_with("https://") {
            let tls = self
                .tls
                .clone()
                .unwrap_or_else(|| ClientTlsConfig::new().with_native_roots());
            endpoint = endpoint
                .tls_config(tls)
                .context("TLS settings for the router")?;
        }
        let endpoint = endpoint.connect_timeout(Duration::from_secs(5));
        let channel = vecshard_proto::coalesce::connect(&endpoint)
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
}
