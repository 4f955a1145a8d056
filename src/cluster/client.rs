//! Connecting the command line to a router.

use std::path::Path;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
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

/// How the command line verifies routers: from `--ca`/`--tls` (or `dev --tls`).
static TLS: RwLock<Option<ClientTlsConfig>> = RwLock::new(None);
static WANTED: AtomicBool = AtomicBool::new(false);

/// Talk TLS to routers: verified against the CA in `ca` (PEM), or with `tls` alone
/// against the system's roots. Neither: plaintext (unless an address is `https://`).
pub fn set_tls(ca: Option<&Path>, tls: bool) -> Result<()> {
    let config = match (ca, tls) {
        (Some(ca), _) => {
            let pem = std::fs::read(ca).with_context(|| format!("--ca {}", ca.display()))?;
            Some(vecshard_security::tls::client_trusting(&pem))
        }
        (None, true) => Some(ClientTlsConfig::new().with_native_roots()),
        (None, false) => None,
    };
    WANTED.store(config.is_some(), Ordering::Relaxed);
    *TLS.write().unwrap_or_else(|p| p.into_inner()) = config;
    Ok(())
}

/// From now on verify routers against the CA certificate `ca_pem` (`dev --tls`).
pub fn trust_ca(ca_pem: &[u8]) {
    *TLS.write().unwrap_or_else(|p| p.into_inner()) =
        Some(vecshard_security::tls::client_trusting(ca_pem));
}

/// Whether `--tls` or `--ca` was given.
pub fn tls_wanted() -> bool {
    WANTED.load(Ordering::Relaxed)
}

/// A client of the router at `addr` (`host:port` or a URL).
pub async fn connect(addr: &str) -> Result<Client> {
    let tls = TLS.read().unwrap_or_else(|p| p.into_inner()).clone();
    let url = match (addr.contains("://"), &tls) {
        (true, _) => addr.to_string(),
        (false, Some(_)) => format!("https://{addr}"),
        (false, None) => format!("http://{addr}"),
    };
    let mut endpoint = Endpoint::from_shared(url.clone())
        .with_context(|| format!("bad router address {addr:?}"))?;
    if url.starts_with("https://") {
        let tls = tls.unwrap_or_else(|| ClientTlsConfig::new().with_native_roots());
        endpoint = endpoint
            .tls_config(tls)
            .context("TLS settings for the router")?;
    }
    let channel = endpoint
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
