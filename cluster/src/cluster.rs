//! Start, restart and stop a router and its nodes in this process.

use std::path::PathBuf;

use vecshard_node::{NodeConfig, NodeHandle, StartError};
use vecshard_router::{RouterConfig, RouterHandle};

use crate::{Client, DevCerts, connect};

/// Why a cluster in this process could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The router did not start (its settings, or a listener that cannot bind).
    #[error("start the router: {0}")]
    Router(#[source] vecshard_router::Error),
    /// A node did not start.
    #[error("start node {id}: {source}")]
    Node {
        /// The node's `node.id`.
        id: String,
        /// Why.
        #[source]
        source: StartError,
    },
    /// The router does not answer a client.
    #[error("connect to the router at {addr}: {message}")]
    Connect {
        /// The router's address.
        addr: String,
        /// Why.
        message: String,
    },
    /// The router refused a call.
    #[error("the router answered {}: {}", .0.code(), .0.message())]
    Api(#[source] tonic::Status),
    /// Fewer nodes than wanted are alive.
    #[error("only {alive} of {wanted} nodes came up")]
    NodesMissing {
        /// Nodes alive.
        alive: usize,
        /// Nodes wanted.
        wanted: usize,
    },
    /// There is no node with this index.
    #[error("no node {index} (the cluster has {count})")]
    NoSuchNode {
        /// The index asked for.
        index: usize,
        /// How many nodes there are.
        count: usize,
    },
}

/// The settings of a node of an in-process cluster: `id`, data in `data_dir`, gRPC and
/// HTTP on loopback ports the system picks; every other setting at its default. [`Cluster::start`]
/// adds the router to register with and the TLS files.
pub fn node_config(id: &str, data_dir: PathBuf) -> NodeConfig {
    let mut nc = NodeConfig::default();
    nc.node.id = id.into();
    nc.node.grpc_addr = "127.0.0.1:0".into();
    nc.node.http_addr = "127.0.0.1:0".into();
    nc.node.data_dir = data_dir;
    nc
}

/// What to start.
#[derive(Debug)]
pub struct Spec {
    /// The router's settings.
    pub router: RouterConfig,
    /// The nodes' settings (see [`node_config`]); their `cluster.routers` is set to the
    /// router's internal address.
    pub nodes: Vec<NodeConfig>,
    /// Let the router call these nodes directly instead of over loopback gRPC
    /// (`RouterHandle::attach_node_service`): same answers, no socket round trip and no
    /// message encoding.
    pub local_calls: bool,
    /// Run every hop with TLS, with these certificates (router `1`, nodes by id).
    pub certs: Option<DevCerts>,
}

/// A router and its nodes, running in this process.
#[derive(Debug)]
pub struct Cluster {
    router: RouterHandle,
    nodes: Vec<NodeHandle>,
    configs: Vec<NodeConfig>,
    local_calls: bool,
    certs: Option<DevCerts>,
}

impl Cluster {
    /// Start the router, then each node (registered with the router).
    pub async fn start(spec: Spec) -> Result<Cluster, ClusterError> {
        let Spec {
            mut router,
            nodes,
            local_calls,
            certs,
        } = spec;
        if let Some(c) = &certs {
            c.router(&mut router);
        }
        let router = vecshard_router::start(router)
            .await
            .map_err(ClusterError::Router)?;
        let mut cluster = Cluster {
            router,
            nodes: Vec::with_capacity(nodes.len()),
            configs: Vec::with_capacity(nodes.len()),
            local_calls,
            certs,
        };
        for mut nc in nodes {
            nc.cluster.routers = vec![cluster.router.internal_addr().to_string()];
            if let Some(c) = &cluster.certs {
                c.node(&mut nc);
            }
            let node = cluster.start_node(nc.clone()).await?;
            cluster.nodes.push(node);
            cluster.configs.push(nc);
        }
        Ok(cluster)
    }

    async fn start_node(&self, nc: NodeConfig) -> Result<NodeHandle, ClusterError> {
        let id = nc.node.id.clone();
        let node = vecshard_node::start(nc)
            .await
            .map_err(|source| ClusterError::Node { id, source })?;
        if self.local_calls {
            // VECSHARD_LOCAL_CALLS=encoded: through the node's gRPC service as a tower
            // service (messages encoded and decoded, no socket), the path before direct
            // calls; for measuring the difference (docs/design/016-served-path.md).
            if std::env::var("VECSHARD_LOCAL_CALLS").is_ok_and(|v| v == "encoded") {
                self.router
                    .attach_local_node(node.advertise_addr(), node.service());
            } else {
                self.router.attach_node_service(
                    node.advertise_addr(),
                    node.direct_service(),
                    node.max_message_bytes(),
                );
            }
        }
        Ok(node)
    }

    /// The router.
    pub fn router(&self) -> &RouterHandle {
        &self.router
    }

    /// The nodes, in the order of [`Spec::nodes`].
    pub fn nodes(&self) -> &[NodeHandle] {
        &self.nodes
    }

    /// A client of the router's public API (verifying it against the cluster's CA when
    /// it runs with TLS).
    pub async fn client(&self) -> Result<Client, ClusterError> {
        let addr = self.router.grpc_addr().to_string();
        connect(&addr, self.certs.as_ref().map(|c| c.ca())).await
    }

    /// The certificates, when the cluster runs with TLS.
    pub fn certs(&self) -> Option<&DevCerts> {
        self.certs.as_ref()
    }

    /// Stop node `index` (closing flushes its shards) and start it again on the same gRPC
    /// address and data directory. When it does not start again it leaves the cluster
    /// (later nodes move down one index).
    pub async fn restart_node(&mut self, index: usize) -> Result<(), ClusterError> {
        let count = self.nodes.len();
        if index >= count {
            return Err(ClusterError::NoSuchNode { index, count });
        }
        let mut nc = self.configs[index].clone();
        nc.node.grpc_addr = self.nodes[index].grpc_addr().to_string();
        self.nodes.remove(index).shutdown().await;
        match self.start_node(nc.clone()).await {
            Ok(node) => {
                self.nodes.insert(index, node);
                self.configs[index] = nc;
                Ok(())
            }
            Err(e) => {
                self.configs.remove(index);
                Err(e)
            }
        }
    }

    /// Stop the router, then every node.
    pub async fn shutdown(self) {
        self.router.shutdown().await;
        for n in self.nodes {
            n.shutdown().await;
        }
    }
}
