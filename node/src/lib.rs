//! vecshard-node: the data node. It hosts many shards, one actix actor per open shard
//! (writes, lifecycle) with a bounded mailbox, serves the routers over gRPC
//! (`vecshard.internal.v1.Node`), runs reads on a bounded pool against the engine's
//! snapshots, registers with the routers and sends them heartbeats, and exposes
//! `/healthz`, `/readyz` and `/metrics` over HTTP.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = vecshard_node::load_config(Some(std::path::Path::new("node.toml")))?;
//! let node = vecshard_node::start(config).await?;
//! println!("gRPC on {}, HTTP on {}", node.grpc_addr(), node.http_addr());
//! node.shutdown().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod actor_system;
pub mod budget;
pub mod config;
pub mod conversions;
pub mod error;
pub mod error_status;
mod heartbeat;
mod http;
mod lifecycle;
mod metrics;
pub mod placement;
mod reads;
mod registry;
mod replica_service;
pub mod replication;
mod server;
mod service;
mod shard_actor;
mod signal;

pub use config::{ConfigError, NodeConfig, load_config, load_config_with_env};
pub use error::NodeError;
pub use server::{NodeHandle, StartError, WriteHold, start, start_with_clock};
pub use service::NodeService;
pub use signal::{run_until_signal, stop_requested};
