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
  vecshard-python-rest  the same client given the router's REST address too
                   (`Client(grpc, rest=URL)`): load over gRPC as above, queries through the
                   router's binary REST search (packed float32 in, packed hits out, keep-alive
                   HTTP/1.1 on a plain socket). Endpoint: also --vecshard-rest URL (or --vecshard-dev).

Options of this script (everything else goes to servers.py):
  --servers-py PATH   servers.py to use (default $VECSHARD_SERVERS_PY, else ../shared/bench/
                      servers.py beside the repository, else /work/shared/bench/servers.py)
  --client-procs N    after servers.py's measurements of each (server, ef), also measure N
                      client PROCESSES (N >= 2; for every server of the run, so ratios are
                      fair): each its own Python interpreter and connection, warmed up, started
                      together, cycling over the queries from its own offset for --secs. Adds
                      qps_procs, lat_us_p50/p99_procs, client/server CPU us per query (_procs:
                      the client CPU is the processes' own) and foreign_cores_procs to every row.
                      Threads share one GIL; processes show what the server does when the
                      client library is not the limit.
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
import pickle
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
        rest = False  # searches through the router's binary REST search

        def _client(self):
            import vecshard
            # a local subchannel pool, as servers.py does for vecshard-grpc and milvus: without
            # it channels to one target share a TCP connection
            return vecshard.Client(self.target, api_key=os.environ.get("VECSHARD_API_KEY") or None,
                                   timeout=600, channel_options=[("grpc.use_local_subchannel_pool", 1)],
                                   rest=self.rest_url if self.rest else None)

        def versions(self):
            v = super().versions()
            v.update(vecshard_python=sv._version("vecshard"), grpcio=sv._version("grpcio"),
                     protobuf=sv._version("protobuf"))
            return v

        def params(self):
            p = super().params()
            p.update(client="vecshard.Client (clients/python), one per client thread (own channel and TCP "
                            "connection)" + (f", rest={self.rest_url}" if self.rest else ""),
                     query="Client.search(collection, q, k, ef=ef): one query per call, packed float32 in, "
                           "packed ids/scores out, " + ("binary REST (application/x-vecshard-f32) on a keep-alive "
                                                        "socket" if self.rest else "gRPC"),
                     load="Client.upsert(ids, vectors, batch_size=upsert_batch): packed float32, gRPC")
            return p

        def start(self):
            import vecshard  # noqa: F401  (fail early when the package is missing)
            self.target = self.args.vecshard_grpc
            if not self.target:
                raise RuntimeError("--vecshard-grpc HOST:PORT (or --vecshard-dev BIN) is required")
            self.rest_url = self.args.vecshard_rest
            if self.rest and not self.rest_url:
                raise RuntimeError("--vecshard-rest URL (or --vecshard-dev BIN) is required for " + self.name)
            # the port the clients talk to: the harness counts its TCP connections
            self.port = int((self.rest_url if self.rest else self.target).rstrip("/").rsplit(":", 1)[1])
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

    class VecshardPythonRestServer(VecshardPythonServer):
        name = "vecshard-python-rest"
        rest = True

    return VecshardPythonServer, VecshardPythonRestServer


# ------------------------------------------------------------------ N client processes
def _shadow(srv):
    """The picklable part of a server adapter: what a client process needs to connect (port,
    collection, target, ...); processes, connections and modules stay behind."""
    st = {}
    for k, v in vars(srv).items():
        try:
            pickle.dumps(v)
        except Exception:  # noqa: BLE001
            continue
        st[k] = v
    return st


def _settle(pid, quiet=0.05, windows=15, limit_s=1800.0):
    """Wait until the server process is quiet after a load: vecshard flushes and, some
    seconds after the last write (`idle_merge_after`, 10 s by default), merges a shard's
    segments into one (the idle merge), so searches measured before that would pay for the
    merge's CPU and search a shard that is not in its steady state. Polls the process's CPU
    over 1 s windows until `windows` windows in a row each use under `quiet` of a core;
    returns the seconds waited."""
    import psutil
    proc, t0, calm = psutil.Process(pid), time.perf_counter(), 0
    while calm < windows and time.perf_counter() - t0 < limit_s:
        c0 = sum(proc.cpu_times()[:2])
        w0 = time.perf_counter()
        time.sleep(1.0)
        busy = (sum(proc.cpu_times()[:2]) - c0) / (time.perf_counter() - w0)
        calm = calm + 1 if busy < quiet else 0
    return round(time.perf_counter() - t0, 1)


def _settling(cls):
    """`cls` with a `load` that waits for the server to settle (see `_settle`) and records
    the wait as `settle_s` in the load's numbers."""
    load = cls.load

    def settled_load(self, base):
        r = load(self, base)
        pid = self.server_pid()
        if pid:
            r = dict(r or {}, settle_s=_settle(pid))
        return r

    cls.load = settled_load
    return cls


def _registry(path):
    """servers.py imported, with this script's servers added; every vecshard server's load
    waits for the server to settle."""
    sv = import_servers(path)
    for cls in define_server(sv):
        sv.SERVERS[cls.name] = cls
    for name, cls in sv.SERVERS.items():
        if name.startswith("vecshard") and "load" in cls.__dict__:
            _settling(cls)
    return sv


def _proc_client(path, name, state, Q, k, ef, j, n, ready, go, deadline, out):
    """One client process: connect like a client thread of servers.py, warm up, wait for the
    start, then search until the deadline; report the count, latencies and own CPU."""
    import gc
    import numpy as np
    err = None
    c = None
    try:
        sv = _registry(path)
        cls = sv.SERVERS[name]
        srv = cls.__new__(cls)
        srv.__dict__.update(state)
        if name == "vecshard-grpc":  # the generated stubs are modules: import them again here
            import importlib
            sys.path.insert(0, srv.stub_dir)
            srv.pb2 = importlib.import_module("vecshard.v1.vecshard_pb2")
            srv.pb2_grpc = importlib.import_module("vecshard.v1.vecshard_pb2_grpc")
        c = srv.connect()
        c.set_ef(ef)
        nq = Q.shape[0]
        i = (j * nq) // n
        for _ in range(min(20, nq)):  # warm-up, not timed
            c.search(Q[i % nq], k)
            i += 1
    except Exception as e:  # noqa: BLE001
        err = f"{type(e).__name__}: {e}"
    finally:
        ready.wait()
    go.wait()
    lats = []
    last = time.perf_counter()
    cpu0 = time.process_time()
    if err is None:
        end = deadline.value
        pc = time.perf_counter
        gc.disable()
        try:
            while True:
                a = pc()
                c.search(Q[i % nq], k)
                last = pc()
                lats.append(last - a)
                i += 1
                if last >= end:
                    break
        except Exception as e:  # noqa: BLE001
            err = f"{type(e).__name__}: {e}"
        gc.enable()
    cpu = time.process_time() - cpu0
    out.put(dict(j=j, lats=np.asarray(lats), cpu_s=cpu, last=last, err=err))
    if c is not None:
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass


def measure_procs(sv, path, srv, Q, ef, args, n):
    """N client processes against srv at ef (the server side is already set for ef): the
    `_procs` fields of a row."""
    import multiprocessing as mp
    import numpy as np
    ctx = mp.get_context("spawn")  # a fresh interpreter: no client library state forked along
    ready, go, out = ctx.Barrier(n + 1), ctx.Event(), ctx.Queue()
    deadline = ctx.Value("d", 0.0)
    state = _shadow(srv)
    ps = [ctx.Process(target=_proc_client, daemon=True,
                      args=(path, srv.name, state, Q, args.k, ef, j, n, ready, go, deadline, out))
          for j in range(n)]
    for p in ps:
        p.start()
    got = []
    try:
        ready.wait(timeout=300)
        s = sv.Sampler(srv.server_pid())
        t0 = time.perf_counter()  # CLOCK_MONOTONIC: the same clock in every process
        deadline.value = t0 + args.secs
        go.set()
        for _ in ps:
            got.append(out.get(timeout=args.secs + 300))
        cs = s.stop()
    finally:
        for p in ps:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    errs = [g["err"] for g in got if g["err"]]
    count = sum(len(g["lats"]) for g in got)
    wall = max([g["last"] for g in got] + [t0 + 1e-9]) - t0
    child_cpu = sum(g["cpu_s"] for g in got)
    lat = np.concatenate([g["lats"] for g in got if len(g["lats"])]) if count else np.zeros(1)
    sw = max(cs["wall_s"], 1e-9)
    own = (cs["own_cores"] or 0) + child_cpu / sw
    foreign = None if cs["foreign_cores"] is None else round(max(0.0, cs["foreign_cores"] - child_cpu / sw), 3)
    qps = count / wall if wall > 0 else None
    row = dict(procs=n, qps_procs=round(qps, 1) if qps else None, queries_procs=count,
               lat_us_p50_procs=round(float(np.percentile(lat, 50)) * 1e6, 1),
               lat_us_p99_procs=round(float(np.percentile(lat, 99)) * 1e6, 1),
               own_cores_procs=round(own, 3), server_cores_procs=cs["server_cores"],
               foreign_cores_procs=foreign,
               client_cpu_us_per_query_procs=round(child_cpu * 1e6 / count, 1) if count else None,
               server_cpu_us_per_query_procs=round(cs["server_cores"] * sw * 1e6 / count, 1)
               if count and cs["server_cores"] is not None else None)
    if errs:
        row["procs_errors"] = errs[:5]
    return row


def add_client_procs(sv, path, n):
    """Wrap servers.py's measure_ef: its measurements, then N client processes."""
    orig = sv.measure_ef

    def measure_ef(srv, conns, Q, gt, ef, args):
        row = orig(srv, conns, Q, gt, ef, args)
        try:
            row.update(measure_procs(sv, path, srv, Q, ef, args, n))
        except Exception as e:  # noqa: BLE001
            row["procs_errors"] = [f"{type(e).__name__}: {e}"]
        return row

    sv.measure_ef = measure_ef


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
        P = c.get("client_procs")
        L.append(f"## {m['name']}: QPS at recall@{c['k']} thresholds (n={m['n_base']}, dim={m['dim']}, "
                 f"metric={m['metric']}, M={c['M']}, ef_construction={c['ef_construction']}, ef sweep {c['ef']}, "
                 f"{c['secs']} s per measurement)\n")
        L.append(f"Per server and threshold: the lowest ef of the sweep that reaches it. CPU µs/query = the "
                 f"harness's client work + the server's process tree"
                 + (f"; {P} procs = {P} client processes (each its own interpreter and connection)" if P else "")
                 + ".\n")
        extra_h = f" QPS {P} procs | CPU µs/query client + server ({P} procs) |" if P else ""
        L.append(f"| server | recall ≥ | ef | recall@{c['k']} | QPS 1 client | QPS {N} clients | "
                 f"CPU µs/query client + server (1) | CPU µs/query client + server ({N}) |{extra_h} foreign cores |")
        L.append("|---|---|---|---|---|---|---|---|" + ("---|---|" if P else "") + "---|")
        blank = "| | | | | | | |" + (" | |" if P else "")
        for name, s in R["servers"].items():
            rows = s.get("rows") or []
            if not rows:
                L.append(f"| {name} | errors: {'; '.join(s.get('errors', []))[:200]} {blank}")
                continue
            for thr in THRESHOLDS:
                r = _row_at(rows, thr)
                if r is None:
                    best = max(x["recall"] for x in rows)
                    L.append(f"| {name} | {thr} | not reached (best {best:.4f}) {blank}")
                    continue
                fc = max(r.get("foreign_cores_single") or 0, r.get("foreign_cores_clients") or 0,
                         r.get("foreign_cores_procs") or 0)
                extra = (f" {_n(r.get('qps_procs'))} | {_n(r.get('client_cpu_us_per_query_procs'))} + "
                         f"{_n(r.get('server_cpu_us_per_query_procs'))} |") if P else ""
                L.append(f"| {name} | {thr} | {r['ef']} | {r['recall']:.4f} | {_n(r.get('qps_single'))} | "
                         f"{_n(r.get('qps_clients'))} | {_n(r.get('client_cpu_us_per_query_single'))} + "
                         f"{_n(r.get('server_cpu_us_per_query_single'))} | "
                         f"{_n(r.get('client_cpu_us_per_query_clients'))} + "
                         f"{_n(r.get('server_cpu_us_per_query_clients'))} |{extra} {fc:.2f} |")
        L.append("")
    return "\n".join(L) + "\n"


def main():
    argv0 = list(sys.argv)
    ap = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # --servers is servers.py's
    ap.add_argument("--servers-py")
    ap.add_argument("--summary", nargs="+")
    ap.add_argument("--client-procs", type=int, default=0)
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
    if mine.client_procs == 1 or mine.client_procs < 0:
        raise SystemExit("--client-procs N needs N >= 2 (0: off)")
    path = find_servers_py(mine.servers_py)
    sv = _registry(path)
    if mine.client_procs:
        add_client_procs(sv, path, mine.client_procs)
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
        R["harness"]["driver"] = dict(script=os.path.abspath(__file__),
                                      argv=[sys.executable] + argv0, servers_py=path)
        R["config"]["client_procs"] = mine.client_procs or None
        with open(out, "w") as f:
            json.dump(R, f, indent=1)
        md = summary([R])
        with open(os.path.splitext(out)[0] + "-summary.md", "w") as f:
            f.write(md)
        print(md, flush=True)


if __name__ == "__main__":
    main()
