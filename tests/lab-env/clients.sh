#!/usr/bin/env bash
# The non-Go Kubernetes clients the `proxy` lab tests drive, pinned, under
# target/clients: the official Python client (PyPI `kubernetes`, in a virtual
# environment) and the official JavaScript client (npm `@kubernetes/client-node`).
# Idempotent: a second run with the same pins does nothing. Needs python3 (venv)
# and npm, and the registries on first run.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=$REPO/target/clients
PY_PIN=kubernetes==37.0.2
JS_PIN=@kubernetes/client-node@1.4.0
mkdir -p "$DIR"

if [[ "$(cat "$DIR/python.pin" 2>/dev/null)" != "$PY_PIN" ]]; then
  python3 -m venv "$DIR/venv"
  "$DIR/venv/bin/pip" install -q --disable-pip-version-check "$PY_PIN"
  echo "$PY_PIN" > "$DIR/python.pin"
fi

if [[ "$(cat "$DIR/node.pin" 2>/dev/null)" != "$JS_PIN" ]]; then
  mkdir -p "$DIR/node"
  (cd "$DIR/node" && npm install -q --no-audit --no-fund --no-save "$JS_PIN" > /dev/null)
  echo "$JS_PIN" > "$DIR/node.pin"
fi
echo "clients: $("$DIR/venv/bin/python" -c 'import kubernetes; print("kubernetes", kubernetes.__version__)'), node $(node --version) $JS_PIN"
