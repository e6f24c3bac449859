"""Golden files for the formats written by hand (Avid marker list, Resolve marker EDL) and for the
fix-ups made to the CMX 3600 adapter's output (FCM line, channels, DF labels).

Each output is compared line by line with its golden file in tests/golden/, and every line is also
checked against the shape of those formats as the NLEs write them (tests/golden/README.md says which
real exports each shape was read from). To refresh a golden after a deliberate change:
``python -c "import sys; sys.path.insert(0, 'tests'); import test_export_golden as g; g.regenerate()"``.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest

from indexer.export import plan_stringout
from indexer.export.core import Source
from indexer.export.markers import avid_markers, group_markers, resolve_marker_edl
from indexer.export.timeline import edl_strings
from indexer.records import Hit
from indexer.timecode import Clock

GOLDEN = Path(__file__).resolve().parent / "golden"

# The facts of fixture take 12A_T2_CamA (29.97 DF from 01:00:59;20) and of 12A_T1_CamA (23.976),
# fixed here so the goldens do not move when the fixtures are regenerated.
T2 = Source("t2", "/shoot/12A_T2_CamA.mov", "12A_T2_CamA", "12A", "2", "A", Fraction(30000, 1001),
            "01:00:59;20", 1108, True, True, 1)
T1 = Source("t1", "/shoot/12A_T1_CamA.mov", "12A_T1_CamA", "12A", "1", "A", Fraction(24000, 1001),
            "01:00:00:00", 958, True, True, 2)
WT = Source("wt", "/shoot/12A_WT1.wav", "12A_WT1", "12A", "WT1", None, Fraction(24000, 1001),
            "14:05:00:00", 256, False, True, 1)
SOURCES = {s.take_id: s for s in (T1, T2, WT)}


def _hit(src: Source, start: float, end: float, text: str, speaker: str | None) -> Hit:
    c = Clock.from_start_tc(src.start_tc, src.rate)
    return Hit(kind="line", clip=src.path, take_id=src.take_id, name=src.name, scene=src.scene, take=src.take,
               camera=src.camera, start=start, end=end, tc_in=c.tc_in(start), tc_out=c.tc_out(end),
               rate=str(src.rate), text=text, score=1.0, speaker=speaker)


def t2_lines() -> list[Hit]:
    return [
        _hit(T2, 0.2, 0.9, "Seriously?", "LEO"),                       # across the dropped minute
        _hit(T2, 0.969, 6.255, "You're still here? It's almost three in the morning.", "LEO"),
        _hit(T2, 7.366, 10.562, "The comet won't wait for office hours, Leo.", "MAYA"),
        _hit(T2, 11.933, 15.154, "You remembered. Put it by the star charts.", "MAYA"),
        _hit(T2, 16.435, 16.9, "The director | called", None),
    ]


def golden_outputs() -> dict[str, str]:
    [take] = group_markers(t2_lines(), SOURCES)
    out = {"avid_markers_12A_T2_CamA.txt": avid_markers(take),
           "resolve_markers_12A_T2_CamA.edl": resolve_marker_edl(take)}
    hits = [_hit(T2, 0.2, 0.9, "Seriously?", "LEO"),
            _hit(T1, 6.034, 9.231, "The comet won't wait for office hours, Leo.", "MAYA"),
            _hit(WT, 6.366, 9.768, "We have to follow the data, not the calendar.", "LEO"),
            _hit(T2, 7.366, 10.562, "The comet won't wait for office hours, Leo.", "MAYA")]
    plan = plan_stringout(hits, SOURCES, handles=12, title="line 2")
    for base, text in edl_strings(plan):
        out[f"stringout_{base.label}.edl"] = text
    return out


def regenerate() -> None:  # pragma: no cover - a maintenance helper
    for name, text in golden_outputs().items():
        (GOLDEN / name).write_text(text)


@pytest.mark.parametrize("name", ["avid_markers_12A_T2_CamA.txt", "resolve_markers_12A_T2_CamA.edl",
                                  "stringout_23.976.edl", "stringout_29.97DF.edl"])
def test_matches_golden_line_by_line(name):
    ours = golden_outputs()[name].splitlines()
    golden = (GOLDEN / name).read_text().splitlines()
    for n, (a, b) in enumerate(zip(ours, golden), start=1):
        assert a == b, f"{name} line {n}:\n ours:   {a!r}\n golden: {b!r}"
    assert len(ours) == len(golden), name


# ------------------------------------------------------------------------------------------ shapes

TC = r"\d\d:\d\d:\d\d[:;]\d\d"
AVID_COLOURS = {"red", "green", "blue", "cyan", "magenta", "yellow", "black", "white"}
# Media Composer's "Export Markers" text: user, TC, track, colour, comment, duration (frames), tab-separated.
AVID_LINE = re.compile(rf"^(?P<user>[^\t]+)\t(?P<tc>{TC})\t(?P<track>[VA]\d+)\t(?P<colour>[a-z]+)\t"
                       rf"(?P<comment>[^\t]*)\t(?P<dur>\d+)$")
# Resolve's "Export > Timeline Markers to EDL": a one-frame event (source = record), then the note,
# colour, name and duration, then a blank line.
RESOLVE_EVENT = re.compile(rf"^(?P<n>\d{{3}})  001      V     C        (?P<a>{TC}) (?P<b>{TC}) (?P<c>{TC}) (?P<d>{TC})  $")
RESOLVE_NOTE = re.compile(r"^(?P<note>.*) \|C:ResolveColor(?P<colour>[A-Z][a-z]+) \|M:(?P<name>.*) \|D:(?P<dur>\d+)$")
RESOLVE_COLOURS = {"Blue", "Cyan", "Green", "Yellow", "Red", "Pink", "Purple", "Fuchsia", "Rose", "Lavender",
                   "Sky", "Mint", "Lemon", "Sand", "Cocoa", "Cream"}


def test_avid_marker_list_has_media_composers_shape():
    text = golden_outputs()["avid_markers_12A_T2_CamA.txt"]
    assert text.endswith("\n") and "\r" not in text
    rows = text.splitlines()
    assert len(rows) == len(t2_lines())
    for row, hit in zip(rows, sorted(t2_lines(), key=lambda h: h.start)):
        m = AVID_LINE.match(row)
        assert m, row
        assert m["tc"] == hit.tc_in and m["track"] == "V1" and m["colour"] in AVID_COLOURS
        assert int(m["dur"]) >= 1
        assert m["comment"] == (f"{hit.speaker}: " if hit.speaker else "") + hit.text.replace("|", "/")
    assert rows[0].split("\t")[1] == "01:00:59;25"     # DF, before the dropped minute ...
    assert rows[1].split("\t")[1] == "01:01:00;21"     # ... and after it (frame 29)


def test_resolve_marker_edl_has_resolves_shape():
    lines = golden_outputs()["resolve_markers_12A_T2_CamA.edl"].splitlines()
    assert lines[0] == "TITLE: 12A_T2_CamA" and lines[1] == "FCM: DROP FRAME" and lines[2] == ""
    body = lines[3:]
    assert len(body) == 3 * len(t2_lines())
    for i, hit in enumerate(sorted(t2_lines(), key=lambda h: h.start)):
        ev, note, blank = body[3 * i: 3 * i + 3]
        m = RESOLVE_EVENT.match(ev)
        assert m, ev
        assert int(m["n"]) == i + 1 and m["a"] == m["c"] == hit.tc_in and m["b"] == m["d"]
        assert Clock.from_start_tc(T2.start_tc, T2.rate).start_frame is not None
        n = RESOLVE_NOTE.match(note)
        assert n, note
        assert n["colour"] in RESOLVE_COLOURS and int(n["dur"]) >= 1
        assert n["name"] == (f"{hit.speaker}: " if hit.speaker else "") + hit.text.replace("|", "/")
        assert "|" not in n["name"]
        assert blank == ""


def test_stringout_edl_has_cmx_shape():
    text = golden_outputs()["stringout_29.97DF.edl"]
    lines = text.splitlines()
    assert lines[:3] == ["TITLE: line 2 (29.97DF)", "FCM: DROP FRAME", ""]
    events = [x for x in lines if re.match(r"^\d{3}  ", x)]
    assert len(events) == 2
    for ev in events:
        assert re.match(rf"^\d{{3}}  \S{{1,8}}\s+B     C        {TC} {TC} {TC} {TC}$", ev), ev
        assert ev[:3].isdigit() and ev[5:13].rstrip() == "12AT2CmA"
    assert "* FROM CLIP NAME:  12A_T2_CamA" in lines
    wt = golden_outputs()["stringout_23.976.edl"]
    assert re.search(r"^002  12AWT1   A     C  ", wt, re.M)   # a sound-only take is an audio event
