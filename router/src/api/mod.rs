//! The router's network interfaces: the public gRPC service, the REST/JSON API, the
//! peer-only internal gRPC service, and clients used to forward to the leader.

pub mod client;
pub mod grpc;
pub mod internal;
pub mod rest;

use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use crate::error::{Error, ErrorKind, Result};

/// Marks a request one router forwarded to another (it is not forwarded again).
pub const FORWARDED_HEADER: &str = "x-vecshard-forwarded";

/// Check an API key given as `authorization: Bearer KEY` or `x-api-key: KEY` (no keys
/// configured: everything passes).
pub fn check_key(
    keys: &[String],
    authorization: Option<&str>,
    x_api_key: Option<&str>,
) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let given = authorization
        .and_then(|a| a.strip_prefix("Bearer "))
        .or(x_api_key)
        .map(str::trim);
    match given {
        Some(k) if key_matches(keys, k) => Ok(()),
        Some(_) => Err(Error::new(
            ErrorKind::Unauthenticated,
            "the API key is not valid",
        )),
        None => Err(Error::new(
            ErrorKind::Unauthenticated,
            "this router needs an API key: send `authorization: Bearer <key>` or `x-api-key: <key>`",
        )),
    }
}

/// Whether `given` is one of `keys`, in a time that does not depend on where a guess first
/// differs from a key: every key is compared in full with a constant-time comparison (only
/// the lengths may show), and a match does not end the loop early.
fn key_matches(keys: &[String], given: &str) -> bool {
    let found = keys.iter().fold(subtle::Choice::from(0), |found, key| {
        found | key.as_bytes().ct_eq(given.as_bytes())
    });
    found.into()
}

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

    #[test]
    fn api_keys() {
        let keys = vec!["k1".to_string()];
        assert!(check_key(&[], None, None).is_ok());
        assert!(check_key(&keys, Some("Bearer k1"), None).is_ok());
        assert!(check_key(&keys, None, Some("k1")).is_ok());
        assert_eq!(
            check_key(&keys, Some("Bearer no"), None)
                .unwrap_err()
                .kind(),
            ErrorKind::Unauthenticated
        );
        assert_eq!(
            check_key(&keys, None, None).unwrap_err().kind(),
            ErrorKind::Unauthenticated
        );
        let keys = vec!["first-key".to_string(), "second-key".to_string()];
        assert!(check_key(&keys, None, Some("second-key")).is_ok());
        for wrong in ["second-kez", "second-ke", "second-key2", "", "first-keyy"] {
            assert!(check_key(&keys, None, Some(wrong)).is_err(), "{wrong:?}");
        }
    }

    /// The time to reject a guess must not depend on how long a prefix of the key it got
    /// right (a byte-by-byte `==` returns at the first difference, which lets a client
    /// find a key one byte at a time). Keys are large so the difference would be
    /// thousands of times, not a few percent; the minimum of many runs filters noise.
    #[test]
    fn key_comparison_time_does_not_depend_on_the_matching_prefix() {
        let key = "k".repeat(256 << 10);
        let keys = vec![key.clone()];
        let mut early = key.clone().into_bytes();
        early[0] = b'x';
        let mut late = key.into_bytes();
        let last = late.len() - 1;
        late[last] = b'x';
        let (early, late) = (
            String::from_utf8(early).unwrap(),
            String::from_utf8(late).unwrap(),
        );
        let fastest = |guess: &str| {
            (0..30)
                .map(|_| {
                    let t = Instant::now();
                    assert!(!key_matches(&keys, std::hint::black_box(guess)));
                    t.elapsed()
                })
                .min()
                .unwrap()
        };
        // Warm up, then alternate so both see the same machine.
        fastest(&late);
        let (mut e, mut l) = (Duration::MAX, Duration::MAX);
        for _ in 0..3 {
            e = e.min(fastest(&early));
            l = l.min(fastest(&late));
        }
        let ratio = l.as_secs_f64() / e.as_secs_f64();
        assert!(
            (0.25..4.0).contains(&ratio),
            "rejecting a guess with a 256 KiB matching prefix took {l:?}, one wrong at byte 0 {e:?}"
        );
    }
}
