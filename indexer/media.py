"""Probe and decode media with PyAV (FFmpeg's libraries, no ffmpeg binary).

* :func:`probe` reads what a file is: exact picture rate, start timecode (stream/format ``timecode``
  tag, a QuickTime/MP4 tmcd track, or a Broadcast Wave ``bext`` time reference with the iXML rate),
  duration, audio streams, and scene/take/camera from the file name.
* :func:`decode` makes ONE pass over the file: audio is resampled to 16 kHz mono in memory (for speech
  and speakers) while picture frames, reduced in size, go to a sink (shot detection, keyframes).
  No file is decoded twice in one index run.
* :func:`extract_frame` seeks to one frame, numbered as :func:`decode` numbers them (stills for visual
  queries and thumbnails).
"""

from __future__ import annotations

import logging
import math
import os
import re
import struct
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Protocol
from xml.etree import ElementTree

import numpy as np

from .errors import MediaError, UsageError
from .records import AudioStream, MediaInfo
from .timecode import (
    frames_to_tc,
    is_drop_frame_rate,
    parse_rate,
    rate_str,
    tc_to_frames,
)

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000          # what Whisper and pyannote take
_TC_RE = re.compile(r"^\d{1,2}[:;.,]\d{2}[:;.,]\d{2}[:;.,]\d{2,3}$")


# --------------------------------------------------------------------------------------------
# File names: scene / take / camera
# --------------------------------------------------------------------------------------------

_SCENE = re.compile(r"^(?:SC|SCN|SCENE|S)?(\d{1,4}[A-Z]{0,3})$", re.I)
_TAKE = re.compile(r"^(?:T|TK|TAKE)(\d{1,3}[A-Z]?)$", re.I)
_WILD = re.compile(r"^(WT|WILD|WILDTRACK|PU|PICKUP)(\d{0,3})$", re.I)
_CAMERA = re.compile(r"^(?:CAM|CAMERA|C)([A-Z])$", re.I)
_CAMERA_ROLL = re.compile(r"^([A-Z])(\d{3})C(\d{3})", re.I)     # ARRI/RED/Sony: A012C003...
_SEPARATORS = re.compile(r"[_\-\s.]+")


def parse_clip_name(name: str) -> dict[str, str | None]:
    """Scene, take, camera and reel from common camera and editorial file-name patterns.

    ``12A_T3_CamA`` / ``SC12A_TK3_A`` / ``12A-3-B`` / ``S12A_T03`` / ``12A_WT1`` (wild track) /
    ``A012C003_230101_R1AB`` (camera roll: camera A, reel A012; no scene/take in the name).
    """
    out: dict[str, str | None] = {"scene": None, "take": None, "camera": None, "reel": None}
    roll = _CAMERA_ROLL.match(name)
    if roll:
        out["camera"] = roll.group(1).upper()
        out["reel"] = f"{roll.group(1).upper()}{roll.group(2)}"
        return out
    tokens = [t for t in _SEPARATORS.split(name) if t]
    rest: list[str] = []
    for i, tok in enumerate(tokens):
        if out["scene"] is None and i == 0 and _SCENE.match(tok) and not _TAKE.match(tok):
            out["scene"] = _SCENE.match(tok).group(1).upper()
            continue
        m = _TAKE.match(tok)
        if m and out["take"] is None:
            out["take"] = m.group(1).lstrip("0").upper() or "0"
            continue
        m = _WILD.match(tok)
        if m and out["take"] is None:
            out["take"] = f"{m.group(1).upper()}{m.group(2)}"
            continue
        m = _CAMERA.match(tok)
        if m and out["camera"] is None:
            out["camera"] = m.group(1).upper()
            continue
        rest.append(tok)
    # "12A-3" / "12A-3-B": a bare number after the scene is the take, a lone letter the camera.
    if out["scene"] is not None:
        for tok in rest:
            if out["take"] is None and tok.isdigit() and len(tok) <= 3:
                out["take"] = tok.lstrip("0") or "0"
            elif out["camera"] is None and len(tok) == 1 and tok.isalpha():
                out["camera"] = tok.upper()
    return out


# --------------------------------------------------------------------------------------------
# Probe
# --------------------------------------------------------------------------------------------

def _open(path: str):
    """``av.open`` with FFmpeg's own complaint turned into a clear sentence."""
    import av
    import av.logging

    level, skip = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.ERROR)   # FFmpeg's own reason (e.g. "moov atom not found"), captured
    av.logging.set_skip_repeated(False)      # ... even when the previous file said the same
    try:
        with av.logging.Capture() as logs:
            container = av.open(path, metadata_errors="ignore")
        return container
    except av.error.FFmpegError as exc:
        raise MediaError(_explain_open_error(path, exc, logs)) from None
    except OSError as exc:
        raise MediaError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    finally:
        av.logging.set_level(level)
        av.logging.set_skip_repeated(skip)


