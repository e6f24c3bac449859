"""Line search's in-order alignment (indexer.search._coverage) keeps only the words of a window that resemble a
query word: its scores must be those of the alignment over every word, to the last bit."""

from __future__ import annotations

import numpy as np

from indexer.search import _coverage


def _every_word(sim, cols, lens, weights):
    """The weighted in-order alignment over every word of each window, one window at a time (reference)."""
    total = max(weights.sum(), 1e-9)
    out, bag = np.zeros(len(cols)), np.zeros(len(cols))
    for k in range(len(cols)):
        c = cols[k, : lens[k]]
        g = sim[:, c] if len(c) else np.zeros((sim.shape[0], 1))
        bag[k] = (weights * g.max(axis=1)).sum() / total
        prev = [0.0] * (len(c) + 1)
        for i in range(sim.shape[0]):
            row = [0.0] * (len(c) + 1)
            for j in range(1, len(c) + 1):
                row[j] = max(prev[j], prev[j - 1] + float(g[i, j - 1] * weights[i]), row[j - 1])
            prev = row
        out[k] = prev[-1] / total
    return out, bag


def test_alignment_on_the_words_like_the_query_equals_the_alignment_on_every_word():
    rng = np.random.default_rng(15)
    for trial in range(40):
        q, vocab, n = rng.integers(1, 12), rng.integers(2, 60), rng.integers(1, 150)
        sim = rng.random((q, vocab)) * (rng.random((q, vocab)) < 0.15)     # mostly unlike words, as in a search
        sim[:, 0] = 0.0                                                      # column 0 is padding
        sim[:, rng.random(vocab) < 0.5] = 0.0                                # words like no query word
        lens = rng.integers(0, 30, n)
        cols = np.zeros((n, max(int(lens.max()), 1)), dtype=np.intp)
        for k, m in enumerate(lens):
            cols[k, :m] = rng.integers(1, vocab, m)
        weights = rng.random(q) + 0.1
        got, got_bag = _coverage(sim, cols, lens, weights, bag=True)
        want, want_bag = _every_word(sim, cols, lens, weights)
        assert np.array_equal(got, want), (trial, np.abs(got - want).max())
        assert np.allclose(got_bag, want_bag, rtol=1e-12, atol=0), trial
        assert np.array_equal(_coverage(sim, cols, lens, weights)[0], got)


def test_order_counts_and_unlike_words_between_do_not():
    # query "a b"; vocabulary: 1 = a, 2 = b, 3 = unlike either
    sim = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    weights = np.array([1.0, 1.0])
    cols = np.array([[1, 3, 3, 2], [2, 3, 1, 0], [3, 3, 0, 0]])
    got, bag = _coverage(sim, cols, np.array([4, 3, 2]), weights, bag=True)
    assert got.tolist() == [1.0, 0.5, 0.0]          # in order; one of two in the wrong order; none
    assert bag.tolist() == [1.0, 1.0, 0.0]


def _screenplay_lines() -> list[str]:
    from pathlib import Path

    from indexer.textnorm import normalize_words, split_words

    text = (Path(__file__).resolve().parents[1] / "fixtures" / "scene.fountain").read_text()
    out = []
    for raw in text.splitlines():
        toks = [t for t, _ in normalize_words(split_words(raw))]
        if len(toks) >= 3:
            out.append(" ".join(toks))
    return out


def test_exact_phrase_scores_of_a_long_query_are_the_same_on_the_threaded_path():
    """A query phrase over 64 characters is scored with the windows as rapidfuzz's rows, on its threads
    (indexer.search._other_scores): partial_ratio must give what the one-row form gives, to the last bit."""
    from rapidfuzz.fuzz import partial_ratio
    from rapidfuzz.process import cdist

    from indexer.search import _other_scores, _Window

    lines = _screenplay_lines()
    assert len(lines) >= 15
    long_queries = [" ".join(lines[k:k + 3]) for k in range(0, len(lines) - 3, 3)]
    assert all(len(q) > 64 for q in long_queries[:5])
    for q in long_queries:
        tokens = q.split()
        windows = [_Window("t", [None], ln.split()) for ln in lines]       # one line each: no joined-window handicap
        _other_scores(windows, tokens, None)
        want = cdist([q], [" ".join(w.tokens) for w in windows], scorer=partial_ratio, dtype=np.float64)[0]
        for w, p in zip(windows, want):
            if w.scores["exact"] != 1.0:
                assert w.scores["exact"] == 0.99 * float(p) / 100.0


def test_a_full_text_error_reaches_the_caller_from_the_background_thread():
    from indexer.errors import UsageError
    from indexer.search import _Background

    def fails():
        raise UsageError("bad query")

    job = _Background(fails)
    try:
        job.result()
    except UsageError as exc:
        assert str(exc) == "bad query"
    else:
        raise AssertionError("the error was lost")
    assert _Background(lambda: {1, 2}).result() == {1, 2}
