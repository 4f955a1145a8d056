#!/usr/bin/env bash
# The Kubernetes manifests (deploy/k8s), offline: render the base and the example overlay
# with kustomize (`kubectl kustomize`, or a standalone `kustomize`), then validate every
# rendered object against the Kubernetes OpenAPI schemas, strictly (unknown fields are
# errors), with `kubernetes-validate` (PyPI; it ships the schemas) for the oldest version
# the manifests need (1.31: StatefulSet `ordinals` and the pod-index label) and the newest
# it knows. A manifest known to be wrong must fail, so the check itself is checked.
#
# The example overlay's TLS Secret is generated from certs/ files an operator creates; here
# they are placeholders in a copy of deploy/ (the render checks structure, not
# certificates). kubernetes-validate goes into $VECSHARD_VENV (default .venv), as
# scripts/test-services.sh installs moto there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VECSHARD_VENV:-$ROOT/.venv}"
VERSIONS=(1.31.0 1.37.0)

log() { echo "test-k8s: $*" >&2; }

if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    render() { kubectl kustomize "$1"; }
elif command -v kustomize >/dev/null 2>&1; then
    render() { kustomize build "$1"; }
else
    log "neither kubectl (with kustomize) nor kustomize is installed: install kubectl (>= 1.27)"
    exit 1
fi

if [[ ! -x "$VENV/bin/kubernetes-validate" ]]; then
    log "installing kubernetes-validate into $VENV (once)"
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet kubernetes-validate >&2
fi
validate() { "$VENV/bin/kubernetes-validate" --strict --quiet -k "$1" "$2"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$ROOT/deploy" "$work/deploy"
certs="$work/deploy/k8s/overlays/example/certs"
mkdir -p "$certs"
for name in ca router-1 router-2 router-3 node-1 node-2 node-3; do
    echo "placeholder" > "$certs/$name.pem"
    [[ "$name" == ca ]] || echo "placeholder" > "$certs/$name.key"
done

for target in base overlays/example; do
    out="$work/$(echo "$target" | tr / -).yaml"
    render "$work/deploy/k8s/$target" > "$out"
    kinds="$(grep -c '^kind:' "$out")"
    for v in "${VERSIONS[@]}"; do
        validate "$v" "$out"
    done
    log "$target: $kinds objects rendered, valid for Kubernetes ${VERSIONS[*]}"
done

# Every object the deployment needs is there, once.
overlay="$work/overlays-example.yaml"
for want in "kind: StatefulSet" "kind: PodDisruptionBudget" "kind: Namespace"; do
    n="$(grep -c "^$want\$" "$overlay")"
    expected=1
    [[ "$want" == "kind: Namespace" ]] || expected=2
    if [[ "$n" != "$expected" ]]; then
        log "$want: $n objects, expected $expected"
        exit 1
    fi
done
for path in /healthz /readyz; do
    grep -q "path: $path" "$overlay" || { log "no probe on $path"; exit 1; }
done

# The validator rejects what it should: an unknown field and a wrong type.
bad="$work/bad.yaml"
sed -e 's/^  serviceName: routers$/  serviceNam: routers/' "$overlay" > "$bad"
if validate "${VERSIONS[0]}" "$bad" >/dev/null 2>&1; then
    log "a StatefulSet with a misspelt field passed validation: the check checks nothing"
    exit 1
fi
sed -e 's/^  replicas: 3$/  replicas: three/' "$overlay" > "$bad"
if validate "${VERSIONS[0]}" "$bad" >/dev/null 2>&1; then
    log "replicas: three passed validation: the check checks nothing"
    exit 1
fi
log "ok"