def _looks_like_quicktime(path: str) -> bool:
    """Does the file start like a QuickTime/MP4 (an atom header such as ftyp, wide, mdat)?"""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return len(head) >= 8 and head[4:8] in (b"ftyp", b"wide", b"mdat", b"moov", b"free", b"skip", b"pnot", b"uuid")


def _explain_open_error(path: str, exc: Exception, logs: list) -> str:
    messages = " ".join(str(m[2]) for m in logs if len(m) > 2).lower()
    if "moov atom not found" in messages and _looks_like_quicktime(path):
        return (f"{path}: the file is truncated or was not finalised (no QuickTime 'moov' index); "
                "copy it again from the card or recover it with the camera maker's tool.")
    if "end of file" in messages or "truncat" in messages:
        return f"{path}: the file is truncated."
    strerror = getattr(exc, "strerror", None) or str(exc)
    if "invalid data" in strerror.lower():
        return f"{path}: not a media file FFmpeg can read (unknown or damaged format)."
    return f"{path}: cannot be opened as media ({strerror})."


def _timecode_tag(container) -> tuple[str | None, str]:
    """The start timecode and where it came from: video stream tag, tmcd track, then format tag."""
    for stream in container.streams.video:
        tc = stream.metadata.get("timecode")
        if tc and _TC_RE.match(tc.strip()):
            return tc.strip(), "stream"
    for stream in container.streams.data:       # QuickTime/MP4 tmcd track
        tc = stream.metadata.get("timecode")
        if tc and _TC_RE.match(tc.strip()):
            return tc.strip(), "tmcd"
    tc = container.metadata.get("timecode")
    if tc and _TC_RE.match(tc.strip()):
        return tc.strip(), "format"
    return None, "none"


