//! The router's error type: a small set of kinds callers branch on, each with a message
//! that says what was wrong. Conversion to gRPC and HTTP status lives in `error_status.rs`.

use std::fmt;

/// What went wrong, as far as a caller needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: wrong dimension, NaN, malformed filter, a limit exceeded.
    InvalidArgument,
    /// Unknown collection (or node, or router).
    NotFound,
    /// A collection with that name exists.
    AlreadyExists,
    /// The request is valid but the cluster's state does not allow it (for example moving
    /// a local-disk shard).
    FailedPrecondition,
    /// A shard, a node or the Raft leader cannot be reached; the message names what.
    Unavailable,
    /// The request's deadline expired.
    DeadlineExceeded,
    /// A shard is overloaded; retry later.
    ResourceExhausted,
    /// The request is larger than the router accepts.
    PayloadTooLarge,
    /// Missing or wrong API key.
    Unauthenticated,
    /// A valid API key whose role or collections do not cover the request.
    PermissionDenied,
    /// Stored data is corrupt (reported by a node).
    DataLoss,
    /// A bug.
    Internal,
}

/// A router error: a kind and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// The router's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// Bad input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    /// Something named does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    /// Something cannot be reached.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unavailable, message)
    }

    /// A bug.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context: ` in front of the message.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<vecshard_model::ValidationError> for Error {
    /// A broken rule of the data model is an invalid argument naming the field.
    fn from(e: vecshard_model::ValidationError) -> Self {
        Error::invalid(e.to_string())
    }
}
