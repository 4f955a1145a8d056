"""The asyncio client (``grpc.aio``): the methods of :class:`~vecshard.Client`, awaited."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, List, Optional, Sequence, Tuple

import grpc
import numpy as np

from . import conversions, export, requests, results
from .channel import TlsLike, call_metadata, credentials, options
from .conversions import FilterLike
from .errors import from_rpc_error, invalid
from .progress import Progress, ProgressLike
from .types import CollectionDescription, CollectionInfo, Hit, Point
from .v1 import vecshard_pb2 as pb
from .v1 import vecshard_pb2_grpc as pb_grpc


class AsyncClient:
    """An asyncio client of a vecshard cluster; the same arguments and methods as
    :class:`~vecshard.Client` (see there), as coroutines, and :meth:`scan` an async
    iterator. Create it inside the event loop that uses it.

    >>> async with AsyncClient("127.0.0.1:7000") as c:            # doctest: +SKIP
    ...     ids, scores = await c.search("docs", [1, 0.1, 0], k=1)
    """

    def __init__(
        self,
        address: str = "127.0.0.1:7000",
        api_key: Optional[str] = None,
        tls: TlsLike = None,
        timeout: Optional[float] = 60.0,
        channel_options: Optional[Sequence[Tuple[str, Any]]] = None,
    ) -> None:
        creds = credentials(tls)
        opts = options(channel_options)
        self._channel = (
            grpc.aio.secure_channel(address, creds, opts) if creds else grpc.aio.insecure_channel(address, opts)
        )
        self._stub = pb_grpc.VecShardStub(self._channel)
        self._md = call_metadata(api_key)
        self._timeout = timeout
        self.address = address

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _call(self, method: Any, request: Any, timeout: Optional[float]) -> Any:
        try:
            return await method(request, timeout=self._timeout if timeout is None else timeout, metadata=self._md)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    # ---- collections
    async def create_collection(
        self,
        name: str,
        *,
        dimension: int,
        metric: str,
        shard_count: int = 0,
        storage: Optional[str] = None,
        m: Optional[int] = None,
        ef_construction: Optional[int] = None,
        ef_search: Optional[int] = None,
        replication_factor: int = 0,
        write_ack: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> CollectionInfo:
        """See :meth:`vecshard.Client.create_collection`."""
        req = requests.create_collection(
            name, dimension, metric, shard_count, storage, m, ef_construction, ef_search, replication_factor, write_ack
        )
        return conversions.collection_info((await self._call(self._stub.CreateCollection, req, timeout)).spec)

    async def list_collections(self, *, timeout: Optional[float] = None) -> List[CollectionInfo]:
        """See :meth:`vecshard.Client.list_collections`."""
        r = await self._call(self._stub.ListCollections, pb.ListCollectionsRequest(), timeout)
        return [conversions.collection_info(s) for s in r.collections]

    async def describe_collection(self, name: str, *, timeout: Optional[float] = None) -> CollectionDescription:
        """See :meth:`vecshard.Client.describe_collection`."""
        r = await self._call(self._stub.DescribeCollection, pb.DescribeCollectionRequest(name=name), timeout)
        return conversions.collection_description(r)

    async def drop_collection(self, name: str, *, timeout: Optional[float] = None) -> None:
        """See :meth:`vecshard.Client.drop_collection`."""
        await self._call(self._stub.DropCollection, pb.DropCollectionRequest(name=name), timeout)

    # ---- points
    async def upsert(
        self,
        collection: str,
        ids: Any,
        vectors: Any,
        metadata: Optional[Sequence[Any]] = None,
        payload: Optional[Sequence[Any]] = None,
        *,
        batch_size: int = 1000,
        progress: ProgressLike = False,
        timeout: Optional[float] = None,
    ) -> int:
        """See :meth:`vecshard.Client.upsert`."""
        total, batches = requests.upsert_batches(collection, ids, vectors, metadata, payload, batch_size)
        bar = Progress(total, progress)
        for req, n in batches:
            await self._call(self._stub.Upsert, req, timeout)
            bar.add(n)
        return total

    async def get(self, collection: str, ids: Any, *, timeout: Optional[float] = None) -> List[Point]:
        """See :meth:`vecshard.Client.get`."""
        out: List[Point] = []
        for keys in requests.key_batches(ids):
            r = await self._call(self._stub.Get, pb.GetRequest(collection=collection, keys=keys), timeout)
            out.extend(conversions.point_py(p) for p in r.points)
        return out

    async def delete(self, collection: str, ids: Any, *, timeout: Optional[float] = None) -> None:
        """See :meth:`vecshard.Client.delete`."""
        for keys in requests.key_batches(ids):
            await self._call(self._stub.Delete, pb.DeleteRequest(collection=collection, keys=keys), timeout)

    async def scan(
        self, collection: str, *, page_size: int = 1000, timeout: Optional[float] = None
    ) -> AsyncIterator[Point]:
        """See :meth:`vecshard.Client.scan`; use with ``async for``."""
        cursor = ""
        while True:
            req = pb.ScanRequest(collection=collection, cursor=cursor, limit=page_size)
            r = await self._call(self._stub.Scan, req, timeout)
            for p in r.points:
                yield conversions.point_py(p)
            cursor = r.next_cursor
            if not cursor:
                return

    # ---- search
    async def search(
        self,
        collection: str,
        query: Any,
        k: int = 10,
        *,
        filter: FilterLike = None,
        ef: Optional[int] = None,
        exact: bool = False,
        allow_partial: bool = False,
        offset: int = 0,
        timeout: Optional[float] = None,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """See :meth:`vecshard.Client.search`. A matrix goes in SearchBatch calls of up
        to 1024 rows, sent concurrently."""
        reqs, single = requests.search_requests(
            collection, query, k, filter, ef, exact, allow_partial, offset=offset
        )
        if single:
            return results.ids_scores(await self._call(self._stub.Search, reqs[0], timeout))
        return results.ids_scores_matrix(await self._search_batches(reqs, timeout), int(k))

    async def _search_batches(
        self, batches: List[pb.SearchBatchRequest], timeout: Optional[float]
    ) -> List[pb.SearchResponse]:
        answers = await asyncio.gather(*(self._call(self._stub.SearchBatch, b, timeout) for b in batches))
        return [r for a in answers for r in a.results]

    async def search_by_id(
        self,
        collection: str,
        id: Any,
        k: int = 10,
        *,
        filter: FilterLike = None,
        ef: Optional[int] = None,
        exact: bool = False,
        allow_partial: bool = False,
        offset: int = 0,
        timeout: Optional[float] = None,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """See :meth:`vecshard.Client.search_by_id`."""
        req = requests.search_by_id_request(collection, id, k, filter, ef, exact, allow_partial, offset)
        return results.ids_scores(await self._call(self._stub.Search, req, timeout))

    async def count(self, collection: str, *, filter: FilterLike = None, timeout: Optional[float] = None) -> int:
        """See :meth:`vecshard.Client.count`."""
        r = await self._call(self._stub.Count, requests.count_request(collection, filter), timeout)
        return int(r.count)

    async def search_hits(
        self,
        collection: str,
        vector: Any,
        k: int = 10,
        *,
        filter: FilterLike = None,
        ef: Optional[int] = None,
        exact: bool = False,
        with_metadata: bool = True,
        with_payload: bool = True,
        with_vector: bool = False,
        allow_partial: bool = False,
        timeout: Optional[float] = None,
    ) -> List[Hit]:
        """See :meth:`vecshard.Client.search_hits`."""
        reqs, single = requests.search_requests(
            collection, vector, k, filter, ef, exact, allow_partial,
            with_metadata=with_metadata, with_payload=with_payload, with_vector=with_vector,
        )
        if not single:
            raise invalid("search_hits takes one vector; use search for a matrix")
        return results.hits(await self._call(self._stub.Search, reqs[0], timeout))

    # ---- export and status
    async def _all(self, collection: str, page_size: int) -> List[Point]:
        return [p async for p in self.scan(collection, page_size=page_size)]

    async def export_to_pandas(self, collection: str, *, page_size: int = 1000) -> Any:
        """See :meth:`vecshard.Client.export_to_pandas`."""
        return export.to_pandas(await self._all(collection, page_size))

    async def export_to_arrow(self, collection: str, *, page_size: int = 1000) -> Any:
        """See :meth:`vecshard.Client.export_to_arrow`."""
        return export.to_arrow(await self._all(collection, page_size))

    async def cluster_status(self, *, timeout: Optional[float] = None) -> pb.ClusterStatusResponse:
        """See :meth:`vecshard.Client.cluster_status`."""
        return await self._call(self._stub.ClusterStatus, pb.ClusterStatusRequest(), timeout)

    async def create_backup(
        self,
        collection: str,
        to: str,
        *,
        wait: bool = True,
        timeout_s: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> pb.BackupJob:
        """See :meth:`vecshard.Client.create_backup`."""
        r = requests.create_backup(collection, to, wait, timeout_s)
        return await self._call(self._stub.CreateBackup, r, timeout)

    async def backup_job(self, job_id: str, *, timeout: Optional[float] = None) -> pb.BackupJob:
        """See :meth:`vecshard.Client.backup_job`."""
        return await self._call(self._stub.GetBackupJob, pb.GetBackupJobRequest(id=job_id), timeout)

    async def list_backups(self, location: str, *, timeout: Optional[float] = None) -> List[pb.BackupSummary]:
        """See :meth:`vecshard.Client.list_backups`."""
        r = await self._call(self._stub.ListBackups, pb.ListBackupsRequest(location=location), timeout)
        return list(r.backups)

    async def describe_backup(self, location: str, *, timeout: Optional[float] = None) -> pb.DescribeBackupResponse:
        """See :meth:`vecshard.Client.describe_backup`."""
        return await self._call(self._stub.DescribeBackup, pb.DescribeBackupRequest(location=location), timeout)

    async def restore_backup(
        self,
        location: str,
        as_collection: str,
        *,
        storage: Optional[str] = None,
        wait: bool = True,
        timeout_s: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> pb.BackupJob:
        """See :meth:`vecshard.Client.restore_backup`."""
        r = requests.restore_backup(location, as_collection, storage, wait, timeout_s)
        return await self._call(self._stub.RestoreBackup, r, timeout)

    async def delete_backup(self, location: str, *, timeout: Optional[float] = None) -> int:
        """See :meth:`vecshard.Client.delete_backup`."""
        r = await self._call(self._stub.DeleteBackup, pb.DeleteBackupRequest(location=location), timeout)
        return r.files_deleted
