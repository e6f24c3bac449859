"""Keyframes per shot, chosen while the one decoding pass runs.

Policy (:class:`KeyframePolicy`): for every shot, the frame ``margin`` after its first frame, its middle
frame and the frame ``margin`` before its last frame, plus one frame every ``every`` seconds in long shots;
frames of a shot stay ``min_gap`` apart (a shot under two gaps long gets its middle frame only).
The margins keep dissolves, flash frames and motion blur at the cut out of the picture index.

:class:`KeyframeSink` is a :class:`indexer.media.FrameSink`. It works in one of two ways:

* **Shots known in advance** (``shots=...``: an earlier run found them, or ``--visual-only``): the wanted
  frames are computed up front and ``wants()`` lets only those be converted. Exact.
* **Shots found in the same pass** (``detector=`` a :class:`indexer.shots.ShotDetector` placed *before*
  this sink in ``decode(sinks=[detector, keyframes])``): the sink reads ``detector.cuts`` as the cuts are
  found (PySceneDetect reports a cut a few frames after it happens). The start frame (cut + margin) and
  the periodic frames are exact; the middle and end frames come from candidates kept on a sparse grid
  (``grid`` seconds apart, only those frames are converted), so they are within half a grid step of the
  ideal frame. Candidates of the open shot are thinned as the shot grows, and frames that can no longer
  change are handed on (``on_frames``), so memory stays bounded on hour-long files.

Neither way decodes anything twice: the sink rides the pass that also feeds audio and shot detection.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Protocol

import numpy as np

from ..records import Shot

# PySceneDetect reports a cut at most this many frames after it happened (adaptive: 2, content: 0);
# frames older than this (plus the end margin) can no longer become the end of the open shot.
DETECTOR_LAG = 4


@dataclass(frozen=True)
class KeyframePolicy:
    """Which frames of a shot are embedded (all in seconds; recorded in the catalog with each take)."""

    margin: float = 0.5       # away from the cut at both ends (shrinks to a quarter of a short shot)
    every: float = 5.0        # long shots: one more frame every this many seconds
    grid: float = 0.25        # candidate spacing for middle/end while shots are still being found
    max_buffered: int = 48    # candidate pictures held for the open shot before thinning
    min_gap: float = 1.0      # frames of one shot at least this far apart (short shots: the middle only)

    def key(self) -> str:
        return f"m{self.margin}|e{self.every}|gap{self.min_gap}|g{self.grid}"


@dataclass
class Keyframe:
    frame: int                 # frame number in the file (0 = first picture frame)
    image: np.ndarray | None   # H x W x 3 uint8 (RGB), None once handed on and released
    reason: str                # start | middle | end | every
    shot: int = -1             # shot index, set by finish()


class CutSource(Protocol):
    cuts: list[int]


def plan_shot(first: int, last: int, rate: Fraction, policy: KeyframePolicy) -> dict[int, str]:
    """The frames to embed for the shot [first, last] (inclusive) -> why each was chosen.

    start = first + margin, end = last - margin (margins shrink to a quarter of a short shot), the middle,
    and in long shots one frame every ``every`` seconds after the start. Frames of one shot are kept at
    least ``min_gap`` seconds apart, so a shot shorter than two gaps gets its middle frame only.
    """
    n = last - first + 1
    if n <= 0:
        return {}
    fps = float(rate)
    middle = first + (n - 1) // 2
    gap = max(1, int(round(fps * policy.min_gap)))
    if n < 2 * gap:
        return {middle: "middle"}
    m = min(int(round(fps * policy.margin)), (n - 1) // 4)
    start, end = first + m, last - m
    out: dict[int, str] = {start: "start", end: "end"}
    every = max(1, int(round(fps * policy.every))) if policy.every > 0 else 0
    if every:
        p = start + every
        while p < end - max(every // 2, gap):
            out[p] = "every"
            p += every
    # The middle, unless a chosen frame is already close to it.
    near = max(gap, every // 4) if len(out) > 2 else gap
    if min(abs(f - middle) for f in out) >= near:
        out[middle] = "middle"
    return dict(sorted(out.items()))


class KeyframeSink:
    """Picks keyframes per shot during :func:`indexer.media.decode` (see the module docstring).

    ``frame_size`` is a callable (source width, height) -> (width, height) the frames are wanted at
    (the CLIP embedder's :meth:`frame_size`: short side = the model's input size). ``on_frames`` gets
    lists of at least ``batch`` final keyframes as soon as they are decided (e.g. to embed them and drop
    the pictures); whatever is left is returned by :meth:`finish`.
    """

    pixel_format = "rgb24"

    def __init__(self, rate: Fraction, *, frame_size: Callable[[int, int], tuple[int, int]] | None = None,
                 policy: KeyframePolicy | None = None, detector: CutSource | None = None,
                 shots: list[Shot] | None = None,
                 on_frames: Callable[[list[Keyframe]], None] | None = None, batch: int = 32):
        self.rate = Fraction(rate)
        self.policy = policy or KeyframePolicy()
        self._size_fn = frame_size
        self.detector = detector
        self.on_frames = on_frames
        self.batch = max(1, batch)
        self.ready: list[Keyframe] = []       # decided, not yet handed on
        self.decided: list[int] = []          # frame numbers of every keyframe decided so far
        self.converted = 0                    # pictures converted for this sink (cost)
        self.last_index = -1
        self._margin = max(0, int(round(float(self.rate) * self.policy.margin)))
        self._every = max(1, int(round(float(self.rate) * self.policy.every))) if self.policy.every > 0 else 0
        self._grid = max(1, int(round(float(self.rate) * self.policy.grid)))
        self._planned: dict[int, str] | None = None
        if shots is not None:
            self._planned = {}
            for s in shots:
                self._planned.update(plan_shot(s.first_frame, s.last_frame, self.rate, self.policy))
        # Streaming state: the open shot and its candidate pictures.
        self._cuts_seen = 0
        self._starts: list[int] = [0]
        self._buffer: list[Keyframe] = []     # candidates of the open shot, in frame order
        self._pinned_out: list[int] = []      # frames of the open shot already handed on

    # ------------------------------------------------------------------ FrameSink protocol
    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        if self._size_fn is not None:
            return self._size_fn(width, height)
        return width, height

    def wants(self, index: int) -> bool:
        if self._planned is not None:
            return index in self._planned
        self._sync_cuts(index)
        start = self._starts[-1]
        rel = index - start
        if rel == self._margin or index % self._grid == 0:
            return True
        return bool(self._every) and rel > self._margin and (rel - self._margin) % self._every == 0

    def feed(self, index: int, image: np.ndarray) -> None:
        self.converted += 1
        self.last_index = max(self.last_index, index)
        if self._planned is not None:
            reason = self._planned.get(index)
            if reason is not None:
                self._decide(Keyframe(index, image, reason))
            return
        self._sync_cuts(index)
        start = self._starts[-1]
        rel = index - start
        if rel == self._margin:
            reason = "start"
        elif self._every and rel > self._margin and (rel - self._margin) % self._every == 0:
            reason = "every"
        else:
            reason = "candidate"
        self._buffer.append(Keyframe(index, image, reason))
        if len(self._buffer) > self.policy.max_buffered:
            self._compact(index)

    # ------------------------------------------------------------------ the end of the pass
    def finish(self, shots: list[Shot], total_frames: int | None = None) -> list[Keyframe]:
        """Close the pass with the final shots (after ``detector.finish()``); returns the keyframes not
        yet handed to ``on_frames``, each with its shot index. ``shots`` may be empty (no picture)."""
        if self._planned is None:
            total = total_frames if total_frames is not None else self.last_index + 1
            for s in shots:
                if s.first_frame > self._starts[-1]:
                    self._close_shot(s.first_frame)
            if total > self._starts[-1]:
                self._close_shot(total)
            self._buffer = []
        firsts = [s.first_frame for s in shots]
        for kf in self.ready:
            kf.shot = shot_of(firsts, kf.frame)
        out, self.ready = self.ready, []
        return out

    # ------------------------------------------------------------------ internals
    def _decide(self, kf: Keyframe) -> None:
        self.decided.append(kf.frame)
        self.ready.append(kf)
        if self.on_frames is not None and len(self.ready) >= self.batch:
            out, self.ready = self.ready, []
            self.on_frames(out)

    def _sync_cuts(self, index: int) -> None:
        cuts = self.detector.cuts if self.detector is not None else ()
        while self._cuts_seen < len(cuts):
            c = int(cuts[self._cuts_seen])
            self._cuts_seen += 1
            if c > self._starts[-1]:
                self._close_shot(c)

    def _close_shot(self, cut: int) -> None:
        """The open shot ends at ``cut - 1``: choose its keyframes from the candidates."""
        first = self._starts[-1]
        last = cut - 1
        mine = [k for k in self._buffer if k.frame < cut]
        self._buffer = [k for k in self._buffer if k.frame >= cut]
        wanted = plan_shot(first, last, self.rate, self.policy)
        chosen: dict[int, Keyframe] = {}
        taken = set(self._pinned_out)
        for target, reason in wanted.items():
            if target in taken:
                continue
            pool = [k for k in mine if k.frame not in chosen]
            if not pool:
                break
            best = min(pool, key=lambda k: (abs(k.frame - target), k.frame))
            # A periodic target is either exactly there or already handed on; do not approximate it.
            if reason == "every" and best.frame != target:
                continue
            if reason in ("middle", "end") and any(abs(t - target) <= self._grid // 2 for t in taken):
                continue
            chosen[best.frame] = Keyframe(best.frame, best.image, reason)
            taken.add(best.frame)
        for frame in sorted(chosen):
            self._decide(chosen[frame])
        self._starts.append(cut)
        self._pinned_out = []

    def _compact(self, index: int) -> None:
        """Bound the open shot's buffer: hand on pinned frames that are final, drop candidates that can
        no longer be the middle or the end, and thin what remains."""
        first = self._starts[-1]
        safe = index - self._margin - DETECTOR_LAG - 1      # at or before this: not near any future cut
        middle_floor = first + (index - first) // 2 - self._grid   # the middle only moves later
        keep: list[Keyframe] = []
        for k in self._buffer:
            if k.reason in ("start", "every") and k.frame <= safe:
                self._pinned_out.append(k.frame)
                self._decide(k)
            elif k.reason == "candidate" and k.frame < middle_floor:
                continue
            else:
                keep.append(k)
        if len(keep) > self.policy.max_buffered:
            tail_from = index - self._margin - DETECTOR_LAG - 2 * self._grid
            older = [k for k in keep if k.frame < tail_from and k.reason == "candidate"]
            drop = {k.frame for k in older[1::2]}
            keep = [k for k in keep if k.frame not in drop]
        self._buffer = keep


def shot_of(firsts: list[int], frame: int) -> int:
    """Index of the shot containing ``frame`` given the shots' first frames (sorted)."""
    if not firsts:
        return 0
    return max(0, bisect.bisect_right(firsts, frame) - 1)
