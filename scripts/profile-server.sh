#!/usr/bin/env bash
# Server CPU per search, and where it goes (issue 14; method in
# docs/design/016-served-path.md). Starts `vecshard dev` (1 node, no demo, free ports) from
# --bin, imports the dataset into one collection per entry of --shards (`served` for a
# single entry, `served-sN` for N shards otherwise), then with `vecshard bench-served`
# (from --client-bin) measures, from outside the server process:
#   - the server's CPU per search (utime + stime of the whole process, /proc/PID/stat)
#     through the router (public gRPC and, with --rest, the binary REST search) and
#     straight to the node (internal gRPC), for each client count, plus the server's idle
#     CPU, its context switches per query (which threads: threads.txt) and the cores other
#     processes used meanwhile ("foreign cores");
#   - with --perf, a `perf record` profile of the server during a 1-client router pass,
#     written as text (perf-report.txt: flat, inclusive, by thread, by caller; DWARF call
#     graphs, as the release build has no frame pointers), never as an SVG;
#   - with --count, the server's system calls (total and by kind), context switches and
#     wake-ups per query in every pass (`perf stat -p PID`; lines in threads.txt);
# then stops the server and measures the embedded engine alone on the node's shard
# directories (one thread, the same queries and ef).
#
# A/B in one sitting: each --variant 'LABEL [VAR=VALUE ...]' restarts the server on the
# same data directory with those environment variables (the measuring client gets them
# too, e.g. VECSHARD_GRPC_COALESCE=0 VECSHARD_GRPC_ONE_FRAME=0 for tonic's plain writes)
# and measures it again (after the
# load; --rounds R repeats the whole list R times, interleaved). Without --variant: one
# variant, `default`, with the environment as it is. --skip-load reuses the collections an
# earlier run with the same --out-dir and --shards loaded.
#
#   scripts/profile-server.sh [--bin PATH] [--client-bin PATH] [--dataset DIR]
#                             [--shards LIST] [--ef N] [--clients LIST] [--secs S]
#                             [--variant 'LABEL VAR=VALUE ...']... [--rounds R]
#                             [--rest] [--perf] [--count] [--out-dir DIR] [--skip-load]
#
# Defaults: --bin and --client-bin $CARGO_TARGET_DIR/release/vecshard, --dataset
# /tmp/vecshard-bench/clustered-128, --shards 1, --ef 16, --clients 1,2, --secs 5,
# --rounds 1, --out-dir /tmp/vecshard-bench/profile-<UTC time>. `perf` is looked up as
# perf, then perf_<version> (Debian's linux-perf). Release binaries only: a debug build's
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
count=0
rest=0
skip_load=0
rounds=1
variants=()
out_dir="/tmp/vecshard-bench/profile-$(date -u +%Y%m%dT%H%M%SZ)"

usage() { sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
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
    --variant) need "$@"; variants+=("$2"); shift 2 ;;
    --rounds) need "$@"; rounds="$2"; shift 2 ;;
    --rest) rest=1; shift ;;
    --skip-load) skip_load=1; shift ;;
    --perf) perf=1; shift ;;
    --count) count=1; shift ;;
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
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || fail "--rounds $rounds: expected a positive number"
IFS=, read -r -a shard_list <<<"$shards"
for s in "${shard_list[@]}"; do
  [[ "$s" =~ ^[1-9][0-9]*$ ]] || fail "--shards $shards: expected a list of positive numbers"
done
[ "${#variants[@]}" -gt 0 ] || variants=(default)
for v in "${variants[@]}"; do
  read -r -a words <<<"$v"
  [ "${#words[@]}" -gt 0 ] || fail "--variant '$v': give a label"
  for w in "${words[@]:1}"; do
    [[ "$w" =~ ^[A-Za-z_][A-Za-z0-9_]*=.*$ ]] || fail "--variant '$v': $w is not VAR=VALUE"
  done
done
perf_bin=""
if [ "$perf" = 1 ] || [ "$count" = 1 ]; then
  perf_bin="$(command -v perf || true)"
  if [ -z "$perf_bin" ]; then
    perf_bin="$(find /usr/bin -maxdepth 1 -name 'perf_*' -type f -perm -u+x 2>/dev/null | sort -V | tail -1)"
  fi
  [ -n "$perf_bin" ] || fail "perf is not installed (apt-get install linux-perf)"
fi
collection() { if [ "${#shard_list[@]}" = 1 ]; then echo served; else echo "served-s$1"; fi; }

mkdir -p "$out_dir"
data="$out_dir/data"
dev_pid="" router="" node="" rest_addr=""
stop_dev() {
  if [ -n "$dev_pid" ] && kill -0 "$dev_pid" 2>/dev/null; then
    kill -TERM "$dev_pid" 2>/dev/null || true
    wait "$dev_pid" 2>/dev/null || true
  fi
  dev_pid=""
}
trap stop_dev EXIT

