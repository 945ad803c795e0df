#!/usr/bin/env bash
# The kefu test command: installs what the tests need on a Debian machine, then runs
# every test layer (format, template checks, lints, unit/handler/contract tests, Lambda
# runtime tests, `sam build` of one function, browser tests). Runs from any directory; exits non-zero on the first
# failing step and names it.
#
# Environment:
#   KEFU_SKIP   comma-separated steps to skip, for quick local runs
#               (fmt, clippy, test, lambda, sam, browser, template)
#   CI          when "true": non-incremental, colourless cargo output
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

REQUIREMENTS="infra/scripts/requirements-dev.txt"
VENV="$ROOT/.venv"
STARTED_AT=$SECONDS
CURRENT_STEP="setup"
DONE_STEPS=()
SKIPPED_STEPS=()
APT_UPDATED=0

# --------------------------------------------------------------------------- helpers

section() {
    CURRENT_STEP="$1"
    STEP_STARTED_AT=$SECONDS
    printf '\n==================== %s ====================\n' "$1"
}

step_done() {
    DONE_STEPS+=("$CURRENT_STEP")
    printf -- '---- %s: ok (%ds)\n' "$CURRENT_STEP" $((SECONDS - STEP_STARTED_AT))
}

skipped() {
    case ",${KEFU_SKIP:-}," in
        *",$1,"*)
            SKIPPED_STEPS+=("$1")
            printf '\n---- %s: skipped (KEFU_SKIP)\n' "$1"
            return 0
            ;;
    esac
    return 1
}

# Ends a hook step whose suite does not exist (yet) without counting it as passed.
not_present() {
    SKIPPED_STEPS+=("$CURRENT_STEP")
    printf -- '---- %s: skipped (%s not present)\n' "$CURRENT_STEP" "$1"
}

elapsed() {
    local s=$((SECONDS - STARTED_AT))
    printf '%dm%02ds' $((s / 60)) $((s % 60))
}

on_exit() {
    local rc=$?
    if [[ $rc -ne 0 ]]; then
        printf '\nkefu test-all: FAILED in step "%s" (exit %d) after %s\n' \
            "$CURRENT_STEP" "$rc" "$(elapsed)" >&2
    fi
}
trap on_exit EXIT

# Runs apt-get as root, or through sudo when that works without a password.
apt_install() {
    local apt=(apt-get)
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            apt=(sudo apt-get)
        else
            echo "missing Debian packages: $* (run as root or with sudo to install them)" >&2
            return 1
        fi
    fi
    if ! command -v apt-get >/dev/null; then
        echo "missing packages: $* (no apt-get on this machine; install them by hand)" >&2
        return 1
    fi
    if [[ $APT_UPDATED -eq 0 ]]; then
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" update -q
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q --no-install-recommends "$@"
}

has_browser_tests() {
    [[ -f tests/browser/package.json ]]
}

chromium_path() {
    command -v chromium || command -v chromium-browser || true
}

# --------------------------------------------------------------------------- environment

export PATH="$VENV/bin:$HOME/.cargo/bin:$PATH"
export KEFU_VENV="$VENV"
export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
# Tests talk to local emulators only; never probe the instance metadata service.
export AWS_EC2_METADATA_DISABLED=true
if [[ "${CI:-}" == "true" ]]; then
    export CARGO_INCREMENTAL=0
    export CARGO_TERM_COLOR=never
fi

# --------------------------------------------------------------------------- install

section "Debian packages"
missing=()
command -v cc >/dev/null || missing+=(build-essential)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v python3 >/dev/null || missing+=(python3)
# Debian's python3 can only create a virtualenv (with pip) once python3-venv is installed.
if [[ ! -x "$VENV/bin/python" ]] && command -v python3 >/dev/null; then
    probe="$(mktemp -d)"
    python3 -m venv "$probe/venv" >/dev/null 2>&1 || missing+=(python3-venv)
    rm -rf "$probe"
fi
# BROWSER TESTS (install part): Chromium and Node for tests/browser, when it exists.
if has_browser_tests; then
    [[ -n "$(chromium_path)" ]] || missing+=(chromium)
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
fi
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "installing: ${missing[*]}"
    apt_install "${missing[@]}"
