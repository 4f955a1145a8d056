"""The single-query search path: hand-assembled gRPC requests and the binary REST search
(`Client(rest=...)`) answer exactly what the protobuf-message path answers, and errors
keep the server's code and message."""
import socket
import threading

import numpy as np
import pytest

import vecshard
from conftest import unique_name
from vecshard import fast, requests, results
from vecshard.v1 import vecshard_pb2 as pb

N = 400
DIM = 8

# (k, search options): plain, ef, exact, offset, both filter forms, allow_partial
CASES = [
    (10, {}),
    (5, {"ef": 40}),
    (7, {"exact": True}),
    (10, {"offset": 10, "exact": True}),
    (10, {"filter": {"field": "color", "eq": "red"}, "exact": True}),
    (3, {"filter": '{"field": "price", "range": {"gte": 10, "lt": 50}}', "ef": 64}),
    (4, {"allow_partial": True}),
]


@pytest.fixture(scope="module")
def filled(client: vecshard.Client):
    name = unique_name("fast")
    client.create_collection(name, dimension=DIM, metric="l2", shard_count=2)
    vecs = np.random.default_rng(3).random((N, DIM), dtype=np.float32)
    meta = [{"color": ["red", "green", "blue"][i % 3], "price": i} for i in range(N)]
    client.upsert(name, ids=np.arange(N), vectors=vecs, metadata=meta)
    yield name, vecs
    client.drop_collection(name)


def message_path(client: vecshard.Client, coll: str, q, k: int, **kw):
    """The search as the client did it before the fast path: a SearchRequest message
    through the generated stub."""
    reqs, single = requests.search_requests(coll, q, k, kw.get("filter"), kw.get("ef"), kw.get("exact", False),
                                            kw.get("allow_partial", False), offset=kw.get("offset", 0))
    assert single
    return results.ids_scores(client._stub.Search(reqs[0], timeout=30))


def assert_same(got, want) -> None:
    (gi, gs), (wi, ws) = got, want
    assert gi.dtype == wi.dtype and gs.dtype == ws.dtype
    np.testing.assert_array_equal(gi, wi)
    np.testing.assert_array_equal(gs, ws)


@pytest.mark.parametrize("k, kw", CASES)
def test_grpc_and_rest_equal_the_message_path(client, rest_client, filled, k, kw) -> None:
    coll, vecs = filled
    rng = np.random.default_rng(k)
    for q in [vecs[11], rng.random(DIM, dtype=np.float32), rng.random(DIM).tolist()]:
        want = message_path(client, coll, q, k, **kw)
        assert len(want[0]) > 0
        assert_same(client.search(coll, q, k, **kw), want)
        assert_same(rest_client.search(coll, q, k, **kw), want)


def test_input_forms(client, rest_client, filled) -> None:
    coll, vecs = filled
    want = message_path(client, coll, vecs[5], 6)
    # float64, a strided view, big-endian float32 and a list: the same float32 query
    strided = np.repeat(vecs[5], 2)[::2]
    for q in (vecs[5].astype(np.float64), strided, vecs[5].astype(">f4"), vecs[5].tolist()):
        assert_same(client.search(coll, q, 6), want)
        assert_same(rest_client.search(coll, q, 6), want)
    ids, _ = rest_client.search(coll, vecs[5], 6)
    ids[0] = -7  # the arrays are the caller's own
    assert rest_client.search(coll, vecs[5], 6)[0][0] == 5


def test_string_and_large_keys(client, rest_client) -> None:
    name = unique_name("keys")
    client.create_collection(name, dimension=2, metric="l2", shard_count=1)
    try:
        client.upsert(name, ids=["a", "b"], vectors=[[0, 0], [1, 1]])
        client.upsert(name, ids=[2**63 + 5], vectors=[[0.1, 0.1]])
        for c in (client, rest_client):
            ids, scores = c.search(name, [0, 0], k=3, exact=True)
            assert ids.dtype == object and list(ids) == ["a", 2**63 + 5, "b"]
            np.testing.assert_allclose(scores, [0, 0.02, 2], rtol=1e-5)
        client.delete(name, ["a", "b"])
        for c in (client, rest_client):
            ids, _ = c.search(name, [0, 0], k=3)
            assert ids.dtype == np.uint64 and list(ids) == [2**63 + 5]
    finally:
        client.drop_collection(name)


