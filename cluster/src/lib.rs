//! A whole cluster in one process: one router and N data nodes on local disk, wired the
//! way `vecshard dev`, `vecshard bench-cluster`, `vecshard bench --via node` and the
//! in-process tests want it. This is the one place that fills a node's settings for a
//! cluster in this process (loopback addresses, data directories, the router to register
//! with, TLS files) and that lets the router call its nodes directly.
#![warn(missing_docs)]

mod certs;
mod client;
mod cluster;
pub mod demo;
pub mod dev;

pub use certs::DevCerts;
pub use client::{Client, connect};
pub use cluster::{Cluster, ClusterError, Spec, node_config};
