"""Reciprocal-rank fusion: the one way dailies combines several rankings of the same candidates."""

from __future__ import annotations

from typing import Sequence

RRF_K = 60


def reciprocal_rank_fusion(rankers: Sequence[Sequence[float]], *, k: int = RRF_K) -> list[float]:
    """Fuse several rankings of the same candidates into one score per candidate.

    ``rankers`` holds one column of scores per ranker, each with one score per candidate, higher is
    better (a candidate a ranker has no opinion on is given a score below every real one by the caller).
    Each ranker ranks the candidates by score, 1 for the best; candidates with equal scores share the
    rank of the first of them ("1224" ranking), so the order they were given in never decides a tie.
    A candidate's fused score is the sum over rankers of ``1 / (k + rank)``, divided by what a candidate
    first for every ranker would get: 1.0 is first everywhere, and the scale does not depend on how many
    rankers there were. No rankers: an empty list.
    """
    if not rankers:
        return []
    import numpy as np

    n = len(rankers[0])
    fused = np.zeros(n)
    for scores in rankers:
        if len(scores) != n:
            raise ValueError(f"every ranker must score all {n} candidates, one scored {len(scores)}.")
        s = np.asarray(scores, dtype=np.float64)
        # rank = 1 + how many score strictly higher (ties share the rank of the first of them)
        rank = 1 + n - np.searchsorted(np.sort(s), s, side="right")
        fused += 1.0 / (k + rank)
    top = len(rankers) / (k + 1)
    return (fused / top).tolist()
