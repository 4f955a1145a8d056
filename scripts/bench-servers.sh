#!/usr/bin/env bash
# Server comparison in one command: shared/bench/servers.py (through
# bench/servers/servers_vecshard.py, which adds `vecshard-python`, vecshard through its own
# Python client) on one dataset: pgvector, then vecshard over gRPC, REST and the Python
# client (over gRPC, and given the REST address too: its binary REST search), all against one `vecshard dev` cluster this run starts from a release binary and
# stops after (1 node, collections of 1 shard unless told otherwise).
#
#   scripts/bench-servers.sh [--out-dir DIR] [--venv DIR] [--dataset DIR] [--bin PATH]
#                            [--servers LIST] [--servers-py PATH] [--nodes N] [--shards N]
#                            [--secs S] [--clients N] [--client-procs P] [--ef LIST]
#                            [-- servers.py options...]
#
# Defaults: --venv /tmp/vecshard-bench/servers-venv (see the README, "Server comparison"),
# --dataset /tmp/vecshard-bench/clustered-128, --bin $CARGO_TARGET_DIR/release/vecshard (or
# target/release/vecshard), --out-dir /tmp/vecshard-bench/servers-<UTC time>,
# --servers pgvector,vecshard-grpc,vecshard-rest,vecshard-python,vecshard-python-rest (add
# chroma,milvus when installed), --secs 5 --clients 2 --client-procs 4 --ef 16,32,64,128,
# 2 build threads, 1 node, 1 shard. --client-procs P also measures P client processes for
# every server (0: off), after servers.py's 1-client and N-thread measurements.
# servers.py waits (up to 120 s) for the machine to be idle before each load and search.
#
# Writes to --out-dir: results.json (every number), results.md (servers.py's tables),
# results-summary.md (QPS at recall@10 >= 0.95 and >= 0.99, 1 client, N threads and P
# processes, CPU us/query),
# run.log (stderr and stdout) and run.txt (command, commit, binary version, start/end).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

venv=/tmp/vecshard-bench/servers-venv
dataset=/tmp/vecshard-bench/clustered-128
bin="${CARGO_TARGET_DIR:-$repo/target}/release/vecshard"
out_dir="/tmp/vecshard-bench/servers-$(date -u +%Y%m%dT%H%M%SZ)"
servers=pgvector,vecshard-grpc,vecshard-rest,vecshard-python,vecshard-python-rest
servers_py=()
nodes=1
shards=1
secs=5
clients=2
client_procs=4
ef=16,32,64,128
extra=()

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
need() { [ "$#" -ge 2 ] || { echo "bench-servers: $1 needs a value" >&2; exit 2; }; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    --out-dir) need "$@"; out_dir="$2"; shift 2 ;;
    --venv) need "$@"; venv="$2"; shift 2 ;;
    --dataset) need "$@"; dataset="$2"; shift 2 ;;
    --bin) need "$@"; bin="$2"; shift 2 ;;
    --servers) need "$@"; servers="$2"; shift 2 ;;
    --servers-py) need "$@"; servers_py=(--servers-py "$2"); shift 2 ;;
    --nodes) need "$@"; nodes="$2"; shift 2 ;;
    --shards) need "$@"; shards="$2"; shift 2 ;;
    --secs) need "$@"; secs="$2"; shift 2 ;;
    --clients) need "$@"; clients="$2"; shift 2 ;;
    --client-procs) need "$@"; client_procs="$2"; shift 2 ;;
    --ef) need "$@"; ef="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "bench-servers: unknown option $1 (servers.py options go after --)" >&2; usage 2 ;;
  esac
done

py="$venv/bin/python"
fail() { echo "bench-servers: $*" >&2; exit 1; }
[ -x "$py" ] || fail "no venv at $venv (create it as the README's \"Server comparison\" section shows)"
"$py" -c 'import numpy, psutil' 2>/dev/null || fail "$venv lacks numpy/psutil"
case ",$servers," in
  *,vecshard-python,*|*,vecshard-python-rest,*) "$py" -c 'import vecshard' 2>/dev/null ||
    fail "$venv lacks the vecshard package: $venv/bin/pip install ./clients/python" ;;
esac
case ",$servers," in
  *,vecshard-grpc,*) "$py" -c 'import grpc_tools' 2>/dev/null || fail "$venv lacks grpcio-tools (for vecshard-grpc)" ;;
esac
case ",$servers," in
  *,pgvector,*) "$py" -c 'import psycopg' 2>/dev/null || fail "$venv lacks psycopg (for pgvector)"
    ls /usr/share/postgresql/*/extension/vector.control >/dev/null 2>&1 ||
      echo "bench-servers: warning: no pgvector extension found under /usr/share/postgresql (pgvector will fail)" >&2 ;;
esac
[ -x "$bin" ] || fail "no vecshard binary at $bin (cargo build --release -p vecshard, or --bin PATH)"
for f in base.fvecs query.fvecs groundtruth.ivecs; do
  [ -f "$dataset/$f" ] || fail "$dataset/$f missing (python3 ../shared/bench/gen_synthetic.py --out $dataset)"
done

mkdir -p "$out_dir"
cmd=("$py" "$repo/bench/servers/servers_vecshard.py" "${servers_py[@]}" --client-procs "$client_procs"
  --dataset "$dataset" --out "$out_dir/results.json" --servers "$servers"
  --vecshard-dev "$bin" --vecshard-proto "$repo/proto/proto" --vecshard-nodes "$nodes" --vecshard-shards "$shards"
  --secs "$secs" --clients "$clients" --ef "$ef" --build-threads 2 "${extra[@]}")
{
  echo "command: ${cmd[*]}"
  echo "commit: $(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$repo" diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "binary: $bin ($("$bin" --version 2>/dev/null || echo '?'), built $(date -u -r "$bin" +%Y-%m-%dT%H:%M:%SZ))"
  echo "started: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$out_dir/run.txt"
echo "bench-servers: writing to $out_dir" >&2
rc=0
"${cmd[@]}" 2>&1 | tee "$out_dir/run.log" || rc=$?
echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ) rc=$rc" >> "$out_dir/run.txt"
[ "$rc" -eq 0 ] || fail "servers.py failed (rc $rc); see $out_dir/run.log"
echo "bench-servers: results in $out_dir (results-summary.md, results.md, results.json)" >&2
