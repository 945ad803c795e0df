#!/usr/bin/env bash
# Measures the bot on questions cut from the FAQs alone, so a change can be judged
# without the test queries (tune on this, confirm on bot-vs-reference.sh). Each fold
# holds out a third of every entry's paraphrases (in-scope questions in new words) and
# every paraphrase of a sixth of the entries (questions the FAQ cannot answer); `kefu faq
# eval` answers them with a model built from the rest, in its default configuration (no
# validation file; KEFU_FAQ_TARGET_WRONG_RATE as set, else 0.05). Prints each FAQ's mean
# over folds: the demo shop's FAQ (infra/faq/faq.jsonl, e-commerce) and each dataset's.
#   infra/bench/holdout.sh [datasets dir] [folds]   (defaults: ../shared/datasets, 6)
#   HOLDOUT_ONLY=demo_shop infra/bench/holdout.sh ... measures only the FAQs named (space-
#   separated), e.g. while exploring.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
datasets="${1:-$repo/../shared/datasets}"
folds="${2:-6}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build -q --release -p kefu-cli --manifest-path "$repo/Cargo.toml"
kefu="${CARGO_TARGET_DIR:-$repo/target}/release/kefu"

# Writes fold $3 of FAQ $1 to directory $2 (faq.jsonl, queries.jsonl).
cut_fold() {
  python3 - "$@" <<'PY'
import json, pathlib, random, sys
source, out, fold = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3])
entries = [json.loads(line) for line in open(source, encoding="utf-8") if line.strip()]
unknown = set(random.Random(fold).sample([e["id"] for e in entries], len(entries) // 6))
out.mkdir(parents=True)
with open(out / "faq.jsonl", "w", encoding="utf-8") as faq, \
     open(out / "queries.jsonl", "w", encoding="utf-8") as queries:
    for e in entries:
        texts = [e["question"], *e.get("similar", [])]
        kept = [t for i, t in enumerate(texts) if i % 3 != fold % 3]
        held = [t for i, t in enumerate(texts) if i % 3 == fold % 3]
        if e["id"] not in unknown and kept:
            faq.write(json.dumps({**e, "question": kept[0], "similar": kept[1:]}, ensure_ascii=False) + "\n")
        expected = None if e["id"] in unknown or not kept else e["id"]
        for text in held:
            queries.write(json.dumps({"text": text, "expected": expected}, ensure_ascii=False) + "\n")
PY
}

echo "| faq | folds | questions | top1_accuracy | accuracy_at_wrong_10 | target_wrong_rate | accuracy_at_target | accuracy_in_scope | wrong_answer_rate |"
echo "|---|---|---|---|---|---|---|---|---|"
for faq in "$repo/infra/faq/faq.jsonl" "$datasets"/*/faq.jsonl; do
  name="$(basename "$(dirname "$faq")")"
  [[ "$faq" == "$repo/infra/faq/faq.jsonl" ]] && name=demo_shop
  if [[ -n "${HOLDOUT_ONLY:-}" && " $HOLDOUT_ONLY " != *" $name "* ]]; then
    continue
  fi
  for ((k = 0; k < folds; k++)); do
    cut_fold "$faq" "$work/$name/$k" "$k"
    "$kefu" faq eval --faq "$work/$name/$k/faq.jsonl" --queries "$work/$name/$k/queries.jsonl" \
      --format json | tail -n 1
  done | python3 -c '
import json, sys
name, runs = sys.argv[1], [json.loads(line) for line in sys.stdin]
cols = ["top1_accuracy", "accuracy_at_wrong_10", "target_wrong_rate", "accuracy_at_target", "accuracy_in_scope", "wrong_answer_rate"]
cells = [len(runs), sum(r["queries"] for r in runs)]
cells += [f"{sum(r[c] for r in runs) / len(runs):.4f}" for c in cols]
print(f"| {name} | " + " | ".join(map(str, cells)) + " |")
' "$name"
done
