#!/usr/bin/env bash
# Build a small S3-compatible server image (s3s-fs from crates.io; it honours conditional
# puts, which fencing relies on) FROM scratch, for the compose example. A bucket is a
# directory under /data: the image ships an empty `vecshard` bucket.
#
#   deploy/build-s3-image.sh [TAG]      default TAG: vecshard-s3:local
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-vecshard-s3:local}"
root=".tools/s3s-fs"
if [[ ! -x "$root/bin/s3s-fs" ]]; then
  cargo install s3s-fs@0.14.1 --features binary --locked --root "$root" >&2
fi
bin="$root/bin/s3s-fs"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/data/vecshard" "$stage/tmp"
cp "$bin" "$stage/s3s-fs"
ldd "$bin" | grep -oE '/[^ ]+\.so[^ ]*' | sort -u | while read -r lib; do
  cp --parents -L "$lib" "$stage"
done
cat > "$stage/Dockerfile" <<'DOCKER'
FROM scratch
COPY . /
ENTRYPOINT ["/s3s-fs"]
DOCKER
docker build -q -t "$tag" "$stage" >&2
echo "$tag"
