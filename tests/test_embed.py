"""The text embedding that semantic line search uses: our pooled computation must give WordLlama's own vectors."""

from __future__ import annotations

import numpy as np

from conftest import EVAL, ROOT, need
from indexer import embed
from indexer.script import load_file


def _texts() -> list[str]:
    lines = [ln.text for ln in load_file(ROOT / "fixtures" / "scene.fountain").lines]
    # More than one of WordLlama's batches of 64, an empty text, punctuation only, and a long joined line.
    return (lines * 20)[:150] + ["", "...", " ".join(lines)]


def test_raw_vectors_equal_wordllama_embed():
    texts = _texts()
    ours = embed.embed_raw(texts)
    theirs = np.asarray(embed._load().embed(texts, norm=False), dtype=np.float32)
    assert ours.shape == theirs.shape == (len(texts), embed.DIM)
    assert np.allclose(ours, theirs, atol=1e-6, rtol=1e-5)
    assert len(texts) > 128                         # three of WordLlama's batches
    assert not ours[texts.index("")].any()           # the empty text is a zero vector
    assert np.linalg.norm(ours[: texts.index("")], axis=1).min() > 0


def test_unit_vectors_are_wordllamas_normalised():
    texts = _texts()
    unit = embed.embed(texts)
    theirs = np.asarray(embed._load().embed(texts, norm=False), dtype=np.float32)
    nz = np.linalg.norm(theirs, axis=1) > 0
    assert np.allclose(unit[nz], theirs[nz] / np.linalg.norm(theirs[nz], axis=1, keepdims=True), atol=1e-6)
    assert np.allclose(np.linalg.norm(unit[nz], axis=1), 1.0, atol=1e-5)


def test_every_screenplay_line_embeds_as_wordllama_does():
    """Every dialogue line of the evaluation screenplays (thousands of real sentences, odd spacing,
    punctuation and accents included): the per-word shortcut must never differ from WordLlama's own pass."""
    texts: list[str] = []
    for p in sorted(need(EVAL / "script").rglob("*")):
        if p.suffix.lower() in (".fountain", ".fdx"):
            try:
                texts += [ln.text for ln in load_file(p).lines]
            except Exception:       # a screenplay the parser refuses is another test's concern
                continue
    texts += ["a  b", " leading", "trailing ", " ", "x\u2581y", "tab\there", "émigré naïve 3:15"]
    assert len(texts) > 3000
    embed._WORDS.__init__()          # from an empty word table: every word goes through the tokenizer here
    model = embed._load()
    for i in range(0, len(texts), 4000):
        chunk = texts[i:i + 4000]
        theirs = np.asarray(model.embed(chunk, norm=False), dtype=np.float32)
        assert np.allclose(embed.embed_raw(chunk), theirs, atol=1e-6, rtol=1e-5), chunk[:3]


def test_many_threads_at_once_get_the_same_vectors(monkeypatch):
    """The review room searches from many threads: the shared word table grows (and, at its bound, starts
    afresh) under them. Found by `dailies serve --workers 2` under 20 clients: 'could not broadcast'."""
    import threading

    texts = [ln.text for ln in load_file(need(EVAL / "script" / "fountain" / "Big-Fish.fountain")).lines]
    assert len(texts) > 500
    reference = np.asarray(embed._load().embed(texts, norm=False), dtype=np.float32)
    embed._WORDS.__init__()
    monkeypatch.setattr(embed._WordSums, "LIMIT", 1500)           # resets happen during the run too
    wrong: list[str] = []

    def worker(k: int) -> None:
        try:
            for i in range(k * 37 % 100, len(texts), 100):
                chunk = texts[i:i + 120]
                if not np.allclose(embed.embed_raw(chunk), reference[i:i + 120], atol=1e-6, rtol=1e-5):
                    wrong.append(f"thread {k}, texts {i}..")
        except Exception as exc:        # noqa: BLE001 - what a thread raised is the failure
            wrong.append(f"thread {k}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong, wrong[:3]
