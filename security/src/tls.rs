//! The TLS files of a process (its certificate chain, its private key, the cluster CA)
//! and the settings made from them: tonic server TLS (optionally requiring a client
//! certificate signed by the CA), tonic client TLS (verifying the server against the CA
//! and presenting this process's certificate), and a rustls server for REST.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use crate::SecurityError;
use crate::secret::{AuthChannel, Credentials};

/// A process's certificate, key and cluster CA, read and checked at start.
#[derive(Clone)]
pub struct TlsFiles {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    ca_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsFiles(..)")
    }
}

fn read(path: &str, key: &str) -> Result<Vec<u8>, SecurityError> {
    std::fs::read(Path::new(path)).map_err(|e| SecurityError::new(format!("{key} {path}: {e}")))
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, SecurityError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SecurityError::new(format!("{what}: not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(SecurityError::new(format!("{what}: holds no certificate")));
    }
    Ok(certs)
}

impl TlsFiles {
    /// Read the files named by settings `{prefix}tls_cert`, `{prefix}tls_key` and
    /// `{prefix}tls_ca`. `None` when all three are empty (TLS off); an error when only some
    /// are set or a file is unreadable or not PEM, naming the setting and the file.
    pub fn load(
        prefix: &str,
        cert: &str,
        key: &str,
        ca: &str,
    ) -> Result<Option<TlsFiles>, SecurityError> {
        let names = [("tls_cert", cert), ("tls_key", key), ("tls_ca", ca)];
        if names.iter().all(|(_, v)| v.is_empty()) {
            return Ok(None);
        }
        if let Some((k, _)) = names.iter().find(|(_, v)| v.is_empty()) {
            return Err(SecurityError::new(format!(
                "{prefix}{k} is empty: TLS needs {prefix}tls_cert, {prefix}tls_key and {prefix}tls_ca"
            )));
        }
        let files = TlsFiles {
            cert_pem: read(cert, &format!("{prefix}tls_cert"))?,
            key_pem: read(key, &format!("{prefix}tls_key"))?,
            ca_pem: read(ca, &format!("{prefix}tls_ca"))?,
        };
        certs(&files.cert_pem, &format!("{prefix}tls_cert {cert}"))?;
        certs(&files.ca_pem, &format!("{prefix}tls_ca {ca}"))?;
        PrivateKeyDer::from_pem_slice(&files.key_pem).map_err(|e| {
            SecurityError::new(format!("{prefix}tls_key {key}: not a PEM private key: {e}"))
        })?;
        // Building the rustls server checks that the key belongs to the certificate.
        files
            .rustls_server()
            .map_err(|e| SecurityError::new(format!("{prefix}tls_cert/tls_key: {e}")))?;
        Ok(Some(files))
    }

    /// The tonic server TLS settings. `require_client_cert`: the handshake fails unless
    /// the client presents a certificate signed by the cluster CA (internal listeners);
    /// otherwise no client certificate is asked for (client-facing listeners).
    pub fn server(&self, require_client_cert: bool) -> ServerTlsConfig {
        let tls =
            ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_pem, &self.key_pem));
        if require_client_cert {
            tls.client_ca_root(Certificate::from_pem(&self.ca_pem))
        } else {
            tls
        }
    }

    /// The tonic client TLS settings: verify the server against the CA and present this
    /// process's certificate (for servers that require one).
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }

    /// A rustls server configuration for HTTP/1.1 (REST).
    pub fn rustls_server(&self) -> Result<Arc<rustls::ServerConfig>, SecurityError> {
        let chain = certs(&self.cert_pem, "certificate")?;
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|e| SecurityError::new(format!("private key: {e}")))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SecurityError::new(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| SecurityError::new(e.to_string()))?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }
}

/// Client TLS that only verifies the server against the CA in `ca_pem` (the CLI, clients
/// of the public API).
pub fn client_trusting(ca_pem: &[u8]) -> ClientTlsConfig {
    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem))
}

/// How a process dials its cluster peers: TLS (with its own certificate) when configured,
/// and the credentials every call carries.
#[derive(Clone, Debug, Default)]
pub struct Outbound {
    tls: Option<ClientTlsConfig>,
    credentials: Credentials,
}

impl Outbound {
    /// Dial with `tls` (None: plaintext) and `credentials`.
    pub fn new(tls: Option<&TlsFiles>, credentials: Credentials) -> Self {
        Outbound {
            tls: tls.map(TlsFiles::client),
            credentials,
        }
    }

    /// Whether peers are dialled over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// An endpoint for `addr` (`host:port`): `https` with the TLS settings, or `http`.
    /// The TLS server name is the host, so certificates must name it (DNS or IP SAN).
    pub fn endpoint(&self, addr: &str) -> Result<Endpoint, tonic::transport::Error> {
        match &self.tls {
            Some(tls) => Endpoint::from_shared(format!("https://{addr}"))?.tls_config(tls.clone()),
            None => Endpoint::from_shared(format!("http://{addr}")),
        }
    }

    /// A lazily connecting channel to `addr` whose calls carry the credentials, with the
    /// usual peer settings (connect timeout, no Nagle, HTTP/2 keep-alive).
    pub fn channel(
        &self,
        addr: &str,
        connect_timeout: Duration,
    ) -> Result<AuthChannel, tonic::transport::Error> {
        let endpoint = self
            .endpoint(addr)?
            .connect_timeout(connect_timeout)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        Ok(self.connect_lazy(&endpoint))
    }

    /// A lazily connecting channel to `endpoint` whose calls carry the credentials and
    /// leave in one write each (`vecshard_proto::coalesce`; no Nagle).
    pub fn connect_lazy(&self, endpoint: &Endpoint) -> AuthChannel {
        AuthChannel::new(
            vecshard_proto::coalesce::connect_lazy(endpoint),
            self.credentials.clone(),
        )
    }
}
