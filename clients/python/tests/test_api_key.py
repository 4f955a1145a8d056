"""API keys: a router started with `VECSHARD__ROUTER__API_KEYS` (`vecshard dev` takes no
keys) refuses calls without the key and accepts the client's `api_key`."""
import json
from typing import Iterator, Optional, Tuple

import numpy as np
import pytest

import vecshard
from conftest import Server

KEY = "test-key-0123456789"


def _addrs(log: str) -> Optional[Tuple[str, str]]:
    for line in log.splitlines():
        if line.startswith("{") and "grpc_addr" in line:
            v = json.loads(line)
            return v["grpc_addr"], "http://" + v["http_addr"]
    return None


@pytest.fixture(scope="module")
def keyed_router(keyed_endpoints: Tuple[str, str]) -> str:
    return keyed_endpoints[0]


@pytest.fixture(scope="module")
def keyed_endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, str]]:
    d = tmp_path_factory.mktemp("vecshard-router")
    env = {
        "VECSHARD__ROUTER__API_KEYS": KEY,
        "VECSHARD__ROUTER__DATA_DIR": str(d / "data"),
        "VECSHARD__ROUTER__GRPC_LISTEN": "127.0.0.1:0",
        "VECSHARD__ROUTER__HTTP_LISTEN": "127.0.0.1:0",
        "VECSHARD__ROUTER__INTERNAL_LISTEN": "127.0.0.1:0",
    }
    srv = Server(["router"], d / "router.log", env=env)
    try:
        yield srv.wait_for(_addrs, "vecshard router")  # type: ignore[misc]
    finally:
        srv.stop()


def test_the_key_opens_the_router(keyed_router: str) -> None:
    with vecshard.Client(keyed_router, api_key=KEY, timeout=10) as c:
        assert c.list_collections() == []
        assert len(c.cluster_status().routers) == 1


def test_no_key_or_a_wrong_key_is_unauthenticated(keyed_router: str) -> None:
    with vecshard.Client(keyed_router, timeout=10) as c:
        with pytest.raises(vecshard.Unauthenticated) as e:
            c.list_collections()
    assert e.value.code == "UNAUTHENTICATED"
    assert "needs an API key" in e.value.message
    with vecshard.Client(keyed_router, api_key="wrong", timeout=10) as c:
        with pytest.raises(vecshard.Unauthenticated, match="the API key is not valid"):
            c.list_collections()


def test_rest_search_sends_the_key(keyed_endpoints: Tuple[str, str]) -> None:
    grpc_addr, rest = keyed_endpoints
    with vecshard.Client(grpc_addr, api_key=KEY, timeout=10, rest=rest) as c:
        with pytest.raises(vecshard.NotFound, match="nope"):  # past the key check
            c.search("nope", np.ones(4), k=1)
    with vecshard.Client(grpc_addr, timeout=10, rest=rest) as c:
        with pytest.raises(vecshard.Unauthenticated, match="needs an API key"):
            c.search("nope", np.ones(4), k=1)
    with vecshard.Client(grpc_addr, api_key="wrong", timeout=10, rest=rest) as c:
        with pytest.raises(vecshard.Unauthenticated, match="the API key is not valid"):
            c.search("nope", np.ones(4), k=1)
