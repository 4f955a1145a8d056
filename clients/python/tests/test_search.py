"""Search: NumPy in and out, matrices, filters, hits."""
import json

import numpy as np
import pytest

import vecshard
from conftest import unique_name

N = 300


@pytest.fixture(scope="module")
def filled(client: vecshard.Client):
    """A collection with N points: metadata color (4 values), price (0..N-1), tags. Shared
    by the tests of this module, which only read it."""
    name = unique_name("search")
    client.create_collection(name, dimension=8, metric="l2", shard_count=2)
    vecs = np.random.default_rng(7).random((N, 8), dtype=np.float32)
    meta = [{"color": ["red", "green", "blue", "black"][i % 4], "price": i,
             **({"tags": ["sale"]} if i % 10 == 0 else {})} for i in range(N)]
    client.upsert(name, ids=np.arange(N), vectors=vecs, metadata=meta, payload=[f"item {i}" for i in range(N)])
    yield name, vecs, meta
    client.drop_collection(name)


def test_nearest_to_a_stored_vector_is_itself(client: vecshard.Client, filled) -> None:
    coll, vecs, _ = filled
    ids, scores = client.search(coll, vecs[17], k=5, exact=True)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    assert ids.shape == scores.shape == (5,)
    assert ids[0] == 17 and scores[0] == 0.0
    assert np.all(np.diff(scores) >= 0)  # l2: lower is better, best first
    # The scores are the squared distances.
    want = ((vecs[ids] - vecs[17]) ** 2).sum(axis=1)
    np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-6)


def test_approximate_search_with_ef_and_list_input(client: vecshard.Client, filled) -> None:
    coll, vecs, _ = filled
    ids, scores = client.search(coll, vecs[3].tolist(), k=10, ef=200)
    assert ids[0] == 3 and len(ids) == 10


def test_matrix_search_equals_single_searches(client: vecshard.Client, filled, rng: np.random.Generator) -> None:
    coll, _, _ = filled
    queries = rng.random((7, 8), dtype=np.float32)
    ids, scores = client.search(coll, queries, k=4, exact=True)
    assert ids.shape == scores.shape == (7, 4)
    for i, q in enumerate(queries):
        one_ids, one_scores = client.search(coll, q, k=4, exact=True)
        np.testing.assert_array_equal(ids[i], one_ids)
        np.testing.assert_array_equal(scores[i], one_scores)


@pytest.mark.parametrize(
    "flt, ok",
    [
        ({"field": "color", "eq": "red"}, lambda m: m["color"] == "red"),
        ({"field": "price", "range": {"gte": 10, "lt": 20}}, lambda m: 10 <= m["price"] < 20),
        ({"and": [{"field": "price", "range": {"lt": 100}}, {"not": {"field": "color", "eq": "black"}}]},
         lambda m: m["price"] < 100 and m["color"] != "black"),
        ({"or": [{"field": "color", "in": ["green", "blue"]}, {"field": "price", "eq": 3}]},
         lambda m: m["color"] in ("green", "blue") or m["price"] == 3),
        ({"field": "tags", "exists": True}, lambda m: "tags" in m),
        ({"field": "tags", "eq": "sale"}, lambda m: "sale" in m.get("tags", [])),
        ({"field": "price", "eq": np.int64(42)}, lambda m: m["price"] == 42),
    ],
)
def test_filters_select_matching_points(client: vecshard.Client, filled, flt, ok) -> None:
    coll, vecs, meta = filled
    ids, _ = client.search(coll, vecs[0], k=20, filter=flt, exact=True)
    matching = [i for i in range(N) if ok(meta[i])]
    assert len(ids) == min(20, len(matching))
    assert all(ok(meta[i]) for i in ids)
    if len(matching) <= 20:
        assert sorted(ids.tolist()) == matching
    # The same filter as JSON text gives the same answer.
    ids2, _ = client.search(coll, vecs[0], k=20, filter=json.dumps(flt, default=int), exact=True)
    np.testing.assert_array_equal(ids, ids2)


def test_matrix_rows_with_fewer_hits_are_padded(client: vecshard.Client, filled) -> None:
    coll, vecs, _ = filled
    ids, scores = client.search(coll, vecs[:3], k=5, filter={"field": "price", "range": {"lt": 2}}, exact=True)
    assert ids.shape == (3, 5)
    assert sorted(ids[0, :2].tolist()) == [0, 1]
    assert (ids[:, 2:] == -1).all() and np.isnan(scores[:, 2:]).all()
    assert not np.isnan(scores[:, :2]).any()


