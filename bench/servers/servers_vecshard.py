#!/usr/bin/env python3
"""servers.py with one more server: `vecshard-python`, vecshard through its own Python client.

shared/bench/servers.py (read-only here) compares vector-database servers through their
Python clients; for vecshard it has generic paths only (`vecshard-grpc`: a raw stub with
`repeated float` vectors, `vecshard-rest`: http.client + json). This script imports it as a
module, adds `vecshard-python` to its server registry and then runs its `main()`, so every
option, the measurement and the result files are servers.py's own:

  vecshard-python  the `vecshard` package (clients/python): `vecshard.Client(router gRPC)`;
                   load = `Client.upsert(ids, vectors, batch_size=--vecshard-batch)` (packed
                   float32, one Upsert per batch); query = `Client.search(collection, q, k,
                   ef=ef)`, one query per call (packed float32 in, packed ids/scores out);
                   one Client (one channel, its own TCP connection) per client thread.
                   Endpoint: --vecshard-grpc HOST:PORT or --vecshard-dev BIN (as vecshard-grpc).

Options of this script (everything else goes to servers.py):
  --servers-py PATH   servers.py to use (default $VECSHARD_SERVERS_PY, else ../shared/bench/
                      servers.py beside the repository, else /work/shared/bench/servers.py)
  --summary FILE...   print the recall-threshold table of result files and exit

After a run it writes SUMMARY beside --out (`<out>-summary.md`): per server and recall
threshold (0.95, 0.99) the lowest ef that reaches it, with QPS for 1 and N clients and
client + server CPU us per query.

  python bench/servers/servers_vecshard.py --dataset /tmp/vecshard-bench/clustered-128 \\
      --out /tmp/vecshard-bench/servers/results.json --servers pgvector,vecshard-python \\
      --vecshard-dev target/release/vecshard --secs 5 --clients 2 --build-threads 2
"""
import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # importing servers.py must not try to write into shared/

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
THRESHOLDS = (0.95, 0.99)


def find_servers_py(arg):
    cands = [arg, os.environ.get("VECSHARD_SERVERS_PY"),
             os.path.join(os.path.dirname(REPO), "shared", "bench", "servers.py"),
             "/work/shared/bench/servers.py"]
    for c in cands:
        if c:
            if os.path.isfile(c):
                return os.path.abspath(c)
            if arg and c == arg:
                raise SystemExit(f"--servers-py {arg}: no such file")
    raise SystemExit("servers.py not found: pass --servers-py PATH or set VECSHARD_SERVERS_PY")


