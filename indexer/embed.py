"""Offline text embedding for semantic line search: WordLlama's bundled 256-d model.

The ``wordllama`` wheel ships its weights and tokenizer; we load them from the package folder with
downloads disabled, so nothing reaches the network. Vectors are L2-normalised (cosine = dot).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .errors import ModelError

NAME = "wordllama-l2_supercat-256"
DIM = 256

_MODEL = None


def _load():
    global _MODEL
    if _MODEL is not None:
        return _MODEL
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
    model = _load()
    vecs = np.asarray(model.embed(list(texts), norm=False), dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.where(norms > 0, vecs / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


def embed_raw(texts: list[str]) -> np.ndarray:
    """Mean token vectors, not normalised (so texts can be pooled together by weighted sums)."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.asarray(_load().embed(list(texts), norm=False), dtype=np.float32)


def describe() -> dict:
    from importlib.metadata import version   # not `import wordllama`: it reconfigures the root logger

    return {"name": NAME, "dim": DIM, "library": "wordllama", "version": version("wordllama")}
