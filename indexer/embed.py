"""Offline text embedding for semantic line search: WordLlama's bundled 256-d model.

The ``wordllama`` wheel ships its weights and tokenizer; we load them from the package folder with
downloads disabled, so nothing reaches the network. Vectors are L2-normalised (cosine = dot).
"""

from __future__ import annotations

import logging
import threading
from itertools import chain, filterfalse
from pathlib import Path

import numpy as np

from .errors import ModelError

NAME = "wordllama-l2_supercat-256"
DIM = 256

_MODEL = None
_LOAD_LOCK = threading.RLock()    # the review room's threads may all ask for the model at once
_TOKENIZER = None       # the model's tokenizer without padding (WordLlama pads every batch of 64)


def _load():
    with _LOAD_LOCK:
        return _MODEL if _MODEL is not None else _load_model()


def _load_model():
    global _MODEL
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        import wordllama
        from wordllama import WordLlama

        _MODEL = WordLlama.load(config="l2_supercat", dim=DIM, cache_dir=Path(wordllama.__file__).parent,
                                disable_download=True)
    except Exception as exc:
        raise ModelError(f"Cannot load the text embedding ({NAME}) from the wordllama package "
                         f"({type(exc).__name__}: {exc}); reinstall with `uv sync`.") from None
    finally:
        # wordllama calls logging.basicConfig(level=INFO) on import; give the root logger back.
        root.setLevel(level)
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
    return _MODEL


def embed(texts: list[str]) -> np.ndarray:
    """(len(texts), 256) float32, unit length; empty texts give zero vectors."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    vecs = embed_raw(texts)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.where(norms > 0, vecs / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


def embed_raw(texts: list[str]) -> np.ndarray:
    """Mean token vectors, not normalised (so texts can be pooled together by weighted sums).

    The same vectors as ``WordLlama.embed(texts, norm=False)`` (a test holds them equal on every line of
    the evaluation screenplays), computed from per-word token sums kept across calls: the tokenizer
    (Llama-2 BPE, spaces become "▁", no pre-tokenizer) never merges across a word boundary, since its only
    tokens with an inner "▁" are runs of "▁" that need two spaces in a row, so a text of single-spaced words
    tokenizes as its words do alone. A search scores a few hundred candidate lines drawn from a vocabulary
    it has mostly seen before; WordLlama re-tokenizes them all in padded batches of 64, which was a quarter
    of a search's time. Texts with other spacing take the tokenizer whole."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    model = _load()
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    words = _WORDS
    simple: list[int] = []
    other: list[int] = []
    for k, t in enumerate(texts):
        if not t:
            continue
        (other if ("\u2581" in t or "  " in t or t[0] == " " or t[-1] == " ") else simple).append(k)
    if simple:
        pieces = [texts[k].split(" ") for k in simple]
        sizes = list(map(len, pieces))
        flat = list(chain.from_iterable(pieces))          # every word of every text, in order
        with _WORDS_LOCK:          # the review room searches from many threads; the table grows and resets
            new = list(dict.fromkeys(filterfalse(words.index.__contains__, flat)))
            if new and len(words.index) + len(new) > words.LIMIT:     # full: start afresh with this call's words
                words.__init__()
                new = list(dict.fromkeys(flat))
            if new:
                words.add(new, [e.ids for e in _tokenizer(model).encode_batch(new, add_special_tokens=False)],
                          model.embedding)
            rows = np.fromiter(map(words.index.__getitem__, flat), dtype=np.int64, count=len(flat))
            used, col = np.unique(rows, return_inverse=True)
            vecs, lens = words.sums[used], words.counts[used]
        # Each text's sum of its words' rows, as one sparse (texts x words used) product: np.add.reduceat
        # over the gathered rows was most of a search's semantic ranker (12 of 20 ms for 1,300 lines).
        from scipy.sparse import csr_matrix

        indptr = np.concatenate([[0], np.cumsum(sizes)])
        member = csr_matrix((np.ones(len(rows), dtype=np.float32), col.ravel(), indptr),
                            shape=(len(pieces), len(used)))
        sums = np.asarray(member @ vecs)
        counts = member @ lens
        nz = counts > 0
        out[np.asarray(simple)[nz]] = sums[nz] / counts[nz, None]
    if other:
        enc = _tokenizer(model).encode_batch([texts[k] for k in other], add_special_tokens=False)
        for k, e in zip(other, enc):
            if e.ids:
                ids = np.clip(np.asarray(e.ids, dtype=np.int64), 0, model.embedding.shape[0] - 1)
                out[k] = model.embedding[ids].sum(axis=0) / len(ids)
    return out


class _WordSums:
    """Each word's token-vector sum and token count, kept across calls (bounded)."""

    LIMIT = 200_000

    def __init__(self):
        self.index: dict[str, int] = {}
        self.sums = np.zeros((0, DIM), dtype=np.float32)
        self.counts = np.zeros(0, dtype=np.float32)

    def add(self, new: list[str], ids: list[list[int]], table: np.ndarray) -> None:
        base, need = len(self.index), len(self.index) + len(new)
        if need > len(self.counts):                   # grow by doubling: no copy of the whole table per call
            size = max(need, 2 * len(self.counts), 4096)
            sums = np.zeros((size, table.shape[1]), dtype=np.float32)
            counts = np.zeros(size, dtype=np.float32)
            sums[:base], counts[:base] = self.sums[:base], self.counts[:base]
            self.sums, self.counts = sums, counts
        for k, tok in enumerate(ids):
            self.counts[base + k] = len(tok)
            if tok:
                self.sums[base + k] = table[np.clip(np.asarray(tok, dtype=np.int64), 0, table.shape[0] - 1)].sum(axis=0)
        self.index.update((w, base + k) for k, w in enumerate(new))


_WORDS = _WordSums()
_WORDS_LOCK = threading.Lock()


def _tokenizer(model):
    """The model's tokenizer without padding (WordLlama pads every batch)."""
    global _TOKENIZER
    with _LOAD_LOCK:
        if _TOKENIZER is None:
            import copy

            tok = copy.deepcopy(model.tokenizer)
            tok.no_padding()
            tok.no_truncation()
            _TOKENIZER = tok
        return _TOKENIZER


def describe() -> dict:
    from importlib.metadata import version   # not `import wordllama`: it reconfigures the root logger

    return {"name": NAME, "dim": DIM, "library": "wordllama", "version": version("wordllama")}
