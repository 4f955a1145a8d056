"""Search responses as NumPy arrays (or :class:`~vecshard.types.Hit` objects).

Ids come back as ``int64`` when every key is an integer below 2**63, as ``uint64`` for
larger integer keys (1-D results only), else as an ``object`` array (string keys).
Scores are ``float32``. A matrix search pads rows with fewer than ``k`` hits (a filter
that matches few points) with id ``-1`` (``None`` in an object array) and score NaN."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from .conversions import key_py, metadata_py
from .types import Hit, Key
from .v1 import vecshard_pb2 as pb

_I64_MAX = (1 << 63) - 1


def _ids(hits: Sequence[pb.Hit]) -> List[Key]:
    # Integer keys are the common case: read them all at C speed, then look again only at
    # the zeros (a string key reads as int 0).
    ids: List[Key] = [h.key.int for h in hits]
    if 0 in ids:
        for i, v in enumerate(ids):
            if v == 0 and hits[i].key.WhichOneof("kind") == "str":
                ids[i] = hits[i].key.str
    return ids


def _packed(resp: pb.SearchResponse) -> Tuple[np.ndarray, np.ndarray]:
    """Packed hits (``SearchResponse.packed``) as arrays, without a Python loop."""
    ids = np.frombuffer(resp.packed.ids_u64le, dtype="<u8")
    scores = np.frombuffer(resp.packed.scores_f32le, dtype="<f4").astype(np.float32)
    if not len(ids) or int(ids.max()) <= _I64_MAX:
        return ids.astype(np.int64), scores
    return ids.astype(np.uint64), scores


def ids_scores(resp: pb.SearchResponse) -> Tuple[np.ndarray, np.ndarray]:
    """The ids and scores of one search, best first."""
    if resp.HasField("packed"):
        return _packed(resp)
    hits = resp.hits
    scores = np.array([h.score for h in hits], dtype=np.float32)
    return ids_array(_ids(hits)), scores


def ids_array(ids: List[Key]) -> np.ndarray:
    """Ids as ``int64``, ``uint64`` or ``object``, as the module explains."""
    if all(type(i) is int for i in ids):  # never let NumPy parse a str key such as "5"
        try:
            return np.array(ids, dtype=np.int64)
        except OverflowError:  # a key of 2**63 or more
            return np.array(ids, dtype=np.uint64)
    a = np.empty(len(ids), dtype=object)
    a[:] = ids
    return a


def ids_scores_matrix(resps: Sequence[pb.SearchResponse], k: int) -> Tuple[np.ndarray, np.ndarray]:
    """The ids and scores of many searches as ``(len(resps), k)`` arrays, padded."""
    if all(r.HasField("packed") for r in resps):
        ids = np.full((len(resps), k), -1, dtype=np.int64)
        scores = np.full((len(resps), k), np.nan, dtype=np.float32)
        for i, r in enumerate(resps):
            row_ids, row_scores = _packed(r)
            if row_ids.dtype != np.int64:
                break  # a key of 2**63 or more: the general path below
            ids[i, : len(row_ids)] = row_ids
            scores[i, : len(row_scores)] = row_scores
        else:
            return ids, scores
        resps = [_unpacked(r) for r in resps]
    rows = [_ids(r.hits) for r in resps]
    scores = np.full((len(resps), k), np.nan, dtype=np.float32)
    for i, r in enumerate(resps):
        scores[i, : len(r.hits)] = [h.score for h in r.hits]
    flat = [i for row in rows for i in row]
    ints = [i for i in flat if type(i) is int]
    if len(ints) == len(flat) and (not ints or max(ints) <= _I64_MAX):
        ids = np.full((len(resps), k), -1, dtype=np.int64)
    else:
        ids = np.full((len(resps), k), None, dtype=object)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return ids, scores


def _unpacked(resp: pb.SearchResponse) -> pb.SearchResponse:
    """Packed hits as Hit messages (only for the rare keys of 2**63 or more)."""
    if not resp.HasField("packed"):
        return resp
    ids = np.frombuffer(resp.packed.ids_u64le, dtype="<u8").tolist()
    scores = np.frombuffer(resp.packed.scores_f32le, dtype="<f4").tolist()
    return pb.SearchResponse(
        hits=[pb.Hit(key=pb.Key(int=i), score=s) for i, s in zip(ids, scores)],
        coverage=resp.coverage,
    )


def hits(resp: pb.SearchResponse) -> List[Hit]:
    """The hits of one search, with whatever metadata, payload and vectors were asked for."""
    resp = _unpacked(resp)
    return [
        Hit(
            id=key_py(h.key),
            score=h.score,
            metadata=metadata_py(h.metadata),
            payload=h.payload or None,
            vector=np.array(h.vector, dtype=np.float32) if len(h.vector) else None,
        )
        for h in resp.hits
    ]
