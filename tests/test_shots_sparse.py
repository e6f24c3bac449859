"""Intra-only picture (ProRes, DNx, MJPEG) is decoded sparsely for shot detection: one frame in a few,
more where the picture changes, and every frame around a possible cut. The cuts, frame counts and keyframes must be exactly those of a full decode,
on real footage (Popeye: black-and-white animation with many cuts; Tears of Steel: live action with a
hard cut) re-encoded with intra-only codecs by PyAV, and on a 1080p ProRes 422 HQ camera original made by
scripts/make_camera_originals.py."""

from __future__ import annotations

import importlib.util
import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.media import decode, probe
from indexer.picture.keyframes import KeyframePolicy, KeyframeSink
from indexer.shots import ShotDetector

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
POPEYE = EVAL / "film" / "popeye_showorder" / "popeye_vob_T02-3.mkv"
TOS = EVAL / "film" / "tears_of_steel" / "tos_opencast_speech_to_text_test.mp4"


def _intra_copy(src: Path, dest: Path, codec: str, seconds: float | None = None) -> Path:
    import av

    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate
        vout = out.add_stream(codec, rate=rate)
        vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
        vout.pix_fmt = "yuvj422p" if codec == "mjpeg" else "yuv422p10le"
        for n, f in enumerate(inp.decode(vin)):
            if seconds is not None and n >= seconds * rate:
                break
            f = f.reformat(format=vout.pix_fmt)
            f.pts, f.time_base = n, Fraction(1) / rate
            for pk in vout.encode(f):
                out.mux(pk)
        for pk in vout.encode(None):
            out.mux(pk)
    return dest


def _run(path: Path, monkeypatch, *, full: bool, keyframes: bool = False):
    if full:
        monkeypatch.setenv("DAILIES_FULL_DECODE", "1")
    else:
        monkeypatch.delenv("DAILIES_FULL_DECODE", raising=False)
    info = probe(str(path))
    det = ShotDetector(info.rate)
    sinks = [det]
    kf = None
    if keyframes:
        kf = KeyframeSink(info.rate, frame_size=lambda w, h: (64, 36), policy=KeyframePolicy(), detector=det)
        sinks.append(kf)
    d = decode(info, audio=False, sinks=sinks)
    shots = det.finish(d.frames)
    picked = sorted(k.frame for k in kf.finish(shots, d.frames)) if kf is not None else None
    return d, [s.first_frame for s in shots], picked


@pytest.fixture(scope="module")
def intra(tmp_path_factory):
    for p in (POPEYE, TOS):
        if not p.exists():
            pytest.fail(f"{p} is missing: the evaluation media in ../shared/eval are needed")
    folder = tmp_path_factory.mktemp("intra")
    return {
        "popeye_mjpeg": _intra_copy(POPEYE, folder / "popeye.mov", "mjpeg", seconds=25),
        "tos_prores": _intra_copy(TOS, folder / "tos.mov", "prores_ks"),
    }


# The share of frames the shot detector alone decodes (measured: Popeye 390 of 750, Tears of Steel 40 of 204;
# the stretch-by-stretch design before decoded 560 and 66).
DECODED_AT_MOST = {"popeye_mjpeg": 0.6, "tos_prores": 0.25}


@pytest.mark.parametrize("name", ["popeye_mjpeg", "tos_prores"])
def test_sparse_decode_finds_exactly_the_cuts_of_a_full_decode(intra, name, monkeypatch):
    full, full_cuts, full_kf = _run(intra[name], monkeypatch, full=True, keyframes=True)
    sparse, cuts, kf = _run(intra[name], monkeypatch, full=False, keyframes=True)
    assert full_cuts[1:], "the clip has cuts"
    assert cuts == full_cuts
    assert sparse.frames == full.frames
    assert kf == full_kf                      # the keyframe picker sees the same cuts in the same order
    assert full.pictures_decoded == full.frames
    assert sparse.pictures_decoded < 0.9 * full.frames, (sparse.pictures_decoded, full.frames)
    shots_only, cuts, _ = _run(intra[name], monkeypatch, full=False)
    assert cuts == full_cuts
    assert shots_only.pictures_decoded <= DECODED_AT_MOST[name] * full.frames, shots_only.pictures_decoded


def test_long_gop_picture_is_decoded_whole(monkeypatch):
    """H.264 is not intra-only: nothing is skipped."""
    d, cuts, _ = _run(TOS, monkeypatch, full=False)
    assert d.pictures_decoded == d.frames == 204
    assert len(cuts) == 2


