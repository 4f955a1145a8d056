//! Retries with exponential backoff and full jitter, and which object-store errors are
//! worth retrying.
//!
//! This is the only retry layer: object_store's own retries are turned off for the stores
//! built by `open_storage`, because a conditional create that the store retried internally
//! (a 5xx after the object was written, then `412` on the retry) would come back as
//! "already exists" and could not be told apart from a lost race. Here every failed
//! attempt is visible, so a create knows when it must check whether an object is its own.

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::storage::RetrySettings;

/// Backoff state of one call.
pub(crate) struct Backoff {
    settings: RetrySettings,
    attempt: u32,
    rng: SmallRng,
}

impl Backoff {
    pub(crate) fn new(settings: &RetrySettings) -> Self {
        Backoff {
            settings: settings.clone(),
            attempt: 1,
            rng: SmallRng::seed_from_u64(getrandom::u64().unwrap_or(0x5eed)),
        }
    }

    /// Wait before the next attempt; `false` when the attempts are used up.
    pub(crate) async fn wait(&mut self) -> bool {
        if self.attempt >= self.settings.max_attempts.max(1) {
            return false;
        }
        let ceiling = self
            .settings
            .initial_backoff_ms
            .saturating_mul(1u64 << (self.attempt - 1).min(20))
            .min(self.settings.max_backoff_ms);
        self.attempt += 1;
        let ms = self.rng.random_range(0..=ceiling);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        true
    }

    /// Attempts made so far.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// Call `op` until it succeeds, fails with an error `transient` rejects, or the attempts
/// run out (the last error is returned).
pub(crate) async fn retry<T, E, F, Fut>(
    settings: &RetrySettings,
    transient: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::new(settings);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if transient(&e) && backoff.wait().await => {
                tracing::debug!(attempt = backoff.attempts(), "retrying object-store call");
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether an object-store error may go away on retry: timeouts, connection errors,
/// 5xx/429/408 responses, truncated bodies. Not: not-found, already-exists, precondition,
/// permission, invalid path, unsupported operation, other 4xx.
pub(crate) fn is_transient(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    match e {
        E::Generic { source, .. } => generic_is_transient(source.as_ref()),
        E::JoinError { .. } => true,
        E::NotFound { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::AlreadyExists { .. }
        | E::Precondition { .. }
        | E::NotModified { .. }
        | E::NotImplemented { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::UnknownConfigurationKey { .. } => false,
        // `object_store::Error` is non-exhaustive: a variant added later is not retried
        // until someone decides it should be.
        _ => false,
    }
}

/// Walk the cause chain of a `Generic` error: a transport error is transient; an I/O error
/// by its kind; an HTTP status found in the message by its class. Anything unrecognised
/// (a body that failed to parse, a dropped stream) is retried.
fn generic_is_transient(source: &(dyn StdError + 'static)) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(source);
    while let Some(err) = cur {
        if err.is::<object_store::client::HttpError>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io_is_transient(io.kind());
        }
        if let Some(status) = http_status_in(&err.to_string()) {
            return status >= 500 || status == 408 || status == 429;
        }
        cur = err.source();
    }
    true
}

fn io_is_transient(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::TimedOut
            | K::Interrupted
            | K::WouldBlock
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::ConnectionRefused
            | K::NotConnected
            | K::BrokenPipe
            | K::UnexpectedEof
    )
}

/// The status of object_store's HTTP errors, which it only exposes in the message
/// ("… Server returned non-2xx status code: 503 Service Unavailable: …"); the error type
/// that carries it is crate-private.
fn http_status_in(msg: &str) -> Option<u16> {
    let rest = &msg[msg.find("status code: ")? + "status code: ".len()..];
    let digits = rest.get(..3)?;
    digits.parse().ok().filter(|s| (100..600).contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(msg: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: msg.to_string().into(),
        }
    }

    #[test]
    fn classifies_errors() {
        let server = "Error performing PUT http://h/b/k in 2ms - Server returned non-2xx \
                      status code: 503 Service Unavailable: SlowDown";
        assert!(is_transient(&generic(server)));
        assert!(is_transient(&generic("status code: 429 Too Many Requests")));
        assert!(!is_transient(&generic("status code: 400 Bad Request: x")));
        assert!(is_transient(&generic("error decoding response body")));
        let io = object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
        };
        assert!(!is_transient(&io));
        let nf = object_store::Error::NotFound {
            path: "p".into(),
            source: "x".into(),
        };
        assert!(!is_transient(&nf));
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let settings = RetrySettings {
            max_attempts: 3,
            initial_backoff_ms: 1,
            max_backoff_ms: 1,
            ..RetrySettings::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut calls = 0;
        let out: Result<(), &str> = rt.block_on(retry(
            &settings,
            |_| true,
            || {
                calls += 1;
                async { Err("boom") }
            },
        ));
        assert_eq!(out, Err("boom"));
        assert_eq!(calls, 3);
    }
}