def test_errors_carry_the_server_code_and_message(client, rest_client, filled) -> None:
    coll, _ = filled
    for c in (client, rest_client):
        with pytest.raises(vecshard.InvalidArgument) as e:
            c.search(coll, np.ones(5), k=1)
        assert e.value.message == (
            "query.vector_f32le: dimension 5 (20 bytes) does not match the collection's dimension 8"
        )
        with pytest.raises(vecshard.NotFound) as e:
            c.search("no_such_collection", np.ones(DIM), k=1)
        assert e.value.code == "NOT_FOUND" and "no_such_collection" in e.value.message
        with pytest.raises(vecshard.InvalidArgument, match="k"):
            c.search(coll, np.ones(DIM), k=0)
        with pytest.raises(vecshard.InvalidArgument, match=r"non-finite value \(NaN\) at index 2"):
            c.search(coll, [0, 0, np.nan, 0, 0, 0, 0, 0], k=1)
        with pytest.raises(vecshard.InvalidArgument, match="filter"):
            c.search(coll, np.ones(DIM), k=1, filter={"field": "color", "nope": 1})
    # the REST connection survives errors
    assert rest_client.search(coll, np.ones(DIM), k=2)[0].shape == (2,)


def test_threads_share_a_rest_client(client, rest_client, filled) -> None:
    coll, vecs = filled
    qs = np.random.default_rng(9).random((120, DIM), dtype=np.float32)
    want = [message_path(client, coll, q, 5) for q in qs]
    got = [None] * len(qs)

    def work(j: int) -> None:
        for i in range(j, len(qs), 4):
            got[i] = rest_client.search(coll, qs[i], 5)

    ts = [threading.Thread(target=work, args=(j,)) for j in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for g, w in zip(got, want):
        assert_same(g, w)
    # connections are kept and reused: at most one per thread that searched at once
    assert 1 <= len(rest_client._rest._idle) <= 4


def test_a_closed_keepalive_connection_is_replaced(rest_client, filled) -> None:
    coll, vecs = filled
    rest_client.search(coll, vecs[0], 3)
    for c in rest_client._rest._idle:
        c.sock.shutdown(socket.SHUT_RDWR)  # as if the router had closed it while idle
    ids, _ = rest_client.search(coll, vecs[0], 3)
    assert ids[0] == 0


def test_unreachable_or_bad_rest_address(dev_address: str) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with vecshard.Client(dev_address, rest=f"http://127.0.0.1:{port}", timeout=5) as c:
        with pytest.raises(vecshard.Unavailable, match=f"127.0.0.1:{port}"):
            c.search("x", np.ones(DIM), k=1)
    for bad in ("ftp://127.0.0.1:1", "http://127.0.0.1:1/v1", "http://"):
        with pytest.raises(vecshard.InvalidArgument, match="rest"):
            vecshard.Client(dev_address, rest=bad)


def test_filter_message_goes_over_grpc(client, rest_client, filled) -> None:
    coll, vecs = filled
    flt = pb.Filter(condition=pb.Condition(field="color", eq=pb.Value(string_value="green")))
    want = message_path(client, coll, vecs[1], 4, filter=flt, exact=True)
    assert len(want[0]) == 4 and all(int(i) % 3 == 1 for i in want[0])
    assert_same(rest_client.search(coll, vecs[1], 4, filter=flt, exact=True), want)


def test_packed_hits_decoding() -> None:
    ids = np.array([3, 2**63 - 1, 0], dtype="<u8").tobytes()
    sc = np.array([0.5, 1.5, 2.5], dtype="<f4").tobytes()
    i, s = fast.packed_hits(ids, sc)
    assert i.dtype == np.int64 and list(i) == [3, 2**63 - 1, 0] and s.dtype == np.float32
    i, _ = fast.packed_hits(np.array([1, 2**63], dtype="<u8").tobytes(), sc[:8])
    assert i.dtype == np.uint64 and list(i) == [1, 2**63]
    i, s = fast.packed_hits(b"", b"")
    assert i.dtype == np.int64 and i.shape == s.shape == (0,)
    assert fast.varint(0) == b"\x00" and fast.varint(300) == b"\xac\x02"
