//! The one error type of the crate: a file or a setting that cannot be used.

/// Why TLS or cluster authentication cannot be set up; the message names the file or key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecurityError(pub String);

impl SecurityError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        SecurityError(msg.into())
    }
}
