"""Cluster backups through the client: back up, poll, list, describe, restore as a new
collection with the same points, delete; bad locations and names raise with the server's
code."""
import time
from pathlib import Path

import numpy as np
import pytest

import vecshard
from vecshard.v1 import vecshard_pb2 as pb

from conftest import unique_name


def test_backup_restore_round_trip(client: vecshard.Client, collection: str, dev_dir: Path, rng: np.random.Generator) -> None:
    ids = np.arange(500, dtype=np.uint64)
    client.upsert(collection, ids=ids, vectors=rng.random((500, 8), dtype=np.float32))
    client.delete(collection, [3, 30])
    backups = dev_dir / "data" / "backups"
    to = str(backups / unique_name("b"))

    job = client.create_backup(collection, to, wait=False)
    assert job.kind == "backup" and job.location == to
    # Poll the job until it ends (a backup of 500 points takes far less than the deadline).
    deadline = time.monotonic() + 60
    polled = client.backup_job(job.id)
    while polled.state == pb.BACKUP_JOB_STATE_RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
        polled = client.backup_job(job.id)
    assert polled.id == job.id
    assert polled.state == pb.BACKUP_JOB_STATE_DONE, polled
    assert polled.WhichOneof("result") == "backup"
    assert polled.backup.points == 498
    assert len(polled.backup.shards) == 2

    d = client.describe_backup(to)
    assert d.backup.status == pb.BACKUP_STATUS_COMPLETE
    assert d.manifest == polled.backup
    listed = {b.location: b.status for b in client.list_backups(str(backups))}
    assert listed[to] == pb.BACKUP_STATUS_COMPLETE

    restored = unique_name("r")
    r = client.restore_backup(to, restored, timeout=120)
    try:
        assert r.state == pb.BACKUP_JOB_STATE_DONE, r
        assert (r.restore.collection, r.restore.points) == (restored, 498)
        want = {p.id: p.vector.tolist() for p in client.scan(collection)}
        got = {p.id: p.vector.tolist() for p in client.scan(restored)}
        assert got == want
        with pytest.raises(vecshard.AlreadyExists, match=restored):
            client.restore_backup(to, restored)
    finally:
        client.drop_collection(restored)
    assert client.delete_backup(to) > 0
    with pytest.raises(vecshard.NotFound, match="no backup"):
        client.describe_backup(to)


def test_backup_bad_input(client: vecshard.Client, collection: str, dev_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(vecshard.InvalidArgument, match="router.backup_locations"):
        client.create_backup(collection, str(tmp_path / "outside"))
    with pytest.raises(vecshard.InvalidArgument, match="gs://"):
        client.create_backup(collection, "gs://bucket/x")
    inside = str(dev_dir / "data" / "backups" / unique_name("b"))
    with pytest.raises(vecshard.NotFound, match="nope"):
        client.create_backup("nope", inside)
    with pytest.raises(vecshard.NotFound, match="no job"):
        client.backup_job("backup-999999")
