"""Search results on the fixture shoot stay those recorded in tests/golden/search_fixture_shoot.json (first
recorded at commit cd693a3, before the store was reorganised, issue 17; recorded again when the test began to
give the takes recorded sound steps, see tests/golden/search_queries.py, which says which searches and how to
record them again when a change is meant to alter results)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from indexer.store import Index

GOLDEN = Path(__file__).parent / "golden"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
sys.path.insert(0, str(GOLDEN))
import search_queries  # noqa: E402


@pytest.fixture(scope="module")
def golden_index(tmp_path_factory) -> Path:
    """The fixture shoot and the broken files indexed with the default models, the takes' words and voices
    given beforehand from ``sound_steps.json`` (see search_queries.py: they are the same on every CPU)."""
    from indexer.config import IndexSettings
    from indexer.pipeline import Indexer

    steps = json.loads((GOLDEN / "sound_steps.json").read_text())
    path = tmp_path_factory.mktemp("golden") / "index"
    with Index.open_writer(path) as idx:
        search_queries.seed(idx, steps)
        summary = Indexer(idx, IndexSettings()).run([FIXTURES / "shoot", FIXTURES / "broken"])
        assert not summary.interrupted
        # every take reused its recorded sound: nothing here depends on this machine's faster-whisper kernels
        assert search_queries.sound_steps(idx) == steps
    return path


def test_search_results_on_the_fixture_shoot_are_unchanged(golden_index):
    want = json.loads((GOLDEN / "search_fixture_shoot.json").read_text())
    with Index.open(golden_index) as idx:
        got = json.loads(json.dumps(search_queries.run_all(idx)))
    assert sum(len(q["hits"]) for kind in want.values() for q in kind) > 20     # the golden file says something
    for kind in want:
        for w, g in zip(want[kind], got[kind], strict=True):
            assert g == w, f"{kind} search {w['query']!r} differs from the recorded hits"
