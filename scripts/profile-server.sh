#!/usr/bin/env bash
# Server CPU per search, and where it goes (issue 14; method in
# docs/design/016-served-path.md). Starts `vecshard dev` (1 node, no demo, free ports) from
# --bin, imports the dataset into a collection of --shards shards, then with `vecshard
# bench-served` (from --client-bin) measures, from outside the server process:
#   - the server's CPU per search (utime + stime of the whole process, /proc/PID/stat)
#     through the router (public gRPC) and straight to the node (internal gRPC), for each
#     client count, plus the server's idle CPU;
#   - with --perf, a `perf record -g` profile of the server during a 1-client router pass,
#     written as text (perf-report.txt: flat, and by caller), never as an SVG;
# then stops the server and measures the embedded engine alone on the node's shard
# directories (one thread, the same queries and ef).
#
#   scripts/profile-server.sh [--bin PATH] [--client-bin PATH] [--dataset DIR] [--shards N]
#                             [--ef N] [--clients LIST] [--secs S] [--perf] [--out-dir DIR]
#
# Defaults: --bin and --client-bin $CARGO_TARGET_DIR/release/vecshard, --dataset
# /tmp/vecshard-bench/clustered-128, --shards 1, --ef 16, --clients 1,2, --secs 5,
# --out-dir /tmp/vecshard-bench/profile-<UTC time>. Release binaries only: a debug build's
# numbers say nothing. Report ratios from one run; note whether the machine was shared.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

bin="${CARGO_TARGET_DIR:-$repo/target}/release/vecshard"
client_bin=""
dataset=/tmp/vecshard-bench/clustered-128
shards=1
ef=16
clients=1,2
secs=5
perf=0
out_dir="/tmp/vecshard-bench/profile-$(date -u +%Y%m%dT%H%M%SZ)"

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
need() { [ "$#" -ge 2 ] || { echo "profile-server: $1 needs a value" >&2; exit 2; }; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    --bin) need "$@"; bin="$2"; shift 2 ;;
    --client-bin) need "$@"; client_bin="$2"; shift 2 ;;
    --dataset) need "$@"; dataset="$2"; shift 2 ;;
    --shards) need "$@"; shards="$2"; shift 2 ;;
    --ef) need "$@"; ef="$2"; shift 2 ;;
    --clients) need "$@"; clients="$2"; shift 2 ;;
    --secs) need "$@"; secs="$2"; shift 2 ;;
    --perf) perf=1; shift ;;
    --out-dir) need "$@"; out_dir="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "profile-server: unknown option $1" >&2; usage 2 ;;
  esac
done
client_bin="${client_bin:-$bin}"
fail() { echo "profile-server: $*" >&2; exit 1; }
[ -x "$bin" ] || fail "no server binary $bin (cargo build --release -p vecshard)"
[ -x "$client_bin" ] || fail "no client binary $client_bin"
"$client_bin" bench-served --help >/dev/null 2>&1 || fail "$client_bin has no bench-served command"
[ -f "$dataset/base.fvecs" ] || fail "no dataset in $dataset (base.fvecs, query.fvecs, groundtruth.ivecs)"
if [ "$perf" = 1 ]; then command -v perf >/dev/null || fail "perf is not installed"; fi

mkdir -p "$out_dir"
data="$out_dir/data"
log="$out_dir/dev.log"
"$bin" dev --nodes 1 --no-demo --any-port --data "$data" >"$log" 2>&1 &
dev_pid=$!
stop_dev() {
  if kill -0 "$dev_pid" 2>/dev/null; then
    kill -TERM "$dev_pid" 2>/dev/null || true
    wait "$dev_pid" 2>/dev/null || true
  fi
}
trap stop_dev EXIT

# The addresses `vecshard dev` prints once the cluster serves.
router="" node=""
for _ in $(seq 1 300); do
  router="$(sed -n 's/^  router 1 *gRPC \([^ ]*\) .*/\1/p' "$log" | head -1)"
  node="$(sed -n 's/^  node-0 *gRPC \([^ ]*\) .*/\1/p' "$log" | head -1)"
  if [ -n "$router" ] && [ -n "$node" ] && grep -q '^serving' "$log"; then break; fi
  kill -0 "$dev_pid" 2>/dev/null || { cat "$log" >&2; fail "vecshard dev exited"; }
  sleep 0.2
done
[ -n "$router" ] && [ -n "$node" ] || fail "vecshard dev did not print its addresses ($log)"

{
  echo "command: $0 --bin $bin --client-bin $client_bin --dataset $dataset --shards $shards --ef $ef --clients $clients --secs $secs"
  echo "commit: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "start: $(date -u +%FT%TZ); load: $(cut -d' ' -f1-3 /proc/loadavg); cores: $(nproc)"
} | tee "$out_dir/run.txt"

common=(--dataset "$dataset" --collection served --ef "$ef")
"$client_bin" bench-served "${common[@]}" --router "$router" --node "$node" --pid "$dev_pid" \
  --load "$shards" --clients "$clients" --secs "$secs" | tee "$out_dir/served.md"

if [ "$perf" = 1 ]; then
  # One client through the router in the background, perf on the server meanwhile.
  "$client_bin" bench-served "${common[@]}" --router "$router" --pid "$dev_pid" \
    --clients 1 --secs $((secs + 8)) >/dev/null &
  load_pid=$!
  # Past its recall pass and idle measurement, inside its timed pass.
  sleep 6
  perf record -F 999 -g -o "$out_dir/perf.data" -p "$dev_pid" -- sleep "$secs" 2>"$out_dir/perf-record.log"
  wait "$load_pid"
  {
    echo "# flat (self time), symbols above 0.5 %"
    perf report -i "$out_dir/perf.data" --stdio --no-children --percent-limit 0.5 \
      --sort dso,symbol -g none 2>/dev/null
    echo "# inclusive (self + callees), symbols above 5 %: which layer the time is under"
    perf report -i "$out_dir/perf.data" --stdio --children --percent-limit 5 \
      --sort symbol -g none 2>/dev/null
    echo "# by thread"
    perf report -i "$out_dir/perf.data" --stdio --no-children --sort comm -g none 2>/dev/null
    echo "# with callers, symbols above 2 %"
    perf report -i "$out_dir/perf.data" --stdio --no-children --percent-limit 2 \
      -g caller,0.5,callee --sort symbol 2>/dev/null | head -400
  } | sed 's/ *$//' >"$out_dir/perf-report.txt"
  echo "perf profile: $out_dir/perf-report.txt"
fi

stop_dev
trap - EXIT
shard_dirs=("$data"/node-0/served-*/shard-*)
[ -d "${shard_dirs[0]}" ] || fail "no shard directories under $data/node-0"
"$client_bin" bench-served "${common[@]}" --secs "$secs" --engine "${shard_dirs[@]}" | tee "$out_dir/engine.md"
echo "end: $(date -u +%FT%TZ)" >>"$out_dir/run.txt"
echo "results in $out_dir"
