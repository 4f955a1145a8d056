//! TLS for clusters the command line runs in one process (`dev --tls`, `bench-cluster
//! --tls`): a fresh CA and certificates for router 1 and the given nodes, the router's and
//! nodes' settings pointing at them, and the command line's client trusting the CA.

use std::path::Path;

use anyhow::{Context, Result};
use vecshard_security::Identity;
use vecshard_security::generate::{Plan, Written, generate};

pub struct DevCerts(Written);

impl DevCerts {
    /// Certificates in `dir` (written afresh) when `--tls` or `--ca` was given.
    pub fn if_wanted(dir: &Path, nodes: &[String]) -> Result<Option<DevCerts>> {
        if !super::client::tls_wanted() {
            return Ok(None);
        }
        let plan = Plan {
            hosts: vec![],
            routers: vec!["1".into()],
            nodes: nodes.to_vec(),
        };
        let written = generate(dir, &plan).context("generate TLS certificates")?;
        let ca = std::fs::read(&written.ca).with_context(|| written.ca.display().to_string())?;
        super::client::trust_ca(&ca);
        Ok(Some(DevCerts(written)))
    }

    pub fn ca(&self) -> &Path {
        &self.0.ca
    }

    fn files(&self, id: &Identity) -> (String, String) {
        self.0
            .members
            .iter()
            .find(|m| &m.identity == id)
            .map(|m| (m.cert.display().to_string(), m.key.display().to_string()))
            .unwrap_or_default()
    }

    /// Router 1's TLS settings.
    pub fn router(&self, rc: &mut vecshard_router::RouterConfig) {
        let (cert, key) = self.files(&Identity::Router("1".into()));
        (rc.tls_cert, rc.tls_key) = (cert, key);
        rc.tls_ca = self.ca().display().to_string();
    }

    /// A node's TLS settings (by its `node.id`).
    pub fn node(&self, nc: &mut vecshard_node::NodeConfig) {
        let (cert, key) = self.files(&Identity::Node(nc.node.id.clone()));
        (nc.cluster.tls_cert, nc.cluster.tls_key) = (cert, key);
        nc.cluster.tls_ca = self.ca().display().to_string();
    }
}
