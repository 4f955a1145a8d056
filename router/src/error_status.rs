//! The one place where router errors become gRPC and HTTP statuses (and where a gRPC
//! status from a peer becomes a router error).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::{Error, ErrorKind};

/// The gRPC code of an error kind.
pub fn grpc_code(kind: ErrorKind) -> tonic::Code {
    match kind {
        ErrorKind::InvalidArgument => tonic::Code::InvalidArgument,
        ErrorKind::NotFound => tonic::Code::NotFound,
        ErrorKind::AlreadyExists => tonic::Code::AlreadyExists,
        ErrorKind::FailedPrecondition => tonic::Code::FailedPrecondition,
        ErrorKind::Unavailable => tonic::Code::Unavailable,
        ErrorKind::DeadlineExceeded => tonic::Code::DeadlineExceeded,
        ErrorKind::ResourceExhausted | ErrorKind::PayloadTooLarge => tonic::Code::ResourceExhausted,
        ErrorKind::Unauthenticated => tonic::Code::Unauthenticated,
        ErrorKind::PermissionDenied => tonic::Code::PermissionDenied,
        ErrorKind::DataLoss => tonic::Code::DataLoss,
        ErrorKind::Internal => tonic::Code::Internal,
    }
}

/// The HTTP status of an error kind.
pub fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists => StatusCode::CONFLICT,
        ErrorKind::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::DataLoss | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error kind of a gRPC code from a peer (a forwarded call to the leader, a node's
/// answer that the router passes on).
pub fn kind_of_code(code: tonic::Code) -> ErrorKind {
    use tonic::Code;
    match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::FailedPrecondition | Code::Aborted => ErrorKind::FailedPrecondition,
        Code::Unavailable | Code::Cancelled => ErrorKind::Unavailable,
        Code::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        Code::ResourceExhausted => ErrorKind::ResourceExhausted,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::DataLoss => ErrorKind::DataLoss,
        Code::Ok | Code::Unknown | Code::Unimplemented | Code::Internal => ErrorKind::Internal,
    }
}

/// The short name used in JSON error bodies (`INVALID_ARGUMENT`, …).
pub fn code_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::AlreadyExists => "ALREADY_EXISTS",
        ErrorKind::FailedPrecondition => "FAILED_PRECONDITION",
        ErrorKind::Unavailable => "UNAVAILABLE",
        ErrorKind::DeadlineExceeded => "DEADLINE_EXCEEDED",
        ErrorKind::ResourceExhausted => "RESOURCE_EXHAUSTED",
        ErrorKind::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
        ErrorKind::Unauthenticated => "UNAUTHENTICATED",
        ErrorKind::PermissionDenied => "PERMISSION_DENIED",
        ErrorKind::DataLoss => "DATA_LOSS",
        ErrorKind::Internal => "INTERNAL",
    }
}

/// The error kind of a JSON error body's code name (from a forwarded REST call).
pub fn kind_of_name(name: &str) -> ErrorKind {
    [
        ErrorKind::InvalidArgument,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::FailedPrecondition,
        ErrorKind::Unavailable,
        ErrorKind::DeadlineExceeded,
        ErrorKind::ResourceExhausted,
        ErrorKind::PayloadTooLarge,
        ErrorKind::Unauthenticated,
        ErrorKind::PermissionDenied,
        ErrorKind::DataLoss,
    ]
    .into_iter()
    .find(|k| code_name(*k) == name)
    .unwrap_or(ErrorKind::Internal)
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        tonic::Status::new(
            grpc_code(e.kind()),
            vecshard_model::bounded_message(e.message()).into_owned(),
        )
    }
}

/// Whether tonic made `status` on this side of a call from a connection-level failure (a
/// reset or refused stream, a GOAWAY from a node shutting down, a closed connection)
/// rather than reading it off the wire: such a status carries its cause as its source, a
/// status the peer sent has none. Whatever code tonic gave it (a stream reset with
/// NO_ERROR becomes Internal), it says the peer did not answer.
pub fn is_transport_failure(status: &tonic::Status) -> bool {
    std::error::Error::source(status).is_some()
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        let kind = if is_transport_failure(&s) {
            ErrorKind::Unavailable
        } else {
            kind_of_code(s.code())
        };
        Error::new(kind, s.message().to_string())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": code_name(self.kind()), "message": self.message() }
        });
        (http_status(self.kind()), axum::Json(body)).into_response()
    }
}
