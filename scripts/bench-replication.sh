#!/usr/bin/env bash
# What replication costs a writer (note 014, issue 17): one router and three data nodes as
# separate processes of a release binary on this machine (local disk, loopback gRPC), then
# `vecshard bench-replication` against them: for replication factor 1, 3 with
# `write_ack all` and 3 with `majority`, the same generated points into a fresh collection,
# ingest throughput and upsert p50/p99. Prints a markdown table; the cluster is stopped and
# its directory removed afterwards.
#
#   scripts/bench-replication.sh [--bin PATH] [--dir DIR] [-- bench-replication options...]
#
# Defaults: --bin $CARGO_TARGET_DIR/release/vecshard (or target/release/vecshard; build it
# with `cargo build --release --bin vecshard`), --dir a new temporary directory.
# bench-replication options: --points (100000) --dim (128) --batch (500) --parallel (4)
# --shards (1) --cases (1:majority,3:all,3:majority); see `vecshard bench-replication -h`.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$repo/target}/release/vecshard"
dir=""
extra=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "bench-replication: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "bench-replication: no binary at $bin (cargo build --release --bin vecshard)" >&2; exit 1; }
if [ -z "$dir" ]; then dir="$(mktemp -d -t vecshard-bench-replication.XXXXXX)"; fi
mkdir -p "$dir"

# A free loopback port (the kernel picks, we release it at once).
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
grpc="127.0.0.1:$(port)"; internal="127.0.0.1:$(port)"; http="127.0.0.1:$(port)"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/router.toml" <<EOF
[router]
id = 1
data_dir = "$dir/router"
grpc_listen = "$grpc"
internal_listen = "$internal"
http_listen = "$http"

[[router.members]]
id = 1
grpc = "$grpc"
internal = "$internal"
http = "$http"
EOF
"$bin" router --config "$dir/router.toml" >"$dir/router.log" 2>&1 &
pids+=("$!")
for n in 1 2 3; do
  cat >"$dir/node-$n.toml" <<EOF
[node]
id = "node-$n"
grpc_addr = "127.0.0.1:$(port)"
http_addr = "127.0.0.1:$(port)"
data_dir = "$dir/node-$n"

[cluster]
routers = ["$internal"]
EOF
  "$bin" node --config "$dir/node-$n.toml" >"$dir/node-$n.log" 2>&1 &
  pids+=("$!")
done

# Until the router leads and sees three live nodes.
for _ in $(seq 1 120); do
  alive="$("$bin" status --router "$grpc" 2>/dev/null | grep -c ' alive ' || true)"
  [ "$alive" = 3 ] && break
  sleep 0.5
done
[ "$alive" = 3 ] || { echo "bench-replication: the cluster did not come up; logs in $dir" >&2; trap - EXIT; exit 1; }

echo "# $(date -u +%FT%TZ) commit $(git -C "$repo" rev-parse --short HEAD) $("$bin" --version 2>/dev/null || true), $(nproc) cores" >&2
"$bin" bench-replication --router "$grpc" "${extra[@]}"
