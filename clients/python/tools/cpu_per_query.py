#!/usr/bin/env python3
"""Client CPU per query of `vecshard.Client.search`, next to the generic path of
shared/bench/servers.py (a raw stub, `SearchRequest(vector=q.tolist())`, ids from the hits).

    python tools/cpu_per_query.py 127.0.0.1:7000 [--points 20000] [--dim 128] [--queries 2000]

Creates a throwaway collection of random points on a running router (for example
`vecshard dev --no-demo --any-port`), runs the queries through each path in alternate rounds, prints
the median client CPU (time.process_time) and wall time per query, and drops the collection."""
import argparse
import time
import uuid

import grpc
import numpy as np

import vecshard
from vecshard.v1 import vecshard_pb2 as pb
from vecshard.v1 import vecshard_pb2_grpc as pb_grpc


def measure(fn, queries):
    """Client CPU and wall time per query, in microseconds, over one pass of the queries."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for q in queries:
        fn(q)
    n = len(queries)
    return 1e6 * (time.process_time() - cpu0) / n, 1e6 * (time.perf_counter() - wall0) / n


def compare(paths, queries, rounds):
    """Alternate the paths round by round (the machine's load drifts) and print medians."""
    for fn in paths.values():
        for q in queries[:50]:  # warm up
            fn(q)
    runs = {name: [] for name in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            runs[name].append(measure(fn, queries))
    for name, rs in runs.items():
        cpu, wall = np.median(np.array(rs), axis=0)
        print(f"{name:<30} client CPU {cpu:7.1f} us/query   wall {wall:7.1f} us/query"
              f"   (median of {rounds} x {len(queries)} queries)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("address")
    ap.add_argument("--points", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    base = rng.random((a.points, a.dim), dtype=np.float32)
    queries = rng.random((a.queries, a.dim), dtype=np.float32)
    coll = f"cpu_{uuid.uuid4().hex[:8]}"
    with vecshard.Client(a.address) as c:
        c.create_collection(coll, dimension=a.dim, metric="l2")
        try:
            c.upsert(coll, ids=np.arange(a.points), vectors=base, batch_size=2000)
            ch = grpc.insecure_channel(a.address)
            stub = pb_grpc.VecShardStub(ch)

            def generic(q):
                r = stub.Search(pb.SearchRequest(collection=coll, vector=q.tolist(), k=a.k), timeout=60, metadata=None)
                return [h.key.int for h in r.hits]

            compare({"vecshard.Client.search": lambda q: c.search(coll, q, k=a.k),
                     "generic stub (servers.py)": generic}, queries, a.rounds)
            ch.close()
        finally:
            c.drop_collection(coll)


if __name__ == "__main__":
    main()
