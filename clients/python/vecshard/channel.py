"""Channels and call metadata: TLS credentials, message size limits, the API key."""
from __future__ import annotations

import os
from typing import Any, List, Optional, Sequence, Tuple, Union

import grpc

#: ``tls``: ``None``/``False`` for plaintext, ``True`` for TLS with the system's root
#: certificates, a path to (or the bytes of) a PEM root certificate, or ready
#: ``grpc.ChannelCredentials``.
TlsLike = Union[None, bool, str, "os.PathLike[str]", bytes, grpc.ChannelCredentials]

# The router enforces its own request limit (64 MiB by default) and says so in a
# RESOURCE_EXHAUSTED error; the client adds none of its own.
_OPTIONS: List[Tuple[str, Any]] = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
]


def credentials(tls: TlsLike) -> Optional[grpc.ChannelCredentials]:
    """Channel credentials for ``tls`` (``None``: plaintext)."""
    if tls is None or tls is False:
        return None
    if tls is True:
        return grpc.ssl_channel_credentials()
    if isinstance(tls, grpc.ChannelCredentials):
        return tls
    if isinstance(tls, bytes):
        return grpc.ssl_channel_credentials(root_certificates=tls)
    with open(tls, "rb") as f:
        return grpc.ssl_channel_credentials(root_certificates=f.read())


def options(extra: Optional[Sequence[Tuple[str, Any]]]) -> List[Tuple[str, Any]]:
    """Channel options: the client's defaults, then ``extra``."""
    return _OPTIONS + list(extra or [])


def call_metadata(api_key: Optional[str]) -> Optional[Tuple[Tuple[str, str], ...]]:
    """The metadata every call carries: ``authorization: Bearer KEY`` when there is a key
    (what the router checks; ``x-api-key`` works too)."""
    if not api_key:
        return None
    return (("authorization", f"Bearer {api_key}"),)
