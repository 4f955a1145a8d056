#!/usr/bin/env bash
# The Python client (clients/python): a venv with its test requirements, a check that the
# committed gRPC stubs match the proto, the package installed as users install it, and its
# pytest suite against a real `vecshard dev` started from target/debug/vecshard (build it
# first: `cargo build -p vecshard`) or $VECSHARD_BIN.
#
# The venv is .venv-python in the repository, or $VECSHARD_PY_VENV; it is created once
# (with $PYTHON, default python3) and reused. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${VECSHARD_PY_VENV:-$PWD/.venv-python}"
if [ ! -x "$venv/bin/python" ]; then
  echo "== Python venv $venv"
  "${PYTHON:-python3}" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip -q --disable-pip-version-check)
"${pip[@]}" install -r clients/python/requirements-dev.txt

echo "== Python gRPC stubs"
PYTHON="$venv/bin/python" clients/python/generate.sh --check

echo "== Python client package"
# No build isolation: setuptools comes from the venv, so this works offline too.
"${pip[@]}" install --no-build-isolation --no-deps --force-reinstall ./clients/python

echo "== Python client tests"
# From the tests directory, so `import vecshard` is the installed package.
cd clients/python/tests
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
