"""The synchronous client."""
from __future__ import annotations

from typing import Any, Iterator, List, Optional, Sequence, Tuple

import grpc
import numpy as np

from . import conversions, export, fast, requests, results
from .channel import TlsLike, call_metadata, credentials, options
from .conversions import FilterLike, vector_array
from .errors import from_rpc_error, invalid
from .progress import Progress, ProgressLike
from .types import CollectionDescription, CollectionInfo, Hit, Point
from .v1 import vecshard_pb2 as pb
from .v1 import vecshard_pb2_grpc as pb_grpc

_F32 = np.dtype(np.float32)
_LE = np.little_endian


class Client:
    """A client of a vecshard cluster, over one gRPC channel to a router.

    ``address`` is the router's gRPC ``host:port``. ``api_key`` is sent with every call
    when the router needs one; ``tls`` is ``None`` (plaintext), ``True`` (system roots),
    a PEM root certificate (path or bytes) or ``grpc.ChannelCredentials``. ``timeout`` is
    the default deadline of a call in seconds (every method takes its own ``timeout``
    too). Failures raise :class:`~vecshard.VecshardError` subclasses carrying the server's
    code and message. Thread-safe: share one client between threads.

    ``rest`` is the router's REST address (``http://host:port``, or ``https://`` with
    ``tls`` True or a PEM root certificate); when given, :meth:`search` of one vector goes
    through the router's binary REST search (packed float32 in, packed hits out, over
    keep-alive connections) instead of gRPC, which costs the client several times less
    CPU per query. Everything else still goes over gRPC.

    >>> with Client("127.0.0.1:7000") as c:                       # doctest: +SKIP
    ...     c.create_collection("docs", dimension=3, metric="cosine")
    ...     c.upsert("docs", ids=[1, 2], vectors=[[1, 0, 0], [0, 1, 0]])
    ...     ids, scores = c.search("docs", [1, 0.1, 0], k=1)
    """

    def __init__(
        self,
        address: str = "127.0.0.1:7000",
        api_key: Optional[str] = None,
        tls: TlsLike = None,
        timeout: Optional[float] = 60.0,
        channel_options: Optional[Sequence[Tuple[str, Any]]] = None,
        rest: Optional[str] = None,
    ) -> None:
        self._rest = fast.RestSearch(rest, api_key, tls) if rest else None
        creds = credentials(tls)
        opts = options(channel_options)
        self._channel = (
            grpc.secure_channel(address, creds, opts) if creds else grpc.insecure_channel(address, opts)
        )
        self._stub = pb_grpc.VecShardStub(self._channel)
        self._search_one = fast.GrpcSearch(self._channel)
        self._md = call_metadata(api_key)
        self._timeout = timeout
        self.address = address

    def close(self) -> None:
        """Close the channel (and the REST connections)."""
        if self._rest is not None:
            self._rest.close()
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, method: Any, request: Any, timeout: Optional[float]) -> Any:
        try:
            return method(request, timeout=self._timeout if timeout is None else timeout, metadata=self._md)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    # ---- collections
    def create_collection(
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
        """Create a collection and place its shards; returns its settings with defaults
        filled in.

        ``metric``: ``"l2"``, ``"cosine"`` or ``"dot"``. ``shard_count`` 0 takes the
        cluster's default. ``storage``: ``"local"`` (default) or an object-store URL the
        cluster allows (``s3://bucket/prefix``). ``m``, ``ef_construction``,
        ``ef_search``: index parameters (unset: the server's defaults).
        ``replication_factor`` (``local`` storage only; 0 or 1: one copy): copies of every
        shard on distinct nodes; ``write_ack``: ``"majority"`` (default) or ``"all"`` of
        the in-sync replicas must hold a write before it is acknowledged. Raises
        :class:`~vecshard.AlreadyExists` if the name is taken, and
        :class:`~vecshard.FailedPrecondition` when fewer nodes are alive than the factor
        (or the cluster does not allow replication)."""
        req = requests.create_collection(
            name, dimension, metric, shard_count, storage, m, ef_construction, ef_search, replication_factor, write_ack
        )
        return conversions.collection_info(self._call(self._stub.CreateCollection, req, timeout).spec)

    def list_collections(self, *, timeout: Optional[float] = None) -> List[CollectionInfo]:
        """Every collection's settings, ordered by name."""
        r = self._call(self._stub.ListCollections, pb.ListCollectionsRequest(), timeout)
        return [conversions.collection_info(s) for s in r.collections]

    def describe_collection(self, name: str, *, timeout: Optional[float] = None) -> CollectionDescription:
        """A collection's settings and its shards (owner, state, point count). Raises
        :class:`~vecshard.NotFound` for an unknown collection."""
        r = self._call(self._stub.DescribeCollection, pb.DescribeCollectionRequest(name=name), timeout)
        return conversions.collection_description(r)

    def drop_collection(self, name: str, *, timeout: Optional[float] = None) -> None:
        """Drop a collection and delete its data."""
        self._call(self._stub.DropCollection, pb.DropCollectionRequest(name=name), timeout)

    # ---- points
    def upsert(
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
        """Insert or replace points; returns how many were written (all durable).

        ``ids``: a sequence or 1-D array of keys (unsigned 64-bit ints or strings).
        ``vectors``: a 2-D array or list of lists, one row per id. ``metadata``: one dict
        per point (values: int, float, str, bool, list of str) or ``None``.
        ``payload``: one per point: bytes, a str, or anything JSON-serialisable (stored as
        JSON). Points go in batches of ``batch_size``; ``progress`` is ``True`` for a line
        on stderr or a callable ``f(done, total)``. If a batch fails the error is raised
        and earlier batches stay written: upserts are idempotent, so retry the call."""
        total, batches = requests.upsert_batches(collection, ids, vectors, metadata, payload, batch_size)
        bar = Progress(total, progress)
        for req, n in batches:
            self._call(self._stub.Upsert, req, timeout)
            bar.add(n)
        return total

    def get(self, collection: str, ids: Any, *, timeout: Optional[float] = None) -> List[Point]:
        """The stored points for ``ids``, in their order; keys not stored are left out."""
        out: List[Point] = []
        for keys in requests.key_batches(ids):
            r = self._call(self._stub.Get, pb.GetRequest(collection=collection, keys=keys), timeout)
            out.extend(conversions.point_py(p) for p in r.points)
        return out

    def delete(self, collection: str, ids: Any, *, timeout: Optional[float] = None) -> None:
        """Delete points by key (keys not stored are ignored); durable when it returns."""
        for keys in requests.key_batches(ids):
            self._call(self._stub.Delete, pb.DeleteRequest(collection=collection, keys=keys), timeout)

    def scan(self, collection: str, *, page_size: int = 1000, timeout: Optional[float] = None) -> Iterator[Point]:
        """Every point of a collection, page by page (shard by shard, in key order within
        a shard). Not a snapshot: points written meanwhile may or may not appear, but each
        point stored throughout appears exactly once. ``timeout`` applies per page."""
        cursor = ""
        while True:
            req = pb.ScanRequest(collection=collection, cursor=cursor, limit=page_size)
            r = self._call(self._stub.Scan, req, timeout)
            for p in r.points:
                yield conversions.point_py(p)
            cursor = r.next_cursor
            if not cursor:
                return

    # ---- search
    def search(
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
        """The ``k`` nearest points: ``(ids, scores)`` NumPy arrays, best first.

        ``query``: one vector (1-D; results are 1-D, at most ``k`` long) or a matrix of
        queries (2-D; results are ``(n, k)``, padded with id -1 / score NaN where fewer
        than ``k`` points match). ``filter``: a dict in the REST API's JSON grammar, e.g.
        ``{"and": [{"field": "color", "eq": "red"}, {"field": "price", "range": {"lt": 20}}]}``.
        ``ef``: search width (higher: better recall, slower). ``exact``: brute force.
        ``allow_partial``: return what the reachable shards found instead of failing.
        ``offset``: skip that many of the best hits (paging; ``k + offset`` at most 10000).
        Scores: squared distance for l2 (lower is better), similarity otherwise. Ids:
        ``int64`` for integer keys, ``object`` when there are string keys. A matrix goes
        in one ``SearchBatch`` call per 1024 rows; vectors and results travel packed.
        One vector goes over REST when the client has a ``rest`` address (and ``filter``
        is not a ``Filter`` message)."""
        q = query if type(query) is np.ndarray and query.dtype == _F32 else vector_array(query, "the query")
        if q.ndim == 1:
            vec = q.tobytes() if _LE else q.astype("<f4").tobytes()
            t = self._timeout if timeout is None else timeout
            rest = self._rest
            if rest is not None and not isinstance(filter, pb.Filter):
                return rest(rest.head(collection, len(vec), k, filter, ef, exact, allow_partial, offset, t) + vec, t)
            one = self._search_one
            req = one.head(collection, len(vec), k, filter, ef, exact, allow_partial, offset) + vec
            try:
                return one(req, t, self._md)
            except grpc.RpcError as e:
                raise from_rpc_error(e) from None
        reqs, single = requests.search_requests(
            collection, query, k, filter, ef, exact, allow_partial, offset=offset
        )
        if single:
            return results.ids_scores(self._call(self._stub.Search, reqs[0], timeout))
        return results.ids_scores_matrix(self._search_batches(reqs, timeout), int(k))

    def _search_batches(
        self, batches: List[pb.SearchBatchRequest], timeout: Optional[float]
    ) -> List[pb.SearchResponse]:
        out: List[pb.SearchResponse] = []
        for b in batches:
            out.extend(self._call(self._stub.SearchBatch, b, timeout).results)
        return out

    def search_by_id(
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
        """"More like this": the ``k`` points nearest to the stored point ``id``, without
        the point itself, as ``(ids, scores)`` like :meth:`search`. Raises
        :class:`~vecshard.NotFound` when no point has that id."""
        req = requests.search_by_id_request(collection, id, k, filter, ef, exact, allow_partial, offset)
        return results.ids_scores(self._call(self._stub.Search, req, timeout))

    def count(self, collection: str, *, filter: FilterLike = None, timeout: Optional[float] = None) -> int:
        """The number of points stored, or of those matching ``filter`` (the grammar of
        :meth:`search`)."""
        r = self._call(self._stub.Count, requests.count_request(collection, filter), timeout)
        return int(r.count)

    def search_hits(
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
        """Like :meth:`search` for one vector, returning :class:`~vecshard.Hit` objects
        with the points' metadata and payload (and vectors if asked)."""
        reqs, single = requests.search_requests(
            collection, vector, k, filter, ef, exact, allow_partial,
            with_metadata=with_metadata, with_payload=with_payload, with_vector=with_vector,
        )
        if not single:
            raise invalid("search_hits takes one vector; use search for a matrix")
        return results.hits(self._call(self._stub.Search, reqs[0], timeout))

    # ---- export and status
    def export_to_pandas(self, collection: str, *, page_size: int = 1000) -> Any:
        """Every point as a ``pandas.DataFrame`` with columns ``id``, ``vector``,
        ``metadata`` (dicts) and ``payload`` (needs ``pip install vecshard[pandas]``)."""
        return export.to_pandas(self.scan(collection, page_size=page_size))

    def export_to_arrow(self, collection: str, *, page_size: int = 1000) -> Any:
        """Every point as a ``pyarrow.Table`` (needs ``pip install vecshard[arrow]``); see
        :func:`vecshard.export.to_arrow` for the schema."""
        return export.to_arrow(self.scan(collection, page_size=page_size))

    def cluster_status(self, *, timeout: Optional[float] = None) -> pb.ClusterStatusResponse:
        """The cluster's routers, nodes and shard placements (the protobuf message)."""
        return self._call(self._stub.ClusterStatus, pb.ClusterStatusRequest(), timeout)

    # ---- backups (admin key; locations under the router's backup_locations)
    def create_backup(
        self,
        collection: str,
        to: str,
        *,
        wait: bool = True,
        timeout_s: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> pb.BackupJob:
        """Back up ``collection`` to ``to`` (``s3://bucket/prefix`` or an absolute
        directory). With ``wait`` (the default) return the finished job (its ``backup``
        field is the manifest; a failure raises); otherwise the running job, to poll with
        :meth:`backup_job`. ``timeout_s`` bounds the backup (server default 3600 s); give
        a ``timeout`` (the call's deadline) long enough when waiting."""
        r = requests.create_backup(collection, to, wait, timeout_s)
        return self._call(self._stub.CreateBackup, r, timeout)

    def backup_job(self, job_id: str, *, timeout: Optional[float] = None) -> pb.BackupJob:
        """A backup or restore job of the router this client talks to: state and progress."""
        return self._call(self._stub.GetBackupJob, pb.GetBackupJobRequest(id=job_id), timeout)

    def list_backups(self, location: str, *, timeout: Optional[float] = None) -> List[pb.BackupSummary]:
        """The backup at ``location`` and every backup directly under it, with statuses."""
        return list(self._call(self._stub.ListBackups, pb.ListBackupsRequest(location=location), timeout).backups)

    def describe_backup(self, location: str, *, timeout: Optional[float] = None) -> pb.DescribeBackupResponse:
        """One backup: ``backup`` (status) and, when complete, ``manifest``."""
        return self._call(self._stub.DescribeBackup, pb.DescribeBackupRequest(location=location), timeout)

    def restore_backup(
        self,
        location: str,
        as_collection: str,
        *,
        storage: Optional[str] = None,
        wait: bool = True,
        timeout_s: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> pb.BackupJob:
        """Restore the complete backup at ``location`` as the new collection
        ``as_collection`` (optionally on other ``storage``). ``wait`` as for
        :meth:`create_backup`; the finished job's ``restore`` field says what was restored."""
        r = requests.restore_backup(location, as_collection, storage, wait, timeout_s)
        return self._call(self._stub.RestoreBackup, r, timeout)

    def delete_backup(self, location: str, *, timeout: Optional[float] = None) -> int:
        """Delete the backup at ``location`` (its files only); the number of files deleted."""
        return self._call(self._stub.DeleteBackup, pb.DeleteBackupRequest(location=location), timeout).files_deleted
