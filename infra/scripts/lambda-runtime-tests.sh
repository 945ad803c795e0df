#!/usr/bin/env bash
# Lambda runtime tests: the function binaries under `cargo lambda watch`, invoked with the
# events in infra/events/ against moto (see tests/tests/lambda_runtime.rs).
# Expects the venv from test-all.sh (cargo-lambda, moto) on PATH or in $KEFU_VENV.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export KEFU_VENV="${KEFU_VENV:-$PWD/.venv}"
export PATH="$KEFU_VENV/bin:$PATH"
# Build each function exactly as `cargo lambda watch` runs it (`cargo run --bin <name>`,
# one package's features at a time), so the emulator never compiles mid-test.
for function in web-api bot dispatcher faq-indexer agent-api wechat-webhook sms-webhook email-webhook; do
    cargo build --bin "$function"
done
# The emulator and the functions it supervises run in their own PID namespace when
# possible (root), so no signal they send can reach processes outside the test.
run=(cargo test -p kefu-tests --test lambda_runtime -- --ignored)
if [[ $(id -u) -eq 0 ]] && unshare --pid --fork --kill-child --mount-proc true 2>/dev/null; then
    unshare --pid --fork --kill-child --mount-proc "${run[@]}"
else
    "${run[@]}"
fi
