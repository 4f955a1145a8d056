from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Metric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_UNSPECIFIED: _ClassVar[Metric]
    METRIC_L2: _ClassVar[Metric]
    METRIC_COSINE: _ClassVar[Metric]
    METRIC_DOT: _ClassVar[Metric]

class ShardState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHARD_STATE_UNSPECIFIED: _ClassVar[ShardState]
    SHARD_STATE_UNASSIGNED: _ClassVar[ShardState]
    SHARD_STATE_OPENING: _ClassVar[ShardState]
    SHARD_STATE_SERVING: _ClassVar[ShardState]
    SHARD_STATE_FENCED: _ClassVar[ShardState]
    SHARD_STATE_FAILED: _ClassVar[ShardState]
    SHARD_STATE_CLOSED: _ClassVar[ShardState]
    SHARD_STATE_UNAVAILABLE: _ClassVar[ShardState]

class NodeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_STATE_UNSPECIFIED: _ClassVar[NodeState]
    NODE_STATE_JOINING: _ClassVar[NodeState]
    NODE_STATE_ALIVE: _ClassVar[NodeState]
    NODE_STATE_DOWN: _ClassVar[NodeState]

class BackupJobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKUP_JOB_STATE_UNSPECIFIED: _ClassVar[BackupJobState]
    BACKUP_JOB_STATE_RUNNING: _ClassVar[BackupJobState]
    BACKUP_JOB_STATE_DONE: _ClassVar[BackupJobState]
    BACKUP_JOB_STATE_FAILED: _ClassVar[BackupJobState]

class BackupStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKUP_STATUS_UNSPECIFIED: _ClassVar[BackupStatus]
    BACKUP_STATUS_COMPLETE: _ClassVar[BackupStatus]
    BACKUP_STATUS_INCOMPLETE: _ClassVar[BackupStatus]
    BACKUP_STATUS_FAILED: _ClassVar[BackupStatus]
    BACKUP_STATUS_CORRUPT: _ClassVar[BackupStatus]
METRIC_UNSPECIFIED: Metric
METRIC_L2: Metric
METRIC_COSINE: Metric
METRIC_DOT: Metric
SHARD_STATE_UNSPECIFIED: ShardState
SHARD_STATE_UNASSIGNED: ShardState
SHARD_STATE_OPENING: ShardState
SHARD_STATE_SERVING: ShardState
SHARD_STATE_FENCED: ShardState
SHARD_STATE_FAILED: ShardState
SHARD_STATE_CLOSED: ShardState
SHARD_STATE_UNAVAILABLE: ShardState
NODE_STATE_UNSPECIFIED: NodeState
NODE_STATE_JOINING: NodeState
NODE_STATE_ALIVE: NodeState
NODE_STATE_DOWN: NodeState
BACKUP_JOB_STATE_UNSPECIFIED: BackupJobState
BACKUP_JOB_STATE_RUNNING: BackupJobState
BACKUP_JOB_STATE_DONE: BackupJobState
BACKUP_JOB_STATE_FAILED: BackupJobState
BACKUP_STATUS_UNSPECIFIED: BackupStatus
BACKUP_STATUS_COMPLETE: BackupStatus
BACKUP_STATUS_INCOMPLETE: BackupStatus
BACKUP_STATUS_FAILED: BackupStatus
BACKUP_STATUS_CORRUPT: BackupStatus

class Key(_message.Message):
    __slots__ = ("int", "str")
    INT_FIELD_NUMBER: _ClassVar[int]
    STR_FIELD_NUMBER: _ClassVar[int]
    int: int
    str: str
    def __init__(self, int: _Optional[int] = ..., str: _Optional[str] = ...) -> None: ...

