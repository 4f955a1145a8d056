"""Errors: every failure of a call is a :class:`VecshardError` carrying the server's gRPC
status code name (``"NOT_FOUND"``, the same names the REST API puts in its error bodies)
and its message, which says what was wrong."""
from __future__ import annotations

from typing import Dict, Type

import grpc


class VecshardError(Exception):
    """A call failed. ``code`` is the status code name (``"INVALID_ARGUMENT"``, …) and
    ``message`` the server's explanation (or the client's, for input it refuses before
    sending)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class InvalidArgument(VecshardError):
    """Bad input: wrong dimension, NaN or infinite values, a malformed filter, an empty or
    oversized batch, a bad name or key."""


class NotFound(VecshardError):
    """An unknown collection."""


class AlreadyExists(VecshardError):
    """A collection with that name exists already."""


class FailedPrecondition(VecshardError):
    """The cluster is not in a state that allows the operation."""


class Unavailable(VecshardError):
    """The router, or a shard it needs, cannot be reached; the message names the shards.
    Retrying later may succeed (writes are idempotent)."""


class DeadlineExceeded(VecshardError):
    """The call's timeout expired."""


class ResourceExhausted(VecshardError):
    """A shard is overloaded (retry later) or a message is too large."""


class Unauthenticated(VecshardError):
    """The router needs an API key, or the key given is not valid."""


class PermissionDenied(VecshardError):
    """The key may not do this."""


class InternalError(VecshardError):
    """A bug in the server (or an unknown status)."""


_BY_CODE: Dict[str, Type[VecshardError]] = {
    "INVALID_ARGUMENT": InvalidArgument,
    "OUT_OF_RANGE": InvalidArgument,
    "NOT_FOUND": NotFound,
    "ALREADY_EXISTS": AlreadyExists,
    "FAILED_PRECONDITION": FailedPrecondition,
    "UNAVAILABLE": Unavailable,
    "DEADLINE_EXCEEDED": DeadlineExceeded,
    "RESOURCE_EXHAUSTED": ResourceExhausted,
    "UNAUTHENTICATED": Unauthenticated,
    "PERMISSION_DENIED": PermissionDenied,
    "INTERNAL": InternalError,
}


def error(code: str, message: str) -> VecshardError:
    """The exception for a status code name."""
    return _BY_CODE.get(code, VecshardError)(code, message)


def from_rpc_error(e: grpc.RpcError) -> VecshardError:
    """The exception for a failed gRPC call (sync or ``grpc.aio``)."""
    code = e.code() if hasattr(e, "code") else None
    name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
    details = e.details() if hasattr(e, "details") else None
    return error(name, details or str(e))


def invalid(message: str) -> InvalidArgument:
    """Input the client refuses before sending (the server would refuse it too)."""
    return InvalidArgument("INVALID_ARGUMENT", message)
