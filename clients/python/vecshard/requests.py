"""Request messages built from the client's arguments, shared by :class:`~vecshard.Client`
and :class:`~vecshard.AsyncClient`. Vectors travel packed (``vector_f32le``: the bytes of
a little-endian float32 array), converted from NumPy once per batch and never per float
in Python."""
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

import numpy as np

#: Keys per Get or Delete request (the server takes at most 100000).
KEY_BATCH = 10_000

#: Searches per SearchBatch request (the server takes at most 1024).
SEARCH_BATCH = 1024


def packed_rows(mat: np.ndarray) -> List[bytes]:
    """The rows of a 2-D array as little-endian float32 bytes, one ``bytes`` per row
    (one conversion of the whole array, then slices)."""
    buf = np.ascontiguousarray(mat, dtype="<f4").tobytes()
    step = mat.shape[1] * 4
    return [buf[i : i + step] for i in range(0, len(buf), step)] if step else [b""] * mat.shape[0]


def create_collection(
    name: str,
    dimension: int,
    metric: str,
    shard_count: int,
    storage: Optional[str],
    m: Optional[int],
    ef_construction: Optional[int],
    ef_search: Optional[int],
    replication_factor: int = 0,
    write_ack: Optional[str] = None,
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
        replication_factor=int(replication_factor),
        write_ack=write_ack or "",
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
            rows = packed_rows(mat[r.start : r.stop])
            points = [
                pb.Point(
                    key=key_pb(keys[i]),
                    vector_f32le=rows[j],
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


def search_common(
    k: int,
    filter: FilterLike,
    ef: Optional[int],
    exact: bool,
    offset: int = 0,
    with_metadata: bool = False,
    with_payload: bool = False,
    with_vector: bool = False,
) -> Dict[str, Any]:
    """The fields every search of a call shares. Hits come packed (ids and scores as
    arrays) unless metadata, payloads or vectors are asked for."""
    common: Dict[str, Any] = filter_fields(filter)
    common["k"] = int(k)
    if ef is not None:
        common["ef"] = int(ef)
    if exact:
        common["exact"] = True
    if offset:
        common["offset"] = int(offset)
    if with_metadata:
        common["with_metadata"] = True
    if with_payload:
        common["with_payload"] = True
    if with_vector:
        common["with_vector"] = True
    if not (with_metadata or with_payload or with_vector):
        common["packed_hits"] = True
    return common


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
    offset: int = 0,
) -> Tuple[List[Any], bool]:
    """For one vector (1-D): ``([SearchRequest], True)``. For a matrix (2-D, one query
    per row): ``([SearchBatchRequest, ...], False)``, each batch with at most
    :data:`SEARCH_BATCH` searches."""
    q = vector_array(query, "the query")
    if q.ndim not in (1, 2):
        raise invalid(f"the query must be a vector or a matrix (queries x dimension), got shape {q.shape}")
    common = search_common(k, filter, ef, exact, offset, with_metadata, with_payload, with_vector)
    outer: Dict[str, Any] = {}
    if timeout_ms is not None:
        outer["timeout_ms"] = int(timeout_ms)
    if allow_partial:
        outer["allow_partial"] = True
    if q.ndim == 1:
        row = packed_rows(q.reshape(1, -1))[0]
        return [pb.SearchRequest(collection=collection, vector_f32le=row, **common, **outer)], True
    if q.shape[0] == 0:
        raise invalid("the query matrix has no rows")
    rows = packed_rows(q)
    batches = [
        pb.SearchBatchRequest(
            collection=collection,
            searches=[pb.SearchRequest(vector_f32le=row, **common) for row in rows[r.start : r.stop]],
            **outer,
        )
        for r in chunks(len(rows), SEARCH_BATCH)
    ]
    return batches, False


def search_by_id_request(
    collection: str,
    id: Any,
    k: int,
    filter: FilterLike,
    ef: Optional[int],
    exact: bool,
    allow_partial: bool,
    offset: int = 0,
) -> pb.SearchRequest:
    """A search with the stored vector of point ``id`` (the point itself left out)."""
    common = search_common(k, filter, ef, exact, offset)
    return pb.SearchRequest(
        collection=collection, query_key=key_pb(id), allow_partial=allow_partial, **common
    )


def count_request(collection: str, filter: FilterLike) -> pb.CountRequest:
    """A Count request, with an optional filter."""
    return pb.CountRequest(collection=collection, **filter_fields(filter))


def create_backup(collection: str, to: str, wait: bool, timeout_s: Optional[int]) -> pb.CreateBackupRequest:
    r = pb.CreateBackupRequest(collection=collection, to=to, wait=wait)
    if timeout_s is not None:
        r.timeout_s = timeout_s
    return r


def restore_backup(
    location: str, as_collection: str, storage: Optional[str], wait: bool, timeout_s: Optional[int]
) -> pb.RestoreBackupRequest:
    r = pb.RestoreBackupRequest(location=location, as_collection=as_collection, wait=wait)
    if storage is not None:
        r.storage = storage
    if timeout_s is not None:
        r.timeout_s = timeout_s
    return r
