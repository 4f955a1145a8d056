#!/usr/bin/env python3
"""Client CPU per query of `vecshard.Client.search` (over gRPC, and with --rest over the
router's binary REST search), next to the message path the client used before (a
SearchRequest message through the generated stub, packed in and out) and the generic path
of shared/bench/servers.py (a raw stub, `SearchRequest(vector=q.tolist())`, ids from the hits).

    python tools/cpu_per_query.py 127.0.0.1:7000 [--rest http://127.0.0.1:7080] [--points 20000]
        [--dim 128] [--queries 2000] [--psycopg DSN]

--psycopg DSN adds a pgvector query through psycopg (binary, prepared; the table
`cpu_items` is created and dropped in that database) for the reference the goal is set against.

Creates a throwaway collection of random points on a running router (for example
`vecshard dev --no-demo --any-port`), runs the queries through each path in alternate rounds, prints
the median client CPU (time.process_time) and wall time per query, and drops the collection."""
import argparse
import time
import uuid

import grpc
import numpy as np

import vecshard
from vecshard import results
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


def pgvector(dsn, base, k):
    """A pgvector query through psycopg as servers.py runs it (binary vector, prepared),
    and a cleanup function."""
    import struct

    import psycopg
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    oid = conn.execute("SELECT 'vector'::regtype::oid").fetchone()[0]

    class Vec:
        __slots__ = ("payload",)

        def __init__(self, a):
            self.payload = struct.pack(">HH", a.shape[0], 0) + np.asarray(a, dtype=">f4").tobytes()

    class VecDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj):
            return obj.payload

    VecDumper.oid = oid
    conn.adapters.register_dumper(Vec, VecDumper)
    conn.execute("DROP TABLE IF EXISTS cpu_items")
    conn.execute(f"CREATE TABLE cpu_items (id bigint PRIMARY KEY, embedding vector({base.shape[1]}))")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO cpu_items VALUES (%s, %s)", [(i, Vec(v)) for i, v in enumerate(base)])
    conn.execute("CREATE INDEX ON cpu_items USING hnsw (embedding vector_l2_ops)")
    cur = conn.cursor(binary=True)
    sql = f"SELECT id FROM cpu_items ORDER BY embedding <-> %s LIMIT {k}"

    def search(q):
        cur.execute(sql, (Vec(q),), prepare=True)
        return [r[0] for r in cur.fetchall()]

    def drop():
        conn.execute("DROP TABLE cpu_items")
        conn.close()

    return search, drop


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("address")
    ap.add_argument("--points", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rest", help="the router's REST URL: also measure Client(rest=URL).search")
    ap.add_argument("--psycopg", metavar="DSN", help="also measure pgvector through psycopg")
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

            def message(q):
                req = pb.SearchRequest(collection=coll, vector_f32le=q.tobytes(), k=a.k, packed_hits=True)
                return results.ids_scores(stub.Search(req, timeout=60, metadata=None))

            paths = {"vecshard.Client.search (gRPC)": lambda q: c.search(coll, q, k=a.k)}
            rc = vecshard.Client(a.address, rest=a.rest) if a.rest else None
            if rc is not None:
                paths["vecshard.Client.search (REST)"] = lambda q: rc.search(coll, q, k=a.k)
            paths["message path (before)"] = message
            paths["generic stub (servers.py)"] = generic
            pg = pgvector(a.psycopg, base, a.k) if a.psycopg else None
            if pg is not None:
                paths["psycopg + pgvector"] = pg[0]
            try:
                compare(paths, queries, a.rounds)
            finally:
                if pg is not None:
                    pg[1]()
                if rc is not None:
                    rc.close()
            ch.close()
        finally:
            c.drop_collection(coll)


if __name__ == "__main__":
    main()
