//! vecshard-router: the client API of a vecshard cluster (gRPC `vecshard.v1.VecShard` and
//! REST/JSON), stable primary-key routing onto shards, scatter-gather search, and the
//! Raft-replicated shard map with placement and failover. Talks to data nodes only through
//! `vecshard-proto`.
//!
//! Start with [`load_config`] and [`start`]; see `docs/design/002-router-shard-map.md`.
#![warn(missing_docs)]

pub mod api;
pub mod backup;
pub mod config;
mod control;
mod conversions;
pub mod core;
pub mod data;
mod error;
mod error_status;
mod heartbeats;
mod meta;
mod metrics;
pub mod partition;
pub mod raft;
mod rest_serve;
pub mod security;
mod server;
mod serving;
pub mod shardmap;
pub mod storage;

pub use config::{RouterConfig, load_config};
pub use error::{Error, ErrorKind, Result};
pub use server::{RouterHandle, start, start_with_clock};
