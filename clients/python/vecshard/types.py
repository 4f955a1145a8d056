"""The values the client returns: plain dataclasses, no protobuf."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

import numpy as np

#: A point's key: an unsigned 64-bit integer or a string (at most 1024 bytes).
Key = Union[int, str]
#: A metadata value: int, float, str, bool or a list of strings.
MetadataValue = Union[int, float, str, bool, List[str]]
#: Metadata by field name.
Metadata = Dict[str, MetadataValue]


@dataclass
class CollectionInfo:
    """A collection's settings (defaults filled in by the server)."""

    name: str
    dimension: int
    #: ``"l2"`` (squared distance, lower is better), ``"cosine"`` or ``"dot"`` (higher is better).
    metric: str
    shard_count: int
    #: ``"local"`` or an object-store URL such as ``s3://bucket/prefix``.
    storage: str
    #: Index parameters: graph degree, build width, default search width.
    m: int
    ef_construction: int
    ef_search: int
    #: Copies of every shard (1: no replication).
    replication_factor: int = 1
    #: ``"majority"`` or ``"all"`` when ``replication_factor`` > 1; ``""`` otherwise.
    write_ack: str = ""


@dataclass
class ShardInfo:
    """One shard of a collection, as the router sees it."""

    number: int
    #: The node that owns (writes) the shard; ``""`` when unassigned.
    owner_node: str
    epoch: int
    #: ``"serving"``, ``"opening"``, ``"unassigned"``, ``"fenced"``, ``"failed"``,
    #: ``"closed"``, ``"unavailable"`` or ``"unspecified"``.
    state: str
    #: Points in the shard as last reported by its owner; ``None`` when unknown.
    live_points: Optional[int]


@dataclass
class CollectionDescription:
    """A collection's settings and where each of its shards lives."""

    info: CollectionInfo
    shards: List[ShardInfo]

    @property
    def live_points(self) -> Optional[int]:
        """Points in the collection, if every shard has reported its count."""
        counts = [s.live_points for s in self.shards]
        return None if any(c is None for c in counts) else sum(counts)  # type: ignore[arg-type]


@dataclass
class Point:
    """A stored point."""

    id: Key
    #: float32, normalised for cosine collections.
    vector: np.ndarray
    metadata: Metadata = field(default_factory=dict)
    #: The opaque payload; ``None`` when empty.
    payload: Optional[bytes] = None

    def payload_json(self) -> Any:
        """The payload parsed as JSON when it is JSON, else as a UTF-8 string (``None``
        when empty) — how the REST API shows it."""
        return payload_json(self.payload)


@dataclass
class Hit:
    """One search result."""

    id: Key
    #: Squared distance for l2 (lower is better), similarity for cosine and dot.
    score: float
    #: When ``with_metadata`` was asked for, else empty.
    metadata: Metadata = field(default_factory=dict)
    #: When ``with_payload`` was asked for and the point has one.
    payload: Optional[bytes] = None
    #: When ``with_vector`` was asked for.
    vector: Optional[np.ndarray] = None

    def payload_json(self) -> Any:
        """The payload as JSON (see :meth:`Point.payload_json`)."""
        return payload_json(self.payload)


def payload_json(p: Optional[bytes]) -> Any:
    """A payload parsed as JSON when it is JSON, else a UTF-8 string; ``None`` when empty."""
    if not p:
        return None
    try:
        return json.loads(p)
    except ValueError:
        return p.decode("utf-8", "replace")
