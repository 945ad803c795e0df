#!/usr/bin/env bash
# Builds the Lambda functions with SAM CLI from the project's .venv (the test command
# installs it there). SAM calls `cargo lambda` by name, so the venv's bin goes on PATH
# first; without it a fresh machine fails with "Cannot find Cargo Lambda".
#
#   infra/scripts/sam-build.sh                  # every function (about 15 minutes cold on 2 cores)
#   infra/scripts/sam-build.sh WebApiFunction   # one function, by its logical id
#
# Extra arguments go to `sam build` as they are. Then: `.venv/bin/sam deploy --guided`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="${KEFU_VENV:-$ROOT/.venv}"

for tool in sam cargo-lambda; do
    if [[ ! -x "$VENV/bin/$tool" ]]; then
        echo "$tool missing from $VENV/bin: run infra/scripts/test-all.sh once (or" >&2
        echo "  python3 -m venv .venv && .venv/bin/pip install -r infra/scripts/requirements-dev.txt)" >&2
        exit 1
    fi
done

export PATH="$VENV/bin:$PATH"
export SAM_CLI_TELEMETRY="${SAM_CLI_TELEMETRY:-0}"
exec sam build "$@"
