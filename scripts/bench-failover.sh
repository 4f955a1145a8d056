#!/usr/bin/env bash
# How long an object-store shard takes to fail over, end to end (issue 13; design note 015):
# one router and two data nodes as separate processes of a release binary, collections on
# the local S3 endpoint. For each segment format in --formats it starts a fresh cluster
# whose nodes write that format (`engine.segment_format`), imports the dataset's base
# vectors into a 1-shard collection, waits until the shard is idle (memtable flushed,
# merged into one segment), kills the shard's node with SIGKILL and measures, from the
# kill, until a search through the router answers with k hits again; then until the first
# 100 queries, searched one after another, give recall@10 at least the one before the kill
# (on a lazy shard this includes their cold reads). The router's
# failure timeout is part of the figure (`--failure-timeout-ms`, default the product's
# 10000); the script also reports how long the new node took to open the shard (its log's
# `opened ... ms=`).
#
#   scripts/bench-failover.sh [--bin PATH] [--dataset DIR] [--formats v1,auto]
#                             [--failure-timeout-ms MS] [--memtable-bytes N] [--dir DIR]
#
# Needs an S3 endpoint and its environment (AWS_ENDPOINT_URL, VECSHARD_TEST_S3_BUCKET,
# credentials): eval "$(scripts/test-services.sh start)" for moto, or, for lazy (auto)
# shards, the bundled deploy/s3-server run natively (README, "Failover of an object-store
# shard"): moto serves one request at a time and a cold lazy search through it can outlast
# the router's search deadline.
# Defaults: --bin $CARGO_TARGET_DIR/release/vecshard (or target/release/vecshard),
# --dataset /tmp/vecshard-bench/clustered-128, --formats v1,auto, --failure-timeout-ms
# 10000, --memtable-bytes the product's default (a memtable larger than the dataset makes
# the idle flush write one segment, so no merge precedes the kill), --dir a new temporary
# directory (removed afterwards; a given --dir is kept). Prints a markdown table.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$repo/target}/release/vecshard"
dataset=/tmp/vecshard-bench/clustered-128
formats=v1,auto
failure_timeout_ms=10000
memtable_bytes=""
dir=""
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
fail() { echo "bench-failover: $*" >&2; stop_all; trap - EXIT; exit 1; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --dataset) dataset="$2"; shift 2 ;;
    --formats) formats="$2"; shift 2 ;;
    --failure-timeout-ms) failure_timeout_ms="$2"; shift 2 ;;
    --memtable-bytes) memtable_bytes="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-failover: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$failure_timeout_ms" =~ ^[0-9]+$ ]] || fail "--failure-timeout-ms takes milliseconds, not '$failure_timeout_ms'"
[[ -z "$memtable_bytes" || "$memtable_bytes" =~ ^[0-9]+$ ]] ||
  fail "--memtable-bytes takes a number of bytes, not '$memtable_bytes'"
[ -x "$bin" ] || fail "no binary at $bin (cargo build --release --bin vecshard)"
[ -f "$dataset/base.fvecs" ] || fail "no $dataset/base.fvecs (shared/bench/gen_synthetic.py --out $dataset)"
[ -n "${VECSHARD_TEST_S3_BUCKET:-}" ] && [ -n "${AWS_ENDPOINT_URL:-}" ] ||
  fail 'the local S3 is not configured: eval "$(scripts/test-services.sh start)"'
bucket="$VECSHARD_TEST_S3_BUCKET"
keep=1
if [ -z "$dir" ]; then dir="$(mktemp -d -t vecshard-bench-failover.XXXXXX)"; keep=0; fi
mkdir -p "$dir"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
trap 'stop_all; [ "$keep" = 1 ] || rm -rf "$dir"' EXIT

