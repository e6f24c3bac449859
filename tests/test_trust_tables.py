"""Tables read at 80 columns and use the width at 160 (issue 20): clip names are never broken into
pieces, `script coverage` keeps every take and never splits a header mid-word."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import FIXTURES, run_cli
from indexer.script import catalog
from indexer.store import Index

NAMES = ["12A_T1_CamA", "12A_T2_CamA", "12A_T3_CamB", "12A_T4_CamC_MOS", "12A_WT1"]


@pytest.fixture(scope="module")
def scripted(shoot_index, tmp_path_factory):
    path = tmp_path_factory.mktemp("tables") / "index"
    shutil.copytree(shoot_index, path)
    with Index.open_writer(path) as idx:
        catalog.import_script(idx, FIXTURES / "scene.fountain")
    return path


def _at(width: int, *args: str) -> str:
    out = run_cli(*args, check=True, env=dict(os.environ, COLUMNS=str(width))).stdout
    assert max(len(ln) for ln in out.splitlines()) <= width, out
    return out


@pytest.mark.parametrize("width", [80, 100, 160])
def test_clip_names_stay_whole(scripted, width):
    status = _at(width, "status", "--index", str(scripted))
    assert all(n in status for n in NAMES), status
    assert "indexed" in status and " 11 " in status            # numbers and status not cut
    # the rate a sound-only take's timecode was counted at is said (once)
    assert " ".join(status.split()).count("Sound-only takes (12A_WT1) count timecode at the rate") == 1
    hits = _at(width, "search", "line", "we have to follow the data", "--index", str(scripted))
    assert sum(n in hits for n in NAMES) >= 4, hits


@pytest.mark.parametrize("width", [80, 100, 160])
def test_coverage_keeps_every_take_and_whole_header_words(scripted, width):
    out = _at(width, "script", "coverage", "--index", str(scripted))
    words = set(out.split())
    for header in ("scene", "pages", "length", "covered", "lines", "said", "partial", "never", "takes"):
        assert header in words, (header, out)
    for label in ("T1 A", "T2 A", "T3 B", "WT1"):
        assert label in out, (label, out)
    assert "✓×2*" in out                                        # the restart of T3, each cell whole
    assert all(f"= {n}" in out for n in NAMES)                  # the key: each take in one piece
    if width >= 160:                                            # the width is used: the lines in full
        assert "You're still here? It's almost three in the morning." in out
