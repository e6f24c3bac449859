"""Browser proxies: a take a browser cannot play (here ProRes with PCM sound, made from the fixture shoot's
take 1 across its first cut) gets an H.264/AAC proxy with the same rate and frame count, frame-accurate,
reused while the source is unchanged and rebuilt when it is corrupt or the source changed."""

from __future__ import annotations

import json
import os
from fractions import Fraction

import numpy as np
import pytest

from conftest import FIXTURES
from indexer.media import probe
from indexer.server import media as pmedia
from indexer.timecode import rate_str

FIRST, LAST = 225, 260            # frames of 12A_T1_CamA around its cut at frame 237
CUT = 237 - FIRST


def _make_prores(dest):
    import av

    src_path = FIXTURES / "shoot" / "12A_T1_CamA.mov"
    with av.open(str(src_path)) as src, av.open(str(dest), "w") as out:
        vin, ain = src.streams.video[0], src.streams.audio[0]
        rate = vin.average_rate
        vout = out.add_stream("prores_ks", rate=rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv422p10le"
        aout = out.add_stream("pcm_s16le", rate=48000)
        aout.layout = "stereo"
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=48000)
        t0, t1 = float(FIRST / rate), float((LAST + 1) / rate)
        n = 0
        for frame in src.decode(vin, ain):
            t = float(frame.pts * frame.time_base)
            if isinstance(frame, av.VideoFrame):
                if not t0 - 1e-6 <= t < t1 - 1e-6:
                    continue
                f = frame.reformat(format="yuv422p10le")
                f.pts, f.time_base = n, Fraction(1) / rate
                n += 1
                for p in vout.encode(f):
                    out.mux(p)
            elif t0 <= t < t1:
                frame.pts = None
                for rf in resampler.resample(frame):
                    for p in aout.encode(rf):
                        out.mux(p)
        for s in (vout, aout):
            for p in s.encode(None):
                out.mux(p)
    return dest


def _frames(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray", width=160, height=90).astype(float) for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def prores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prores")
    src = _make_prores(folder / "12A_T1_CamA_prores.mov")
    info = probe(src)
    row = {"take_id": "p0000000test", "path": str(src), "rate": rate_str(info.rate), "name": info.name,
           "info": json.dumps(info.to_json())}
    return folder / "index", src, info, row


def test_prores_gets_a_frame_accurate_h264_proxy(prores):
    import av

    index, src, info, row = prores
    assert info.video_codec == "prores"
    assert not pmedia.browser_plays(row)
    p = pmedia.playable(index, row)
    assert p.proxy and p.kind == "video" and p.path.parent == index / "proxies" and p.media_type == "video/mp4"
    assert pmedia.ensure_proxy(p, row) is True
    with av.open(str(p.path)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "h264" and v.average_rate == info.rate
        assert c.streams.audio[0].codec_context.name == "aac"
    proxy, source = _frames(p.path), _frames(src)
    assert len(proxy) == len(source) == LAST - FIRST + 1
    # Frame-accurate: each side of the cut is the same picture in both.
    jump = np.abs(source[CUT] - source[CUT - 1]).mean()
    assert jump > 10
    for i in (0, CUT - 1, CUT, len(source) - 1):
        assert np.abs(proxy[i] - source[i]).mean() < jump / 4, i
    # and its sound in sync with the source's, from the first sample (it was 21 ms late: the AAC priming)
    assert _offset_ms(p.path, src) == 0.0


def _offset_ms(proxy, source) -> float:
    """How late the proxy's sound is against the source's (ms, 0.125 ms steps at 16 kHz, within +-25 ms)."""
    from indexer.media import decode

    got, want = decode(probe(proxy), audio=True).audio, decode(probe(source), audio=True).audio
    n = min(len(got), len(want)) - 400
    best = max(range(-400, 401, 2), key=lambda k: float(np.dot(got[400 + k: n + k], want[400: n])))
    return best / 16.0


def test_proxy_is_reused_and_rebuilt_when_corrupt_or_the_source_changed(prores):
    index, src, info, row = prores
    p = pmedia.playable(index, row)
    pmedia.ensure_proxy(p, row)
    made = p.path.stat().st_mtime_ns
    assert pmedia.ensure_proxy(p, row) is False and p.path.stat().st_mtime_ns == made
    p.path.write_bytes(b"\0" * 4096)                        # a corrupt proxy is rebuilt
    assert not pmedia.proxy_is_current(p)
    assert pmedia.ensure_proxy(p, row) is True and pmedia.proxy_is_current(p)
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the source changed: rebuilt
    assert not pmedia.proxy_is_current(p)
    assert pmedia.ensure_proxy(p, row) is True
    meta = p.path.with_suffix(p.path.suffix + ".json")           # made by an earlier dailies (sound 21 ms late)
    st = src.stat()
    meta.write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns}))
    assert not pmedia.proxy_is_current(p)
    assert pmedia.ensure_proxy(p, row) is True and pmedia.proxy_is_current(p)


