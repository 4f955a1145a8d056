"""Collections: create, list, describe, drop."""
import time

import pytest

import vecshard
from conftest import unique_name


def test_create_fills_defaults_and_lists_describes_drops(client: vecshard.Client) -> None:
    name = unique_name("coll")
    info = client.create_collection(name, dimension=16, metric="cosine", shard_count=2, m=8, ef_search=40)
    assert info == vecshard.CollectionInfo(
        name=name, dimension=16, metric="cosine", shard_count=2, storage="local",
        m=8, ef_construction=200, ef_search=40,
    )
    assert info in client.list_collections()

    d = client.describe_collection(name)
    assert d.info == info
    assert [s.number for s in d.shards] == [0, 1]
    assert all(s.owner_node.startswith("node-") for s in d.shards)
    assert {s.state for s in d.shards} <= {"serving", "opening"}

    client.drop_collection(name)
    assert name not in [c.name for c in client.list_collections()]
    with pytest.raises(vecshard.NotFound):
        client.describe_collection(name)


def test_default_shard_count_is_the_clusters(client: vecshard.Client) -> None:
    name = unique_name("coll")
    info = client.create_collection(name, dimension=3, metric="dot")
    try:
        assert info.shard_count == 2  # `vecshard dev --nodes 2`
        assert info.metric == "dot"
    finally:
        client.drop_collection(name)


def test_create_twice_is_already_exists(client: vecshard.Client, collection: str) -> None:
    with pytest.raises(vecshard.AlreadyExists) as e:
        client.create_collection(collection, dimension=8, metric="l2")
    assert e.value.code == "ALREADY_EXISTS"
    assert collection in e.value.message


def test_bad_settings_are_invalid_argument(client: vecshard.Client) -> None:
    with pytest.raises(vecshard.InvalidArgument) as e:
        client.create_collection("bad name!", dimension=3, metric="l2")
    assert "name" in e.value.message
    with pytest.raises(vecshard.InvalidArgument) as e:
        client.create_collection(unique_name(), dimension=0, metric="l2")
    assert "dimension" in e.value.message
    with pytest.raises(vecshard.InvalidArgument, match="metric 'manhattan'"):
        client.create_collection(unique_name(), dimension=3, metric="manhattan")
    with pytest.raises(vecshard.InvalidArgument, match="write_ack"):
        client.create_collection(unique_name(), dimension=3, metric="l2", replication_factor=2, write_ack="one")
    with pytest.raises(vecshard.InvalidArgument, match="replication_factor"):
        client.create_collection(unique_name(), dimension=3, metric="l2", replication_factor=9)


def test_replication_settings_reach_the_router(client: vecshard.Client) -> None:
    # `vecshard dev --nodes 2`: a factor of 3 needs 3 live nodes; the refusal names both
    # numbers and nothing is created.
    name = unique_name("rep")
    with pytest.raises(vecshard.FailedPrecondition) as e:
        client.create_collection(name, dimension=3, metric="l2", replication_factor=3, write_ack="all")
    assert "replication_factor 3 needs 3 live data nodes, 2 are alive" in e.value.message
    assert name not in [c.name for c in client.list_collections()]
    info = client.create_collection(name, dimension=3, metric="l2", replication_factor=1)
    try:
        assert (info.replication_factor, info.write_ack) == (1, "")
    finally:
        client.drop_collection(name)


def test_live_points_after_upsert(client: vecshard.Client, collection: str) -> None:
    client.upsert(collection, ids=range(10), vectors=[[float(i)] * 8 for i in range(10)])
    # Nodes report their counts with their heartbeats (every 500 ms under `vecshard dev`).
    end = time.monotonic() + 20
    while (d := client.describe_collection(collection)).live_points != 10 and time.monotonic() < end:
        time.sleep(0.1)
    assert d.live_points == 10, d
    assert all(s.state == "serving" for s in d.shards)
