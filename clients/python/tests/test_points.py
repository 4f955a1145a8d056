"""Points: upsert (NumPy and lists, batches, progress), get, delete, scan."""
import numpy as np
import pytest

import vecshard


def test_upsert_numpy_then_get_round_trips(client: vecshard.Client, collection: str, rng: np.random.Generator) -> None:
    vecs = rng.random((50, 8), dtype=np.float32)
    ids = np.arange(1000, 1050, dtype=np.uint64)
    meta = [{"color": ["red", "blue"][i % 2], "n": i, "x": i / 4, "ok": i % 3 == 0, "tags": ["a", str(i)]}
            for i in range(50)]
    assert client.upsert(collection, ids=ids, vectors=vecs, metadata=meta, payload=[{"i": i} for i in range(50)]) == 50

    got = client.get(collection, [1049, 1000, 7])  # 7 is not stored: left out
    assert [p.id for p in got] == [1049, 1000]
    assert got[0].vector.dtype == np.float32
    np.testing.assert_array_equal(got[0].vector, vecs[49])
    np.testing.assert_array_equal(got[1].vector, vecs[0])
    assert got[0].metadata == meta[49]
    assert got[1].metadata == {"color": "red", "n": 0, "x": 0.0, "ok": True, "tags": ["a", "0"]}
    assert got[0].payload == b'{"i": 49}' and got[0].payload_json() == {"i": 49}


def test_upsert_lists_string_keys_and_payload_kinds(client: vecshard.Client, collection: str) -> None:
    client.upsert(collection, ids=["a", "b", "c", 5], vectors=[[1.0] * 8, [2.0] * 8, [3.0] * 8, [4.0] * 8],
                  payload=[b"\x00raw", "text", None, [1, 2]])
    got = {p.id: p for p in client.get(collection, ["a", "b", "c", 5])}
    assert set(got) == {"a", "b", "c", 5}
    assert got["a"].payload == b"\x00raw"
    assert got["b"].payload == b"text" and got["b"].payload_json() == "text"
    assert got["c"].payload is None and got["c"].payload_json() is None
    assert got[5].payload_json() == [1, 2]
    assert got["a"].vector.tolist() == [1.0] * 8


def test_upsert_replaces_and_delete_removes(client: vecshard.Client, collection: str) -> None:
    client.upsert(collection, ids=[1, 2], vectors=np.zeros((2, 8)), metadata=[{"v": 1}, {"v": 1}])
    client.upsert(collection, ids=[1], vectors=np.ones((1, 8)), metadata=[{"v": 2}])
    got = client.get(collection, [1, 2])
    assert [(p.id, p.metadata["v"], p.vector[0]) for p in got] == [(1, 2, 1.0), (2, 1, 0.0)]
    client.delete(collection, np.array([1, 99]))
    assert [p.id for p in client.get(collection, [1, 2])] == [2]


def test_upsert_in_batches_reports_progress(client: vecshard.Client, collection: str, rng: np.random.Generator) -> None:
    seen = []
    n = client.upsert(collection, ids=np.arange(95), vectors=rng.random((95, 8)), batch_size=20,
                      progress=lambda done, total: seen.append((done, total)))
    assert n == 95
    assert seen == [(20, 95), (40, 95), (60, 95), (80, 95), (95, 95)]
    assert len(client.get(collection, np.arange(95))) == 95


def test_progress_true_prints_to_stderr(client: vecshard.Client, collection: str, capsys: pytest.CaptureFixture) -> None:
    client.upsert(collection, ids=[1, 2, 3], vectors=np.ones((3, 8)), batch_size=2, progress=True)
    err = capsys.readouterr().err
    assert "upserted 2/3 points" in err and "upserted 3/3 points" in err


def test_scan_returns_every_point_exactly_once(client: vecshard.Client, collection: str, rng: np.random.Generator) -> None:
    ids = [f"s{i}" for i in range(120)] + list(range(130))
    vecs = rng.random((len(ids), 8), dtype=np.float32)
    client.upsert(collection, ids=ids, vectors=vecs, batch_size=64)
    seen = [p.id for p in client.scan(collection, page_size=17)]
    assert len(seen) == len(ids)
    assert sorted(seen, key=str) == sorted(ids, key=str)
    by_id = {p.id: p.vector for p in client.scan(collection)}
    np.testing.assert_array_equal(by_id["s7"], vecs[7])


def test_scan_of_empty_collection_is_empty(client: vecshard.Client, collection: str) -> None:
    assert list(client.scan(collection)) == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(ids=[1, 2], vectors=np.ones((3, 8))), "2 ids for 3 vectors"),
        (dict(ids=[1], vectors=np.ones(8)), "2-D"),
        (dict(ids=[-1], vectors=np.ones((1, 8))), "key -1 is not an unsigned 64-bit integer"),
        (dict(ids=[1.5], vectors=np.ones((1, 8))), "a key must be a str or an unsigned integer"),
        (dict(ids=[1], vectors=np.ones((1, 8)), metadata=[{"x": {"nested": 1}}]), "metadata field 'x'"),
        (dict(ids=[1], vectors=np.ones((1, 8)), metadata=[{}, {}]), "metadata has 2 entries for 1 points"),
        (dict(ids=[], vectors=np.ones((0, 8))), "no points"),
        (dict(ids=[1], vectors=[[1.0, "x"] * 4]), "vectors must be numbers"),
    ],
)
def test_client_refuses_malformed_input(client: vecshard.Client, collection: str, kwargs: dict, message: str) -> None:
    with pytest.raises(vecshard.InvalidArgument, match=message):
        client.upsert(collection, **kwargs)
