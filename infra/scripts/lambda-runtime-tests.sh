#!/usr/bin/env bash
# Lambda runtime tests: the function binaries under `cargo lambda watch`, invoked with the
# events in infra/events/ against moto (see tests/tests/lambda_runtime.rs).
# Expects the venv from test-all.sh (cargo-lambda, moto) on PATH or in $KEFU_VENV.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export KEFU_VENV="${KEFU_VENV:-$PWD/.venv}"
export PATH="$KEFU_VENV/bin:$PATH"
# Build the functions first, so the first invocation does not wait for a compile.
cargo build -p web-api -p bot -p dispatcher -p faq-indexer -p agent-api
cargo test -p kefu-tests --test lambda_runtime -- --ignored