# start_dev LOG [VAR=VALUE ...]: `vecshard dev` on $data, its addresses once it serves.
start_dev() {
  local log="$1"; shift
  : >"$log"
  env "$@" "$bin" dev --nodes 1 --no-demo --any-port --data "$data" >"$log" 2>&1 &
  dev_pid=$!
  router="" node="" rest_addr=""
  for _ in $(seq 1 300); do
    router="$(sed -n 's/^  router 1 *gRPC \([^ ]*\) .*/\1/p' "$log" | head -1)"
    rest_addr="$(sed -n 's/^  router 1 .*REST \(http:\/\/\)\{0,1\}\([^ ]*\).*/\2/p' "$log" | head -1)"
    node="$(sed -n 's/^  node-0 *gRPC \([^ ]*\) .*/\1/p' "$log" | head -1)"
    if [ -n "$router" ] && [ -n "$node" ] && grep -q '^serving' "$log"; then return 0; fi
    kill -0 "$dev_pid" 2>/dev/null || { cat "$log" >&2; fail "vecshard dev exited"; }
    sleep 0.2
  done
  fail "vecshard dev did not print its addresses ($log)"
}

{
  echo "command: $0 --bin $bin --client-bin $client_bin --dataset $dataset --shards $shards --ef $ef --clients $clients --secs $secs --rounds $rounds$(printf " --variant '%s'" "${variants[@]}")"
  echo "commit: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "start: $(date -u +%FT%TZ); load: $(cut -d' ' -f1-3 /proc/loadavg); cores: $(nproc)"
} | tee "$out_dir/run.txt"

# Load every collection once (default environment); --skip-load: --out-dir holds them.
[ "$skip_load" = 1 ] || start_dev "$out_dir/dev-load.log"
for s in "${shard_list[@]}"; do
  [ "$skip_load" = 1 ] && break
  "$client_bin" bench-served --dataset "$dataset" --collection "$(collection "$s")" --ef "$ef" \
    --router "$router" --pid "$dev_pid" --load "$s" --load-only \
    | tee "$out_dir/load-s$s.md"
done
stop_dev

rest_args=()
count_args=()
[ "$count" = 1 ] && count_args=(--perf-stat "$perf_bin")
for r in $(seq 1 "$rounds"); do
  for v in "${variants[@]}"; do
    read -r -a words <<<"$v"
    label="${words[0]}"
    start_dev "$out_dir/dev-$label-$r.log" "${words[@]:1}"
    [ "$rest" = 1 ] && rest_args=(--rest "$rest_addr")
    for s in "${shard_list[@]}"; do
      echo "## variant $label (${words[*]:1}), round $r, $s shard(s)" | tee -a "$out_dir/served.md" "$out_dir/threads.txt"
      env "${words[@]:1}" "$client_bin" bench-served --dataset "$dataset" --collection "$(collection "$s")" \
        --ef "$ef" --router "$router" --node "$node" --pid "$dev_pid" "${rest_args[@]}" \
        "${count_args[@]}" --clients "$clients" --secs "$secs" 2> >(tee -a "$out_dir/threads.txt" >&2) \
        | tee -a "$out_dir/served.md"
    done
    if [ "$perf" = 1 ] && [ "$r" = 1 ]; then
      # One client through the router in the background, perf on the server meanwhile.
      env "${words[@]:1}" "$client_bin" bench-served --dataset "$dataset" --collection "$(collection "${shard_list[0]}")" \
        --ef "$ef" --router "$router" --clients 1 --secs $((secs + 8)) >/dev/null &
      load_pid=$!
      # Past its recall pass, inside its timed pass.
      sleep 5
      pdata="$out_dir/perf-$label.data"
      "$perf_bin" record -F 499 --call-graph dwarf,16384 -o "$pdata" -p "$dev_pid" \
        -- sleep "$secs" 2>"$out_dir/perf-record-$label.log"
      wait "$load_pid"
      {
        echo "# flat (self time), symbols above 0.5 %"
        "$perf_bin" report -i "$pdata" --stdio --no-children --percent-limit 0.5 \
          --sort dso,sym -F overhead,dso,sym -g none 2>/dev/null
        echo "# by library (self time)"
        "$perf_bin" report -i "$pdata" --stdio --no-children --sort dso -F overhead,dso \
          -g none 2>/dev/null
        echo "# inclusive (self + callees) and self, symbols above 3 %: which layer the time is under"
        "$perf_bin" report -i "$pdata" --stdio --children --percent-limit 3 \
          --sort sym -F overhead_children,overhead,sym -g none 2>/dev/null
        echo "# by thread"
        "$perf_bin" report -i "$pdata" --stdio --no-children --sort pid -F overhead,pid \
          -g none 2>/dev/null
        echo "# with callers, symbols above 2 %"
        "$perf_bin" report -i "$pdata" --stdio --no-children --percent-limit 2 \
          -g caller,0.5,callee --sort sym 2>/dev/null | head -600 || true
      } | sed 's/ *$//' >"$out_dir/perf-report-$label.txt"
      echo "perf profile: $out_dir/perf-report-$label.txt"
    fi
    stop_dev
  done
done

trap - EXIT
for s in "${shard_list[@]}"; do
  shard_dirs=("$data"/node-0/"$(collection "$s")"-[0-9]*/shard-*)
  [ -d "${shard_dirs[0]}" ] || fail "no shard directories of $(collection "$s") under $data/node-0"
  "$client_bin" bench-served --dataset "$dataset" --ef "$ef" --secs "$secs" \
    --engine "${shard_dirs[@]}" | tee -a "$out_dir/engine.md"
done
echo "end: $(date -u +%FT%TZ)" >>"$out_dir/run.txt"
echo "results in $out_dir"