def test_missing_source_is_one_sentence(prores, tmp_path):
    from indexer.errors import MediaError

    index, src, info, row = prores
    gone = dict(row, take_id="gone00000000", path=str(tmp_path / "moved.mov"))
    with pytest.raises(MediaError, match="missing"):
        pmedia.ensure_proxy(pmedia.playable(tmp_path / "index", gone), gone)


def test_sound_a_browser_cannot_play_gets_an_aac_proxy(tmp_path):
    """A 6-channel 32-bit float Broadcast Wave (as sound recorders write polyphonic files) -> stereo AAC .m4a."""
    import av

    src = tmp_path / "12A_WT1_poly.wav"
    with av.open(str(FIXTURES / "shoot" / "12A_WT1.wav")) as inp, av.open(str(src), "w") as out:
        aout = out.add_stream("pcm_f32le", rate=48000)
        aout.layout = "5.1"
        resampler = av.AudioResampler(format="flt", layout="5.1", rate=48000)
        for frame in inp.decode(audio=0):
            frame.pts = None
            for rf in resampler.resample(frame):
                for pk in aout.encode(rf):
                    out.mux(pk)
        for pk in aout.encode(None):
            out.mux(pk)
    info = probe(src)
    row = {"take_id": "snd000000000", "path": str(src), "rate": rate_str(info.rate), "name": info.name,
           "info": json.dumps(info.to_json())}
    assert not pmedia.browser_plays(row)
    p = pmedia.playable(tmp_path / "index", row)
    assert p.kind == "audio" and p.path.suffix == ".m4a" and p.media_type == "audio/mp4"
    assert pmedia.ensure_proxy(p, row) is True
    with av.open(str(p.path)) as c:
        a = c.streams.audio[0]
        assert not c.streams.video and a.codec_context.name == "aac" and a.codec_context.channels == 2
        assert abs(float(c.duration / 1e6) - info.duration) < 0.1


@pytest.mark.parametrize("rate, channels, samples", [(16000, 4, 178860), (44100, 2, 132423), (96000, 1, 288077),
                                                      (48000, 2, 144077)])
def test_sound_at_any_rate_and_channel_count_gets_a_proxy_in_sync(tmp_path, rate, channels, samples):
    """A recorder's file at 16, 44.1, 96 or 48 kHz, of odd lengths, gets a proxy with its sound from its first sample.
    Before, the proxy's sound was 21 ms late (the AAC encoder's 1024 samples of priming, unmarked since no packet
    had a time stamp), and the first file (the length of the fixture's poly WAV) got none: the resampler's last
    frame came stamped while the others were not, and the muxer refused the file ("Invalid argument")."""
    import wave

    from indexer.media import decode

    sig = (np.random.default_rng(rate).standard_normal((samples, channels)) * 0.1).clip(-1, 1)
    src = tmp_path / f"rec_{rate}_{channels}.wav"
    with wave.open(str(src), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((sig * 32767).astype("<i2").tobytes())
    dest = tmp_path / "proxy.m4a"
    pmedia.make_proxy(src, dest, Fraction(24000, 1001), video=False)
    got = decode(probe(dest), audio=True).audio
    want = decode(probe(src), audio=True).audio
    assert abs(len(got) - len(want)) < 0.05 * 16000                 # the same length, within 50 ms
    assert _offset_ms(dest, src) == 0.0                              # in sync, from the first sample
    n = min(len(got), len(want))
    assert np.corrcoef(got[:n], want[:n])[0, 1] > 0.5              # the same sound (AAC codes noise loosely)


def test_one_channel_of_a_poly_wav_alone_is_that_channel(tmp_path):
    from indexer.media import decode

    poly = FIXTURES / "sound" / "12A_T5_POLY.wav"
    channels = decode(probe(poly), audio=True, keep_channels=True).channels
    for ch in range(1, 5):
        dest = tmp_path / f"ch{ch}.m4a"
        pmedia.make_channel_proxy(poly, dest, ch)
        alone = decode(probe(dest), audio=True).audio
        n = min(len(alone), channels.shape[1])
        corr = [np.corrcoef(alone[:n], channels[k, :n])[0, 1] for k in range(4)]
        assert int(np.argmax(corr)) == ch - 1 and corr[ch - 1] > 0.98, (ch, corr)
