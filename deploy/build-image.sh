#!/usr/bin/env bash
# Build the `vecshard` container image offline: FROM scratch, with our binary and exactly the
# shared libraries it links (copied from this machine), CA certificates and an nsswitch.conf
# so host names resolve through Docker's DNS. No base image is pulled.
#
#   deploy/build-image.sh [--debug] [TAG]       default TAG: vecshard:local
#
# It also writes deploy/certs/ (CA, router-1..3, node-1..3) once, for docker-compose.yml.
#
# --debug packages the debug build (no release build; what the chaos tests use by default).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
if [[ "${1:-}" == "--debug" ]]; then profile=debug; shift; fi
tag="${1:-vecshard:local}"

# The binary's path as cargo reports it (it honours CARGO_TARGET_DIR and build.target-dir).
build=(cargo build --locked --bin vecshard --message-format=json-render-diagnostics)
if [[ "$profile" == release ]]; then build+=(--release); fi
messages="$("${build[@]}")"
bin="$(grep -o '"executable":"[^"]*/vecshard"' <<<"$messages" | tail -n 1 | cut -d '"' -f 4)" || true
if [[ -z "$bin" || ! -x "$bin" ]]; then
  echo "build-image.sh: cargo build reported no vecshard executable" >&2
  exit 1
fi

# The compose cluster's certificates (TLS and mutual authentication are on by default):
# generated once with this binary, kept across builds (delete deploy/certs to renew).
if [[ ! -e deploy/certs/ca.pem ]]; then
  "$bin" certs generate --out deploy/certs --routers 3 --nodes 3 \
    --hosts router-1,router-2,router-3,node-1,node-2,node-3,localhost,127.0.0.1 >&2
  # The containers read the keys as whatever user they run as.
  chmod 0644 deploy/certs/*.key
  chmod 0600 deploy/certs/ca.key
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/etc/ssl/certs" "$stage/tmp" "$stage/data"
cp "$bin" "$stage/vecshard"
strip --strip-debug "$stage/vecshard" 2>/dev/null || true   # debug info is most of a debug build
# The dynamic loader and every library the binary needs, at their paths.
ldd "$bin" | grep -oE '/[^ ]+\.so[^ ]*' | sort -u | while read -r lib; do
  cp --parents -L "$lib" "$stage"
done
# Name resolution inside containers (Docker's embedded DNS).
libdir="$(dirname "$(ldd "$bin" | awk '/libc\.so/ {print $3}')")"
for nss in libnss_dns.so.2 libnss_files.so.2 libresolv.so.2; do
  [[ -e "$libdir/$nss" ]] && cp --parents -L "$libdir/$nss" "$stage"
done
printf 'hosts: files dns\n' > "$stage/etc/nsswitch.conf"
cp /etc/ssl/certs/ca-certificates.crt "$stage/etc/ssl/certs/" 2>/dev/null || touch "$stage/etc/ssl/certs/ca-certificates.crt"
cat > "$stage/Dockerfile" <<'DOCKER'
FROM scratch
COPY . /
ENV VECSHARD_LOG=info
ENTRYPOINT ["/vecshard"]
DOCKER
docker build -q -t "$tag" "$stage" >&2
echo "$tag"