# One measurement: fresh cluster writing format $1; prints a table row.
measure() {
  local fmt="$1" run="$dir/$1" stamp
  stamp="$(date -u +%Y%m%dT%H%M%S)"
  mkdir -p "$run"
  local grpc="127.0.0.1:$(port)" internal="127.0.0.1:$(port)" http="127.0.0.1:$(port)"
  cat >"$run/router.toml" <<EOF
[router]
id = 1
data_dir = "$run/router"
grpc_listen = "$grpc"
internal_listen = "$internal"
http_listen = "$http"
failure_timeout_ms = $failure_timeout_ms
allowed_storage = ["s3://$bucket"]

[[router.members]]
id = 1
grpc = "$grpc"
internal = "$internal"
http = "$http"
EOF
  "$bin" router --config "$run/router.toml" >"$run/router.log" 2>&1 &
  pids+=("$!")
  local node_pid=() node_http=()
  for n in 1 2; do
    local nh="127.0.0.1:$(port)"
    cat >"$run/node-$n.toml" <<EOF
[node]
id = "node-$n"
grpc_addr = "127.0.0.1:$(port)"
http_addr = "$nh"
data_dir = "$run/node-$n"

[engine]
segment_format = "$fmt"
${memtable_bytes:+memtable_bytes = $memtable_bytes}

[cluster]
routers = ["$internal"]
allowed_storage = ["s3://$bucket"]
EOF
    VECSHARD_LOG=info VECSHARD_LOG_FORMAT=json \
      "$bin" node --config "$run/node-$n.toml" >"$run/node-$n.log" 2>&1 &
    pids+=("$!"); node_pid+=("$!"); node_http+=("$nh")
  done
  local alive=0 p log
  for _ in $(seq 1 240); do
    alive="$("$bin" status --router "$grpc" 2>/dev/null | grep -c ' alive ' || true)"
    [ "$alive" = 2 ] && break
    # A process that exited (a bad setting, a port taken) will not come up: say why now.
    for log in router node-1 node-2; do
      case "$log" in router) p="${pids[0]}" ;; node-1) p="${node_pid[0]}" ;; *) p="${node_pid[1]}" ;; esac
      kill -0 "$p" 2>/dev/null || fail "the $fmt cluster's $log exited: $(tail -3 "$run/$log.log")"
    done
    sleep 0.25
  done
  [ "$alive" = 2 ] || fail "the $fmt cluster did not come up within 60 s: $(tail -3 "$run"/*.log)"
  "$bin" collection create --router "$grpc" --dim "$(python3 -c "import json;print(json.load(open('$dataset/meta.json'))['dim'])")" \
    --metric l2 --shards 1 --m 16 --ef-construction 200 --ef-search 32 \
    --storage "s3://$bucket/failover-$stamp-$fmt" failover >/dev/null
  local t0 t1
  t0="$(date +%s.%N)"
  "$bin" import --router "$grpc" --collection failover "$dataset/base.fvecs" >"$run/import.log" 2>&1 ||
    fail "import failed: $(tail -3 "$run/import.log")"
  t1="$(date +%s.%N)"
  echo "$fmt: imported in $(python3 -c "print(round($t1 - $t0, 1))") s; waiting for the shard to go idle (one segment, memtable empty)" >&2
  python3 "$repo/scripts/failover_probe.py" --router-http "$http" --dataset "$dataset" \
    --node-http "${node_http[0]}" --node-http "${node_http[1]}" \
    --node-pid "${node_pid[0]}" --node-pid "${node_pid[1]}" \
    --node-log "$run/node-1.log" --node-log "$run/node-2.log" --label "$fmt"
  stop_all
}

echo "# $(date -u +%FT%TZ) commit $(git -C "$repo" rev-parse --short HEAD), $(nproc) cores, dataset $dataset, failure_timeout_ms $failure_timeout_ms, memtable_bytes ${memtable_bytes:-default}" >&2
echo "| segment format | points | segment bytes | kill → first answer | kill → the 100 queries answered as before | shard open on the new node (its log) | recall@10 before / after |"
echo "|---|---|---|---|---|---|---|"
IFS=, read -r -a fmts <<<"$formats"
for f in "${fmts[@]}"; do measure "$f"; done
