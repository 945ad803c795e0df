#!/usr/bin/env bash
# Runs a moto server (local AWS API emulator) in the foreground, with DynamoDB calls
# serialised so conditional writes are atomic as in AWS (see
# tests/tests/support/moto_server.py). Handy to share one server between test runs:
#
#   infra/scripts/moto.sh 5000 &
#   KEFU_MOTO_URL=http://127.0.0.1:5000 cargo test -p kefu-tests --test contract aws::
#
# Point the SDK at it with AWS_ENDPOINT_URL=http://127.0.0.1:<port> (S3 then switches to
# path-style addressing by itself), AWS_REGION=us-east-1 and any static credentials.
#
# Usage: moto.sh [PORT]   (default 5000; binds 127.0.0.1 only)
# Python: $KEFU_VENV, else <repo>/.venv, else python3 on PATH; it needs moto[server].
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PORT="${1:-5000}"
VENV="${KEFU_VENV:-$ROOT/.venv}"

if [[ -x "$VENV/bin/python3" ]]; then
    PYTHON="$VENV/bin/python3"
else
    PYTHON="$(command -v python3 || true)"
fi
if [[ -z "$PYTHON" ]] || ! "$PYTHON" -c 'import moto.server' 2>/dev/null; then
    echo "moto is not installed; in $ROOT run:" >&2
    echo '    python3 -m venv .venv && .venv/bin/pip install "moto[server]"' >&2
    exit 1
fi

exec "$PYTHON" "$ROOT/tests/tests/support/moto_server.py" -H 127.0.0.1 -p "$PORT"
