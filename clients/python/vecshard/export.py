"""Points as a pandas DataFrame or an Arrow table. pandas and pyarrow are optional
(``pip install vecshard[pandas]`` / ``vecshard[arrow]``) and imported only here."""
from __future__ import annotations

import json
from typing import Any, Iterable, List

import numpy as np

from .types import Point


def _need(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"this needs {module}: pip install 'vecshard[{extra}]'") from None


def to_pandas(points: Iterable[Point]) -> Any:
    """A DataFrame with one row per point: ``id`` (int or str), ``vector`` (float32
    arrays), ``metadata`` (dicts) and ``payload`` (bytes or None)."""
    pd = _need("pandas", "pandas")
    pts = list(points)
    return pd.DataFrame(
        {
            "id": [p.id for p in pts],
            "vector": [p.vector for p in pts],
            "metadata": [p.metadata for p in pts],
            "payload": [p.payload for p in pts],
        },
        columns=["id", "vector", "metadata", "payload"],
    )


def to_arrow(points: Iterable[Point]) -> Any:
    """A ``pyarrow.Table``: ``id`` (uint64 when every key is an integer, else string with
    integer keys written in decimal), ``vector`` (fixed-size list of float32), ``metadata``
    (JSON text, since values differ in type between points) and ``payload`` (binary)."""
    pa = _need("pyarrow", "arrow")
    pts = list(points)
    ids: List[Any] = [p.id for p in pts]
    if all(type(i) is int for i in ids):
        id_col = pa.array(ids, type=pa.uint64())
    else:
        id_col = pa.array([str(i) for i in ids], type=pa.string())
    dim = len(pts[0].vector) if pts else 0
    flat = np.concatenate([p.vector for p in pts]) if pts else np.empty(0, dtype=np.float32)
    vec_col = pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), dim)
    meta_col = pa.array([json.dumps(p.metadata) for p in pts], type=pa.string())
    payload_col = pa.array([p.payload for p in pts], type=pa.binary())
    return pa.table({"id": id_col, "vector": vec_col, "metadata": meta_col, "payload": payload_col})
