"""API keys: a router started with `VECSHARD__ROUTER__API_KEYS` (`vecshard dev` takes no
keys) refuses calls without the key and accepts the client's `api_key`."""
import json
from typing import Iterator, Optional

import pytest

import vecshard
from conftest import Server

KEY = "test-key-0123456789"


def _addr(log: str) -> Optional[str]:
    for line in log.splitlines():
        if line.startswith("{") and "grpc_addr" in line:
            return json.loads(line)["grpc_addr"]
    return None


@pytest.fixture(scope="module")
def keyed_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
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
        yield srv.wait_for(_addr, "vecshard router")  # type: ignore[misc]
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
