#!/usr/bin/env bash
# Browser tests of the web chat widget: builds the local runner, installs playwright-core
# (a driver only: it never downloads a browser) and runs the tests in headless Debian
# Chromium with Node's built-in test runner. Runs from any directory.
#
# Environment:
#   KEFU_CHROMIUM      the Chromium binary (default: `command -v chromium`)
#   CARGO_TARGET_DIR   honoured when set (default: <repo>/target)
#   KEFU_SCREENSHOT    where the FAQ test saves its screenshot (default /tmp/kefu-widget.png)
#   KEFU_LOG           the runner's log filter during the tests (default warn)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
HERE="tests/browser"
started=$SECONDS

KEFU_CHROMIUM="${KEFU_CHROMIUM:-$(command -v chromium || true)}"
if [[ -z "$KEFU_CHROMIUM" || ! -x "$KEFU_CHROMIUM" ]]; then
    echo "no Chromium: install Debian's chromium package or set KEFU_CHROMIUM" >&2
    exit 1
fi
command -v node >/dev/null || { echo "node not found (Debian: nodejs)" >&2; exit 1; }
# playwright-core needs Node 20; --test-concurrency needs 20.10.
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 10) ? 0 : 1)' ||
    { echo "Node $(node --version) is too old: the browser tests need Node >= 20.10" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm not found (Debian: npm)" >&2; exit 1; }

# A test tool must never fetch a browser of its own: this machine uses Debian's.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [[ -f "$HERE/package-lock.json" ]]; then
    npm ci --prefix "$HERE" --no-audit --no-fund
else
    npm install --prefix "$HERE" --no-audit --no-fund
fi

cargo build -p kefu-local
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
[[ -x "$TARGET_DIR/debug/kefu-local" ]] || { echo "$TARGET_DIR/debug/kefu-local was not built" >&2; exit 1; }
# A private copy: another build sharing the target dir must not swap the binary mid-run.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kefu-browser-run.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
KEFU_LOCAL_BIN="$WORK/kefu-local"
cp "$TARGET_DIR/debug/kefu-local" "$KEFU_LOCAL_BIN"

"$KEFU_CHROMIUM" --version 2>/dev/null || true
# One test file at a time: each starts a runner and a browser, and the machine is small.
KEFU_LOCAL_BIN="$KEFU_LOCAL_BIN" KEFU_CHROMIUM="$KEFU_CHROMIUM" \
    node --test --test-concurrency=1 "$HERE"/*.test.mjs
echo "browser tests: ok ($((SECONDS - started))s)"
