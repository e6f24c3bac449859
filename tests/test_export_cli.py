"""`dailies export` end to end on the indexed fixture shoot (slow: it needs the session's index)."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from typer.testing import CliRunner

from cli.export_cmd import export_app
from indexer.search import LineQuery, search_lines
from indexer.store import Index
from indexer.timecode import tc_to_frames

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
LINE2 = "The comet won't wait for office hours, Leo."


def export(*args: str) -> str:
    result = CliRunner().invoke(export_app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def export_fails(*args: str) -> subprocess.CompletedProcess:
    """Run as the CLI runs (a DailiesError is one line on stderr, exit 2)."""
    code = "from cli.export_cmd import export_app; export_app()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def line2_hits(shoot_index):
    with Index.open(shoot_index) as idx:
        return search_lines(idx, LineQuery(text=LINE2))


@pytest.fixture(scope="module")
def takes(shoot_index) -> dict[str, dict]:
    with Index.open(shoot_index) as idx:
        return {r["name"]: dict(r) for r in idx.takes(status="indexed")}


def test_stringout_one_event_per_delivering_take(shoot_index, line2_hits, manifest, tmp_path):
    delivered = sorted({t["name"] for t in manifest["takes"] for d in t["deliveries"] if d["script_line"] == 2})
    assert delivered == ["12A_T1_CamA", "12A_T2_CamA", "12A_T3_CamB"]
    best = {}
    for h in line2_hits:                       # the search's best hit of each take comes first
        best.setdefault(h.name, h)
    assert sorted(best) == delivered
    out = export("stringout", "--line", LINE2, "--index", str(shoot_index), "-o", str(tmp_path / "line2.edl"))
    edls = sorted(tmp_path.glob("line2_*.edl"))
    assert [p.name for p in edls] == ["line2_23.976.edl", "line2_25.edl", "line2_29.97DF.edl"]
    assert out.count("wrote ") == 3
    names = []
    for path in edls:
        rate = {"line2_23.976.edl": 24000 / 1001, "line2_25.edl": 25, "line2_29.97DF.edl": 30000 / 1001}[path.name]
        tl = otio.adapters.read_from_file(str(path), rate=rate)
        [clip] = list(tl.video_tracks()[0].find_clips())
        hit = best[clip.name]
        names.append(clip.name)
        r = Fraction(hit.rate)
        assert round(clip.source_range.start_time.value) == tc_to_frames(hit.tc_in, r) - 12
        assert round(clip.source_range.end_time_exclusive().value) == tc_to_frames(hit.tc_out, r) + 12
    assert sorted(names) == delivered


def test_stringout_order_rank_and_scene(shoot_index, line2_hits, tmp_path):
    ranked = list(dict.fromkeys(h.name for h in line2_hits))
    export("stringout", "--line", LINE2, "--index", str(shoot_index), "-o", str(tmp_path / "rank.otio"))
    tl = otio.adapters.read_from_file(str(tmp_path / "rank.otio"))
    assert [c.name for c in tl.video_tracks()[0].find_clips()] == ranked
    export("stringout", "--line", LINE2, "--index", str(shoot_index), "--order", "scene",
           "-o", str(tmp_path / "scene.xml"))
    tl = otio.adapters.read_from_file(str(tmp_path / "scene.xml"))
    assert [c.name for c in tl.video_tracks()[0].find_clips()] == ["12A_T1_CamA", "12A_T2_CamA", "12A_T3_CamB"]
    export("stringout", "--line", LINE2, "--index", str(shoot_index), "--all-hits", "--handles", "0",
           "-o", str(tmp_path / "all.otio"))
    tl = otio.adapters.read_from_file(str(tmp_path / "all.otio"))
    clips = list(tl.video_tracks()[0].find_clips())
    assert len(clips) == len([h for h in line2_hits if h.name != "12A_WT1"])
    for clip, hit in zip(clips, [h for h in line2_hits if h.name != "12A_WT1"]):
        assert otio.opentime.to_timecode(clip.source_range.start_time, clip.source_range.start_time.rate,
                                         ";" in hit.tc_in) == hit.tc_in


def test_markers_for_a_takes_lines(shoot_index, takes, tmp_path):
    with Index.open(shoot_index) as idx:
        lines = idx.lines_of_take(takes["12A_T2_CamA"]["take_id"])
    export("markers", "--take", "12A_T2_CamA", "--index", str(shoot_index), "-o", str(tmp_path / "t2.txt"))
    rows = (tmp_path / "t2.txt").read_text().splitlines()
    assert len(rows) == len(lines) > 0
    assert all(r.split("\t")[1].count(";") == 1 for r in rows)           # 29.97 DF
    export("markers", "--take", "12A_T2_CamA", "--take", "12A_T1_CamA", "--index", str(shoot_index),
           "--format", "resolve", "-o", str(tmp_path / "resolve"))
    assert sorted(p.name for p in (tmp_path / "resolve").iterdir()) == ["12A_T1_CamA.edl", "12A_T2_CamA.edl"]
    export("markers", "--take", "12A_T1_CamA", "--index", str(shoot_index), "-o", str(tmp_path / "t1.xml"))
    tl = otio.adapters.read_from_file(str(tmp_path / "t1.xml"))
    assert len(tl.tracks.markers) == len(list(tl.find_clips())[0].markers) > 0


def test_ale_of_the_shoot(shoot_index, takes, tmp_path):
    out = export("ale", "--index", str(shoot_index), "-o", str(tmp_path / "shoot.ale"), "--json")
    written = [Path(d["path"]).name for d in json.loads(out)]
    assert sorted(written) == ["shoot_23.976.ale", "shoot_25.ale", "shoot_29.97DF.ale"]
    seen = {}
    for name in written:
        col = otio.adapters.read_from_file(str(tmp_path / name))   # keep it: iterating a temporary crashes OTIO
        for clip in col:
            seen[clip.name] = clip
            t = takes[clip.name]
            r = Fraction(t["rate"])
            assert round(clip.source_range.start_time.value) == tc_to_frames(t["start_tc"], r)
            assert clip.metadata["ALE"]["Scene"] == "12A"
    assert set(seen) == set(takes)
    assert seen["12A_T1_CamA"].metadata["ALE"]["Dialogue"].lower().startswith("you're still here")


def test_transcripts(shoot_index, takes, tmp_path):
    for fmt in ("srt", "vtt", "csv", "txt", "json"):
        export("transcript", "12A_T2_CamA", "--index", str(shoot_index), "-o", str(tmp_path / f"t2.{fmt}"))
    srt = (tmp_path / "t2.srt").read_text()
    assert srt.startswith("1\n00:00:00,9") and " --> " in srt
    assert (tmp_path / "t2.vtt").read_text().startswith("WEBVTT")
    data = json.loads((tmp_path / "t2.json").read_text())
    assert data["start_tc"] == "01:00:59;20" and data["lines"][0]["tc_in"].startswith("01:01:00;")
    assert (tmp_path / "t2.csv").read_text().splitlines()[0].startswith("Clip,Line,TC In,TC Out")


def test_bad_input_is_one_clear_line(shoot_index, tmp_path):
    idx = str(shoot_index)
    cases = [
        (["stringout", "--line", LINE2, "--index", idx, "-o", str(tmp_path / "x.mov")], "Unknown string-out format"),
        (["stringout", "--line", "zebra quantum marmalade", "--index", idx, "-o", str(tmp_path / "z.edl")],
         "Nothing to export"),
        (["stringout", "--line", LINE2, "--index", idx, "-o", str(tmp_path / "nope" / "x.xml")], "does not exist"),
        (["stringout", "--speaker", "NOBODY", "--index", idx, "-o", str(tmp_path / "s.edl")], "No voice called"),
        (["transcript", "no_such_take", "--index", idx, "-o", str(tmp_path / "t.srt")], "No take 'no_such_take'"),
    ]
    for args, message in cases:
        proc = export_fails(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        err = proc.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("dailies: error: ") and message in err[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    (tmp_path / "exists.otio").write_text("keep me")
    proc = export_fails("stringout", "--line", LINE2, "--index", idx, "-o", str(tmp_path / "exists.otio"))
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert (tmp_path / "exists.otio").read_text() == "keep me"
