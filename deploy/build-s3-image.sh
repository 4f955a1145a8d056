#!/usr/bin/env bash
# Build a small S3-compatible server image FROM scratch, for the compose cluster and the
# chaos tests: deploy/s3-server, which is s3s-fs with every write of one key serialised, so
# conditional creates are atomic as on AWS S3 (fencing relies on them; plain s3s-fs 0.14
# lets two concurrent `If-None-Match: *` creates both succeed). A bucket is a directory
# under /data: the image ships an empty `vecshard` bucket.
#
#   deploy/build-s3-image.sh [TAG]      default TAG: vecshard-s3:local
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-vecshard-s3:local}"
target="${CARGO_TARGET_DIR:-$PWD/target}/s3-server"
cargo build --release --locked --manifest-path deploy/s3-server/Cargo.toml --target-dir "$target" >&2
bin="$target/release/vecshard-s3-server"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/data/vecshard" "$stage/tmp"
cp "$bin" "$stage/s3-server"
ldd "$bin" | grep -oE '/[^ ]+\.so[^ ]*' | sort -u | while read -r lib; do
  cp --parents -L "$lib" "$stage"
done
cat > "$stage/Dockerfile" <<'DOCKER'
FROM scratch
COPY . /
ENTRYPOINT ["/s3-server"]
DOCKER
docker build -q -t "$tag" "$stage" >&2
echo "$tag"
