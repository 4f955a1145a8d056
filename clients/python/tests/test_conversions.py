"""Client-side conversions, without a server."""
import numpy as np
import pytest

import vecshard
from vecshard import conversions, requests, results
from vecshard.v1 import vecshard_pb2 as pb


def resp(*hits):
    return pb.SearchResponse(hits=[pb.Hit(key=conversions.key_pb(k), score=s) for k, s in hits])


def test_ids_dtype_follows_the_keys() -> None:
    ids, scores = results.ids_scores(resp((3, 0.5), (1, 0.75)))
    assert ids.dtype == np.int64 and ids.tolist() == [3, 1] and scores.tolist() == [0.5, 0.75]
    big = (1 << 64) - 1
    assert results.ids_scores(resp((big, 0.0)))[0].dtype == np.uint64
    assert results.ids_scores(resp(("a", 0.0), (2, 1.0)))[0].tolist() == ["a", 2]
    assert results.ids_scores(resp(("5", 0.0)))[0][0] == "5"  # a string key stays a string
    ids, scores = results.ids_scores(resp())
    assert ids.shape == scores.shape == (0,)


def test_search_requests_pack_a_matrix_into_one_batch() -> None:
    reqs, single = requests.search_requests("c", np.arange(6, dtype=np.float64).reshape(2, 3), 4,
                                            {"field": "x", "eq": np.int64(1)}, 50, True, False)
    assert not single and len(reqs) == 1 and len(reqs[0].searches) == 2
    s = reqs[0].searches
    assert np.frombuffer(s[1].vector_f32le, dtype="<f4").tolist() == [3.0, 4.0, 5.0]
    assert len(s[1].vector) == 0 and s[1].packed_hits
    assert s[0].filter_json == '{"field": "x", "eq": 1}' and s[0].ef == 50 and s[0].exact
    reqs, single = requests.search_requests("c", [1, 2, 3], 4, None, None, False, False)
    assert single and not reqs[0].HasField("ef") and reqs[0].WhichOneof("filter_spec") is None
    assert reqs[0].vector_f32le == np.array([1, 2, 3], dtype="<f4").tobytes()
    reqs, _ = requests.search_requests("c", np.zeros((2500, 2)), 1, None, None, False, False)
    assert [len(r.searches) for r in reqs] == [1024, 1024, 452]


def test_packed_hits_become_arrays() -> None:
    packed = pb.SearchResponse(packed=pb.PackedHits(
        ids_u64le=np.array([7, 3], dtype="<u8").tobytes(),
        scores_f32le=np.array([0.25, 0.5], dtype="<f4").tobytes()))
    ids, scores = results.ids_scores(packed)
    assert ids.dtype == np.int64 and ids.tolist() == [7, 3] and scores.tolist() == [0.25, 0.5]
    ids, scores = results.ids_scores_matrix([packed, pb.SearchResponse(packed=pb.PackedHits())], 3)
    assert ids.tolist() == [[7, 3, -1], [-1, -1, -1]]
    assert scores[0, :2].tolist() == [0.25, 0.5] and np.isnan(scores[1]).all()
    big = pb.SearchResponse(packed=pb.PackedHits(
        ids_u64le=np.array([1 << 63], dtype="<u8").tobytes(),
        scores_f32le=np.array([1.0], dtype="<f4").tobytes()))
    assert results.ids_scores(big)[0].dtype == np.uint64
    ids, _ = results.ids_scores_matrix([big, packed], 2)
    assert ids.dtype == object and ids.tolist() == [[1 << 63, None], [7, 3]]
    with pytest.raises(vecshard.InvalidArgument, match="vector or a matrix"):
        requests.search_requests("c", np.ones((2, 2, 2)), 1, None, None, False, False)


def test_metadata_values() -> None:
    m = {"i": np.int32(3), "f": np.float32(0.5), "s": "x", "b": np.bool_(True), "l": ("a", "b")}
    back = conversions.metadata_py(conversions.metadata_pb(m))
    assert back == {"i": 3, "f": 0.5, "s": "x", "b": True, "l": ["a", "b"]}
    assert type(back["b"]) is bool and type(back["i"]) is int
    with pytest.raises(vecshard.InvalidArgument, match="signed 64-bit"):
        conversions.metadata_pb({"i": 1 << 63})
    with pytest.raises(vecshard.InvalidArgument, match="list of str"):
        conversions.metadata_pb({"l": [1, 2]})


def test_payloads_like_the_rest_api() -> None:
    assert conversions.payload_pb(None) == b""
    assert conversions.payload_pb({"a": [1, np.float32(2)]}) == b'{"a": [1, 2.0]}'
    assert conversions.payload_pb("é") == "é".encode()
    assert vecshard.Point(id=1, vector=np.zeros(1), payload=b"not json").payload_json() == "not json"


def test_keys() -> None:
    assert conversions.key_py(conversions.key_pb(np.uint64((1 << 64) - 1))) == (1 << 64) - 1
    assert conversions.key_py(conversions.key_pb("k")) == "k"
    for bad in (True, 1 << 64, b"bytes", None):
        with pytest.raises(vecshard.InvalidArgument):
            conversions.key_pb(bad)


def test_tls_and_api_key_settings(tmp_path) -> None:
    import grpc

    from vecshard import channel

    assert channel.credentials(None) is None and channel.credentials(False) is None
    assert isinstance(channel.credentials(True), grpc.ChannelCredentials)
    pem = tmp_path / "ca.pem"
    pem.write_bytes(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    assert isinstance(channel.credentials(str(pem)), grpc.ChannelCredentials)
    assert isinstance(channel.credentials(pem.read_bytes()), grpc.ChannelCredentials)
    with pytest.raises(FileNotFoundError):
        channel.credentials(str(tmp_path / "missing.pem"))
    assert channel.call_metadata(None) is None
    assert channel.call_metadata("k1") == (("authorization", "Bearer k1"),)
