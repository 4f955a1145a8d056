#!/usr/bin/env python3
"""The measuring half of scripts/bench-failover.sh (standard library only).

Waits until the collection `failover`'s one shard is idle (its node's metrics show an
empty memtable and one segment), measures recall@10 over the dataset's first queries
through the router's REST search, kills the shard's node with SIGKILL, then polls a search
until it answers with k hits (first answer) and until recall@10 is back to the value
before the kill (the same answers). Prints one markdown table row.
"""

import argparse
import array
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request

COLLECTION = "failover"
K = 10


def read_vecs(path, typecode, limit):
    out = []
    with open(path, "rb") as f:
        while len(out) < limit:
            head = f.read(4)
            if len(head) < 4:
                break
            dim = int.from_bytes(head, "little")
            row = array.array(typecode)
            row.frombytes(f.read(4 * dim))
            out.append(row)
    return out


def search(router, q, timeout=60.0):
    body = json.dumps({"vector": list(q), "k": K}).encode()
    req = urllib.request.Request(
        f"http://{router}/v1/collections/{COLLECTION}/search",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        hits = json.load(r)["hits"]
    return [h["id"] for h in hits]


def recall(router, queries, truth):
    found = 0
    for q, t in zip(queries, truth):
        found += len(set(search(router, q)) & set(t[:K]))
    return found / (K * len(queries))


def shard_metrics(node_http):
    """{metric: value} of collection `failover` on this node, {} if it holds no shard."""
    try:
        with urllib.request.urlopen(f"http://{node_http}/metrics", timeout=2) as r:
            text = r.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    out = {}
    for line in text.splitlines():
        m = re.match(r'vecshard_node_(shard_\w+)\{[^}]*collection="failover"[^}]*\} (\S+)', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--router-http", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--node-http", action="append", required=True)
    p.add_argument("--node-pid", action="append", type=int, required=True)
    p.add_argument("--node-log", action="append", required=True)
    p.add_argument("--label", required=True)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--idle-timeout-s", type=float, default=3600)
    a = p.parse_args()

    queries = read_vecs(os.path.join(a.dataset, "query.fvecs"), "f", a.queries)
    truth = read_vecs(os.path.join(a.dataset, "groundtruth.ivecs"), "i", a.queries)

    end = time.monotonic() + a.idle_timeout_s
    owner, m = None, {}
    while time.monotonic() < end:
        for i, h in enumerate(a.node_http):
            m = shard_metrics(h)
            if m.get("shard_memtable_rows") == 0 and m.get("shard_segments") == 1:
                owner = i
                break
        if owner is not None:
            break
        time.sleep(0.5)
    if owner is None:
        sys.exit(f"bench-failover: the shard did not go idle (last metrics: {m})")
    points = int(m.get("shard_points", 0))
    seg_bytes = int(m.get("shard_segment_bytes", 0))
    try:
        before = recall(a.router_http, queries, truth)
    except (urllib.error.URLError, OSError, KeyError, ValueError) as e:
        sys.exit(f"bench-failover: the searches before the kill failed: {e}")
    survivor = 1 - owner
    log_size = os.path.getsize(a.node_log[survivor])

    killed = time.monotonic()
    os.kill(a.node_pid[owner], signal.SIGKILL)
    first = None
    while first is None:
        try:
            if len(search(a.router_http, queries[0], timeout=2)) == K:
                first = time.monotonic() - killed
            else:
                time.sleep(0.02)
        except (urllib.error.URLError, OSError, KeyError, ValueError):
            time.sleep(0.02)
        if time.monotonic() - killed > 600:
            sys.exit("bench-failover: no answer 10 minutes after the kill")
    same = None
    after = 0.0
    while same is None:
        try:
            after = recall(a.router_http, queries, truth)
            if after >= before:
                same = time.monotonic() - killed
        except (urllib.error.URLError, OSError, KeyError, ValueError):
            time.sleep(0.02)
        if time.monotonic() - killed > 600:
            sys.exit(f"bench-failover: recall {after} never got back to {before}")

    opened = "?"
    with open(a.node_log[survivor], "rb") as f:
        f.seek(log_size)
        for line in f.read().decode(errors="replace").splitlines():
            try:
                fields = json.loads(line).get("fields", {})
            except ValueError:
                continue
            if fields.get("message") == "opened" and "ms" in fields:
                opened = f"{fields['ms'] / 1000:.2f} s"
    print(
        f"| {a.label} | {points:,} | {seg_bytes / 1e6:.1f} MB | {first:.2f} s | {same:.2f} s "
        f"| {opened} | {before:.3f} / {after:.3f} |"
    )


if __name__ == "__main__":
    main()
