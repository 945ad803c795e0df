#!/usr/bin/env bash
# Runs `kefu faq eval --format json` and the Python reference (rank_bm25 + jieba) on the
# same datasets, then prints both tables.
#   infra/bench/bot-vs-reference.sh [datasets dir]   (default: ../shared/datasets)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
datasets="${1:-$repo/../shared/datasets}"
venv="$repo/.venv"
if ! "$venv/bin/python" -c 'import rank_bm25, jieba' 2>/dev/null; then
  "$venv/bin/pip" install -q -r "$repo/infra/bench/requirements.txt"
fi
cargo build -q --release -p kefu-cli --manifest-path "$repo/Cargo.toml"
kefu="${CARGO_TARGET_DIR:-$repo/target}/release/kefu"
bot=() ref=()
for name in banking77 massive_zh_cn banking77_oos massive_zh_cn_oos; do
  dir="$datasets/$name"
  val=()
  [[ -f "$dir/val.jsonl" ]] && val=(--val "$dir/val.jsonl")
  bot+=("$name $("$kefu" faq eval --faq "$dir/faq.jsonl" --queries "$dir/queries.jsonl" "${val[@]}" --format json | tail -n 1)")
  ref+=("$name $("$venv/bin/python" "$repo/infra/bench/reference.py" "$dir")")
done
table() {
  local title=$1; shift
  "$venv/bin/python" - "$title" "$@" <<'PY'
import json, sys
title, rows = sys.argv[1], sys.argv[2:]
cols = ["top1_accuracy", "accuracy_at_wrong_10", "accuracy_in_scope", "wrong_answer_rate", "p50_us", "p99_us", "index_build_ms"]
print(f"\n{title}")
print("| dataset | " + " | ".join(cols) + " |")
print("|---" * (len(cols) + 1) + "|")
for row in rows:
    name, blob = row.split(" ", 1)
    data = json.loads(blob)
    cell = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) and v < 10 else str(round(v, 1)))
    print(f"| {name} | " + " | ".join(cell(data.get(c)) for c in cols) + " |")
PY
}
table "kefu faq eval (default configuration; --val where the dataset has one)" "${bot[@]}"
table "Python reference: rank_bm25 + jieba, nearest paraphrase" "${ref[@]}"
