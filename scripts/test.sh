#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs and starts what the tests need (a local
# S3 + DynamoDB endpoint), checks formatting and lints, runs every test, stops the services.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

echo "== formatting"
cargo fmt --all --check

echo "== lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

if [ -x scripts/test-services.sh ]; then
  echo "== local S3 + DynamoDB"
  scripts/test-services.sh start
  trap 'scripts/test-services.sh stop' EXIT
  eval "$(scripts/test-services.sh env)"
fi

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast --profile ci
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi

echo "== Kubernetes manifests"
scripts/test-k8s.sh

echo "== Python client"
# The binary where cargo put it (CARGO_TARGET_DIR, build.target-dir), not target/debug.
VECSHARD_BIN="$(cargo build -p vecshard --bin vecshard --locked --message-format=json-render-diagnostics |
  jq -r 'select(.reason == "compiler-artifact" and .target.name == "vecshard" and .executable != null) | .executable' |
  tail -n 1)"
export VECSHARD_BIN
scripts/test-python.sh
echo "== all tests passed"
