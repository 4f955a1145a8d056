"""Python values to and from protobuf messages: keys, metadata values, points, filters,
collection settings. The only module (with ``requests`` and ``results``) that touches
protobuf types."""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from .errors import invalid
from .types import CollectionDescription, CollectionInfo, Key, Metadata, Point, ShardInfo
from .v1 import vecshard_pb2 as pb

_U64 = 1 << 64
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1

METRICS = {"l2": pb.METRIC_L2, "cosine": pb.METRIC_COSINE, "dot": pb.METRIC_DOT}
_METRIC_NAMES = {v: k for k, v in METRICS.items()}


# ---- keys
def key_pb(k: Any) -> pb.Key:
    """A key message from an int (0 to 2**64-1) or a str."""
    if isinstance(k, str):
        return pb.Key(str=k)
    if isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
        k = int(k)
        if 0 <= k < _U64:
            return pb.Key(int=k)
        raise invalid(f"key {k} is not an unsigned 64-bit integer")
    raise invalid(f"a key must be a str or an unsigned integer, got {type(k).__name__} {k!r}")


def key_py(k: pb.Key) -> Key:
    """A key as int or str."""
    return k.str if k.WhichOneof("kind") == "str" else k.int


def key_list(ids: Any) -> List[Any]:
    """Keys as a Python list (NumPy arrays converted once with ``tolist``)."""
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise invalid(f"ids must be 1-D, got shape {ids.shape}")
        return ids.tolist()
    if isinstance(ids, (str, bytes)):
        raise invalid("ids must be a sequence of keys, not a single string")
    return list(ids)


# ---- metadata values
def value_pb(v: Any, field: str) -> pb.Value:
    """A metadata value message; ``field`` names it in errors."""
    if isinstance(v, (bool, np.bool_)):
        return pb.Value(bool_value=bool(v))
    if isinstance(v, (int, np.integer)):
        v = int(v)
        if not _I64_MIN <= v <= _I64_MAX:
            raise invalid(f"metadata field {field!r}: {v} does not fit in a signed 64-bit integer")
        return pb.Value(int_value=v)
    if isinstance(v, (float, np.floating)):
        return pb.Value(float_value=float(v))
    if isinstance(v, str):
        return pb.Value(string_value=v)
    if isinstance(v, (list, tuple)) and all(isinstance(s, str) for s in v):
        return pb.Value(string_list_value=pb.StringList(values=list(v)))
    raise invalid(
        f"metadata field {field!r}: a value must be an int, float, str, bool or a list of str, "
        f"got {type(v).__name__} {v!r}"
    )


def value_py(v: pb.Value) -> Any:
    """A metadata value as a Python value."""
    kind = v.WhichOneof("kind")
    if kind == "string_list_value":
        return list(v.string_list_value.values)
    return getattr(v, kind) if kind else None


def metadata_pb(m: Optional[Mapping[str, Any]]) -> Dict[str, pb.Value]:
    """Metadata as a map of value messages."""
    if not m:
        return {}
    if not isinstance(m, Mapping):
        raise invalid(f"metadata must be a dict of field name to value, got {type(m).__name__}")
    return {str(k): value_pb(v, str(k)) for k, v in m.items()}


def metadata_py(m: Mapping[str, pb.Value]) -> Metadata:
    """Metadata as a dict."""
    return {k: value_py(v) for k, v in m.items()}


# ---- payload
def payload_pb(p: Any) -> bytes:
    """A payload as bytes: bytes as they are, a str as UTF-8, anything else as JSON (like
    the REST API); ``None`` is empty."""
    if p is None:
        return b""
    if isinstance(p, (bytes, bytearray, memoryview)):
        return bytes(p)
    if isinstance(p, str):
        return p.encode("utf-8")
    return json.dumps(p, default=_json_default).encode("utf-8")


# ---- vectors
def vector_array(v: Any, what: str = "vector") -> np.ndarray:
    """A float32 array of any shape from an array or nested lists."""
    try:
        return np.asarray(v, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise invalid(f"{what} must be numbers in a (rectangular) array: {e}") from None


def point_py(p: pb.Point) -> Point:
    """A stored point."""
    return Point(
        id=key_py(p.key),
        vector=np.array(p.vector, dtype=np.float32),
        metadata=metadata_py(p.metadata),
        payload=p.payload or None,
    )


# ---- filters
FilterLike = Union[Mapping[str, Any], str, "pb.Filter", None]


def filter_fields(f: FilterLike) -> Dict[str, Any]:
    """The ``SearchRequest`` fields for a filter: a dict (the JSON grammar of the REST API,
    for example ``{"field": "color", "eq": "red"}``) travels as ``filter_json``, as does a
    JSON string; a ``Filter`` message as ``filter``; ``None`` means no filter."""
    if f is None:
        return {}
    if isinstance(f, pb.Filter):
        return {"filter": f}
    if isinstance(f, str):
        return {"filter_json": f}
    if isinstance(f, Mapping):
        return {"filter_json": json.dumps(f, default=_json_default)}
    raise invalid(f"a filter must be a dict, a JSON string or a Filter message, got {type(f).__name__}")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


# ---- collections
def metric_pb(metric: Any) -> Any:
    """A metric enum value from ``"l2"``, ``"cosine"`` or ``"dot"``."""
    m = METRICS.get(str(metric).lower())
    if m is None:
        raise invalid(f"metric {metric!r}: expected one of {', '.join(METRICS)}")
    return m


def collection_info(s: pb.CollectionSpec) -> CollectionInfo:
    """A collection's settings."""
    return CollectionInfo(
        name=s.name,
        dimension=s.dimension,
        metric=_METRIC_NAMES.get(s.metric, "unspecified"),
        shard_count=s.shard_count,
        storage=s.storage,
        m=s.index.m,
        ef_construction=s.index.ef_construction,
        ef_search=s.index.ef_search,
        replication_factor=s.replication_factor or 1,
        write_ack=s.write_ack,
    )


def collection_description(r: pb.DescribeCollectionResponse) -> CollectionDescription:
    """A collection's settings and shards."""
    shards = [
        ShardInfo(
            number=s.number,
            owner_node=s.owner_node,
            epoch=s.epoch,
            state=pb.ShardState.Name(s.state)[len("SHARD_STATE_"):].lower(),
            live_points=s.live_points if s.HasField("live_points") else None,
        )
        for s in r.shards
    ]
    return CollectionDescription(info=collection_info(r.spec), shards=shards)


def chunks(n: int, size: int) -> Iterable[range]:
    """``range``s of at most ``size`` covering ``0..n``."""
    if size < 1:
        raise invalid(f"batch size must be at least 1, got {size}")
    return (range(s, min(s + size, n)) for s in range(0, n, size))


def per_point(values: Optional[Sequence[Any]], n: int, what: str) -> Optional[Sequence[Any]]:
    """A per-point list (metadata, payload) checked to have one entry per point."""
    if values is None:
        return None
    if isinstance(values, (Mapping, str, bytes)):
        raise invalid(f"{what} must be a list with one entry per point, got a {type(values).__name__}")
    if len(values) != n:
        raise invalid(f"{what} has {len(values)} entries for {n} points")
    return values
