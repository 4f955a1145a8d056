//! Clients of the routers' public gRPC API, by service name. A router's address is looked
//! up from docker (it changes when a container is reconnected to the network) and its
//! channel is dropped after a transport failure, so the next call looks it up again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use vecshard_proto::v1 as pb;
use vecshard_proto::v1::vec_shard_client::VecShardClient;

use crate::Compose;

pub type Client = VecShardClient<Channel>;

/// The routers' own deadline for writes, reads and searches (compose-chaos.yml sets
/// `write_timeout_ms` and `search_timeout_ms`); by then a router answers, with an error if
/// need be.
pub const OP_DEADLINE: Duration = Duration::from_secs(8);
/// How long past its deadline a client waits for an answer before it calls the request hung.
pub const GRACE: Duration = Duration::from_secs(7);

pub struct Routers {
    compose: Arc<Compose>,
    channels: Mutex<HashMap<String, Channel>>,
}

/// Run blocking docker commands without stalling the runtime's other tasks.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

impl Routers {
    pub fn new(compose: Arc<Compose>) -> Routers {
        Routers {
            compose,
            channels: Mutex::default(),
        }
    }

    pub fn compose(&self) -> &Compose {
        &self.compose
    }

    /// A client of `router` (lazily connected; fails if the router has no address now).
    pub fn client(&self, router: &str) -> Result<Client> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ch) = channels.get(router) {
            return Ok(VecShardClient::new(ch.clone()).max_decoding_message_size(64 << 20));
        }
        let ip = blocking(|| self.compose.ip(router))?;
        // The cluster runs with TLS (deploy/certs, written by deploy/build-image.sh): verify
        // the router against the cluster CA under its service name, whatever its IP.
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/certs/ca.pem");
        let ca = std::fs::read(ca).with_context(|| format!("the cluster CA {ca}"))?;
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name(router);
        let ch = Endpoint::from_shared(format!("https://{ip}:7000"))
            .with_context(|| format!("address of {router}"))?
            .tls_config(tls)?
            .connect_timeout(Duration::from_secs(1))
            .connect_lazy();
        channels.insert(router.to_string(), ch.clone());
        Ok(VecShardClient::new(ch).max_decoding_message_size(64 << 20))
    }

    /// Drop the channel of `router` (its address may have changed).
    pub fn forget(&self, router: &str) {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(router);
    }

    /// One router's cluster status.
    pub async fn status(&self, router: &str) -> Result<pb::ClusterStatusResponse> {
        let mut c = self.client(router)?;
        let mut req = tonic::Request::new(pb::ClusterStatusRequest {});
        req.set_timeout(Duration::from_secs(3));
        let r = tokio::time::timeout(Duration::from_secs(5), c.cluster_status(req)).await;
        match r {
            Ok(Ok(s)) => Ok(s.into_inner()),
            Ok(Err(s)) => {
                self.forget(router);
                Err(anyhow::anyhow!("{router}: {s}"))
            }
            Err(_) => {
                self.forget(router);
                Err(anyhow::anyhow!("{router}: no status within 5 s"))
            }
        }
    }
}
