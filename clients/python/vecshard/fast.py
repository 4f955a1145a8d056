"""The single-query search path, cut to what a query needs.

Over gRPC (:class:`GrpcSearch`): one cached ``unary_unary`` callable with identity
(bytes) serializers; the request is a cached header (every field but the vector, built
once per distinct set of arguments by the protobuf library itself) followed by the packed
vector, and the answer's packed ids and scores become NumPy arrays with ``frombuffer``.

Over REST (:class:`RestSearch`, when the client is given the router's REST address): the
router's binary search, ``POST /v1/collections/{name}/search?k=…`` with the vector as
``Content-Type: application/x-vecshard-f32`` and the hits back as
``application/x-vecshard-hits`` (the ids as uint64, then the scores as float32, both
little-endian), over keep-alive HTTP/1.1 connections written and read directly on the
socket. grpcio spends far more client CPU per call than this; see the README."""
from __future__ import annotations

import json
import socket
import ssl
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .errors import VecshardError, error, invalid
from .results import ids_array, ids_scores
from .v1 import vecshard_pb2 as pb

#: Distinct argument sets whose request header is kept (per client).
HEAD_CACHE = 256

_HITS = b"application/x-vecshard-hits"
_I64_MAX = (1 << 63) - 1


def varint(n: int) -> bytes:
    """A protobuf varint of ``n >= 0``."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def packed_hits(ids_le: bytes, scores_le: bytes) -> Tuple[np.ndarray, np.ndarray]:
    """Packed little-endian ids (uint64) and scores (float32) as the arrays of
    :func:`vecshard.results.ids_scores`: ``int64`` ids (``uint64`` when one is 2**63 or
    more) and ``float32`` scores, both writable copies."""
    n = len(ids_le) // 8
    # the top byte of every id: all below 0x80 means every id fits in an int64
    if n and max(ids_le[7::8]) > 0x7F:
        ids = np.frombuffer(ids_le, dtype="<u8").astype(np.uint64)
    else:
        ids = np.frombuffer(ids_le, dtype="<i8").astype(np.int64)
    return ids, np.frombuffer(scores_le, dtype="<f4").astype(np.float32)


class GrpcSearch:
    """``Search`` of one packed vector over a gRPC channel, request and answer as bytes."""

    def __init__(self, channel: Any) -> None:
        self._call = channel.unary_unary(
            "/vecshard.v1.VecShard/Search",
            request_serializer=None,
            response_deserializer=None,
            _registered_method=True,
        )
        self._heads: Dict[Tuple[Any, ...], bytes] = {}

    def head(self, collection: str, nbytes: int, k: Any, filter: Any, ef: Any, exact: bool,
             allow_partial: bool, offset: Any) -> bytes:
        """The encoded ``SearchRequest`` without its vector, ending with the tag and length
        of ``vector_f32le`` (a message's fields may come in any order), so that the
        request is ``head + vector``. Cached unless there is a filter."""
        key = (collection, nbytes, k, ef, exact, allow_partial, offset) if filter is None else None
        if key is not None:
            h = self._heads.get(key)
            if h is not None:
                return h
        from .requests import search_common

        msg = pb.SearchRequest(collection=collection, allow_partial=allow_partial,
                               **search_common(k, filter, ef, exact, offset))
        h = msg.SerializeToString() + b"\x6a" + varint(nbytes)
        if key is not None:
            if len(self._heads) >= HEAD_CACHE:
                self._heads.clear()
            self._heads[key] = h
        return h

    def __call__(self, request: bytes, timeout: Optional[float], metadata: Any) -> Tuple[np.ndarray, np.ndarray]:
        data = self._call(request, timeout=timeout, metadata=metadata)
        r = pb.SearchResponse.FromString(data)
        if r.HasField("packed"):
            return packed_hits(r.packed.ids_u64le, r.packed.scores_f32le)
        return ids_scores(r)


class _Conn:
    """One keep-alive connection and the timeout its socket has."""

    __slots__ = ("sock", "timeout")

    def __init__(self, sock: socket.socket, timeout: Optional[float]) -> None:
        self.sock = sock
        self.timeout = timeout


class RestSearch:
    """The router's binary REST search over a pool of keep-alive HTTP/1.1 connections (one
    per thread that searches at the same time; thread-safe)."""

    def __init__(self, url: str, api_key: Optional[str], tls: Any) -> None:
        u = urllib.parse.urlsplit(url if "//" in url else "http://" + url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise invalid(f"rest: {url!r} is not an http:// or https:// address of a router's REST API")
        if u.path not in ("", "/") or u.query:
            raise invalid(f"rest: {url!r} has a path or query; give the router's address only")
        self.url = url
        self._host = u.hostname
        self._port = u.port or (443 if u.scheme == "https" else 80)
        self._ssl = _ssl_context(tls) if u.scheme == "https" else None
        hostport = f"{self._host}:{self._port}" if ":" not in self._host else f"[{self._host}]:{self._port}"
        auth = f"authorization: Bearer {api_key}\r\n" if api_key else ""
        self._fixed = (f" HTTP/1.1\r\nhost: {hostport}\r\ncontent-type: application/x-vecshard-f32\r\n"
                       f"{auth}content-length: ").encode()
        self._heads: Dict[Tuple[Any, ...], bytes] = {}
        self._idle: List[_Conn] = []
        self._closed = False

    # ---- requests
    def head(self, collection: str, nbytes: int, k: Any, filter: Any, ef: Any, exact: bool,
             allow_partial: bool, offset: Any, timeout: Optional[float]) -> bytes:
        """The request line and headers of a search, ``head + vector`` being the request.
        Cached unless there is a filter."""
        key = (collection, nbytes, k, ef, exact, allow_partial, offset, timeout) if filter is None else None
        if key is not None:
            h = self._heads.get(key)
            if h is not None:
                return h
        q = [("k", int(k))]
        if ef is not None:
            q.append(("ef", int(ef)))
        if exact:
            q.append(("exact", "true"))
        if offset:
            q.append(("offset", int(offset)))
        if allow_partial:
            q.append(("allow_partial", "true"))
        if timeout is not None:
            q.append(("timeout_ms", min(max(int(timeout * 1000), 1), 0xFFFFFFFF)))
        if filter is not None:
            q.append(("filter", _filter_json(filter)))
        path = f"/v1/collections/{urllib.parse.quote(collection, safe='')}/search?{urllib.parse.urlencode(q)}"
        h = b"POST " + path.encode() + self._fixed + str(nbytes).encode() + b"\r\n\r\n"
        if key is not None:
            if len(self._heads) >= HEAD_CACHE:
                self._heads.clear()
            self._heads[key] = h
        return h

    def __call__(self, request: bytes, timeout: Optional[float]) -> Tuple[np.ndarray, np.ndarray]:
        idle = self._idle
        for attempt in (0, 1):
            fresh = attempt == 1 or not idle
            try:
                c = self._connect(timeout) if fresh else idle.pop()
            except IndexError:  # another thread took the last idle connection
                c, fresh = self._connect(timeout), True
            try:
                if c.timeout != timeout:
                    c.sock.settimeout(timeout)
                    c.timeout = timeout
                c.sock.sendall(request)
                status, head, body = _read_response(c.sock)
            except socket.timeout:
                c.sock.close()
                raise error("DEADLINE_EXCEEDED", f"no answer from {self.url} within {timeout} s") from None
            except _Closed:
                c.sock.close()
                if fresh:
                    raise error("UNAVAILABLE", f"{self.url} closed the connection without an answer") from None
                continue  # an idle keep-alive connection the router closed meanwhile: once more
            except (OSError, ValueError) as e:  # ValueError: an unparsable response
                c.sock.close()
                if fresh:
                    raise error("UNAVAILABLE", f"cannot search through {self.url}: {e}") from None
                continue
            if b"\r\nconnection: close" in head or self._closed:
                c.sock.close()
            else:
                idle.append(c)
            return _answer(status, head, body, self.url)
        raise AssertionError("unreachable")

    def _connect(self, timeout: Optional[float]) -> _Conn:
        try:
            s = socket.create_connection((self._host, self._port), timeout=timeout)
        except socket.timeout:
            raise error("DEADLINE_EXCEEDED", f"cannot connect to {self.url} within {timeout} s") from None
        except OSError as e:
            raise error("UNAVAILABLE", f"cannot connect to {self.url}: {e}") from None
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ssl is not None:
            try:
                s = self._ssl.wrap_socket(s, server_hostname=self._host)
            except (OSError, ssl.SSLError) as e:
                s.close()
                raise error("UNAVAILABLE", f"TLS handshake with {self.url} failed: {e}") from None
        return _Conn(s, timeout)

    def close(self) -> None:
        """Close the idle connections (those in use close when their search ends)."""
        self._closed = True
        while self._idle:
            try:
                self._idle.pop().sock.close()
            except IndexError:
                break


class _Closed(Exception):
    """The peer closed the connection before a whole response arrived."""


def _read_response(sock: socket.socket) -> Tuple[int, bytes, bytes]:
    """One HTTP/1.1 response: its status, its head (lower-cased, from the status line to the
    last header) and its body (``content-length`` or chunked)."""
    buf = sock.recv(65536)
    if not buf:
        raise _Closed()
    i = buf.find(b"\r\n\r\n")
    while i < 0:
        more = sock.recv(65536)
        if not more:
            raise _Closed()
        buf += more
        i = buf.find(b"\r\n\r\n")
    head = buf[:i].lower()
    if not head.startswith(b"http/1."):
        raise OSError(f"not an HTTP/1.1 response: {bytes(buf[:40])!r}")
    status = int(head[9:12])
    body = buf[i + 4 :]
    j = head.find(b"\r\ncontent-length:")
    if j >= 0:
        e = head.find(b"\r\n", j + 2)
        n = int(head[j + 17 : e] if e >= 0 else head[j + 17 :])
        if len(body) < n:
            parts = [body]
            have = len(body)
            while have < n:
                more = sock.recv(max(65536, n - have))
                if not more:
                    raise _Closed()
                parts.append(more)
                have += len(more)
            body = b"".join(parts)
        return status, head, body[:n]
    if b"\r\ntransfer-encoding: chunked" in head:
        return status, head, _read_chunked(sock, body)
    raise OSError("a response with neither content-length nor chunked encoding")


def _read_chunked(sock: socket.socket, buf: bytes) -> bytes:
    out = []
    while True:
        while b"\r\n" not in buf:
            more = sock.recv(65536)
            if not more:
                raise _Closed()
            buf += more
        line, buf = buf.split(b"\r\n", 1)
        size = int(line.split(b";", 1)[0], 16)
        while len(buf) < size + 2:
            more = sock.recv(65536)
            if not more:
                raise _Closed()
            buf += more
        if size == 0:
            return b"".join(out)  # trailers are not used by the router
        out.append(buf[:size])
        buf = buf[size + 2 :]


def _answer(status: int, head: bytes, body: bytes, url: str) -> Tuple[np.ndarray, np.ndarray]:
    """A binary search's answer as ``(ids, scores)``, or its error raised."""
    if status == 200 and _HITS in head:
        n = len(body) // 12
        if len(body) != 12 * n:
            raise error("INTERNAL", f"{url}: a binary search answer of {len(body)} bytes (not 12 per hit)")
        return packed_hits(body[: 8 * n], body[8 * n :])
    try:
        j = json.loads(body)
    except ValueError:
        j = None
    if status == 200 and isinstance(j, dict) and "hits" in j:  # string keys: the JSON answer
        hits = j["hits"]
        return ids_array([h["id"] for h in hits]), np.array([h["score"] for h in hits], dtype=np.float32)
    if isinstance(j, dict) and isinstance(j.get("error"), dict):
        e = j["error"]
        raise error(str(e.get("code", "UNKNOWN")), str(e.get("message", "")))
    raise VecshardError("UNKNOWN", f"{url}: HTTP {status}: {body[:300]!r}")


def _filter_json(f: Any) -> str:
    """A filter dict (or JSON text) as JSON text for the query string."""
    if isinstance(f, str):
        return f
    try:
        return json.dumps(f, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise invalid(f"the filter is not JSON-serialisable: {e}") from None


def _ssl_context(tls: Any) -> ssl.SSLContext:
    """The TLS context of an https REST address, from the client's ``tls`` argument."""
    if tls is None or tls is False or tls is True:
        return ssl.create_default_context()
    if isinstance(tls, bytes):
        return ssl.create_default_context(cadata=tls.decode("ascii"))
    if isinstance(tls, (str,)) or hasattr(tls, "__fspath__"):
        return ssl.create_default_context(cafile=tls)
    raise invalid("rest: an https address needs tls=True or a PEM root certificate (path or bytes), "
                  "not grpc.ChannelCredentials")