@pytest.mark.slow
def test_prores_camera_original_cuts_to_the_frame(tmp_path, monkeypatch):
    """A 1080p ProRes 422 HQ take of real footage cut together at known frames: every known cut is found
    at its exact frame, the sparse decode equals the full one, and most frames are never decoded."""
    spec = importlib.util.spec_from_file_location("make_camera_originals", ROOT / "scripts" / "make_camera_originals.py")
    mco = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mco)
    record = mco.make("prores", tmp_path, 16.0)
    path = tmp_path / record["file"]
    assert json.loads((tmp_path / f".{record['file']}.json").read_text()) == record
    full, full_cuts, _ = _run(path, monkeypatch, full=True)
    sparse, cuts, _ = _run(path, monkeypatch, full=False)
    assert cuts == full_cuts
    assert set(record["segment_cuts"]) <= set(cuts), (record["segment_cuts"], cuts)
    assert sparse.frames == full.frames == record["frames"]
    assert sparse.pictures_decoded < full.pictures_decoded


def test_hardware_decoding_falls_back_to_software_with_the_same_cuts(intra, monkeypatch):
    """--hw-decode asks for a hardware decoder for long-GOP picture. Where the device cannot be opened (no GPU
    here) the file is decoded in software with the same frames and cuts, and the take says which decoder ran;
    intra-only picture keeps the sparse software path; an unknown kind is one clear sentence."""
    from indexer import media
    from indexer.errors import UsageError

    soft, soft_cuts, _ = _run(TOS, monkeypatch, full=False)
    assert soft.picture_decoder == "software"
    info = probe(str(TOS))
    det = ShotDetector(info.rate)
    hw = decode(info, audio=False, sink=det, hw_decode="cuda" if "cuda" in media.hw_decode_types() else "auto")
    assert [s.first_frame for s in det.finish(hw.frames)] == soft_cuts
    assert hw.frames == soft.frames == 204
    assert hw.picture_decoder in ("software", "cuda")
    info = probe(str(intra["tos_prores"]))
    det = ShotDetector(info.rate)
    d = decode(info, audio=False, sink=det, hw_decode="auto")
    assert d.picture_decoder == "software" and d.pictures_decoded < d.frames
    with pytest.raises(UsageError, match="Hardware decoding 'quantum' is not available here"):
        decode(info, audio=False, sink=ShotDetector(info.rate), hw_decode="quantum")


def _generated_intra(dest: Path, cuts: list[int], frames: int, colours: list[tuple[int, int, int]],
                     flicker: int) -> Path:
    """A small MJPEG take: flat shots of the given colours (a new one at each cut) whose every other frame is
    ``flicker`` brighter: gaps between samples an even number of frames apart do not change, while neighbouring
    frames do, so the detector's window around a cut differs between real frames and repeated ones."""
    import av
    import numpy as np

    rate = Fraction(24)
    with av.open(str(dest), "w") as out:
        vout = out.add_stream("mjpeg", rate=rate)
        vout.width, vout.height, vout.pix_fmt = 64, 36, "yuvj422p"
        vout.options = {"qscale": "2"}
        shot = 0
        for n in range(frames):
            while shot < len(cuts) and n >= cuts[shot]:
                shot += 1
            img = np.empty((36, 64, 3), dtype=np.int16)
            img[:] = colours[shot % len(colours)]
            img += flicker * (n % 2)
            f = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24").reformat(
                format="yuvj422p")
            f.pts, f.time_base = n, 1 / rate
            for pk in vout.encode(f):
                out.mux(pk)
        for pk in vout.encode(None):
            out.mux(pk)
    return dest


@given(data=st.data())
@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_sparse_decode_equals_a_full_decode_on_generated_takes(tmp_path, monkeypatch, data):
    """The sparse decode's bookkeeping (samples, halving, margins, margins past a sample, the stream's end) on
    takes of every length from 1 frame, with cuts anywhere at least a shot apart (12 frames at 24 fps, the
    detector's shortest shot) and flicker that makes the detector's window around a cut matter: the same frame
    count and cuts as a full decode. (It fails with a margin of 1 frame, or with frames fed one sample behind
    instead of two; the real-footage tests above pass with either.)"""
    frames = data.draw(st.integers(1, 90), label="frames")
    cuts, at = [], 0
    while True:
        at += data.draw(st.integers(12, 40), label="shot")
        if at >= frames or len(cuts) >= 5:
            break
        cuts.append(at)
    grey = st.integers(40, 160)
    colours = data.draw(st.lists(st.tuples(grey, grey, grey), min_size=len(cuts) + 1, max_size=len(cuts) + 1),
                        label="colours")
    flicker = data.draw(st.integers(0, 40), label="flicker")
    path = _generated_intra(tmp_path / f"gen_{frames}_{'_'.join(map(str, cuts))}.mov", cuts, frames, colours, flicker)
    full, full_cuts, _ = _run(path, monkeypatch, full=True)
    sparse, sparse_cuts, _ = _run(path, monkeypatch, full=False)
    assert sparse.frames == full.frames == frames
    assert sparse_cuts == full_cuts, (cuts, sparse.pictures_decoded)
