"""Request messages built from the client's arguments, shared by :class:`~vecshard.Client`
and :class:`~vecshard.AsyncClient`. Vectors are converted from NumPy once per batch
(``tolist``), never per float in a Python loop."""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from .conversions import (
    FilterLike,
    chunks,
    filter_fields,
    key_list,
    key_pb,
    metadata_pb,
    metric_pb,
    payload_pb,
    per_point,
    vector_array,
)
from .errors import invalid
from .v1 import vecshard_pb2 as pb

#: Keys per Get or Delete request (the server takes at most 100000).
KEY_BATCH = 10_000


def create_collection(
    name: str,
    dimension: int,
    metric: str,
    shard_count: int,
    storage: Optional[str],
    m: Optional[int],
    ef_construction: Optional[int],
    ef_search: Optional[int],
) -> pb.CreateCollectionRequest:
    """A CreateCollection request; unset index parameters take the server's defaults."""
    index = pb.IndexParams()
    for f, v in (("m", m), ("ef_construction", ef_construction), ("ef_search", ef_search)):
        if v is not None:
            setattr(index, f, int(v))
    return pb.CreateCollectionRequest(
        name=name,
        dimension=int(dimension),
        metric=metric_pb(metric),
        shard_count=int(shard_count),
        storage=storage or "",
        index=index,
    )


def upsert_batches(
    collection: str,
    ids: Any,
    vectors: Any,
    metadata: Optional[Sequence[Any]],
    payload: Optional[Sequence[Any]],
    batch_size: int,
) -> Tuple[int, Iterator[Tuple[pb.UpsertRequest, int]]]:
    """The number of points and the Upsert requests (with their sizes) that carry them.
    Shapes are checked before anything is sent."""
    keys = key_list(ids)
    mat = vector_array(vectors, "vectors")
    if mat.ndim != 2:
        raise invalid(f"vectors must be a 2-D array (points x dimension), got shape {mat.shape}")
    n = len(keys)
    if mat.shape[0] != n:
        raise invalid(f"{n} ids for {mat.shape[0]} vectors")
    if n == 0:
        raise invalid("nothing to upsert: no points given")
    metadata = per_point(metadata, n, "metadata")
    payload = per_point(payload, n, "payload")
    batches = chunks(n, batch_size)

    def requests() -> Iterator[Tuple[pb.UpsertRequest, int]]:
        for r in batches:
            rows = mat[r.start : r.stop].tolist()
            points = [
                pb.Point(
                    key=key_pb(keys[i]),
                    vector=rows[j],
                    metadata=metadata_pb(metadata[i]) if metadata is not None else None,
                    payload=payload_pb(payload[i]) if payload is not None else None,
                )
                for j, i in enumerate(r)
            ]
            yield pb.UpsertRequest(collection=collection, points=points), len(points)

    return n, requests()


def key_batches(ids: Any) -> List[List[pb.Key]]:
    """Keys in batches of :data:`KEY_BATCH` (for Get and Delete)."""
    keys = [key_pb(k) for k in key_list(ids)]
    if not keys:
        raise invalid("no ids given")
    return [keys[r.start : r.stop] for r in chunks(len(keys), KEY_BATCH)]


def search_requests(
    collection: str,
    query: Any,
    k: int,
    filter: FilterLike,
    ef: Optional[int],
    exact: bool,
    allow_partial: bool,
    timeout_ms: Optional[int] = None,
    with_metadata: bool = False,
    with_payload: bool = False,
    with_vector: bool = False,
) -> Tuple[List[pb.SearchRequest], bool]:
    """One Search request per query row, and whether the query was a single vector (1-D)
    rather than a matrix (2-D)."""
    q = vector_array(query, "the query")
    if q.ndim not in (1, 2):
        raise invalid(f"the query must be a vector or a matrix (queries x dimension), got shape {q.shape}")
    common: Dict[str, Any] = filter_fields(filter)
    if ef is not None:
        common["ef"] = int(ef)
    if timeout_ms is not None:
        common["timeout_ms"] = int(timeout_ms)
    if exact:
        common["exact"] = True
    if allow_partial:
        common["allow_partial"] = True
    if with_metadata:
        common["with_metadata"] = True
    if with_payload:
        common["with_payload"] = True
    if with_vector:
        common["with_vector"] = True
    rows = [q.tolist()] if q.ndim == 1 else q.tolist()
    reqs = [pb.SearchRequest(collection=collection, vector=row, k=int(k), **common) for row in rows]
    return reqs, q.ndim == 1
