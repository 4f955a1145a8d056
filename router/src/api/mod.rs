//! The router's network interfaces: the public gRPC service, the REST/JSON API, the
//! peer-only internal gRPC service, and clients used to forward to the leader.

pub mod client;
pub mod deadline;
pub mod grpc;
mod grpc_backups;
pub mod internal;
pub mod keys;
pub mod limit;
pub mod rest;
mod rest_backups;

use std::time::{Duration, Instant};

/// Marks a request one router forwarded to another (it is not forwarded again).
pub const FORWARDED_HEADER: &str = "x-vecshard-forwarded";

/// A request's deadline: its own timeout (or the default), capped by a gRPC deadline.
pub fn deadline(default_ms: u64, timeout_ms: Option<u32>, grpc_timeout: Option<&str>) -> Instant {
    let mut d = Duration::from_millis(timeout_ms.map(u64::from).unwrap_or(default_ms));
    if let Some(g) = grpc_timeout.and_then(vecshard_model::deadline::parse_grpc_timeout) {
        d = d.min(g);
    }
    Instant::now() + d
}
