"""Export to pandas and Arrow (each skipped when the optional package is not installed)."""
import numpy as np
import pytest

import vecshard
from conftest import unique_name


@pytest.fixture(scope="module")
def stored(client: vecshard.Client):
    name = unique_name("export")
    client.create_collection(name, dimension=8, metric="l2", shard_count=2)
    vecs = np.random.default_rng(3).random((30, 8), dtype=np.float32)
    client.upsert(name, ids=np.arange(30), vectors=vecs, metadata=[{"i": i} for i in range(30)],
                  payload=[f"p{i}" for i in range(30)])
    yield name, vecs
    client.drop_collection(name)


@pytest.fixture(scope="module")
def pd():
    return pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def pa():
    return pytest.importorskip("pyarrow")


def test_export_to_pandas(pd, client: vecshard.Client, stored) -> None:
    coll, vecs = stored
    df = client.export_to_pandas(coll, page_size=7).sort_values("id")
    assert list(df.columns) == ["id", "vector", "metadata", "payload"]
    assert df["id"].tolist() == list(range(30))
    np.testing.assert_array_equal(np.stack(df["vector"].to_numpy()), vecs)
    assert df["metadata"].iloc[4] == {"i": 4} and df["payload"].iloc[4] == b"p4"


def test_export_to_arrow(pa, client: vecshard.Client, stored) -> None:
    coll, vecs = stored
    t = client.export_to_arrow(coll).sort_by("id")
    assert t.schema.field("id").type == pa.uint64()
    assert t.schema.field("vector").type == pa.list_(pa.float32(), 8)
    assert t.column("id").to_pylist() == list(range(30))
    np.testing.assert_array_equal(np.array(t.column("vector").to_pylist(), dtype=np.float32), vecs)
    assert t.column("metadata").to_pylist()[4] == '{"i": 4}'


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_pandas(name, *a, **kw):
        if name == "pandas":
            raise ImportError("no pandas here")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    from vecshard import export

    with pytest.raises(ImportError, match=r"vecshard\[pandas\]"):
        export.to_pandas([])
