"""Search results on the fixture shoot are those recorded before the store was reorganised (issue 17):
tests/golden/search_fixture_shoot.json holds the hits of the release's code (commit cd693a3) on the
fixture shoot and the broken files; tests/golden/search_queries.py says which searches and how to
record them again when a change is meant to alter results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from indexer.store import Index

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(GOLDEN))
import search_queries  # noqa: E402


def test_search_results_on_the_fixture_shoot_are_unchanged(shoot_index):
    want = json.loads((GOLDEN / "search_fixture_shoot.json").read_text())
    with Index.open(shoot_index) as idx:
        got = json.loads(json.dumps(search_queries.run_all(idx)))
    assert sum(len(q["hits"]) for kind in want.values() for q in kind) > 20     # the golden file says something
    for kind in want:
        for w, g in zip(want[kind], got[kind], strict=True):
            assert g == w, f"{kind} search {w['query']!r} differs from the recorded hits"
