//! The router's network interfaces: the public gRPC service, the REST/JSON API, the
//! peer-only internal gRPC service, and clients used to forward to the leader.

pub mod client;
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
    if let Some(g) = grpc_timeout.and_then(parse_grpc_timeout) {
        d = d.min(g);
    }
    Instant::now() + d
}

/// Parse a `grpc-timeout` header value (`100m`, `5S`, …).
fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (num, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }
}