def _hms_seconds(text: str) -> float | None:
    m = re.match(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$", text.strip())
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def read_ixml(path: str) -> dict[str, str]:
    """A few fields of a Broadcast Wave file's iXML chunk (the sound recorder's metadata).

    Only chunk headers are read, so this is cheap even on long files. Returns {} when absent.
    """
    out: dict[str, str] = {}
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64", b"BW64") or head[8:12] != b"WAVE":
                return out
            while True:
                hdr = f.read(8)
                if len(hdr) < 8:
                    break
                cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
                if cid == b"iXML":
                    xml = f.read(min(size, 1 << 20))
                    root = ElementTree.fromstring(xml.rstrip(b"\x00"))
                    names = ixml_track_names(root)
                    if names:
                        out["TRACK_NAMES"] = "\t".join(n or "" for n in names)
                    for key in ("SCENE", "TAKE", "TAPE", "PROJECT", "NOTE"):
                        el = root.find(key)
                        if el is not None and el.text:
                            out[key] = el.text.strip()
                    speed = root.find("SPEED")
                    if speed is not None:
                        for key in ("TIMECODE_RATE", "TIMECODE_FLAG", "MASTER_SPEED"):
                            el = speed.find(key)
                            if el is not None and el.text:
                                out[key] = el.text.strip()
                    break
                if size == 0xFFFFFFFF:      # RF64 data chunk: size lives in ds64; nothing after it we need
                    break
                f.seek(size + (size & 1), os.SEEK_CUR)
    except (OSError, ElementTree.ParseError, struct.error):
        return {}
    return out


def ixml_track_names(root) -> list[str | None]:
    """The iXML ``TRACK_LIST``'s name of each channel, in interleave order (None where a track has no
    name); [] when there is no track list."""
    tl = root.find("TRACK_LIST")
    if tl is None:
        return []
    named: dict[int, str | None] = {}
    for k, tr in enumerate(tl.findall("TRACK"), 1):
        idx = tr.findtext("INTERLEAVE_INDEX") or tr.findtext("CHANNEL_INDEX") or str(k)
        try:
            n = int(idx.strip())
        except ValueError:
            n = k
        name = (tr.findtext("NAME") or "").strip()
        named[n] = name or None
    if not named or min(named) < 1 or max(named) > 64:
        return []
    return [named.get(i) for i in range(1, max(named) + 1)]


def probe(path: str | os.PathLike, *, audio_tc_rate: Fraction = Fraction(24000, 1001)) -> MediaInfo:
    """Read what a media file is. Raises :class:`MediaError` with a one-line reason."""
    path = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file.") from None
    except OSError as exc:
        raise MediaError(f"{path}: cannot be read ({exc.strerror}).") from None
    if not os.path.isfile(path):
        raise MediaError(f"{path}: not a regular file.")
    if st.st_size == 0:
        raise MediaError(f"{path}: the file is empty (0 bytes).")
    if not os.access(path, os.R_OK):
        raise MediaError(f"{path}: cannot be read (permission denied).")

    container = _open(path)
    try:
        return _probe_container(container, path, st, audio_tc_rate)
    finally:
        container.close()


def _probe_container(container, path: str, st: os.stat_result, audio_tc_rate: Fraction) -> MediaInfo:
    name = Path(path).stem
    notes: list[str] = []
    from av.stream import Disposition

    video = next((s for s in container.streams.video if not (s.disposition & Disposition.attached_pic)), None)
    if video is not None and video.codec_context is not None and video.codec_context.name in ("png", "mjpeg") \
            and (video.frames or 0) <= 1 and len(container.streams.audio) > 0:
        video = None   # cover art in an audio file, not picture
    audio = []
    for s in container.streams.audio:
        cc = s.codec_context
        if cc is None or not cc.sample_rate or not cc.channels:
            continue
        audio.append(AudioStream(
            index=s.index, channels=int(cc.channels), sample_rate=int(cc.sample_rate),
            codec=cc.name, layout=cc.layout.name if cc.layout else None,
            language=s.metadata.get("language"),
        ))
    if video is None and not audio:
        raise MediaError(f"{path}: has no picture or sound stream dailies can use.")

    duration = container.duration / 1_000_000 if container.duration else 0.0
    tc, tc_source = _timecode_tag(container)
    frames = width = height = codec = None
    if video is not None:
        raw_rate = video.average_rate or video.guessed_rate or video.base_rate
        if not raw_rate:
            raise MediaError(f"{path}: the picture stream states no frame rate.")
        rate = parse_rate(Fraction(raw_rate))
        if video.duration and video.time_base:
            vdur = float(video.duration * video.time_base)
            duration = vdur if vdur > 0 else duration
        elif video.metadata.get("DURATION"):      # Matroska keeps the stream duration in a tag
            vdur = _hms_seconds(video.metadata["DURATION"])
            duration = vdur if vdur else duration
        frames = int(video.frames) if video.frames else int(round(duration * rate))
        width, height = video.codec_context.width, video.codec_context.height
        codec = video.codec_context.name
    else:
        rate = audio_tc_rate
        if duration <= 0 and container.streams.audio:
            a0 = container.streams.audio[0]
            if a0.duration and a0.time_base:
                duration = float(a0.duration * a0.time_base)

    ixml: dict[str, str] = {}
    if video is None:
        # Production sound: Broadcast Wave time reference (samples since midnight) + iXML rate.
        ixml = read_ixml(path)
        if ixml.get("TIMECODE_RATE"):
            try:
                rate = parse_rate(ixml["TIMECODE_RATE"])
            except Exception:
                notes.append(f"iXML TIMECODE_RATE '{ixml['TIMECODE_RATE']}' not understood")
        ref = container.metadata.get("time_reference")
        if tc is None and ref and ref.strip().isdigit() and audio:
            seconds = Fraction(int(ref.strip()), audio[0].sample_rate)
            drop = is_drop_frame_rate(rate) and ixml.get("TIMECODE_FLAG", "").upper() == "DF"
            tc = frames_to_tc(int(round(seconds * rate)), rate, drop)
            tc_source = "bext"

    drop_frame = False
    if tc is None:
        tc = frames_to_tc(0, rate, is_drop_frame_rate(rate))
        notes.append("no start timecode in the file; timecode counts from 00:00:00:00")
        drop_frame = is_drop_frame_rate(rate)
    else:
        drop_frame = is_drop_frame_rate(rate) and any(c in tc for c in ";.,")
        try:
            tc_to_frames(tc, rate)
        except Exception:
            notes.append(f"start timecode '{tc}' is not valid at {rate_str(rate)} fps; using 00:00:00:00")
            tc, tc_source = frames_to_tc(0, rate, drop_frame), "none"

    parsed = parse_clip_name(name)
    if ixml.get("SCENE") and not parsed["scene"]:
        parsed["scene"] = ixml["SCENE"]
    if ixml.get("TAKE") and not parsed["take"]:
        parsed["take"] = ixml["TAKE"]
    if video is not None and frames and duration and abs(frames / float(rate) - duration) > 1.0:
        notes.append("stated frame count and duration disagree; counting frames while decoding")

    return MediaInfo(
        path=path, name=name, size=st.st_size, mtime_ns=st.st_mtime_ns,
        container=container.format.name, duration=float(duration), rate=rate,
        start_tc=tc, tc_source=tc_source, drop_frame=drop_frame,
        has_video=video is not None, frames=frames, width=width, height=height,
        video_codec=codec, video_stream=video.index if video is not None else None,
        audio=audio, subtitle_streams=len(container.streams.subtitles),
        scene=parsed["scene"], take=parsed["take"], camera=parsed["camera"], reel=parsed["reel"],
        notes=notes,
        track_names=[n or None for n in ixml["TRACK_NAMES"].split("\t")] if ixml.get("TRACK_NAMES") else None,
    )


# --------------------------------------------------------------------------------------------
# Decode (one pass: audio to 16 kHz in memory, small picture frames to a sink)
# --------------------------------------------------------------------------------------------

class FrameSink(Protocol):
    """Receives reduced picture frames in presentation order during :func:`decode`.

    A sink may also define ``wants(index) -> bool``; frames it does not want are not converted
    for it (picture conversion is the costly part after decoding itself).
    """

    pixel_format: str  # optional attribute; "bgr24" (OpenCV order, the default) or "rgb24"
    interpolation: str  # optional attribute: how libswscale shrinks the picture (default "BILINEAR")

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) the sink wants frames scaled to."""

    def feed(self, index: int, image: np.ndarray) -> None:
        """Frame number ``index`` (0 = first frame) as an H x W x 3 uint8 array."""

    # Optional, for intra-only picture (ProRes, DNx, MJPEG ...), where any frame decodes on its own:
    # a sink with ``sparse_step`` (frames, >= 3) and ``compare(a, b) -> (changed, may_cut)`` lets decode()
    # decode one frame in ``sparse_step``, and the middle of any gap whose ends changed, until no gap
    # changed; next to two neighbouring frames that may be a cut, the frames the sink judges it on. An
    # undecoded frame is fed the last decoded picture again (see _SparsePicture).


@dataclass
class Decoded:
    """The result of one decoding pass."""

    audio: np.ndarray | None            # float32 mono at 16 kHz, sample 0 = first picture frame
    channels: np.ndarray | None = None  # (C, N) float32 per channel, only when asked for
    channel_rms_db: list[float] = field(default_factory=list)
    frames: int | None = None           # picture frames in the file (counted while decoding)
    pictures_decoded: int | None = None # of which decoded (fewer when intra-only picture is sampled)
    damaged_packets: int = 0
    sample_rate: int = SAMPLE_RATE
    picture_decoder: str | None = None  # "software", or the hardware device type that decoded the picture

    @property
    def audio_seconds(self) -> float:
        return 0.0 if self.audio is None else len(self.audio) / self.sample_rate


class _Chunks:
    """Growable float32 buffer, sized from the stated duration so it rarely has to grow."""

    def __init__(self, channels: int, expected_seconds: float):
        self.channels = channels
        capacity = int(max(expected_seconds, 1.0) * 1.02 * SAMPLE_RATE) + SAMPLE_RATE
        self.buf = np.zeros((channels, capacity), dtype=np.float32)
        self.n = 0

    def append(self, block: np.ndarray) -> None:
        need = self.n + block.shape[1]
        if need > self.buf.shape[1]:
            grown = np.zeros((self.channels, max(need, int(self.buf.shape[1] * 1.5))), dtype=np.float32)
            grown[:, : self.n] = self.buf[:, : self.n]
            self.buf = grown
        self.buf[:, self.n:need] = block
        self.n = need

    def skip(self, count: int) -> None:
        self.append(np.zeros((self.channels, count), dtype=np.float32))

    def array(self) -> np.ndarray:
        return self.buf[:, : self.n]


class _StreamAudio:
    """One audio stream being decoded: the sum of its channels (mono) and per-channel energy;
    per-channel samples only when asked for (memory: 1 channel, not C)."""

    def __init__(self, channels: int, expected_seconds: float, keep_channels: bool):
        self.channels = channels
        self.sum = _Chunks(1, expected_seconds)
        self.sumsq = np.zeros(channels, dtype=np.float64)
        self.each = _Chunks(channels, expected_seconds) if keep_channels else None
        self.started = False

    def append(self, block: np.ndarray) -> None:
        self.sumsq += np.einsum("ij,ij->i", block, block, dtype=np.float64)
        self.sum.append(block.sum(axis=0, keepdims=True))
        if self.each is not None:
            self.each.append(block)

    def skip(self, count: int) -> None:
        self.sum.skip(count)
        if self.each is not None:
            self.each.skip(count)


# Hardware decoding of long-GOP picture (H.264, HEVC ...), asked for with ``hw_decode``: "off" (the default),
# "auto" (VideoToolbox on macOS, else CUDA when this FFmpeg has it) or a device type of
# av.codec.hwaccel.hwdevices_available(). A device that cannot be opened is not tried again in this process,
# and the file is decoded in software. Intra-only picture keeps the sparse software path. Not the default:
# no hardware decoder was available where it was built, so it has only been run down its software fallback.
HW_DECODE_OFF = "off"
_HW_FAILED: set[str] = set()


def hw_decode_types() -> list[str]:
    """The device types this FFmpeg can decode on (not whether such a device is present)."""
    from av.codec.hwaccel import hwdevices_available

    return list(hwdevices_available())


def check_hw_decode(choice: str | None) -> str:
    """``choice`` normalised, or a clear error when this FFmpeg cannot decode on that kind of device."""
    choice = (choice or HW_DECODE_OFF).strip().lower()
    available = hw_decode_types()
    if choice not in (HW_DECODE_OFF, "auto", *available):
        raise UsageError(f"Hardware decoding '{choice}' is not available here (choose off, auto"
                         f"{''.join(', ' + t for t in available)}).")
    return choice


def _hw_device(choice: str) -> str | None:
    """The device type to open for ``choice`` (as :func:`check_hw_decode` returns it), or None."""
    if choice == HW_DECODE_OFF:
        return None
    if choice == "auto":
        wanted = ("videotoolbox",) if sys.platform == "darwin" else ("cuda",)
        choice = next((t for t in wanted if t in hw_decode_types()), "")
    return choice if choice and choice not in _HW_FAILED else None


def _intra_only(codec_name: str | None) -> bool:
    import av

    try:
        return bool(codec_name) and bool(av.codec.Codec(codec_name, "r").intra_only)
    except Exception:       # an unknown decoder: treated as long-GOP
        return False


def _open_for_picture(info: "MediaInfo", hw_decode: str):
    """Open ``info.path`` for decoding, on the hardware decoder when asked for and the picture is long-GOP.
    Returns (container, the device type decoding the picture or None)."""
    hw_decode = check_hw_decode(hw_decode)
    device = _hw_device(hw_decode) if info.has_video and not _intra_only(info.video_codec) else None
    if device is not None:
        import av
        import av.logging
        from av.codec.hwaccel import HWAccel

        level = av.logging.get_level()
        av.logging.set_level(None)
        try:
            return av.open(info.path, metadata_errors="ignore",
                           hwaccel=HWAccel(device, allow_software_fallback=True)), device
        except Exception:           # no such device here, no permission ...: software (and a bad file says so there)
            _HW_FAILED.add(device)
        finally:
            av.logging.set_level(level)
    return _open(info.path), None


def decode(
    info: MediaInfo,
    *,
    audio: bool = True,
    keep_channels: bool = False,
    sink: FrameSink | None = None,
    sinks: list[FrameSink] | None = None,
    progress: Callable[[float], None] | None = None,
    hw_decode: str = HW_DECODE_OFF,
) -> Decoded:
    """Decode ``info.path`` once: audio to 16 kHz mono (and per channel when ``keep_channels``),
    picture frames reduced to each sink's size (shot detection, keyframes ...). Time zero is the
    first picture frame (or the start of the sound in an audio-only file). ``progress`` gets
    seconds decoded so far. ``hw_decode``: see ``HW_DECODE_OFF``.
    """
    import av

    sinks = [x for x in ([sink] if sink is not None else []) + list(sinks or []) if x is not None]
    want_audio = audio and info.has_audio
    want_video = bool(sinks) and info.has_video
    container, device = _open_for_picture(info, hw_decode) if want_video else (_open(info.path), None)
    try:
        a_streams = [container.streams[a.index] for a in info.audio] if want_audio else []
        v_stream = container.streams[info.video_stream] if want_video else None
        if v_stream is not None:
            v_stream.thread_type = "AUTO"
            if device is not None and not getattr(v_stream.codec_context, "is_hwaccel", False):
                device = None           # this stream's decoder has no hardware path: software
        streams = ([v_stream] if v_stream is not None else []) + a_streams
        if not streams:
            return Decoded(audio=None)

        # Time zero = first picture frame when there is picture, else the first sound sample.
        ref = container.streams[info.video_stream] if info.has_video else (a_streams[0] if a_streams else None)
        t0 = float(ref.start_time * ref.time_base) if ref is not None and ref.start_time is not None else 0.0

        expected = info.duration or 0.0
        acc = {s.index: _StreamAudio(s.codec_context.channels, expected, keep_channels) for s in a_streams}
        resamplers = {s.index: av.AudioResampler(format="fltp", layout=s.codec_context.layout, rate=SAMPLE_RATE)
                      for s in a_streams}

        plan = []   # (sink, wants, its reducer)
        if v_stream is not None:
            w0 = info.width or v_stream.codec_context.width
            h0 = info.height or v_stream.codec_context.height
            plan = [(sk, getattr(sk, "wants", None), _Reducer(sk, w0, h0)) for sk in sinks]
        rate = info.rate
        next_index = 0
        damaged = 0
        last_report = -1.0

        def take_audio(sidx: int, frames) -> None:
            for out in frames:
                block = out.to_ndarray()
                if block.ndim == 1:
                    block = block[None, :]
                sa = acc[sidx]
                if not sa.started:
                    sa.started = True
                    first = float(out.pts * out.time_base) if out.pts is not None else t0
                    offset = int(round((first - t0) * SAMPLE_RATE))
                    if offset > 0:
                        sa.skip(offset)
                    elif offset < 0:
                        block = block[:, -offset:]
                sa.append(block.astype(np.float32, copy=False))

        def frame_index(pts, time_base, at_least: int) -> int:
            if pts is None or time_base is None:
                return at_least
            return max(at_least, int(math.floor((float(pts * time_base) - t0) * rate + 0.5)))

        sparse = _SparsePicture.for_stream(v_stream, plan) if v_stream is not None else None
        for packet in container.demux(streams):
            if sparse is not None and packet.stream is v_stream:
                if packet.size == 0:
                    continue
                try:
                    sparse.add(packet, frame_index(packet.pts, packet.time_base, sparse.next_packet_index))
                except av.error.FFmpegError:
                    damaged += 1
                if damaged + sparse.damaged > 200:      # (undecodable samples also keep their stretch's packets)
                    raise MediaError(f"{info.path}: too many damaged packets; the file is corrupt.") from None
                continue
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                damaged += 1
                if damaged > 200:
                    raise MediaError(f"{info.path}: too many damaged packets; the file is corrupt.") from None
                continue
            st = packet.stream
            for frame in decoded:
                if st.type == "audio":
                    take_audio(st.index, resamplers[st.index].resample(frame))
                elif st.type == "video":
                    next_index = _feed_frame(plan, frame, frame_index(frame.pts, frame.time_base, next_index),
                                             next_index)
                if progress is not None and frame.pts is not None and frame.time_base is not None:
                    t = float(frame.pts * frame.time_base) - t0
                    if t - last_report >= 1.0:
                        last_report = t
                        progress(t)
        if sparse is not None:
            sparse.close()
            next_index = sparse.next_index
            damaged += sparse.damaged
        for s in a_streams:   # flush resamplers
            take_audio(s.index, resamplers[s.index].resample(None))
    finally:
        container.close()

    result = Decoded(audio=None, frames=next_index if want_video else None, damaged_packets=damaged,
                     pictures_decoded=(sparse.decoded if sparse is not None else next_index) if want_video else None,
                     picture_decoder=(device or "software") if want_video else None)
    if want_audio:
        length = max((sa.sum.n for sa in acc.values()), default=0)
        counts = [sa.sum.n for sa in acc.values() for _ in range(sa.channels)]
        sumsq = np.concatenate([sa.sumsq for sa in acc.values()]) if acc else np.zeros(0)
        rms = np.sqrt(sumsq / np.maximum(counts, 1)) if len(sumsq) else sumsq
        rms_db = [float(20 * np.log10(max(r, 1e-10))) for r in rms]
        # Mix the channels that carry sound; dead channels (silent iso tracks) contribute nothing to
        # the sum and are left out of the average so they do not lower the level.
        live = sum(1 for db in rms_db if db > -70.0) or len(rms_db) or 1
        mono = np.zeros(length, dtype=np.float32)
        for sa in acc.values():
            part = sa.sum.array()[0]
            mono[: len(part)] += part
            sa.sum = None
        mono /= live
        result.audio = mono
        result.channel_rms_db = rms_db
        if keep_channels:
            per_channel = np.zeros((len(rms_db), length), dtype=np.float32)
            row = 0
            for sa in acc.values():
                arr = sa.each.array()
                per_channel[row: row + arr.shape[0], : arr.shape[1]] = arr
                row += arr.shape[0]
            result.channels = per_channel
    return result


class _Reducer:
    """A decoded picture reduced to one sink's size and pixel format, in libswscale: the sink's
    ``frame_size``, ``pixel_format`` (default bgr24) and ``interpolation`` (a PyAV interpolation name;
    default BILINEAR, which low-passes before it shrinks). One reformatter per sink keeps its scaler
    context: six times faster than a new one per frame."""

    def __init__(self, sink, width: int, height: int):
        from av.video.reformatter import VideoReformatter

        self.size = sink.frame_size(width, height)
        self.format = getattr(sink, "pixel_format", "bgr24")
        self.interpolation = getattr(sink, "interpolation", None)
        self._scaler = VideoReformatter()

    def __call__(self, frame) -> np.ndarray:
        return self._scaler.reformat(frame, width=self.size[0], height=self.size[1], format=self.format,
                                     interpolation=self.interpolation).to_ndarray()


def _feed_frame(plan, frame, index: int, next_index: int) -> int:
    """Give a decoded picture to each sink that wants it, reduced to the sink's size, as frame ``index``;
    a frame missing from the stream (``next_index`` .. ``index`` - 1) is given as a repeat of this
    picture, so frame numbers stay the file's own. Returns the next frame number."""
    for sk, wants, reduce in plan:
        image = None
        for k in range(next_index, index + 1):
            if wants is not None and not wants(k):
                continue
            if image is None:
                image = reduce(frame)
            sk.feed(k, image)
    return index + 1


