"""The asyncio client against the same cluster."""
import asyncio

import numpy as np
import pytest

import vecshard
from conftest import unique_name


def run(coro):
    return asyncio.run(coro)


def test_async_client_does_everything(dev_address: str, rng: np.random.Generator) -> None:
    vecs = rng.random((40, 6), dtype=np.float32)

    async def main() -> None:
        async with vecshard.AsyncClient(dev_address, timeout=30) as c:
            name = unique_name("async")
            info = await c.create_collection(name, dimension=6, metric="l2", shard_count=2)
            assert info.name == name and info.dimension == 6
            assert name in [x.name for x in await c.list_collections()]
            assert len((await c.describe_collection(name)).shards) == 2

            seen = []
            n = await c.upsert(name, ids=np.arange(40), vectors=vecs,
                               metadata=[{"even": i % 2 == 0} for i in range(40)], batch_size=15,
                               progress=lambda d, t: seen.append(d))
            assert n == 40 and seen == [15, 30, 40]

            ids, scores = await c.search(name, vecs[9], k=3, exact=True)
            assert ids[0] == 9 and scores[0] == 0.0
            mids, mscores = await c.search(name, vecs[:5], k=3, exact=True, filter={"field": "even", "eq": True})
            assert mids.shape == (5, 3)
            for i in range(5):
                one, one_s = await c.search(name, vecs[i], k=3, exact=True, filter={"field": "even", "eq": True})
                np.testing.assert_array_equal(mids[i], one)
                np.testing.assert_array_equal(mscores[i], one_s)
                assert all(x % 2 == 0 for x in one)
            by_id, _ = await c.search_by_id(name, 9, k=3, exact=True)
            near, _ = await c.search(name, vecs[9], k=4, exact=True)
            np.testing.assert_array_equal(by_id, near[1:])
            page, _ = await c.search(name, vecs[9], k=2, offset=2, exact=True)
            np.testing.assert_array_equal(page, near[2:4])
            assert await c.count(name) == 40
            assert await c.count(name, filter={"field": "even", "eq": True}) == 20
            hits = await c.search_hits(name, vecs[2], k=1, exact=True)
            assert hits[0].id == 2 and hits[0].metadata == {"even": True}

            got = await c.get(name, [3, 1000])
            assert [p.id for p in got] == [3]
            np.testing.assert_array_equal(got[0].vector, vecs[3])
            await c.delete(name, [3])
            assert await c.get(name, [3]) == []
            scanned = [p.id async for p in c.scan(name, page_size=6)]
            assert sorted(scanned) == [i for i in range(40) if i != 3]

            with pytest.raises(vecshard.InvalidArgument, match="dimension"):
                await c.search(name, np.ones(7), k=1)
            status = await c.cluster_status()
            assert len(status.nodes) == 2
            await c.drop_collection(name)
            with pytest.raises(vecshard.NotFound, match=name):
                await c.describe_collection(name)

    run(main())
