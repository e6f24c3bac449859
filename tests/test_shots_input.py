"""The shot detector sees the pictures PySceneDetect's own pipeline would show it, so its cuts are PySceneDetect's.

PySceneDetect decodes every frame to a full-size BGR picture and shrinks it to 256 px with OpenCV's two-tap
linear filter; our decoding pass shrinks the decoded picture in libswscale instead (``indexer.shots.INTERPOLATION``).
On real film the cuts must be those of ``scenedetect.detect`` with the same detector settings, frame for frame.
The first Popeye clip is the one where libswscale's filtering BILINEAR loses a cut PySceneDetect finds (frame 1064).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.media import decode, probe
from indexer.shots import INTERPOLATION, ShotDetector

from conftest import EVAL, ROOT, need

FILMS = [EVAL / "film" / "popeye_showorder" / "popeye_vob_T00-1.mkv",
         EVAL / "film" / "tears_of_steel" / "tos_opencast_speech_to_text_test.mp4"]


def _ours(path: Path, interpolation: str | None = INTERPOLATION) -> tuple[list[int], int]:
    info = probe(str(path))
    det = ShotDetector(info.rate)
    det.interpolation = interpolation
    d = decode(info, audio=False, sink=det)
    return [s.first_frame for s in det.finish(d.frames)][1:], det.min_len


def _pyscenedetect(path: Path, min_len: int) -> list[int]:
    from scenedetect import AdaptiveDetector, detect

    return [start.frame_num for start, _end in detect(str(path), AdaptiveDetector(min_scene_len=min_len),
                                                      backend="pyav")][1:]


@pytest.mark.parametrize("film", FILMS, ids=lambda p: p.stem)
def test_cuts_are_pyscenedetects_own(film):
    path = need(film)
    ours, min_len = _ours(path)
    assert ours, "the clip has cuts"
    assert ours == _pyscenedetect(path, min_len)


def test_the_filtering_scaler_would_lose_a_cut():
    """The test above can fail: with libswscale's BILINEAR the first Popeye clip's cut at frame 1064 is lost."""
    path = need(FILMS[0])
    ours, min_len = _ours(path, "BILINEAR")
    reference = _pyscenedetect(path, min_len)
    assert 1064 in reference and 1064 not in ours


def test_fixture_takes_cuts_are_pyscenedetects_own():
    for clip in ("12A_T1_CamA.mov", "12A_T2_CamA.mov", "12A_T3_CamB.mp4"):
        path = ROOT / "fixtures" / "shoot" / clip
        ours, min_len = _ours(path)
        assert ours == _pyscenedetect(path, min_len), clip