def test_string_keys_come_back_as_objects(client: vecshard.Client, collection: str) -> None:
    client.upsert(collection, ids=["x", "y", 7], vectors=np.eye(3, 8))
    ids, scores = client.search(collection, np.eye(3, 8)[1], k=3, exact=True)
    assert ids.dtype == object
    assert ids[0] == "y" and set(ids.tolist()) == {"x", "y", 7}
    ids, _ = client.search(collection, np.eye(3, 8)[:2], k=4, exact=True)
    assert ids.dtype == object and ids.shape == (2, 4) and ids[0, 3] is None and ids[1, 0] == "y"


def test_search_hits_carry_metadata_payload_and_vector(client: vecshard.Client, filled) -> None:
    coll, vecs, meta = filled
    hits = client.search_hits(coll, vecs[5], k=3, exact=True, with_vector=True)
    assert hits[0].id == 5 and hits[0].score == 0.0
    assert hits[0].metadata == meta[5]
    assert hits[0].payload == b"item 5" and hits[0].payload_json() == "item 5"
    np.testing.assert_array_equal(hits[0].vector, vecs[5])
    bare = client.search_hits(coll, vecs[5], k=1, with_metadata=False, with_payload=False)
    assert bare[0].metadata == {} and bare[0].payload is None and bare[0].vector is None


def test_cosine_scores_are_similarities(client: vecshard.Client) -> None:
    name = unique_name("cos")
    client.create_collection(name, dimension=3, metric="cosine")
    try:
        client.upsert(name, ids=[1, 2], vectors=[[1, 0, 0], [0, 1, 0]])
        ids, scores = client.search(name, [2, 0.1, 0], k=2, exact=True)
        assert ids.tolist() == [1, 2]
        assert 0.99 < scores[0] <= 1.0 + 1e-6 and scores[1] < scores[0]
    finally:
        client.drop_collection(name)


def test_matrix_search_is_one_batch_call(client: vecshard.Client, filled, monkeypatch) -> None:
    coll, vecs, _ = filled
    calls = []
    batch = client._stub.SearchBatch
    monkeypatch.setattr(client._stub, "SearchBatch", lambda r, **kw: calls.append(len(r.searches)) or batch(r, **kw))
    monkeypatch.setattr(client._stub, "Search", None)  # a per-row search would fail
    ids, _ = client.search(coll, vecs[:50], k=3, exact=True)
    assert calls == [50]
    assert ids[:, 0].tolist() == list(range(50))


def test_search_by_id_leaves_the_point_out(client: vecshard.Client, filled) -> None:
    coll, vecs, _ = filled
    ids, scores = client.search_by_id(coll, 17, k=5, exact=True)
    want_ids, want_scores = client.search(coll, vecs[17], k=6, exact=True)
    assert want_ids[0] == 17 and 17 not in ids.tolist()
    np.testing.assert_array_equal(ids, want_ids[1:])
    np.testing.assert_array_equal(scores, want_scores[1:])
    red, _ = client.search_by_id(coll, 17, k=5, exact=True, filter={"field": "color", "eq": "red"})
    assert all(i % 4 == 0 for i in red.tolist()) and len(red) == 5
    with pytest.raises(vecshard.NotFound, match="no point with key 123456"):
        client.search_by_id(coll, 123456, k=5)


def test_offset_pages_through_the_ranking(client: vecshard.Client, filled) -> None:
    coll, vecs, _ = filled
    full_ids, full_scores = client.search(coll, vecs[0], k=30, exact=True)
    for page in range(3):
        ids, scores = client.search(coll, vecs[0], k=10, offset=10 * page, exact=True)
        np.testing.assert_array_equal(ids, full_ids[10 * page : 10 * page + 10])
        np.testing.assert_array_equal(scores, full_scores[10 * page : 10 * page + 10])
    with pytest.raises(vecshard.InvalidArgument, match="k \\+ offset"):
        client.search(coll, vecs[0], k=10, offset=9_995)


def test_count_with_and_without_filter(client: vecshard.Client, filled) -> None:
    coll, _, meta = filled
    assert client.count(coll) == N
    assert client.count(coll, filter={"field": "color", "eq": "red"}) == sum(m["color"] == "red" for m in meta)
    assert client.count(coll, filter='{"field": "tags", "exists": true}') == N // 10
    with pytest.raises(vecshard.InvalidArgument, match='unknown operator "bogus"'):
        client.count(coll, filter={"field": "color", "bogus": 1})
