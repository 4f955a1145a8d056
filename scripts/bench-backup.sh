#!/usr/bin/env bash
# Cluster backup and restore throughput (README: Operations → Backups).
#
# Starts a router and two data nodes on 127.0.0.1 (release binary), loads the clustered-128
# base set (200,000 × 128-d float32, /work/shared/bench/gen_synthetic.py) into a 4-shard
# collection on local disk and one on the local S3 endpoint, then times
# `vecshard backup create` and `vecshard backup restore` for each storage pairing and
# prints a Markdown table: MB of segment files and points per second of wall time (the
# CLI's whole run: flush, copies, manifest; for a restore, until every shard serves its
# recorded count).
#
#   cargo build --release -p vecshard
#   eval "$(scripts/test-services.sh start)"        # local S3 (moto)
#   python3 /work/shared/bench/gen_synthetic.py --out /tmp/vecshard-bench/clustered-128
#   scripts/bench-backup.sh [BIN] [DATASET_DIR]     # BENCH_POINTS=N: only the first N points
set -euo pipefail

BIN="$(realpath "${1:-${CARGO_TARGET_DIR:-target}/release/vecshard}")"
DATA="${2:-/tmp/vecshard-bench/clustered-128}"
: "${VECSHARD_TEST_S3_BUCKET:?start the local S3 first: eval \"\$(scripts/test-services.sh start)\"}"
WORK="$(mktemp -d /tmp/vecshard-backup-bench.XXXXXX)"
S3="s3://$VECSHARD_TEST_S3_BUCKET/backup-bench-$(basename "$WORK" | tr 'A-Z._' 'a-z--')"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
GRPC="127.0.0.1:$(port)"; INTERNAL="127.0.0.1:$(port)"; HTTP="127.0.0.1:$(port)"

cat >"$WORK/router.toml" <<TOML
[router]
id = 1
data_dir = "$WORK/router"
grpc_listen = "$GRPC"
internal_listen = "$INTERNAL"
http_listen = "$HTTP"
allowed_storage = ["$S3"]
backup_locations = ["$S3/backups", "$WORK/backups"]
write_timeout_ms = 120000
[[router.members]]
id = 1
grpc = "$GRPC"
internal = "$INTERNAL"
http = "$HTTP"
TOML
"$BIN" router --config "$WORK/router.toml" >"$WORK/router.log" 2>&1 & PIDS+=($!)
for n in 1 2; do
    cat >"$WORK/node-$n.toml" <<TOML
[node]
id = "node-$n"
grpc_addr = "127.0.0.1:$(port)"
http_addr = "127.0.0.1:$(port)"
data_dir = "$WORK/node-$n"
[cluster]
routers = ["$INTERNAL"]
allowed_storage = ["$S3"]
backup_locations = ["$S3/backups", "$WORK/backups"]
TOML
    "$BIN" node --config "$WORK/node-$n.toml" >"$WORK/node-$n.log" 2>&1 & PIDS+=($!)
done

create() { # NAME STORAGE
    for _ in $(seq 1 100); do
        if "$BIN" collection create --router "$GRPC" "$1" --dim 128 --shards 4 --storage "$2" >/dev/null 2>&1; then
            return
        fi
        sleep 0.3
    done
    echo "cannot create $1; logs in $WORK" >&2; cat "$WORK"/*.log >&2; exit 1
}
now() { date +%s.%N; }

for _ in $(seq 1 200); do
    alive=$(curl -s "http://$HTTP/v1/cluster" | jq '[.nodes[]? | select(.state | ascii_downcase == "alive")] | length' 2>/dev/null || echo 0)
    [[ "$alive" == 2 ]] && break
    sleep 0.3
done
BASE="$DATA/base.fvecs"
if [[ -n "${BENCH_POINTS:-}" ]]; then    # the first N rows only (516 bytes per 128-d row)
    head -c $((BENCH_POINTS * 516)) "$BASE" >"$WORK/base.fvecs"
    BASE="$WORK/base.fvecs"
fi
create bench_local local
create bench_s3 "$S3/data"
for c in bench_local bench_s3; do
    t0=$(now)
    "$BIN" import --router "$GRPC" --collection "$c" --parallel 2 "$BASE" >/dev/null
    echo "loaded $c in $(echo "$(now) - $t0" | bc) s" >&2
done

echo "| collection storage | backup to | backup MB/s | backup points/s | restore MB/s | restore points/s | MB | points |"
echo "|---|---|---|---|---|---|---|---|"
i=0
for pair in "bench_local local $WORK/backups/local-to-dir" "bench_local local $S3/backups/local-to-s3" \
            "bench_s3 s3 $S3/backups/s3-to-s3" "bench_s3 s3 $WORK/backups/s3-to-dir"; do
    read -r c kind to <<<"$pair"
    i=$((i + 1))
    t0=$(now)
    "$BIN" backup create --router "$HTTP" --collection "$c" --to "$to" >/dev/null 2>&1
    tb=$(echo "$(now) - $t0" | bc)
    m=$("$BIN" backup describe --router "$HTTP" --location "$to" --json)
    bytes=$(jq '.manifest.bytes' <<<"$m"); points=$(jq '.manifest.points' <<<"$m")
    t0=$(now)
    "$BIN" backup restore --router "$HTTP" --from "$to" --as "restored_$i" >/dev/null 2>&1
    tr=$(echo "$(now) - $t0" | bc)
    where=$([[ "$to" == s3://* ]] && echo "S3" || echo "local dir")
    awk -v k="$kind" -v w="$where" -v b="$bytes" -v p="$points" -v tb="$tb" -v tr="$tr" 'BEGIN {
        printf "| %s | %s | %.0f | %.0f | %.0f | %.0f | %.1f | %d |\n", (k == "s3" ? "S3" : "local disk"), w,
            b / 1e6 / tb, p / tb, b / 1e6 / tr, p / tr, b / 1e6, p }'
done
