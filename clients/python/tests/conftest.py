"""Fixtures: a real `vecshard dev` cluster for the session (started from $VECSHARD_BIN or
the repository's target/debug/vecshard), a client on it, and a fresh collection per test."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np
import pytest

import vecshard

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 60


def vecshard_bin() -> str:
    """The `vecshard` binary under test."""
    if os.environ.get("VECSHARD_BIN"):
        return os.environ["VECSHARD_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return str(target / "debug" / "vecshard")


class Server:
    """A `vecshard` subprocess whose output goes to a log file."""

    def __init__(self, args: List[str], log: Path, env: Optional[dict] = None) -> None:
        binary = vecshard_bin()
        if not os.path.exists(binary):
            pytest.exit(f"no vecshard binary at {binary}: run `cargo build -p vecshard` or set VECSHARD_BIN", 2)
        self.log = log
        self._out = open(log, "w")
        self.proc = subprocess.Popen(
            [binary, *args],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "VECSHARD_LOG": os.environ.get("VECSHARD_LOG", "warn"), **(env or {})},
        )

    def wait_for(self, parse: Callable[[str], Optional[object]], what: str) -> object:
        """Poll the log until ``parse`` finds what it wants in it."""
        end = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < end:
            text = self.log.read_text()
            found = parse(text)
            if found is not None:
                return found
            if self.proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {self.proc.returncode}:\n{text[-3000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{what} did not start in {START_TIMEOUT_S} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Ctrl-c (a graceful shutdown), then a kill if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def _dev_endpoints(log: str) -> Optional[Tuple[str, str]]:
    m = re.search(r"router \d+\s+gRPC (\S+)\s+REST (http://\S+)", log)
    return (m.group(1), m.group(2)) if m and "serving" in log else None


@pytest.fixture(scope="session")
def dev_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of the session's `vecshard dev` (its data is in ``data/``; backups
    may go under ``data/backups``)."""
    return tmp_path_factory.mktemp("vecshard-dev")


@pytest.fixture(scope="session")
def dev_endpoints(dev_dir: Path) -> Iterator[Tuple[str, str]]:
    """The gRPC address and REST URL of a `vecshard dev --nodes 2` cluster, up for the
    whole session."""
    d = dev_dir
    srv = Server(["dev", "--nodes", "2", "--no-demo", "--any-port", "--data", str(d / "data")], d / "vecshard.log")
    try:
        yield srv.wait_for(_dev_endpoints, "vecshard dev")  # type: ignore[misc]
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def dev_address(dev_endpoints: Tuple[str, str]) -> str:
    """The gRPC address of the session's `vecshard dev` cluster."""
    return dev_endpoints[0]


@pytest.fixture(scope="session")
def rest_client(dev_endpoints: Tuple[str, str]) -> Iterator[vecshard.Client]:
    """A client that searches through the router's binary REST search."""
    with vecshard.Client(dev_endpoints[0], timeout=30, rest=dev_endpoints[1]) as c:
        yield c


@pytest.fixture(scope="session")
def client(dev_address: str) -> Iterator[vecshard.Client]:
    with vecshard.Client(dev_address, timeout=30) as c:
        yield c


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def collection(client: vecshard.Client) -> Iterator[str]:
    """A new, empty 8-d L2 collection over 2 shards, dropped after the test."""
    name = unique_name()
    client.create_collection(name, dimension=8, metric="l2", shard_count=2)
    yield name
    client.drop_collection(name)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
