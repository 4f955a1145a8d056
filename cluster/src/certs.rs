//! TLS for a cluster in one process: a fresh CA and certificates for router 1 and the
//! given nodes, and the router's and nodes' settings pointing at them.

use std::path::Path;

use vecshard_security::generate::{Plan, Written, generate};
use vecshard_security::{Identity, SecurityError};

/// Certificates for router `1` and a set of nodes, written under one directory.
#[derive(Debug)]
pub struct DevCerts(Written);

impl DevCerts {
    /// Write a CA and certificates for router `1` and `nodes` (by `node.id`) into `dir`
    /// (afresh).
    pub fn generate(dir: &Path, nodes: &[String]) -> Result<DevCerts, SecurityError> {
        let plan = Plan {
            hosts: vec![],
            routers: vec!["1".into()],
            nodes: nodes.to_vec(),
        };
        Ok(DevCerts(generate(dir, &plan)?))
    }

    /// The CA certificate (PEM) clients verify the router with.
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

    /// Point router 1's TLS settings at its files.
    pub fn router(&self, rc: &mut vecshard_router::RouterConfig) {
        let (cert, key) = self.files(&Identity::Router("1".into()));
        (rc.tls_cert, rc.tls_key) = (cert, key);
        rc.tls_ca = self.ca().display().to_string();
    }

    /// Point a node's TLS settings (found by its `node.id`) at its files.
    pub fn node(&self, nc: &mut vecshard_node::NodeConfig) {
        let (cert, key) = self.files(&Identity::Node(nc.node.id.clone()));
        (nc.cluster.tls_cert, nc.cluster.tls_key) = (cert, key);
        nc.cluster.tls_ca = self.ca().display().to_string();
    }
}
