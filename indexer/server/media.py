"""What the browser plays for a take: the original when a browser can play it, else a small proxy.

Browsers play H.264 (with AAC or no sound) in MP4/MOV, and WAV/MP3/AAC sound; they cannot play
ProRes, DNx or MXF. For those a proxy is made with PyAV (no ffmpeg binary): H.264 at most 540 lines,
the same rate and frame count, frame ``i`` of the proxy at ``i / rate`` (so the index's seconds and
timecode hold for it), with the first sound stream as stereo AAC; for sound the browser cannot play
(e.g. multichannel or float BWF) an AAC ``.m4a``; one channel of a sound take alone (an actor's iso) as a mono
AAC ``.m4a``, made when first asked for. Proxies live in ``INDEX/proxies/`` and are reused
while the source file is unchanged (size and mtime recorded beside them); a proxy that no longer
opens is rebuilt, and so is one an earlier dailies made another way (``PROXY_FORMAT``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import MediaError

PROXY_DIR = "proxies"
PROXY_HEIGHT = 540
BROWSER_CONTAINERS = ("mov", "mp4")
BROWSER_VIDEO = {"h264"}
BROWSER_AUDIO_IN_MOVIE = {"aac", "mp3"}
BROWSER_AUDIO_FILES = {"pcm_s16le", "pcm_s24le", "pcm_u8", "pcm_f32le", "mp3", "aac", "flac", "opus", "vorbis"}


@dataclass
class Playable:
    """The file the browser gets for a take, and whether it is picture or sound."""

    take_id: str
    kind: str                 # "video" or "audio"
    source: Path              # the original file
    path: Path                # what is served: the original or its proxy
    proxy: bool
    channel: int | None = None    # one channel of the take's sound (1-based, across its sound streams), mono

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    @property
    def media_type(self) -> str:
        suffix = self.path.suffix.lower()
        return {".mp4": "video/mp4", ".mov": "video/mp4", ".m4a": "audio/mp4", ".wav": "audio/wav",
                ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg"}.get(suffix, "application/octet-stream")


def _info(take) -> dict:
    raw = take["info"]
    return json.loads(raw) if isinstance(raw, str) else dict(raw or {})


def browser_plays(take) -> bool:
    """Whether a browser plays the original file of this take as it is."""
    info = _info(take)
    container = str(info.get("container") or "")
    audio = [a.get("codec") for a in info.get("audio") or []]
    if info.get("has_video"):
        if not any(c in container.split(",") for c in BROWSER_CONTAINERS):
            return False
        return info.get("video_codec") in BROWSER_VIDEO and all(c in BROWSER_AUDIO_IN_MOVIE for c in audio[:1])
    channels = [a.get("channels") or 0 for a in info.get("audio") or []]
    return bool(audio) and audio[0] in BROWSER_AUDIO_FILES and len(audio) == 1 and channels[0] <= 2


def playable(index_path: str | os.PathLike, take) -> Playable:
    """What to serve for ``take`` (a catalog row): the original, or its proxy in the index folder."""
    info = _info(take)
    kind = "video" if info.get("has_video") else "audio"
    source = Path(take["path"])
    if browser_plays(take):
        return Playable(take["take_id"], kind, source, source, proxy=False)
    suffix = ".mp4" if kind == "video" else ".m4a"
    return Playable(take["take_id"], kind, source, Path(index_path) / PROXY_DIR / f"{take['take_id']}{suffix}",
                    proxy=True)


def sound_channels(take) -> int:
    """How many sound channels the take has, across its sound streams (the numbering of `take_channels`)."""
    return sum(int(a.get("channels") or 0) for a in _info(take).get("audio") or [])


def channel_playable(index_path: str | os.PathLike, take, channel: int) -> Playable:
    """One channel of a sound take (an iso, the boom ...) alone, as a mono AAC proxy in the index folder, so that
    the browser plays what that mic heard. Only for takes without picture: a camera's channels would need the
    picture kept in step with a second player."""
    info = _info(take)
    if info.get("has_video"):
        raise MediaError(f"{take['name']}: one channel alone plays for sound takes only (this take has picture).")
    total = sound_channels(take)
    if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= total:
        raise MediaError(f"{take['name']} has no sound channel {channel}"
                         + (f" (1 to {total})." if total else " (it has no sound)."))
    return Playable(take["take_id"], "audio", Path(take["path"]),
                    Path(index_path) / PROXY_DIR / f"{take['take_id']}.ch{channel}.m4a", proxy=True, channel=channel)


# How proxies are made, kept beside each: a proxy made otherwise is made again. 2: the sound's frames are stamped
# (before, a proxy's sound was 21 ms late: the AAC priming went unmarked).
PROXY_FORMAT = 2


def _stamp(source: Path) -> dict:
    st = source.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "proxy_format": PROXY_FORMAT}


def proxy_is_current(p: Playable) -> bool:
    """The proxy exists, was made from the source as it is now, and opens."""
    meta = p.path.with_suffix(p.path.suffix + ".json")
    try:
        if json.loads(meta.read_text()) != _stamp(p.source):
            return False
    except (OSError, ValueError):
        return False
    try:
        import av

        with av.open(str(p.path)) as c:
            return bool(c.streams.video if p.kind == "video" else c.streams.audio)
    except Exception:
        return False


def ensure_proxy(p: Playable, take) -> bool:
    """Make the proxy of ``p`` unless a current one exists; returns True when one was made."""
    if not p.proxy or proxy_is_current(p):
        return False
    if not p.source.is_file():
        raise MediaError(f"{p.source}: the media file is missing (moved or offline); no proxy made.")
    p.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.path.with_name(f"{p.path.stem}.{_writer_tag()}.part{p.path.suffix}")   # others may be making it too
    try:
        if p.channel is not None:
            make_channel_proxy(p.source, tmp, p.channel)
        else:
            make_proxy(p.source, tmp, Fraction(take["rate"]), video=p.kind == "video")
        os.replace(tmp, p.path)
    except MediaError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise MediaError(f"{p.source}: could not make a browser proxy ({type(exc).__name__}: {exc}).") from None
    p.path.with_suffix(p.path.suffix + ".json").write_text(json.dumps(_stamp(p.source)))
    return True


class _AacOut:
    """Sound into a 48 kHz AAC stream of ``out``: resampled in frames of the encoder's size, each stamped with its
    first sample. Unstamped, the resampler's frames carry no time stamp but the last one, flushed at the end, does,
    and the muxer then refused the whole file ("Invalid argument"): the fixture's 4-channel 16 kHz poly WAV had no
    browser proxy that way."""

    def __init__(self, out, layout: str):
        import av

        self.out = out
        self.stream = out.add_stream("aac", rate=48000)
        self.stream.layout = layout
        self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=48000,
                                           frame_size=self.stream.codec_context.frame_size or 1024)
        self.samples = 0

    def add(self, frame) -> None:
        """A decoded sound frame (None: the end)."""
        if frame is not None:
            frame.pts = None
        for rf in self.resampler.resample(frame):
            rf.pts, rf.time_base = self.samples, Fraction(1, 48000)
            self.samples += rf.samples
            for pkt in self.stream.encode(rf):
                self.out.mux(pkt)

    def close(self) -> None:
        self.add(None)
        for pkt in self.stream.encode(None):
            self.out.mux(pkt)


def make_proxy(source: Path, dest: Path, rate: Fraction, *, video: bool = True, height: int = PROXY_HEIGHT) -> None:
    """Transcode ``source`` to a browser-playable file: H.264 (frame i at i/rate) + stereo AAC, or AAC only."""
    import av

    with av.open(str(source)) as src, av.open(str(dest), "w", format="mp4") as out:
        v_in = src.streams.video[0] if (video and src.streams.video) else None
        a_in = src.streams.audio[0] if src.streams.audio else None
        v_out = sound = None
        if v_in is not None:
            w, h = v_in.codec_context.width, v_in.codec_context.height
            if h > height:
                w, h = int(round(w * height / h / 2)) * 2, height
            v_out = out.add_stream("libx264", rate=rate)
            v_out.width, v_out.height = w - w % 2, h - h % 2
            v_out.pix_fmt = "yuv420p"
            v_out.time_base = Fraction(1) / rate
            frame_tb = Fraction(1) / rate        # the muxer changes the stream's time base once it starts
            v_out.options = {"crf": "26", "preset": "veryfast", "g": str(max(1, round(float(rate))))}
        if a_in is not None:
            sound = _AacOut(out, "stereo")
        streams = [s for s in (v_in, a_in) if s is not None]
        if not streams:
            raise MediaError(f"{source}: has neither picture nor sound to make a proxy of.")
        n = 0
        for frame in src.decode(*streams):
            if isinstance(frame, av.VideoFrame):
                frame = frame.reformat(width=v_out.width, height=v_out.height, format="yuv420p")
                frame.pts = n
                frame.time_base = frame_tb
                n += 1
                for pkt in v_out.encode(frame):
                    out.mux(pkt)
            else:
                sound.add(frame)
        if sound is not None:
            sound.close()
        if v_out is not None:
            for pkt in v_out.encode(None):
                out.mux(pkt)


def make_channel_proxy(source: Path, dest: Path, channel: int) -> None:
    """Channel ``channel`` (1-based, counted across the sound streams in order) of ``source`` alone: mono AAC at
    48 kHz, from the file's first sample (so the take's seconds and timecode hold for it)."""
    import av
    import numpy as np

    with av.open(str(source)) as src, av.open(str(dest), "w", format="mp4") as out:
        first = 0
        for stream in src.streams.audio:
            if channel <= first + stream.codec_context.channels:
                break
            first += stream.codec_context.channels
        else:
            raise MediaError(f"{source}: has no sound channel {channel}.")
        pick = channel - first - 1
        planar = av.AudioResampler(format="fltp")      # float, one row a channel; layout and rate kept
        sound = _AacOut(out, "mono")
        for frame in src.decode(stream):
            frame.pts = None
            for pf in planar.resample(frame):
                mono = av.AudioFrame.from_ndarray(np.ascontiguousarray(pf.to_ndarray()[pick: pick + 1]),
                                                  format="fltp", layout="mono")
                mono.sample_rate = pf.sample_rate
                sound.add(mono)
        sound.close()


def thumbnail(index_path: str | os.PathLike, take, seconds: float, *, width: int = 320, cache: bool = True) -> bytes:
    """A JPEG of the frame at ``seconds`` of a take, cached in ``INDEX/thumbs/`` unless ``cache`` is off."""
    import io

    from PIL import Image

    from ..media import extract_frame
    from ..timecode import frame_at

    frame = frame_at(max(0.0, seconds), Fraction(take["rate"]))
    target = Path(index_path) / "thumbs" / f"{take['take_id']}_{frame}_{width}.jpg"
    if cache and target.is_file():
        return target.read_bytes()
    if not Path(take["path"]).is_file():
        raise MediaError(f"{take['path']}: the media file is missing (moved or offline).")
    image = extract_frame(take["path"], frame, max_width=width)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=82)
    data = buf.getvalue()
    if cache:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{_writer_tag()}.part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return data


def _writer_tag() -> str:
    """Unique to this process and thread: a background proxy pass, a request and another server process
    (`dailies serve --workers N`) may write the same proxy or thumbnail at once; each writes its own part
    file and the last ``os.replace`` wins with a whole file."""
    import threading

    return f"{os.getpid()}-{threading.get_ident()}"
