"""Neighbouring lines do not share a frame at a speaker change (issue 20: TC out of one line was one
frame after TC in of the next, where the recogniser's word edges touch)."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from conftest import EVAL, need, run_cli
from indexer.align import frame_cut
from indexer.timecode import Clock, tc_to_frames

RATES = [Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001)]


@pytest.mark.parametrize("rate", RATES)
def test_touching_lines_meet_on_a_frame_boundary(rate):
    clock = Clock(rate)
    # the sample's speaker changes, as the recogniser's words give them (end of one = start of next)
    for a_end, b_start in ((10.5, 10.5), (14.62, 14.62), (27.8, 27.8), (19.71, 19.73)):
        before = tc_to_frames(clock.tc_out(a_end), rate) - tc_to_frames(clock.tc_in(b_start), rate)
        end, start = frame_cut(a_end, b_start, rate)
        assert tc_to_frames(clock.tc_out(end), rate) == tc_to_frames(clock.tc_in(start), rate)
        assert abs(end - a_end) <= 1 / float(rate) and before in (0, 1)
    assert frame_cut(3.0, 5.0, rate) == (3.0, 5.0)              # a pause: nothing moves
    assert frame_cut(5.0, 3.0, rate) == (5.0, 3.0)              # two voices at once: the overlap stays


@pytest.mark.slow
def test_no_frame_is_shared_at_a_speaker_change_in_real_speech(tmp_path):
    wav = need(EVAL / "diarization" / "pyannote_sample" / "sample.wav")
    idx = str(tmp_path / "idx")
    run_cli("index", str(wav), "--index", idx, "--no-visual", check=True)
    lines = json.loads(run_cli("lines", "sample", "--index", idx, "--json", check=True).stdout)["lines"]
    rate = Fraction("24000/1001")
    changes = 0
    for a, b in zip(lines, lines[1:]):
        if a["local_speaker"] != b["local_speaker"] and b["start"] - a["end"] < 0.5:
            changes += 1
            if a["end"] <= b["start"]:
                assert tc_to_frames(a["tc_out"], rate) <= tc_to_frames(b["tc_in"], rate), (a, b)
    assert changes >= 3
