"""Shot boundaries with PySceneDetect's detectors, fed from our single decoding pass.

The detectors get the reduced BGR frames PySceneDetect's own pipeline would give them (256 px wide),
frame by frame, through their public ``process_frame``/``post_process`` API. PySceneDetect shrinks the
full-size BGR picture with OpenCV's two-tap linear filter (``cv2.resize``, ``INTER_LINEAR``); here
libswscale shrinks the decoded picture straight to 256 px with its two-tap filter (``FAST_BILINEAR``),
which gives nearly the same pictures without a full-size picture ever being made (see ``INTERPOLATION``).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .errors import UsageError
from .records import Shot

DETECTORS = ("adaptive", "content", "none")
# PySceneDetect's auto-downscale aims at this width; the detectors' thresholds are tuned for it.
WORK_WIDTH = 256
# Intra-only picture (ProRes, DNx ...): decode one frame in this many, and more where the picture changes.
SPARSE_STEP = 8
# How libswscale shrinks a decoded picture for the detectors. Measured against PySceneDetect's own pipeline
# (full-size BGR, then cv2.resize INTER_LINEAR) on the camera originals of scripts/make_camera_originals.py, the
# fixture shoot and the film clips of ../shared/eval, the detector's score of each frame differed from
# PySceneDetect's by 0.01-0.17 on average with FAST_BILINEAR (less than BILINEAR's on every file) against 0.02-0.34
# with BILINEAR, which filters before it shrinks: a smoother picture than the one PySceneDetect's thresholds were
# set on. On one Popeye clip BILINEAR lost a cut that PySceneDetect finds; FAST_BILINEAR found PySceneDetect's cuts
# on every file. It also costs a third to a fifth as much: 0.5 against 1.5 ms a 1080p frame, 0.5 against 2.5 ms
# a UHD one. (tests/test_shots_input.py holds it to PySceneDetect's own cuts on real film.)
INTERPOLATION = "FAST_BILINEAR"


class ShotDetector:
    """A :class:`indexer.media.FrameSink` that finds hard cuts."""

    interpolation = INTERPOLATION

    def __init__(self, rate: Fraction, method: str = "adaptive", threshold: float | None = None,
                 min_shot_seconds: float = 0.5):
        from scenedetect import AdaptiveDetector, ContentDetector
        from scenedetect.common import FrameTimecode

        if method not in ("adaptive", "content"):
            raise UsageError(f"Unknown shot detector '{method}' (use one of: {', '.join(DETECTORS)}).")
        self._tc = FrameTimecode
        self.rate = rate
        self.method = method
        min_len = max(2, int(round(float(rate) * min_shot_seconds)))
        self.min_len = min_len
        if method == "adaptive":
            kw = {"adaptive_threshold": threshold} if threshold is not None else {}
            self.detector = AdaptiveDetector(min_scene_len=min_len, **kw)
            self._cut_floor = float(self.detector.min_content_val)   # a cut scores at least this
        else:
            kw = {"threshold": threshold} if threshold is not None else {}
            self.detector = ContentDetector(min_scene_len=min_len, **kw)
            self._cut_floor = float(self.detector._threshold)
        self.cuts: list[int] = []
        self.last_index = -1

    @property
    def settings(self) -> dict:
        return {"detector": self.method, "library": "scenedetect", "version": _version(),
                "input": f"{WORK_WIDTH} px wide, libswscale {(self.interpolation or 'bilinear').lower()}"}

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        if width <= WORK_WIDTH:
            return width, height
        h = max(2, int(round(height * WORK_WIDTH / width)))
        return WORK_WIDTH, h

    @property
    def sparse_step(self) -> int:
        """Intra-only picture is decoded one frame in this many, and more where the picture changes (see
        :class:`indexer.media._SparsePicture`); shorter than the shortest shot, so two cuts a shot apart
        never fall between two samples."""
        return max(3, min(SPARSE_STEP, (2 * self.min_len) // 3))

    def compare(self, a: np.ndarray, b: np.ndarray) -> tuple[bool, bool]:
        """For pictures ``a`` and ``b`` (in the detector's own score, the mean HSV distance): whether the
        frames between them may hold a cut (a third of the smallest score a cut needs: a cut's score can
        only hide below that if the rest of the stretch changes the picture back by two thirds of the
        cut's own change), and, for neighbouring frames, whether ``b`` may be a cut (the score a cut needs)."""
        score = _hsv_distance(a, b)
        return score >= self._cut_floor / 3.0, score >= self._cut_floor

    def feed(self, index: int, image: np.ndarray) -> None:
        found = self.detector.process_frame(self._tc(index, fps=self.rate), image)
        self.cuts.extend(int(c.frame_num) for c in found)
        self.last_index = index

    def finish(self, total_frames: int | None = None) -> list[Shot]:
        """Close detection and return the shots (inclusive first/last frame)."""
        last = self.last_index if total_frames is None else total_frames - 1
        if last < 0:
            return []
        found = self.detector.post_process(self._tc(last, fps=self.rate))
        self.cuts.extend(int(c.frame_num) for c in found or [])
        return shots_from_cuts(self.cuts, last + 1)


def _hsv_distance(a: np.ndarray, b: np.ndarray) -> float:
    """PySceneDetect's content score between two BGR pictures with its default weights: the mean absolute
    difference of hue, saturation and value, averaged over the three."""
    import cv2

    per_channel = cv2.mean(cv2.absdiff(cv2.cvtColor(a, cv2.COLOR_BGR2HSV), cv2.cvtColor(b, cv2.COLOR_BGR2HSV)))
    return float(sum(per_channel[:3]) / 3.0)


def shots_from_cuts(cuts: list[int], total_frames: int) -> list[Shot]:
    """Cut frames (first frame of each new shot) -> shots covering [0, total_frames)."""
    starts = [0] + sorted({c for c in cuts if 0 < c < total_frames})
    ends = starts[1:] + [total_frames]
    return [Shot(i, s, e - 1) for i, (s, e) in enumerate(zip(starts, ends))]


def _version() -> str:
    import scenedetect

    return scenedetect.__version__
