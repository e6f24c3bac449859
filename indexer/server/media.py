"""What the browser plays for a take: the original when a browser can play it, else a small proxy.

Browsers play H.264 (with AAC or no sound) in MP4/MOV, and WAV/MP3/AAC sound; they cannot play
ProRes, DNx or MXF. For those a proxy is made with PyAV (no ffmpeg binary): H.264 at most 540 lines,
the same rate and frame count, frame ``i`` of the proxy at ``i / rate`` (so the index's seconds and
timecode hold for it), with the first sound stream as stereo AAC; for sound the browser cannot play
(e.g. multichannel or float BWF) an AAC ``.m4a``. Proxies live in ``INDEX/proxies/`` and are reused
while the source file is unchanged (size and mtime recorded beside them); a proxy that no longer
opens is rebuilt.
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


def _stamp(source: Path) -> dict:
    st = source.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


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


def make_proxy(source: Path, dest: Path, rate: Fraction, *, video: bool = True, height: int = PROXY_HEIGHT) -> None:
    """Transcode ``source`` to a browser-playable file: H.264 (frame i at i/rate) + stereo AAC, or AAC only."""
    import av

    with av.open(str(source)) as src, av.open(str(dest), "w", format="mp4") as out:
        v_in = src.streams.video[0] if (video and src.streams.video) else None
        a_in = src.streams.audio[0] if src.streams.audio else None
        v_out = a_out = None
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
            a_out = out.add_stream("aac", rate=48000)
            a_out.layout = "stereo"
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
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
                frame.pts = None
                for rf in resampler.resample(frame):
                    for pkt in a_out.encode(rf):
                        out.mux(pkt)
        if a_out is not None:
            for rf in resampler.resample(None):
                for pkt in a_out.encode(rf):
                    out.mux(pkt)
        for s in (v_out, a_out):
            if s is not None:
                for pkt in s.encode(None):
                    out.mux(pkt)


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
