"""Keyframe choice per shot during the single decoding pass (no model needed)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from indexer.picture.keyframes import DETECTOR_LAG, KeyframePolicy, KeyframeSink, plan_shot, shot_of
from indexer.records import Shot
from indexer.shots import shots_from_cuts

RATE = Fraction(24000, 1001)
IMG = np.zeros((2, 2, 3), dtype=np.uint8)


class LaggingDetector:
    """Stands in for ShotDetector: each cut appears in ``cuts`` ``lag`` frames after it happened."""

    def __init__(self, cuts: list[int], lag: int):
        self.pending = sorted(cuts)
        self.lag = lag
        self.cuts: list[int] = []

    def frame_size(self, w, h):
        return w, h

    def feed(self, index: int, image) -> None:
        while self.pending and self.pending[0] + self.lag <= index:
            self.cuts.append(self.pending.pop(0))


def run_pass(total: int, sinks, wants_log: list | None = None) -> None:
    """What indexer.media.decode does for the picture: each frame to each sink, `wants` first."""
    for k in range(total):
        for s in sinks:
            w = getattr(s, "wants", None)
            if w is not None and not w(k):
                continue
            if wants_log is not None and isinstance(s, KeyframeSink):
                wants_log.append(k)
            s.feed(k, IMG)


def test_plan_shot_short_long_and_margins():
    policy = KeyframePolicy(margin=0.5, every=5.0, min_gap=1.0)
    m = round(float(RATE) * 0.5)
    assert plan_shot(100, 139, RATE, policy) == {119: "middle"}      # 1.7 s: under two gaps, the middle only
    assert plan_shot(5, 5, RATE, policy) == {5: "middle"}            # a one-frame shot: that frame
    two = plan_shot(0, 59, RATE, policy)                             # 2.5 s: start and end, 1.5 s apart
    assert two == {m: "start", 59 - m: "end"}
    three = plan_shot(0, 95, RATE, policy)                           # 4 s: start, middle, end
    assert list(three.values()) == ["start", "middle", "end"] and three[m] == "start" and three[95 - m] == "end"
    long = plan_shot(0, 60 * 24 - 1, RATE, policy)                   # one minute
    assert long[m] == "start" and long[60 * 24 - 1 - m] == "end"
    every = [f for f, r in long.items() if r == "every"]
    assert len(every) == 11 and all(b - a == round(float(RATE) * 5) for a, b in zip(every, every[1:]))
    assert "middle" not in long.values()                            # a periodic frame already sits at the middle
    for first, last in ((0, 30), (10, 200), (0, 5000)):
        frames = sorted(plan_shot(first, last, RATE, policy))
        assert all(first <= f <= last for f in frames)
        assert all(b - a >= round(float(RATE) * 1.0) for a, b in zip(frames, frames[1:]))


def test_known_shots_convert_only_the_planned_frames():
    shots = [Shot(0, 0, 99), Shot(1, 100, 399), Shot(2, 400, 449)]
    sink = KeyframeSink(RATE, shots=shots, batch=1000)
    asked: list[int] = []
    run_pass(450, [sink], asked)
    out = sink.finish(shots, 450)
    planned = {}
    for s in shots:
        planned.update(plan_shot(s.first_frame, s.last_frame, RATE, sink.policy))
    assert asked == sorted(planned)
    assert [k.frame for k in out] == sorted(planned)
    assert all(k.shot == shot_of([0, 100, 400], k.frame) for k in out)
    assert sink.converted == len(planned)


@pytest.mark.parametrize("lag", [0, 2, DETECTOR_LAG])
def test_streaming_matches_the_plan(lag):
    cuts = [200, 290, 1500, 1530]                            # includes a shot of 30 frames
    total = 2000
    det = LaggingDetector(cuts, lag)
    sink = KeyframeSink(RATE, detector=det, batch=1000)
    asked: list[int] = []
    run_pass(total, [det, sink], asked)
    shots = shots_from_cuts(det.cuts + det.pending, total)
    out = sink.finish(shots, total)
    grid = sink._grid
    assert sink.converted < total / 4                         # only a sparse grid is converted
    for s in shots:
        plan = plan_shot(s.first_frame, s.last_frame, RATE, sink.policy)
        got = {k.frame: k.reason for k in out if k.shot == s.index}
        assert got, f"no keyframe for shot {s.index}"
        assert all(s.first_frame <= f <= s.last_frame for f in got)
        for f, why in plan.items():
            if why == "every":
                assert got.get(f) == "every"                  # periodic frames are exact
            elif why == "start" and s.last_frame - s.first_frame > 4 * 12:
                assert got.get(f) == "start"                  # start = cut + margin, exact
            elif why == "middle" and len(plan) == 1:
                assert len(got) == 1 and abs(next(iter(got)) - f) <= grid // 2 + 1
        ends = [f for f, why in got.items() if why == "end"]
        want_end = [f for f, why in plan.items() if why == "end"]
        if ends and want_end:
            assert abs(ends[0] - want_end[0]) <= grid
    assert sorted(k.frame for k in out) == [k.frame for k in out]


def test_late_cut_from_post_processing_splits_the_open_shot():
    det = LaggingDetector([300], 2)
    sink = KeyframeSink(RATE, detector=det, batch=1000)
    run_pass(600, [det, sink])
    shots = shots_from_cuts([300, 550], 600)                  # 550 only known after the pass
    out = sink.finish(shots, 600)
    assert {k.shot for k in out} == {0, 1, 2}
    assert all(shots[k.shot].first_frame <= k.frame <= shots[k.shot].last_frame for k in out)


def test_memory_stays_bounded_on_an_hour_long_take():
    total = 60 * 60 * 24                                      # one hour at 24 fps, one shot
    det = LaggingDetector([], 2)
    handed: list[int] = []
    peak = {"buffer": 0, "ready": 0}

    def on_frames(batch):
        handed.extend(k.frame for k in batch)
        for k in batch:
            k.image = None

    sink = KeyframeSink(RATE, detector=det, on_frames=on_frames, batch=16)
    for k in range(total):
        if sink.wants(k):
            sink.feed(k, IMG)
            peak["buffer"] = max(peak["buffer"], len(sink._buffer))
            peak["ready"] = max(peak["ready"], len(sink.ready))
    rest = sink.finish([Shot(0, 0, total - 1)], total)
    frames = handed + [k.frame for k in rest]
    assert peak["buffer"] <= sink.policy.max_buffered + 1
    assert peak["ready"] < 16
    assert len(handed) > 600                                   # handed on while the pass ran
    every = round(float(RATE) * 5)
    assert abs(len(frames) - total / every) < 5
    assert len(set(frames)) == len(frames)
    assert sink.converted < total / 5