class _SparsePicture:
    """Intra-only picture decoded sparsely, with every sink fed exactly as a full decode would feed it
    where it matters.

    One frame in ``step`` is decoded (a *sample*); the packets in between are kept, compressed, until
    their frames are fed. Every gap between two decoded frames whose pictures differ (the sparse sink's
    ``compare(a, b)``, first answer: a third of the smallest change a cut needs) is halved: its middle frame is decoded,
    and so on until every gap left is unchanged or none is left. Two decoded neighbours whose change
    could be a cut (its second answer) get ``MARGIN`` real frames on each side, so the detector judges
    that frame on every real frame its score and its window need (the frame before; PySceneDetect's
    adaptive window, the 2 scores either side), then the gaps that leaves are halved in turn.

    A frame that was not decoded is fed the last decoded picture before it, so its score is zero and the
    score at the next decoded frame is the change over the gap, which ``compare`` called small: no cut
    can be found there, and none is missed unless a picture changes and changes back within one gap (a
    stretch is shorter than the shortest shot, so that takes more than a cut). Frames are fed once no
    decision can reach them any more (two stretches behind the newest sample). Sinks with ``wants`` get
    the frames they want decoded, each its own real frame.
    """

    MARGIN = 3          # real frames before a possible cut (after it: MARGIN - 1)

    def __init__(self, stream, plan, step: int):
        self.step = step
        self.sparse = [p for p in plan if hasattr(p[0], "compare")]
        self.picky = [p for p in plan if not hasattr(p[0], "compare")]
        self.ctx = stream.codec_context
        self.ctx.thread_type = "SLICE"          # a decoded packet's frame comes back at once
        self.next_index = 0                     # next frame number owed to the sinks
        self.next_packet_index = 0
        self.damaged = 0
        self.decoded = 0                        # pictures decoded (cost)
        self._packets: dict[int, object] = {}   # frame number -> packet, received and not yet fed
        self._images: dict[int, list | None] = {}   # tried and not yet fed: the sparse sinks' pictures (None: damaged)
        self._samples: list[int] = []           # samples not yet fed
        self._pairs: dict[tuple[int, int], tuple[bool, bool]] = {}   # (a, b) -> (changed, may cut)
        self._held: list | None = None          # the last picture fed to each sparse sink
        self._av: dict[int, object] = {}        # decoded frames kept for sinks with ``wants`` (not yet fed)
        self._av_bytes = 0

    @classmethod
    def for_stream(cls, stream, plan) -> "_SparsePicture | None":
        steps = [getattr(p[0], "sparse_step", None) for p in plan if hasattr(p[0], "compare")]
        codec = stream.codec_context.codec
        if (not steps or not getattr(codec, "intra_only", False)
                or any(p[1] is None and not hasattr(p[0], "compare") for p in plan)
                or os.environ.get("DAILIES_FULL_DECODE")):
            return None
        step = min(s for s in steps if s)
        return cls(stream, plan, step) if step >= 3 else None

    AV_BUDGET = 256 << 20   # bytes of decoded frames kept for sinks with ``wants``; beyond, decoded again

    def _decode(self, index: int):
        import av

        if index in self._av:
            return self._av[index]
        try:
            frames = self.ctx.decode(self._packets[index])
        except av.error.FFmpegError:       # a damaged picture is skipped, as in a full decode
            self.damaged += 1
            return None
        self.decoded += 1
        frame = frames[-1] if frames else None
        if frame is not None and self.picky:
            size = sum(p.buffer_size for p in frame.planes)
            if self._av_bytes + size <= self.AV_BUDGET:
                self._av[index] = frame
                self._av_bytes += size
        return frame

    def _try(self, index: int) -> bool:
        """Decode frame ``index`` for the sparse sinks; whether it gave a picture."""
        frame = self._decode(index)
        self._images[index] = None if frame is None else [reduce(frame) for _sk, _w, reduce in self.sparse]
        return frame is not None

    def add(self, packet, index: int) -> None:
        self.next_packet_index = index + 1
        self._packets[index] = packet
        if not self._samples or index - self._samples[-1] >= self.step:
            if self._try(index):
                self._samples.append(index)
                if len(self._samples) > 1:
                    self._settle()
                if len(self._samples) > 3:
                    self._feed_until(self._samples[-3])

    def _pair(self, a: int, b: int) -> tuple[bool, bool]:
        if (a, b) not in self._pairs:
            ia, ib = self._images[a], self._images[b]
            each = [sk.compare(ia[i], ib[i]) for i, (sk, *_r) in enumerate(self.sparse)]
            self._pairs[(a, b)] = (any(c for c, _m in each), any(m for _c, m in each))
        return self._pairs[(a, b)]

    def _settle(self) -> None:
        """Decode until every gap between decoded frames (up to the newest sample) is unchanged and every
        possible cut has its margin."""
        while True:
            real = sorted(k for k, im in self._images.items() if im is not None)
            start = self.next_index
            want: set[int] = set()
            for a, b in zip(real, real[1:]):
                gap = [k for k in range(a + 1, b) if k in self._packets and k not in self._images]
                changed, may_cut = self._pair(a, b)
                if gap:
                    if changed:
                        want.add(gap[len(gap) // 2])
                elif may_cut:       # frames past the newest packet: asked for again at the next sample
                    want.update(k for k in range(max(start, b - self.MARGIN), b + self.MARGIN)
                                if k in self._packets and k not in self._images)
            if not want:
                return
            for k in sorted(want):
                self._try(k)

    def _feed_until(self, end: int) -> None:
        """Feed every frame before ``end`` (a decoded frame) to the sinks, and forget them."""
        for m in sorted(k for k in self._packets if k < end):
            damaged = m in self._images and self._images[m] is None       # tried: not decoded again
            images = self._images.pop(m, None)
            if images is None and self._held is None:      # nothing decoded yet: the next picture covers it
                del self._packets[m]
                continue
            if images is not None:
                self._held = images
            for i, (sk, *_r) in enumerate(self.sparse):
                for k in range(self.next_index, m + 1):
                    sk.feed(k, self._held[i])
            if not damaged and any(w is not None and any(w(k) for k in range(self.next_index, m + 1))
                                   for _sk, w, _r in self.picky):
                frame = self._decode(m)
                if frame is not None:
                    _feed_frame(self.picky, frame, m, self.next_index)
            self.next_index = m + 1
            del self._packets[m]
            frame = self._av.pop(m, None)
            if frame is not None:
                self._av_bytes -= sum(p.buffer_size for p in frame.planes)
        self._samples = [s for s in self._samples if s >= end]
        self._pairs = {ab: v for ab, v in self._pairs.items() if ab[0] >= end}

    def close(self) -> None:
        """The end of the stream: its last frame is a sample, then everything is fed."""
        if self._packets:
            last = max(self._packets)
            if last not in self._images and self._try(last):
                self._samples.append(last)
            self._settle()
            self._feed_until(last + 1)


def load_audio(path: str, *, audio_tc_rate: Fraction = Fraction(24000, 1001)) -> np.ndarray:
    """16 kHz mono float32 of any media file (for evaluations and tools)."""
    info = probe(path, audio_tc_rate=audio_tc_rate)
    if not info.has_audio:
        raise MediaError(f"{path}: has no sound.")
    return decode(info).audio


def extract_frame(path: str, frame: int, *, max_width: int | None = None) -> np.ndarray:
    """Frame ``frame`` of a file (numbered as :func:`indexer.media.decode` numbers them) as RGB, found by
    seeking to the nearest keyframe before it."""
    import av

    info = probe(path)
    if not info.has_video:
        raise MediaError(f"{path}: has no picture.")
    container = _open(path)
    try:
        stream = container.streams[info.video_stream]
        tb = stream.time_base
        t0 = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        target = t0 + float(Fraction(frame) / info.rate)
        size = None
        if max_width and info.width and info.width > max_width:
            size = (max_width, max(2, int(round(info.height * max_width / info.width))))
        kw = {"width": size[0], "height": size[1]} if size else {}
        for back in (0.5, 3.0, 15.0, None):
            last_try = back is None or target - back <= t0
            container.seek(0 if back is None else max(0, int((target - back) / tb)), stream=stream,
                           backward=True, any_frame=False)
            first = True
            prev = None
            for f in container.decode(stream):
                if f.pts is None:
                    continue
                idx = int(math.floor((float(f.pts * tb) - t0) * float(info.rate) + 0.5))
                if first and idx > frame and not last_try:
                    break                       # the seek landed after the frame: seek further back
                first = False
                if idx >= frame:                # a frame missing from the stream shows the next picture
                    return f.to_ndarray(format="rgb24", **kw)
                prev = f
            else:
                if prev is not None:            # past the end: the last picture
                    return prev.to_ndarray(format="rgb24", **kw)
            if last_try:
                break
        raise MediaError(f"{path}: frame {frame} cannot be decoded.")
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: frame {frame} cannot be decoded ({exc}).") from None
    finally:
        container.close()
