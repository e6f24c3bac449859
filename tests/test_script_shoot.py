"""The fixture shoot end to end: index the takes, import scene.fountain, match, query, report.

Ground truth is fixtures/manifest.json: every delivery must be matched to its script line with source
timecode within 3 frames, the skipped line reported missing in its take, the ad-lib reported as added
words, the restart counted twice, the wild track's out-of-order lines found, the MOS take left alone.
"""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer.script import catalog
from indexer.store import Index
from indexer.textnorm import tokens
from indexer.timecode import Clock, tc_to_frames

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 3  # frames


@pytest.fixture(scope="module")
def matched(shoot_index, tmp_path_factory):
    """A copy of the session's shoot index with the scene imported (and every take matched)."""
    path = tmp_path_factory.mktemp("script") / "index"
    shutil.copytree(shoot_index, path)
    with Index.open_writer(path) as idx:
        res = catalog.import_script(idx, ROOT / "fixtures" / "scene.fountain")
    return path, {m.name: m for m in res.matched}


def _frames(tc: str, rate: Fraction) -> int:
    return tc_to_frames(tc, rate)


def test_every_delivery_matched_with_source_tc(matched, manifest):
    _, by_name = matched
    problems = []
    for take in manifest["takes"]:
        tm = by_name[take["name"]]
        rate = Fraction(take["rate"])
        clock = Clock.from_start_tc(take["start_tc"], rate)
        expected = [f"{manifest['scene']}/{d['script_line']}" for d in take["deliveries"]]
        assert tm.scene == manifest["scene"] and tm.scene_source == "name"
        assert [d.line_id for d in tm.deliveries] == expected, take["name"]
        for d, truth in zip(tm.deliveries, take["deliveries"]):
            want_in, want_out = clock.tc_in(truth["start"]), clock.tc_out(truth["end"])
            din = _frames(d.tc_in, rate) - _frames(want_in, rate)
            dout = _frames(d.tc_out, rate) - _frames(want_out, rate)
            if abs(din) > TOLERANCE or abs(dout) > TOLERANCE:
                problems.append(f"{take['name']} {d.line_id}: in {d.tc_in} vs {want_in} ({din:+d}), "
                                f"out {d.tc_out} vs {want_out} ({dout:+d})")
    assert not problems, "TC off by more than 3 frames:\n" + "\n".join(problems)


def test_skipped_adlib_restart_false_start_wild_track_mos(matched, manifest):
    _, by_name = matched
    t2 = by_name["12A_T2_CamA"]
    assert t2.missing == ["12A/3"]
    adlib = next(d for d in t2.deliveries if d.line_id == "12A/1")
    assert "seriously" in [t for a in adlib.added for t in tokens(a)]
    t3 = by_name["12A_T3_CamB"]
    assert [d.attempt for d in t3.deliveries if d.line_id == "12A/1"] == [1, 2]
    assert [d.status for d in t3.deliveries if d.line_id == "12A/5"] == ["false_start", "delivered"]
    assert t3.missing == []
    assert [d.line_id for d in by_name["12A_WT1"].deliveries] == ["12A/8", "12A/7"]
    mos = by_name["12A_T4_CamC_MOS"]
    assert mos.no_dialogue and mos.deliveries == [] and mos.missing == []


@pytest.fixture(scope="module")
def cli(matched):
    from cli.script_cmd import script_app

    path, _ = matched
    runner = CliRunner()

    def run(*args: str):
        r = runner.invoke(script_app, [*args, "--index", str(path)], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return r.stdout
    return run


def test_cli_take_json_fields(cli):
    rows = json.loads(cli("take", "12A_T2_CamA", "--json"))
    assert [r["line_id"] for r in rows] == [f"12A/{i}" for i in range(1, 9)]          # script order
    for r in rows:
        assert {"line_id", "character", "clip", "start", "end", "tc_in", "tc_out", "score", "delivered", "diff",
                "take_id", "scene", "take"} <= set(r)
    missing = next(r for r in rows if r["line_id"] == "12A/3")
    assert missing["status"] == "missing" and missing["tc_in"] is None
    first = rows[0]
    assert first["clip"].endswith("12A_T2_CamA.mov") and first["character"] == "LEO" and ";" in first["tc_in"]


def test_cli_line_best_first(cli):
    rows = json.loads(cli("line", "12A/5", "--json"))
    assert {r["name"] for r in rows} == {"12A_T1_CamA", "12A_T2_CamA", "12A_T3_CamB"}
    assert rows[-1]["status"] == "false_start"
    scores = [r["score"] for r in rows if r["status"] == "delivered"]
    assert scores == sorted(scores, reverse=True)


def test_cli_coverage_reports(cli, tmp_path):
    cov = json.loads(cli("coverage", "--json"))
    (scene,) = cov["scenes"]
    assert scene["never"] == [] and scene["delivered"] == 8 and scene["eighths_covered"] == scene["eighths"]
    t2 = next(c["take_id"] for c in cov["columns"] if c["name"] == "12A_T2_CamA")
    row3 = next(r for r in cov["rows"] if r["line_id"] == "12A/3")
    assert row3["cells"][t2]["status"] == "missing"
    csv_text = cli("coverage", "--format", "csv")
    assert csv_text.splitlines()[0].startswith("page,scene,line_id,character,text,12A_T1_CamA")
    out = tmp_path / "coverage.html"
    cli("coverage", "--format", "html", "--output", str(out))
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html and "@media print" in html
    assert "src=" not in html and "href=" not in html and "<script" not in html      # one self-contained file
    assert "12A/3" in html and "missing" in html
    table = cli("coverage")
    assert "12A/3" in table and "coverage by scene" in table
