"""TLS against a live router: `vecshard dev --tls` generates a CA and certificates and
serves every hop over TLS. The client verifies the router with that CA; a plaintext client
or one trusting other roots fails with an error instead of hanging."""
import re
from pathlib import Path
from typing import Iterator, Optional, Tuple

import numpy as np
import pytest

import vecshard
from conftest import Server


def _endpoints(log: str) -> Optional[Tuple[str, Path]]:
    addr = re.search(r"router \d+\s+gRPC (\S+)", log)
    ca = re.search(r"--ca (\S+)", log)
    return (addr.group(1), Path(ca.group(1))) if addr and ca and "serving" in log else None


@pytest.fixture(scope="module")
def tls_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, Path]]:
    d = tmp_path_factory.mktemp("vecshard-dev-tls")
    srv = Server(
        ["dev", "--tls", "--no-demo", "--any-port", "--nodes", "1", "--data", str(d / "data")],
        d / "dev.log",
    )
    try:
        yield srv.wait_for(_endpoints, "vecshard dev --tls")  # type: ignore[misc]
    finally:
        srv.stop()


def test_a_client_trusting_the_ca_reads_and_writes(tls_router: Tuple[str, Path]) -> None:
    addr, ca = tls_router
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((50, 8)).astype(np.float32)
    # The CA as a path and as PEM bytes.
    for tls in (str(ca), ca.read_bytes()):
        with vecshard.Client(addr, tls=tls, timeout=30) as c:
            name = f"tls_{len(c.list_collections())}"
            c.create_collection(name, dimension=8, metric="l2", shard_count=2)
            c.upsert(name, ids=np.arange(50, dtype=np.uint64), vectors=vectors)
            ids, scores = c.search(name, vectors[17], k=3)
            assert int(ids[0]) == 17 and scores[0] == pytest.approx(0.0, abs=1e-5)
            assert c.get(name, [17])[0].vector == pytest.approx(vectors[17].tolist())
            c.drop_collection(name)


def test_plaintext_and_untrusted_clients_fail_without_hanging(tls_router: Tuple[str, Path]) -> None:
    addr, _ = tls_router
    # Plaintext against a TLS listener, and TLS trusting only the system roots.
    for tls in (None, True):
        with vecshard.Client(addr, tls=tls, timeout=5) as c:
            with pytest.raises((vecshard.Unavailable, vecshard.DeadlineExceeded)):
                c.list_collections()