class StringList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class Value(_message.Message):
    __slots__ = ("int_value", "float_value", "string_value", "bool_value", "string_list_value")
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    int_value: int
    float_value: float
    string_value: str
    bool_value: bool
    string_list_value: StringList
    def __init__(self, int_value: _Optional[int] = ..., float_value: _Optional[float] = ..., string_value: _Optional[str] = ..., bool_value: _Optional[bool] = ..., string_list_value: _Optional[_Union[StringList, _Mapping]] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("key", "vector", "metadata", "payload", "vector_f32le")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    VECTOR_F32LE_FIELD_NUMBER: _ClassVar[int]
    key: Key
    vector: _containers.RepeatedScalarFieldContainer[float]
    metadata: _containers.MessageMap[str, Value]
    payload: bytes
    vector_f32le: bytes
    def __init__(self, key: _Optional[_Union[Key, _Mapping]] = ..., vector: _Optional[_Iterable[float]] = ..., metadata: _Optional[_Mapping[str, Value]] = ..., payload: _Optional[bytes] = ..., vector_f32le: _Optional[bytes] = ...) -> None: ...

class IndexParams(_message.Message):
    __slots__ = ("m", "ef_construction", "ef_search")
    M_FIELD_NUMBER: _ClassVar[int]
    EF_CONSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    EF_SEARCH_FIELD_NUMBER: _ClassVar[int]
    m: int
    ef_construction: int
    ef_search: int
    def __init__(self, m: _Optional[int] = ..., ef_construction: _Optional[int] = ..., ef_search: _Optional[int] = ...) -> None: ...

class CollectionSpec(_message.Message):
    __slots__ = ("name", "dimension", "metric", "shard_count", "storage", "index", "replication_factor", "write_ack")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    WRITE_ACK_FIELD_NUMBER: _ClassVar[int]
    name: str
    dimension: int
    metric: Metric
    shard_count: int
    storage: str
    index: IndexParams
    replication_factor: int
    write_ack: str
    def __init__(self, name: _Optional[str] = ..., dimension: _Optional[int] = ..., metric: _Optional[_Union[Metric, str]] = ..., shard_count: _Optional[int] = ..., storage: _Optional[str] = ..., index: _Optional[_Union[IndexParams, _Mapping]] = ..., replication_factor: _Optional[int] = ..., write_ack: _Optional[str] = ...) -> None: ...

class CreateCollectionRequest(_message.Message):
    __slots__ = ("name", "dimension", "metric", "shard_count", "storage", "index", "replication_factor", "write_ack")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    WRITE_ACK_FIELD_NUMBER: _ClassVar[int]
    name: str
    dimension: int
    metric: Metric
    shard_count: int
    storage: str
    index: IndexParams
    replication_factor: int
    write_ack: str
    def __init__(self, name: _Optional[str] = ..., dimension: _Optional[int] = ..., metric: _Optional[_Union[Metric, str]] = ..., shard_count: _Optional[int] = ..., storage: _Optional[str] = ..., index: _Optional[_Union[IndexParams, _Mapping]] = ..., replication_factor: _Optional[int] = ..., write_ack: _Optional[str] = ...) -> None: ...

class CreateCollectionResponse(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: CollectionSpec
    def __init__(self, spec: _Optional[_Union[CollectionSpec, _Mapping]] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[CollectionSpec]
    def __init__(self, collections: _Optional[_Iterable[_Union[CollectionSpec, _Mapping]]] = ...) -> None: ...

class DescribeCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ShardInfo(_message.Message):
    __slots__ = ("number", "owner_node", "epoch", "state", "live_points")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    OWNER_NODE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LIVE_POINTS_FIELD_NUMBER: _ClassVar[int]
    number: int
    owner_node: str
    epoch: int
    state: ShardState
    live_points: int
    def __init__(self, number: _Optional[int] = ..., owner_node: _Optional[str] = ..., epoch: _Optional[int] = ..., state: _Optional[_Union[ShardState, str]] = ..., live_points: _Optional[int] = ...) -> None: ...

class DescribeCollectionResponse(_message.Message):
    __slots__ = ("spec", "shards")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    spec: CollectionSpec
    shards: _containers.RepeatedCompositeFieldContainer[ShardInfo]
    def __init__(self, spec: _Optional[_Union[CollectionSpec, _Mapping]] = ..., shards: _Optional[_Iterable[_Union[ShardInfo, _Mapping]]] = ...) -> None: ...

class DropCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DropCollectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpsertRequest(_message.Message):
    __slots__ = ("collection", "points")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    points: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, collection: _Optional[str] = ..., points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class UpsertResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("collection", "keys")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    keys: _containers.RepeatedCompositeFieldContainer[Key]
    def __init__(self, collection: _Optional[str] = ..., keys: _Optional[_Iterable[_Union[Key, _Mapping]]] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("collection", "keys")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    keys: _containers.RepeatedCompositeFieldContainer[Key]
    def __init__(self, collection: _Optional[str] = ..., keys: _Optional[_Iterable[_Union[Key, _Mapping]]] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class ScanRequest(_message.Message):
    __slots__ = ("collection", "cursor", "limit")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    cursor: str
    limit: int
    def __init__(self, collection: _Optional[str] = ..., cursor: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ScanResponse(_message.Message):
    __slots__ = ("points", "next_cursor")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[Point]
    next_cursor: str
    def __init__(self, points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("condition",)
    AND_FIELD_NUMBER: _ClassVar[int]
    OR_FIELD_NUMBER: _ClassVar[int]
    NOT_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    condition: Condition
    def __init__(self, condition: _Optional[_Union[Condition, _Mapping]] = ..., **kwargs) -> None: ...

class FilterList(_message.Message):
    __slots__ = ("filters",)
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    filters: _containers.RepeatedCompositeFieldContainer[Filter]
    def __init__(self, filters: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ...) -> None: ...

class Condition(_message.Message):
    __slots__ = ("field", "eq", "ne", "range", "exists")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    EQ_FIELD_NUMBER: _ClassVar[int]
    NE_FIELD_NUMBER: _ClassVar[int]
    IN_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    field: str
    eq: Value
    ne: Value
    range: Range
    exists: bool
    def __init__(self, field: _Optional[str] = ..., eq: _Optional[_Union[Value, _Mapping]] = ..., ne: _Optional[_Union[Value, _Mapping]] = ..., range: _Optional[_Union[Range, _Mapping]] = ..., exists: _Optional[bool] = ..., **kwargs) -> None: ...

class ValueList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class Range(_message.Message):
    __slots__ = ("gt", "gte", "lt", "lte")
    GT_FIELD_NUMBER: _ClassVar[int]
    GTE_FIELD_NUMBER: _ClassVar[int]
    LT_FIELD_NUMBER: _ClassVar[int]
    LTE_FIELD_NUMBER: _ClassVar[int]
    gt: Value
    gte: Value
    lt: Value
    lte: Value
    def __init__(self, gt: _Optional[_Union[Value, _Mapping]] = ..., gte: _Optional[_Union[Value, _Mapping]] = ..., lt: _Optional[_Union[Value, _Mapping]] = ..., lte: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("collection", "vector", "k", "filter", "filter_json", "ef", "exact", "with_metadata", "with_payload", "with_vector", "allow_partial", "timeout_ms", "vector_f32le", "query_key", "offset", "packed_hits")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    FILTER_JSON_FIELD_NUMBER: _ClassVar[int]
    EF_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    WITH_METADATA_FIELD_NUMBER: _ClassVar[int]
    WITH_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    WITH_VECTOR_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_F32LE_FIELD_NUMBER: _ClassVar[int]
    QUERY_KEY_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    PACKED_HITS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    k: int
    filter: Filter
    filter_json: str
    ef: int
    exact: bool
    with_metadata: bool
    with_payload: bool
    with_vector: bool
    allow_partial: bool
    timeout_ms: int
    vector_f32le: bytes
    query_key: Key
    offset: int
    packed_hits: bool
    def __init__(self, collection: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ..., k: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., filter_json: _Optional[str] = ..., ef: _Optional[int] = ..., exact: _Optional[bool] = ..., with_metadata: _Optional[bool] = ..., with_payload: _Optional[bool] = ..., with_vector: _Optional[bool] = ..., allow_partial: _Optional[bool] = ..., timeout_ms: _Optional[int] = ..., vector_f32le: _Optional[bytes] = ..., query_key: _Optional[_Union[Key, _Mapping]] = ..., offset: _Optional[int] = ..., packed_hits: _Optional[bool] = ...) -> None: ...

class PackedHits(_message.Message):
    __slots__ = ("ids_u64le", "scores_f32le")
    IDS_U64LE_FIELD_NUMBER: _ClassVar[int]
    SCORES_F32LE_FIELD_NUMBER: _ClassVar[int]
    ids_u64le: bytes
    scores_f32le: bytes
    def __init__(self, ids_u64le: _Optional[bytes] = ..., scores_f32le: _Optional[bytes] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("key", "score", "metadata", "payload", "vector")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    key: Key
    score: float
    metadata: _containers.MessageMap[str, Value]
    payload: bytes
    vector: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, key: _Optional[_Union[Key, _Mapping]] = ..., score: _Optional[float] = ..., metadata: _Optional[_Mapping[str, Value]] = ..., payload: _Optional[bytes] = ..., vector: _Optional[_Iterable[float]] = ...) -> None: ...

class Coverage(_message.Message):
    __slots__ = ("shards_total", "shards_answered", "missing_shards")
    SHARDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SHARDS_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    MISSING_SHARDS_FIELD_NUMBER: _ClassVar[int]
    shards_total: int
    shards_answered: int
    missing_shards: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, shards_total: _Optional[int] = ..., shards_answered: _Optional[int] = ..., missing_shards: _Optional[_Iterable[int]] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits", "coverage", "packed")
    HITS_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    PACKED_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    coverage: Coverage
    packed: PackedHits
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ..., coverage: _Optional[_Union[Coverage, _Mapping]] = ..., packed: _Optional[_Union[PackedHits, _Mapping]] = ...) -> None: ...

class SearchBatchRequest(_message.Message):
    __slots__ = ("collection", "searches", "allow_partial", "timeout_ms")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SEARCHES_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    searches: _containers.RepeatedCompositeFieldContainer[SearchRequest]
    allow_partial: bool
    timeout_ms: int
    def __init__(self, collection: _Optional[str] = ..., searches: _Optional[_Iterable[_Union[SearchRequest, _Mapping]]] = ..., allow_partial: _Optional[bool] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class SearchBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SearchResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[SearchResponse, _Mapping]]] = ...) -> None: ...

class CountRequest(_message.Message):
    __slots__ = ("collection", "filter", "filter_json")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    FILTER_JSON_FIELD_NUMBER: _ClassVar[int]
    collection: str
    filter: Filter
    filter_json: str
    def __init__(self, collection: _Optional[str] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., filter_json: _Optional[str] = ...) -> None: ...

class CountResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ClusterStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RouterInfo(_message.Message):
    __slots__ = ("id", "address", "leader")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    id: int
    address: str
    leader: bool
    def __init__(self, id: _Optional[int] = ..., address: _Optional[str] = ..., leader: _Optional[bool] = ...) -> None: ...

class ShardRef(_message.Message):
    __slots__ = ("collection", "number")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    collection: str
    number: int
    def __init__(self, collection: _Optional[str] = ..., number: _Optional[int] = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("id", "address", "state", "last_heartbeat_ms_ago", "shards", "zone")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_MS_AGO_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    state: NodeState
    last_heartbeat_ms_ago: int
    shards: _containers.RepeatedCompositeFieldContainer[ShardRef]
    zone: str
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., state: _Optional[_Union[NodeState, str]] = ..., last_heartbeat_ms_ago: _Optional[int] = ..., shards: _Optional[_Iterable[_Union[ShardRef, _Mapping]]] = ..., zone: _Optional[str] = ...) -> None: ...

class ShardPlacement(_message.Message):
    __slots__ = ("collection", "number", "owner", "epoch", "readers", "state", "error", "replicas")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    READERS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    number: int
    owner: str
    epoch: int
    readers: _containers.RepeatedScalarFieldContainer[str]
    state: ShardState
    error: str
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaInfo]
    def __init__(self, collection: _Optional[str] = ..., number: _Optional[int] = ..., owner: _Optional[str] = ..., epoch: _Optional[int] = ..., readers: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[ShardState, str]] = ..., error: _Optional[str] = ..., replicas: _Optional[_Iterable[_Union[ReplicaInfo, _Mapping]]] = ...) -> None: ...

class ReplicaInfo(_message.Message):
    __slots__ = ("node", "role", "epoch", "in_sync", "lag_seqs", "lag_seconds")
    NODE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    LAG_SEQS_FIELD_NUMBER: _ClassVar[int]
    LAG_SECONDS_FIELD_NUMBER: _ClassVar[int]
    node: str
    role: str
    epoch: int
    in_sync: bool
    lag_seqs: int
    lag_seconds: float
    def __init__(self, node: _Optional[str] = ..., role: _Optional[str] = ..., epoch: _Optional[int] = ..., in_sync: _Optional[bool] = ..., lag_seqs: _Optional[int] = ..., lag_seconds: _Optional[float] = ...) -> None: ...

class ClusterStatusResponse(_message.Message):
    __slots__ = ("routers", "nodes", "shards")
    ROUTERS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    routers: _containers.RepeatedCompositeFieldContainer[RouterInfo]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    shards: _containers.RepeatedCompositeFieldContainer[ShardPlacement]
    def __init__(self, routers: _Optional[_Iterable[_Union[RouterInfo, _Mapping]]] = ..., nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ..., shards: _Optional[_Iterable[_Union[ShardPlacement, _Mapping]]] = ...) -> None: ...

class CreateBackupRequest(_message.Message):
    __slots__ = ("collection", "to", "timeout_s", "wait")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    to: str
    timeout_s: int
    wait: bool
    def __init__(self, collection: _Optional[str] = ..., to: _Optional[str] = ..., timeout_s: _Optional[int] = ..., wait: _Optional[bool] = ...) -> None: ...

class GetBackupJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class BackupJob(_message.Message):
    __slots__ = ("id", "kind", "location", "collection", "state", "shards_total", "shards_done", "bytes_done", "points_done", "elapsed_s", "backup", "restore", "error_code", "error_message")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SHARDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SHARDS_DONE_FIELD_NUMBER: _ClassVar[int]
    BYTES_DONE_FIELD_NUMBER: _ClassVar[int]
    POINTS_DONE_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    BACKUP_FIELD_NUMBER: _ClassVar[int]
    RESTORE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    location: str
    collection: str
    state: BackupJobState
    shards_total: int
    shards_done: int
    bytes_done: int
    points_done: int
    elapsed_s: float
    backup: BackupManifest
    restore: RestoreResult
    error_code: str
    error_message: str
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., location: _Optional[str] = ..., collection: _Optional[str] = ..., state: _Optional[_Union[BackupJobState, str]] = ..., shards_total: _Optional[int] = ..., shards_done: _Optional[int] = ..., bytes_done: _Optional[int] = ..., points_done: _Optional[int] = ..., elapsed_s: _Optional[float] = ..., backup: _Optional[_Union[BackupManifest, _Mapping]] = ..., restore: _Optional[_Union[RestoreResult, _Mapping]] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class BackupShard(_message.Message):
    __slots__ = ("shard", "path", "node", "epoch", "points", "bytes", "segments", "seq", "manifest_crc32c", "seconds")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_CRC32C_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    shard: int
    path: str
    node: str
    epoch: int
    points: int
    bytes: int
    segments: int
    seq: int
    manifest_crc32c: int
    seconds: float
    def __init__(self, shard: _Optional[int] = ..., path: _Optional[str] = ..., node: _Optional[str] = ..., epoch: _Optional[int] = ..., points: _Optional[int] = ..., bytes: _Optional[int] = ..., segments: _Optional[int] = ..., seq: _Optional[int] = ..., manifest_crc32c: _Optional[int] = ..., seconds: _Optional[float] = ...) -> None: ...

class BackupManifest(_message.Message):
    __slots__ = ("format", "collection", "incarnation", "shard_map_version", "shards", "points", "bytes", "started_ms", "created_ms", "crc32c", "partitioning_scheme")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    SHARD_MAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    STARTED_MS_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    PARTITIONING_SCHEME_FIELD_NUMBER: _ClassVar[int]
    format: int
    collection: CollectionSpec
    incarnation: int
    shard_map_version: int
    shards: _containers.RepeatedCompositeFieldContainer[BackupShard]
    points: int
    bytes: int
    started_ms: int
    created_ms: int
    crc32c: int
    partitioning_scheme: str
    def __init__(self, format: _Optional[int] = ..., collection: _Optional[_Union[CollectionSpec, _Mapping]] = ..., incarnation: _Optional[int] = ..., shard_map_version: _Optional[int] = ..., shards: _Optional[_Iterable[_Union[BackupShard, _Mapping]]] = ..., points: _Optional[int] = ..., bytes: _Optional[int] = ..., started_ms: _Optional[int] = ..., created_ms: _Optional[int] = ..., crc32c: _Optional[int] = ..., partitioning_scheme: _Optional[str] = ...) -> None: ...

class RestoreResult(_message.Message):
    __slots__ = ("collection", "location", "shard_count", "points", "bytes", "seconds")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    location: str
    shard_count: int
    points: int
    bytes: int
    seconds: float
    def __init__(self, collection: _Optional[str] = ..., location: _Optional[str] = ..., shard_count: _Optional[int] = ..., points: _Optional[int] = ..., bytes: _Optional[int] = ..., seconds: _Optional[float] = ...) -> None: ...

class ListBackupsRequest(_message.Message):
    __slots__ = ("location",)
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    location: str
    def __init__(self, location: _Optional[str] = ...) -> None: ...

class BackupSummary(_message.Message):
    __slots__ = ("location", "name", "status", "collection", "shard_count", "points", "bytes", "started_ms", "created_ms", "error")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    STARTED_MS_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    location: str
    name: str
    status: BackupStatus
    collection: str
    shard_count: int
    points: int
    bytes: int
    started_ms: int
    created_ms: int
    error: str
    def __init__(self, location: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[_Union[BackupStatus, str]] = ..., collection: _Optional[str] = ..., shard_count: _Optional[int] = ..., points: _Optional[int] = ..., bytes: _Optional[int] = ..., started_ms: _Optional[int] = ..., created_ms: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class ListBackupsResponse(_message.Message):
    __slots__ = ("backups",)
    BACKUPS_FIELD_NUMBER: _ClassVar[int]
    backups: _containers.RepeatedCompositeFieldContainer[BackupSummary]
    def __init__(self, backups: _Optional[_Iterable[_Union[BackupSummary, _Mapping]]] = ...) -> None: ...

class DescribeBackupRequest(_message.Message):
    __slots__ = ("location",)
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    location: str
    def __init__(self, location: _Optional[str] = ...) -> None: ...

class DescribeBackupResponse(_message.Message):
    __slots__ = ("backup", "manifest")
    BACKUP_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    backup: BackupSummary
    manifest: BackupManifest
    def __init__(self, backup: _Optional[_Union[BackupSummary, _Mapping]] = ..., manifest: _Optional[_Union[BackupManifest, _Mapping]] = ...) -> None: ...

class RestoreBackupRequest(_message.Message):
    __slots__ = ("location", "as_collection", "storage", "timeout_s", "wait")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    AS_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    location: str
    as_collection: str
    storage: str
    timeout_s: int
    wait: bool
    def __init__(self, location: _Optional[str] = ..., as_collection: _Optional[str] = ..., storage: _Optional[str] = ..., timeout_s: _Optional[int] = ..., wait: _Optional[bool] = ...) -> None: ...

class DeleteBackupRequest(_message.Message):
    __slots__ = ("location",)
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    location: str
    def __init__(self, location: _Optional[str] = ...) -> None: ...

class DeleteBackupResponse(_message.Message):
    __slots__ = ("location", "files_deleted")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    FILES_DELETED_FIELD_NUMBER: _ClassVar[int]
    location: str
    files_deleted: int
    def __init__(self, location: _Optional[str] = ..., files_deleted: _Optional[int] = ...) -> None: ...
