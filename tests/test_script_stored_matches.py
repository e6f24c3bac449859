"""Matches between takes and the screenplay are stored when a take is indexed or a script imported:
coverage and exports read them and never match again (issue 17)."""

from __future__ import annotations

import pytest

from conftest import FIXTURES
from indexer.config import IndexSettings
from indexer.pipeline import Indexer
from indexer.script import catalog
from indexer.store import Index

pytestmark = pytest.mark.slow


def test_a_take_indexed_after_the_import_is_matched_and_stored_by_the_run(tmp_path, monkeypatch):
    path = tmp_path / "idx"
    with Index.open_writer(path) as idx:
        catalog.import_script(idx, FIXTURES / "scene.fountain")              # no takes yet: nothing matched
        Indexer(idx, IndexSettings()).run([FIXTURES / "shoot" / "12A_T3_CamB.mp4"])
        version = catalog.resolve_version(idx)
        assert catalog.unmatched_takes(idx, version) == []                   # the run stored its match

    def no_matching(*args, **kw):
        raise AssertionError("coverage matched a take again instead of reading its stored match")

    monkeypatch.setattr(catalog, "match_take", no_matching)
    with Index.open(path) as idx:
        matches = catalog.all_matches(idx, catalog.resolve_version(idx))
    assert len(matches) == 1 and matches[0].stored
    assert matches[0].scene == "12A" and {d.line_id for d in matches[0].deliveries} >= {"12A/1", "12A/7"}
