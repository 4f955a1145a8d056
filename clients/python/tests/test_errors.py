"""Errors: the server's code and message as Python exceptions."""
import socket

import numpy as np
import pytest

import vecshard


def test_wrong_dimension(client: vecshard.Client, collection: str) -> None:
    with pytest.raises(vecshard.InvalidArgument) as e:
        client.search(collection, np.ones(5), k=1)
    assert e.value.code == "INVALID_ARGUMENT"
    # Vectors travel packed (vector_f32le), so the error names that field.
    assert e.value.message == (
        "query.vector_f32le: dimension 5 (20 bytes) does not match the collection's dimension 8"
    )
    assert str(e.value) == f"INVALID_ARGUMENT: {e.value.message}"
    with pytest.raises(vecshard.InvalidArgument, match="dimension 3"):
        client.upsert(collection, ids=[1], vectors=np.ones((1, 3)))


def test_nan_and_infinity(client: vecshard.Client, collection: str) -> None:
    with pytest.raises(vecshard.InvalidArgument, match=r"non-finite value \(NaN\) at index 2"):
        client.search(collection, [0, 0, np.nan, 0, 0, 0, 0, 0], k=1)
    v = np.ones((2, 8))
    v[1, 4] = np.inf
    with pytest.raises(vecshard.InvalidArgument, match=r"points\[1\]\.vector_f32le: non-finite value \(inf\) at index 4"):
        client.upsert(collection, ids=[1, 2], vectors=v)


def test_unknown_collection(client: vecshard.Client) -> None:
    for call in (
        lambda: client.search("no_such_collection", np.ones(8), k=1),
        lambda: client.upsert("no_such_collection", ids=[1], vectors=np.ones((1, 8))),
        lambda: client.get("no_such_collection", [1]),
        lambda: list(client.scan("no_such_collection")),
        lambda: client.drop_collection("no_such_collection"),
    ):
        with pytest.raises(vecshard.NotFound) as e:
            call()
        assert e.value.code == "NOT_FOUND"
        assert 'collection "no_such_collection" does not exist' in e.value.message


@pytest.mark.parametrize(
    "flt, message",
    [
        ({"field": "color", "bogus": 1}, 'unknown operator "bogus"'),
        ("{not json", "filter"),
        ({"and": "red"}, "and"),
    ],
)
def test_malformed_filter(client: vecshard.Client, collection: str, flt, message: str) -> None:
    with pytest.raises(vecshard.InvalidArgument) as e:
        client.search(collection, np.ones(8), k=1, filter=flt)
    assert message in e.value.message


def test_bad_k_and_ef(client: vecshard.Client, collection: str) -> None:
    with pytest.raises(vecshard.InvalidArgument, match="k"):
        client.search(collection, np.ones(8), k=0)
    with pytest.raises(vecshard.InvalidArgument, match="ef"):
        client.search(collection, np.ones(8), k=1, ef=0)


def test_unreachable_router_is_unavailable() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with vecshard.Client(f"127.0.0.1:{port}", timeout=5) as c:
        with pytest.raises(vecshard.Unavailable) as e:
            c.list_collections()
    assert e.value.code == "UNAVAILABLE" and e.value.message


def test_errors_are_one_family() -> None:
    for cls in (vecshard.InvalidArgument, vecshard.NotFound, vecshard.Unavailable, vecshard.AlreadyExists,
                vecshard.Unauthenticated, vecshard.DeadlineExceeded, vecshard.ResourceExhausted):
        assert issubclass(cls, vecshard.VecshardError)


def test_expired_deadline(client: vecshard.Client, collection: str) -> None:
    with pytest.raises(vecshard.DeadlineExceeded) as e:
        client.search(collection, np.ones(8), k=1, timeout=1e-6)
    assert e.value.code == "DEADLINE_EXCEEDED"