def import_servers(path):
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location("servers", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["servers"] = mod
    spec.loader.exec_module(mod)
    return mod


def _plain(v):
    """A client dataclass as JSON-ready dicts."""
    return json.loads(json.dumps(dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v, default=str))


def define_server(sv):
    """The vecshard-python adapter, built on servers.py's VecshardBase (collection name,
    metric, params, server pid from the router's port)."""

    class VecshardPythonServer(sv.VecshardBase):
        name = "vecshard-python"

        def _client(self):
            import vecshard
            # a local subchannel pool, as servers.py does for vecshard-grpc and milvus: without
            # it channels to one target share a TCP connection
            return vecshard.Client(self.target, api_key=os.environ.get("VECSHARD_API_KEY") or None,
                                   timeout=600, channel_options=[("grpc.use_local_subchannel_pool", 1)])

        def versions(self):
            v = super().versions()
            v.update(vecshard_python=sv._version("vecshard"), grpcio=sv._version("grpcio"),
                     protobuf=sv._version("protobuf"))
            return v

        def params(self):
            p = super().params()
            p.update(client="vecshard.Client (clients/python), one per client thread (own channel and TCP "
                            "connection)",
                     query="Client.search(collection, q, k, ef=ef): one query per call, packed float32 in, "
                           "packed ids/scores out",
                     load="Client.upsert(ids, vectors, batch_size=upsert_batch): packed float32")
            return p

        def start(self):
            import vecshard  # noqa: F401  (fail early when the package is missing)
            self.target = self.args.vecshard_grpc
            if not self.target:
                raise RuntimeError("--vecshard-grpc HOST:PORT (or --vecshard-dev BIN) is required")
            self.port = int(self.target.rsplit(":", 1)[1])
            self.client = self._client()
            st = self.client.cluster_status(timeout=30)
            self.info["cluster"] = dict(routers=len(st.routers), nodes=len(st.nodes))

        def create(self):
            ci = self.client.create_collection(self.coll, dimension=self.dim, metric=self._metric(),
                                               shard_count=self.args.vecshard_shards, m=self.args.M,
                                               ef_construction=self.args.ef_construction, timeout=60)
            self.info["spec"] = _plain(ci)
            self.created = True

        def load(self, base):
            import numpy as np
            t0 = time.perf_counter()
            n = self.client.upsert(self.coll, ids=np.arange(base.shape[0], dtype=np.uint64), vectors=base,
                                   batch_size=self.args.vecshard_batch)
            t1 = time.perf_counter()
            try:
                d = self.client.describe_collection(self.coll, timeout=30)
                self.info["shards"] = _plain(d).get("shards")
            except Exception as e:  # noqa: BLE001
                self.info["shards"] = repr(e)
            return dict(upsert_s=round(t1 - t0, 3), points=n)

        def connect(self):
            return VecshardPythonClient(self)

        def drop(self):
            if self.created and not self.args.keep:
                self.client.drop_collection(self.coll, timeout=60)
                self.created = False

        def stop(self):
            c = getattr(self, "client", None)
            if c is not None:
                c.close()

    class VecshardPythonClient:
        def __init__(self, srv):
            self.client = srv._client()
            self.coll = srv.coll
            self.ef = None

        def set_ef(self, ef):
            self.ef = int(ef)

        def search(self, q, k):
            ids, _ = self.client.search(self.coll, q, k, ef=self.ef, timeout=60)
            return ids

        def close(self):
            self.client.close()

    return VecshardPythonServer


# ------------------------------------------------------------------ recall-threshold summary
def _row_at(rows, thr):
    """The lowest-ef row whose recall reaches thr (the fastest such row in a sweep)."""
    ok = [r for r in rows if r.get("recall") is not None and r["recall"] >= thr]
    return min(ok, key=lambda r: r["ef"]) if ok else None


def _n(x, fmt="{:,.0f}"):
    return "—" if x is None else fmt.format(x)


def summary(results):
    L = []
    for R in results:
        m, c = R["dataset"]["meta"], R["config"]
        N = c["clients"]
        L.append(f"## {m['name']}: QPS at recall@{c['k']} thresholds (n={m['n_base']}, dim={m['dim']}, "
                 f"metric={m['metric']}, M={c['M']}, ef_construction={c['ef_construction']}, ef sweep {c['ef']}, "
                 f"{c['secs']} s per measurement)\n")
        L.append(f"Per server and threshold: the lowest ef of the sweep that reaches it. CPU µs/query = the "
                 f"harness's client work + the server's process tree.\n")
        L.append(f"| server | recall ≥ | ef | recall@{c['k']} | QPS 1 client | QPS {N} clients | "
                 f"CPU µs/query client + server (1) | CPU µs/query client + server ({N}) | foreign cores |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for name, s in R["servers"].items():
            rows = s.get("rows") or []
            if not rows:
                L.append(f"| {name} | errors: {'; '.join(s.get('errors', []))[:200]} | | | | | | | |")
                continue
            for thr in THRESHOLDS:
                r = _row_at(rows, thr)
                if r is None:
                    best = max(x["recall"] for x in rows)
                    L.append(f"| {name} | {thr} | not reached (best {best:.4f}) | | | | | | |")
                    continue
                fc = max(r.get("foreign_cores_single") or 0, r.get("foreign_cores_clients") or 0)
                L.append(f"| {name} | {thr} | {r['ef']} | {r['recall']:.4f} | {_n(r.get('qps_single'))} | "
                         f"{_n(r.get('qps_clients'))} | {_n(r.get('client_cpu_us_per_query_single'))} + "
                         f"{_n(r.get('server_cpu_us_per_query_single'))} | "
                         f"{_n(r.get('client_cpu_us_per_query_clients'))} + "
                         f"{_n(r.get('server_cpu_us_per_query_clients'))} | {fc:.2f} |")
        L.append("")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # --servers is servers.py's
    ap.add_argument("--servers-py")
    ap.add_argument("--summary", nargs="+")
    ap.add_argument("-h", "--help", action="store_true")
    mine, rest = ap.parse_known_args()
    if mine.summary:
        rs = []
        for p in mine.summary:
            with open(p) as f:
                rs.append(json.load(f))
        print(summary(rs), end="")
        return
    if mine.help:
        print(__doc__)
        print("servers.py's options follow.\n")
    path = find_servers_py(mine.servers_py)
    sv = import_servers(path)
    cls = define_server(sv)
    sv.SERVERS[cls.name] = cls
    sys.argv = [path] + rest + (["--help"] if mine.help else [])
    sv.main()
    # servers.py's main wrote --out (JSON) and its .md; add who drove it and the summary
    out = None
    for i, a in enumerate(rest):
        if a == "--out" and i + 1 < len(rest):
            out = rest[i + 1]
        elif a.startswith("--out="):
            out = a.split("=", 1)[1]
    if out and os.path.exists(out) and not any(a == "--report" or a.startswith("--report=") for a in rest):
        with open(out) as f:
            R = json.load(f)
        R["harness"]["driver"] = dict(script=os.path.abspath(__file__), argv=[sys.executable, __file__] + rest,
                                      servers_py=path)
        with open(out, "w") as f:
            json.dump(R, f, indent=1)
        md = summary([R])
        with open(os.path.splitext(out)[0] + "-summary.md", "w") as f:
            f.write(md)
        print(md, flush=True)


if __name__ == "__main__":
    main()
