//! The shared cluster secret: where TLS is off, every internal call carries it in a
//! header and the receiver compares it in constant time. It proves membership, not which
//! member (any holder may speak for any node): mutual TLS is the stronger mode.

use std::fmt;
use std::path::Path;

use subtle::ConstantTimeEq;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use vecshard_proto::fast_unary::OneFrameChannel;

use crate::SecurityError;

/// The header that carries the secret on internal calls.
pub const SECRET_HEADER: &str = "x-vecshard-cluster-secret";

/// Shortest accepted secret: guessing it must be hopeless.
pub const MIN_SECRET_LEN: usize = 16;

/// The cluster secret (never printed).
#[derive(Clone)]
pub struct Secret(MetadataValue<Ascii>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret from its text; `key` names the setting for errors.
    pub fn new(text: &str, key: &str) -> Result<Secret, SecurityError> {
        let text = text.trim();
        if text.len() < MIN_SECRET_LEN {
            return Err(SecurityError::new(format!(
                "{key}: the cluster secret must have at least {MIN_SECRET_LEN} characters"
            )));
        }
        MetadataValue::try_from(text).map(Secret).map_err(|_| {
            SecurityError::new(format!("{key}: the cluster secret must be printable ASCII"))
        })
    }

    /// The secret given inline (`value`, setting `value_key`) or in a file (`file`,
    /// setting `file_key`); `None` when both are empty.
    pub fn load(
        value: &str,
        value_key: &str,
        file: &str,
        file_key: &str,
    ) -> Result<Option<Secret>, SecurityError> {
        match (value.is_empty(), file.is_empty()) {
            (true, true) => Ok(None),
            (false, false) => Err(SecurityError::new(format!(
                "{value_key} and {file_key} are both set; use one"
            ))),
            (false, true) => Secret::new(value, value_key).map(Some),
            (true, false) => {
                let text = std::fs::read_to_string(Path::new(file))
                    .map_err(|e| SecurityError::new(format!("{file_key} {file}: {e}")))?;
                Secret::new(&text, &format!("{file_key} {file}")).map(Some)
            }
        }
    }

    /// Whether `given` is this secret, in a time that does not depend on where they differ.
    pub fn matches(&self, given: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(given).into()
    }
}

/// What an internal call carries: the cluster secret, when there is one.
#[derive(Clone, Debug, Default)]
pub struct Credentials(Option<Secret>);

impl Credentials {
    /// Credentials carrying `secret` (none: nothing is added).
    pub fn new(secret: Option<Secret>) -> Self {
        Credentials(secret)
    }
}

impl tonic::service::Interceptor for Credentials {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(s) = &self.0 {
            r.metadata_mut().insert(SECRET_HEADER, s.0.clone());
        }
        Ok(r)
    }
}

/// A channel to a cluster peer whose calls carry the credentials.
pub type AuthChannel = InterceptedService<OneFrameChannel, Credentials>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_doubly_given_secrets_are_refused() {
        assert!(Secret::new("short", "k").is_err());
        assert!(Secret::load("a-long-enough-secret", "v", "/x", "f").is_err());
        assert!(Secret::load("", "v", "", "f").unwrap().is_none());
        let s = Secret::load("a-long-enough-secret", "v", "", "f")
            .unwrap()
            .unwrap();
        assert!(s.matches(b"a-long-enough-secret"));
        assert!(!s.matches(b"a-long-enough-secreT"));
        assert!(!s.matches(b""));
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }

    #[test]
    fn a_secret_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret");
        std::fs::write(&f, "0123456789abcdef0123\n").unwrap();
        let s = Secret::load(
            "",
            "cluster.secret",
            f.to_str().unwrap(),
            "cluster.secret_file",
        )
        .unwrap()
        .unwrap();
        assert!(s.matches(b"0123456789abcdef0123"));
        let e = Secret::load(
            "",
            "cluster.secret",
            "/nonexistent/secret",
            "cluster.secret_file",
        )
        .unwrap_err();
        assert!(
            e.0.contains("cluster.secret_file /nonexistent/secret"),
            "{e}"
        );
    }
}
