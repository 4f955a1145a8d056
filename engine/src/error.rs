//! The engine's public error: a small set of kinds callers branch on, a message that names
//! the file, key or argument involved, and an optional source.

use std::fmt;

/// What went wrong, at the granularity a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed: wrong dimension, NaN, oversized key, malformed filter …
    InvalidArgument,
    /// The shard, key or object does not exist.
    NotFound,
    /// The shard already exists where a new one was to be created.
    AlreadyExists,
    /// The shard was opened read-only; writes are refused.
    ReadOnly,
    /// Another writer took over this shard (higher writer epoch); this handle is closed for
    /// writes for good. Never retry through the same handle.
    Fenced,
    /// Another process holds the shard's exclusive lock.
    Locked,
    /// The handle was closed (or failed and closed itself).
    Closed,
    /// A file or object failed its magic, version or checksum check; the message names it.
    Corrupt,
    /// Backpressure: the shard cannot take more work right now; retry later.
    Busy,
    /// An I/O or network error from the storage backend.
    Io,
}

impl ErrorKind {
    /// A stable lower-case name, used in CLI output and API error codes.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::ReadOnly => "read_only",
            ErrorKind::Fenced => "fenced",
            ErrorKind::Locked => "locked",
            ErrorKind::Closed => "closed",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Busy => "busy",
            ErrorKind::Io => "io",
        }
    }
}

/// The engine's error type.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    msg: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error {
            kind,
            msg: msg.into(),
            source: None,
        }
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The kind, for branching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the source chain.
    pub fn message(&self) -> &str {
        &self.msg
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, msg)
    }

    pub(crate) fn corrupt(path: &str, what: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Corrupt, format!("corrupt file {path}: {what}"))
    }

    pub(crate) fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            _ => ErrorKind::Io,
        };
        Self::new(kind, format!("{context}: {err}")).with_source(err)
    }

    pub(crate) fn closed() -> Self {
        Self::new(ErrorKind::Closed, "the shard is closed")
    }

    pub(crate) fn read_only() -> Self {
        Self::new(
            ErrorKind::ReadOnly,
            "the shard is open read-only; writes are refused",
        )
    }
}

impl From<vecshard_model::ValidationError> for Error {
    /// Every broken rule of the data model is an invalid argument; the message keeps the
    /// field and what is wrong.
    fn from(e: vecshard_model::ValidationError) -> Self {
        Self::new(ErrorKind::InvalidArgument, e.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.msg)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl Clone for Error {
    /// Clones kind and message; the source chain is flattened into the message.
    fn clone(&self) -> Self {
        let msg = match &self.source {
            Some(s) if !self.msg.contains(&s.to_string()) => format!("{} ({s})", self.msg),
            _ => self.msg.clone(),
        };
        Error {
            kind: self.kind,
            msg,
            source: None,
        }
    }
}
