"""Cuts, handles, order, reels, timeline rate, output files and bad input (no index needed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from conftest import ROOT, as_other_user
from indexer.errors import DailiesError, UsageError
from indexer.export import (MARKER_FORMATS, STRINGOUT_FORMATS, TRANSCRIPT_EXT, best_per_take, order_hits,
                            pick_format, plan_stringout, reel_name, reel_names, render_markers,
                            render_stringout, timeline_base, write_files)
from indexer.export.core import Source, TimecodeBase, cut_hit, fps_label, marker_text
from indexer.records import Hit
from indexer.timecode import Clock

T1 = Source("t1", "/shoot/12A_T1_CamA.mov", "12A_T1_CamA", "12A", "1", "A", Fraction(24000, 1001), "01:00:00:00", 958)
T2 = Source("t2", "/shoot/12A_T2_CamA.mov", "12A_T2_CamA", "12A", "2", "A", Fraction(30000, 1001), "01:00:59;20", 1108)
T3 = Source("t3", "/shoot/12A_T3_CamB.mp4", "12A_T3_CamB", "12A", "3", "B", Fraction(25), "15:30:10:05", 1407)
T10 = Source("t10", "/shoot/12A_T10_CamA.mov", "12A_T10_CamA", "12A", "10", "A", Fraction(24000, 1001),
             "02:00:00:00", 500)
SOURCES = {s.take_id: s for s in (T1, T2, T3, T10)}


def hit(src: Source, start: float, end: float, text: str = "the comet won't wait", speaker: str | None = "MAYA",
        score: float = 1.0) -> Hit:
    c = Clock.from_start_tc(src.start_tc, src.rate)
    return Hit(kind="line", clip=src.path, take_id=src.take_id, name=src.name, scene=src.scene, take=src.take,
               camera=src.camera, start=start, end=end, tc_in=c.tc_in(start), tc_out=c.tc_out(end),
               rate=str(src.rate), text=text, score=score, speaker=speaker)


def test_cut_is_the_hits_tc_and_handles_clamp():
    h = hit(T1, 6.034, 9.231)
    cut = cut_hit(h, T1, handles=0)
    assert (cut.tc_in, cut.tc_out) == (h.tc_in, h.tc_out)
    cut = cut_hit(h, T1, handles=12)
    assert (cut.head, cut.tail) == (12, 12)
    assert cut.src_in == cut.first - 12 and cut.src_out == cut.end + 12
    start = cut_hit(hit(T1, 0.1, 1.0), T1, handles=12)
    assert start.head == 2 and start.src_in == 0 and start.tc_in == "01:00:00:00"
    end = cut_hit(hit(T1, 39.5, 39.957), T1, handles=12)
    assert end.tail == 0 and end.src_out == T1.frames
    with pytest.raises(UsageError):
        cut_hit(h, T1, handles=-1)


def test_cut_past_the_media_end_is_cut_at_the_end():
    h = hit(T1, 39.9, 41.0)               # audio a little longer than the picture
    cut = cut_hit(h, T1, handles=12)
    assert cut.src_out == T1.frames and cut.notes


def test_drop_frame_cut_across_the_minute():
    h = hit(T2, 0.2, 0.7)                 # frames 5..20: 01:00:59;25 .. across 01:01:00;02
    assert h.tc_in == "01:00:59;25"
    cut = cut_hit(h, T2, handles=12)
    assert cut.tc_in == "01:00:59;20" and cut.head == 5
    assert h.tc_out == "01:01:00;13" and cut.tc_out == "01:01:00;25"


def test_order_rank_and_scene_and_best_per_take():
    ranked = [hit(T3, 20.9, 24.1, score=0.99), hit(T10, 1, 2, score=0.95), hit(T3, 5.9, 9.1, score=0.9),
              hit(T1, 6.0, 9.2, score=0.8), hit(T2, 7.3, 10.5, score=0.7)]
    assert [h.name for h in order_hits(ranked, "rank")] == [h.name for h in ranked]
    by_scene = order_hits(ranked, "scene")
    assert [h.take for h in by_scene] == ["1", "2", "3", "3", "10"]       # 10 after 3, not after 1
    assert by_scene[2].start < by_scene[3].start
    best = best_per_take(ranked)
    assert [h.name for h in best] == ["12A_T3_CamB", "12A_T10_CamA", "12A_T1_CamA", "12A_T2_CamA"]
    assert best[0].score == 0.99
    plan = plan_stringout(ranked, SOURCES, one_per_take=True, order="scene")
    assert [c.source.name for c in plan.cuts] == ["12A_T1_CamA", "12A_T2_CamA", "12A_T3_CamB", "12A_T10_CamA"]
    with pytest.raises(UsageError):
        order_hits(ranked, "alphabetical")


def test_timeline_rate_defaults_to_most_common_source_rate():
    cuts = plan_stringout([hit(T2, 1, 2), hit(T1, 1, 2), hit(T10, 1, 2), hit(T3, 1, 2)], SOURCES).cuts
    assert timeline_base(cuts) == TimecodeBase(Fraction(24000, 1001), False)
    assert timeline_base(cuts[:1]) == TimecodeBase(Fraction(30000, 1001), True)
    assert timeline_base(cuts, "29.97") == TimecodeBase(Fraction(30000, 1001), True)
    assert timeline_base(cuts, "25").rate == 25
    assert timeline_base(cuts, "30000/1001").label == "29.97DF"
    assert TimecodeBase(Fraction(30000, 1001), False).label == "29.97NDF"
    assert fps_label(Fraction(24000, 1001)) == "23.976" and fps_label(Fraction(30000, 1001)) == "29.97"


def test_reel_names_fit_cmx_and_stay_unique():
    assert reel_name("12A_T1_CamA") == "12AT1CmA"
    assert reel_name("A001C003") == "A001C003"
    assert reel_name("A001C003_200303_F701") != reel_name("A001C003_200303_F702")
    assert len(reel_name("A001C003_200303_F701")) == 8
    assert reel_name("12A_T1_CamA", None) == "12A_T1_CamA"
    assert reel_name("a b", 0) == "a_b"
    a = Source("a", "/x/A001C001_x.mov", "A001C001_x", None, None, None, Fraction(25), "00:00:00:00", 10)
    b = Source("b", "/y/A001C001_y.mov", "A001C001_y", None, None, None, Fraction(25), "00:00:00:00", 10)
    reels = reel_names([a, b])
    assert len(set(reels.values())) == 2 and all(len(r) <= 8 for r in reels.values())


def test_marker_text():
    assert marker_text(hit(T1, 1, 2, "It's | almost\tthree", "LEO")) == "LEO: It's / almost three"
    assert marker_text(hit(T1, 1, 2, "no speaker", None)) == "no speaker"


# ------------------------------------------------------------------------------------------ bad input

def test_format_from_extension_or_flag():
    assert pick_format(Path("a.edl"), None, STRINGOUT_FORMATS, "string-out") == "edl"
    assert pick_format(Path("a.XML"), None, STRINGOUT_FORMATS, "string-out") == "xml"
    assert pick_format(Path("a.fcpxml"), None, STRINGOUT_FORMATS, "string-out") == "fcpxml"
    assert pick_format(Path("a.out"), "otio", STRINGOUT_FORMATS, "string-out") == "otio"
    assert pick_format(Path("m.txt"), None, MARKER_FORMATS, "marker") == "avid"
    assert pick_format(Path("m.edl"), None, MARKER_FORMATS, "marker") == "resolve"
    assert pick_format(Path("m"), "txt", MARKER_FORMATS, "marker") == "avid"
    assert pick_format(None, "vtt", TRANSCRIPT_EXT, "transcript") == "vtt"
    with pytest.raises(UsageError, match="Unknown string-out format '.doc'"):
        pick_format(Path("a.doc"), None, STRINGOUT_FORMATS, "string-out")
    with pytest.raises(UsageError, match="Unknown string-out format 'aaf'"):
        pick_format(Path("a.edl"), "aaf", STRINGOUT_FORMATS, "string-out")
    with pytest.raises(UsageError, match="no extension"):
        pick_format(Path("a"), None, STRINGOUT_FORMATS, "string-out")


def test_empty_result_set_writes_nothing(tmp_path):
    with pytest.raises(DailiesError, match="no file was written"):
        plan_stringout([], SOURCES)
    with pytest.raises(DailiesError, match="no file was written"):
        render_markers([], SOURCES, "avid", tmp_path / "m.txt")
    assert list(tmp_path.iterdir()) == []


def test_hit_of_a_take_not_in_the_index():
    stray = hit(T1, 1, 2)
    stray.take_id = "gone"
    with pytest.raises(DailiesError, match="not in the index"):
        plan_stringout([stray], SOURCES)


def test_no_overwrite_without_force_and_unwritable_paths(tmp_path):
    plan = plan_stringout([hit(T1, 1, 2), hit(T3, 1, 2)], SOURCES)
    outputs = render_stringout(plan, "edl", tmp_path / "s.edl")
    assert sorted(p.name for p, _, _ in outputs) == ["s_23.976.edl", "s_25.edl"]
    files = [(p, t) for p, t, _ in outputs]
    write_files(files)
    with pytest.raises(DailiesError, match="already exists; pass --force"):
        write_files(files)
    write_files(files, force=True)
    with pytest.raises(DailiesError, match="does not exist"):
        write_files([(tmp_path / "missing" / "s.edl", "x")])
    with pytest.raises(DailiesError, match="is a folder"):
        write_files([(tmp_path, "x")])
    (tmp_path / "plain").write_text("a file")
    with pytest.raises(DailiesError, match="is not a folder"):
        write_files([(tmp_path / "plain" / "s.edl", "x")])
    # all or nothing: one clash stops every file
    with pytest.raises(DailiesError):
        write_files([(tmp_path / "new.edl", "x"), (outputs[0][0], "y")])
    assert not (tmp_path / "new.edl").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_a_folder_the_user_cannot_write_is_one_sentence():
    """Run as an unprivileged user (root ignores permissions): the refusal names the folder."""
    import os
    import subprocess
    import sys
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="dailies-locked-"))
    try:
        os.chmod(base, 0o755)
        locked = base / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        code = ("import sys; from pathlib import Path; from indexer.errors import DailiesError; from indexer.export import write_files\n"
                "try:\n    write_files([(Path(sys.argv[1]), 'x')])\nexcept DailiesError as e:\n    print(e.message); sys.exit(3)")
        proc = subprocess.run(as_other_user([sys.executable, "-c", code, str(locked / "s.edl")]), capture_output=True,
                              text=True, cwd=str(ROOT), env=dict(os.environ, HOME=tempfile.gettempdir()))
        assert proc.returncode == 3, proc.stderr
        assert "not writable" in proc.stdout and str(locked) in proc.stdout
        assert not list(locked.iterdir())
    finally:
        (base / "locked").chmod(0o700)
        import shutil
        shutil.rmtree(base)
