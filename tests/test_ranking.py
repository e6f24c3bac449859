"""The one reciprocal-rank fusion (indexer/ranking.py) that line search and the visual re-rank share."""

from __future__ import annotations

import pytest

from indexer.ranking import RRF_K, reciprocal_rank_fusion


def test_first_for_every_ranker_scores_one_whatever_the_number_of_rankers():
    for rankers in ([[0.9, 0.1]], [[0.9, 0.1], [3.0, 2.0]], [[0.9, 0.1], [3.0, 2.0], [1.0, -1.0]]):
        fused = reciprocal_rank_fusion(rankers)
        assert fused[0] == pytest.approx(1.0) and fused[1] < 1.0


def test_ties_share_the_rank_of_the_first_of_them():
    fused = reciprocal_rank_fusion([[0.5, 0.9, 0.5, 0.1]], k=RRF_K)
    top = 1 / (RRF_K + 1)
    assert fused == pytest.approx([(1 / (RRF_K + 2)) / top, 1.0, (1 / (RRF_K + 2)) / top, (1 / (RRF_K + 4)) / top])


def test_second_and_first_beats_first_and_last():
    given = [3.0, 2.0, 1.0]            # the other search's order
    visual = [0.1, 0.9, 0.8]
    fused = reciprocal_rank_fusion([given, visual])
    assert sorted(range(3), key=lambda i: -fused[i]) == [1, 0, 2]


def test_no_rankers_and_ragged_rankers():
    assert reciprocal_rank_fusion([]) == []
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[1.0, 2.0], [1.0]])
