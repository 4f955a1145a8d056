"""vecshard: a Python client for vecshard, a sharded vector search cluster.

>>> import numpy as np, vecshard                                  # doctest: +SKIP
>>> c = vecshard.Client("127.0.0.1:7000")
>>> c.create_collection("docs", dimension=64, metric="cosine")
>>> c.upsert("docs", ids=np.arange(1000), vectors=np.random.rand(1000, 64))
>>> ids, scores = c.search("docs", np.random.rand(64), k=5, filter={"field": "lang", "eq": "en"})
"""
from .aio import AsyncClient
from .client import Client
from .errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    VecshardError,
)
from .types import CollectionDescription, CollectionInfo, Hit, Point, ShardInfo

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "AsyncClient",
    "Client",
    "CollectionDescription",
    "CollectionInfo",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Hit",
    "InternalError",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "Point",
    "ResourceExhausted",
    "ShardInfo",
    "Unauthenticated",
    "Unavailable",
    "VecshardError",
]