else
    echo "all present"
fi
step_done

section "Rust toolchain"
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust $(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml) with rustup" >&2
    exit 1
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null; then
        rustup component add rustfmt clippy
    else
        echo "cargo fmt / cargo clippy missing and no rustup to add them" >&2
        exit 1
    fi
fi
cargo --version
rustc --version
step_done

section "Python tools (.venv)"
stamp="$VENV/.kefu-requirements.sha256"
wanted="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
tools=(moto_server cargo-lambda python-zig cfn-lint sam)
tools_present=1
for tool in "${tools[@]}"; do
    [[ -x "$VENV/bin/$tool" ]] || tools_present=0
done
if [[ $tools_present -eq 1 && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    echo "up to date ($REQUIREMENTS unchanged)"
else
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQUIREMENTS"
    echo "$wanted" >"$stamp"
fi
for tool in "${tools[@]}"; do
    [[ -x "$VENV/bin/$tool" ]] || { echo "$tool missing from $VENV/bin" >&2; exit 1; }
done
echo "KEFU_VENV=$KEFU_VENV"
step_done

# --------------------------------------------------------------------------- checks

if ! skipped fmt; then
    section "cargo fmt"
    cargo fmt --all -- --check
    step_done
fi

# Cheap and independent of the Rust build: fail fast on a broken template.
if ! skipped template; then
    section "Template checks (cfn-lint, sam validate --lint, check-template.py)"
    cfn-lint template.yaml
    # Offline: with --lint, SAM CLI validates locally and needs no AWS credentials.
    sam validate --lint --template-file template.yaml
    # DynamoDB grants limited to the key prefixes of each function's ports; secrets named
    # in the environment, never resolved into it.
    "$VENV/bin/python" infra/scripts/check-template.py
    step_done
fi

if ! skipped clippy; then
    section "cargo clippy"
    cargo clippy --workspace --all-targets -- -D warnings
    step_done
fi

if ! skipped test; then
    # Unit, handler and contract tests; the contract harness starts moto_server from
    # $KEFU_VENV on a free loopback port by itself.
    section "cargo test (unit, handler, contract)"
    cargo test --workspace --no-fail-fast
    step_done
fi

if ! skipped lambda; then
    section "Lambda runtime tests"
    lambda_tests="infra/scripts/lambda-runtime-tests.sh"
    if [[ -f "$lambda_tests" ]]; then
        bash "$lambda_tests"
        step_done
    else
        not_present "$lambda_tests"
    fi
fi

if ! skipped sam; then
    # The documented deploy build, exactly as the README gives it, for the smallest
    # function (all eight take about 15 minutes cold, past the CI budget).
    section "sam build (WechatWebhookFunction)"
    bash infra/scripts/sam-build.sh WechatWebhookFunction
    bootstrap=".aws-sam/build/WechatWebhookFunction/bootstrap"
    [[ -x "$bootstrap" ]] || { echo "sam build produced no $bootstrap" >&2; exit 1; }
    echo "$bootstrap: $(du -h "$bootstrap" | cut -f1)"
    step_done
fi

if ! skipped browser; then
    # BROWSER TESTS HOOK: tests/browser (Node + playwright-core driving Debian's
    # chromium through executablePath) against the local runner. The suite's own
    # entry point is tests/browser/run.sh; it receives KEFU_CHROMIUM.
    section "Browser tests"
    if has_browser_tests && [[ -f tests/browser/run.sh ]]; then
        KEFU_CHROMIUM="$(chromium_path)" bash tests/browser/run.sh
        step_done
    else
        not_present tests/browser/run.sh
    fi
fi

# --------------------------------------------------------------------------- summary

CURRENT_STEP="summary"
summary="kefu test-all: OK - ${#DONE_STEPS[@]} steps passed in $(elapsed)"
if [[ ${#SKIPPED_STEPS[@]} -gt 0 ]]; then
    summary+=" (skipped: $(printf '%s; ' "${SKIPPED_STEPS[@]}" | sed 's/; $//'))"
fi
printf '\n%s\n' "$summary"
