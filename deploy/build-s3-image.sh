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
# The workspace's target directory as cargo reports it (CARGO_TARGET_DIR, build.target-dir):
# the S3 server is its own workspace, built into a subdirectory of it.
target_dir="$(cargo metadata --format-version 1 --no-deps --locked | jq -r .target_directory)"
target="$target_dir/s3-server"
cargo build --release --locked --manifest-path deploy/s3-server/Cargo.toml --target-dir "$target" >&2
bin="$target/release/vecshard-s3-server"
if [[ ! -x "$bin" ]]; then
  echo "build-s3-image.sh: no S3 server executable at $bin after the build" >&2
  exit 1
fi
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
