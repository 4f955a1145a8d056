//! The router's trust settings, read once at start: its TLS files, how it authenticates
//! internal callers, how it dials nodes and peers, and the API keys of clients.

use std::sync::Arc;

use vecshard_security::{ClusterAuth, Credentials, Outbound, Secret, TlsFiles};

use crate::api::keys::Keys;
use crate::config::RouterConfig;
use crate::error::{Error, Result};

/// Loaded trust settings.
#[derive(Debug)]
pub struct Security {
    /// The TLS files (None: plaintext).
    pub tls: Option<TlsFiles>,
    /// Who may call the internal service.
    pub auth: Arc<ClusterAuth>,
    /// How this router dials nodes and peer routers.
    pub outbound: Outbound,
    /// Client API keys.
    pub keys: Keys,
}

impl Security {
    /// Read the files and keys `cfg` names; errors name the setting.
    pub fn load(cfg: &RouterConfig) -> Result<Security> {
        let invalid = |e: vecshard_security::SecurityError| Error::invalid(e.0);
        let tls =
            TlsFiles::load("router.", &cfg.tls_cert, &cfg.tls_key, &cfg.tls_ca).map_err(invalid)?;
        let secret = Secret::load(
            &cfg.cluster_secret,
            "router.cluster_secret",
            &cfg.cluster_secret_file,
            "router.cluster_secret_file",
        )
        .map_err(invalid)?;
        Ok(Security {
            auth: Arc::new(ClusterAuth::new(tls.is_some(), secret.clone())),
            outbound: Outbound::new(tls.as_ref(), Credentials::new(secret)),
            keys: Keys::load(cfg)?,
            tls,
        })
    }

    /// `https` with TLS, else `http` (REST calls to peer routers).
    pub fn http_scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}
