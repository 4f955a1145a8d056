#!/usr/bin/env bash
# Generate the gRPC stubs in vecshard/v1/ from the public API proto
# (proto/proto/vecshard/v1/vecshard.proto) with grpcio-tools. The output is committed, so
# installing the package needs no protoc.
#
#   clients/python/generate.sh          regenerate in place
#   clients/python/generate.sh --check  fail if the committed stubs differ from the proto
#
# Python: $PYTHON (default python3), with the grpcio-tools version pinned in
# requirements-dev.txt (another version writes other, equally valid, code).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto_root="$here/../../proto/proto"
py="${PYTHON:-python3}"
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

want="$(sed -n 's/^grpcio-tools==//p' "$here/requirements-dev.txt")"
have="$("$py" -c 'import importlib.metadata as m; print(m.version("grpcio-tools"))' 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
  echo "generate.sh: needs grpcio-tools==$want in $py (found: ${have:-none}); pip install -r $here/requirements-dev.txt" >&2
  exit 1
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$py" -m grpc_tools.protoc -I"$proto_root" \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  vecshard/v1/vecshard.proto

files="vecshard_pb2.py vecshard_pb2.pyi vecshard_pb2_grpc.py"
if [ "$check" = 1 ]; then
  stale=0
  for f in $files; do
    if ! diff -u "$here/vecshard/v1/$f" "$out/vecshard/v1/$f" >/dev/null 2>&1; then
      echo "generate.sh: clients/python/vecshard/v1/$f is stale; run clients/python/generate.sh and commit" >&2
      stale=1
    fi
  done
  [ "$stale" = 0 ] && echo "gRPC stubs are current"
  exit "$stale"
fi
for f in $files; do
  cp "$out/vecshard/v1/$f" "$here/vecshard/v1/$f"
done
echo "generated clients/python/vecshard/v1/{$(echo $files | tr ' ' ',')}"
