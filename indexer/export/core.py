"""The facts every export is built from: a take's media facts, and each hit cut out of it with handles.

A :class:`Cut` is one hit placed on its take, in the take's own frames (frame 0 = the file's first
frame, at the file's exact rate). Its source in/out are the hit's TC exactly; handles extend it but are
clamped to the media, so a cut never starts before the file's first frame or ends after its last.
Every writer (OTIO, EDL, FCP XML, FCPXML, ALE, markers) works from cuts, so they all agree.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterable, Mapping, Sequence

from ..errors import DailiesError, UsageError
from ..records import Hit
from ..timecode import (Clock, counted_frames, frames_per_day, frames_to_tc, is_drop_frame_rate, nominal_fps,
                        parse_rate, rate_label, tc_to_frames)

DEFAULT_HANDLES = 12
DEFAULT_REEL_LEN = 8          # CMX 3600 reel names are 8 characters
DEFAULT_RECORD_START = "01:00:00:00"
ORDERS = ("rank", "scene")


@dataclass(frozen=True)
class Source:
    """A take's media facts, as the index holds them (one row of ``takes``)."""

    take_id: str
    path: str
    name: str
    scene: str | None
    take: str | None
    camera: str | None
    rate: Fraction
    start_tc: str
    frames: int                       # media length in frames at ``rate``
    has_video: bool = True
    has_audio: bool = True
    audio_channels: int = 0
    width: int | None = None
    height: int | None = None
    audio_rate: int | None = None
    circled: bool = False             # circled (printed) by the script supervisor, with a note
    circle_note: str | None = None

    @property
    def clock(self) -> Clock:
        return Clock.from_start_tc(self.start_tc, self.rate)

    @property
    def drop_frame(self) -> bool:
        return self.clock.drop_frame

    @property
    def start_frame(self) -> int:
        return self.clock.start_frame

    @property
    def base(self) -> "TimecodeBase":
        return TimecodeBase(self.rate, self.drop_frame)

    def tc(self, frame: int) -> str:
        """Source TC of frame ``frame`` of the file (``frame == frames`` gives the exclusive end)."""
        return self.clock.tc(frame)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Source":
        """From a ``takes`` row of the catalog (read by column name, or a dict)."""
        import json
        import math

        keys = row.keys() if hasattr(row, "keys") else row
        get = (lambda k, d=None: row[k] if k in keys and row[k] is not None else d)
        rate = parse_rate(get("rate"))
        info = {}
        if get("info"):
            try:
                info = json.loads(get("info"))
            except (TypeError, ValueError):
                info = {}
        frames = get("frames") or info.get("frames")
        if not frames:
            # Sound files: the frames the audio covers at the TC rate (a partly covered last frame counts).
            duration = float(get("duration") or info.get("duration") or 0.0)
            frames = max(1, math.ceil(duration * rate - 1e-6))
        audio = info.get("audio") or []
        channels = sum(int(a.get("channels") or 0) for a in audio)
        has_video = bool(get("has_video", info.get("has_video", True)))
        has_audio = bool(get("has_audio", bool(audio)))
        return cls(
            take_id=get("take_id"), path=get("path"), name=get("name"), scene=get("scene"), take=get("take"),
            camera=get("camera"), rate=rate, start_tc=get("start_tc") or "00:00:00:00", frames=int(frames),
            has_video=has_video, has_audio=has_audio, audio_channels=channels,
            width=info.get("width"), height=info.get("height"),
            audio_rate=(audio[0].get("sample_rate") if audio else None),
            circled=bool(get("circled", False)), circle_note=get("circle_note"))


@dataclass(frozen=True)
class TimecodeBase:
    """A timecode counting: rate plus drop-frame. EDLs and ALEs hold exactly one."""

    rate: Fraction
    drop_frame: bool = False

    @property
    def label(self) -> str:
        """``23.976``, ``25``, ``29.97DF``, ``29.97NDF`` (used in file names)."""
        return rate_label(self.rate, self.drop_frame).replace(" ", "")

    @property
    def label_rate(self) -> float:
        """The rate at which OTIO's ``to_timecode`` writes this base's labels with no rescaling.

        Drop-frame counting needs the exact NTSC rate; every non-drop counting writes the same labels
        as the integer rate it counts at (23.976 counts 24, 29.97 NDF counts 30).
        """
        return float(self.rate) if self.drop_frame else float(nominal_fps(self.rate))

    def tc(self, frames: int) -> str:
        return frames_to_tc(frames, self.rate, self.drop_frame)

    def frames(self, tc: str) -> int:
        """Frame count of a TC in this counting (``01:00:00:00`` is read as drop-frame in a DF base)."""
        return counted_frames(tc, self.rate, self.drop_frame)


@dataclass
class Cut:
    """One hit on its take: frames of the file (0 = first frame), exclusive ends, handles applied."""

    hit: Hit
    source: Source
    first: int          # first frame of the hit
    end: int            # frame after the hit's last
    head: int = 0       # handle frames actually added before
    tail: int = 0       # ... and after
    notes: list[str] = field(default_factory=list)
    marks: list[tuple[int, int, str]] = field(default_factory=list)  # review notes in it: (file frame, frames, name)

    @property
    def src_in(self) -> int:
        return self.first - self.head

    @property
    def src_out(self) -> int:
        return self.end + self.tail

    @property
    def frames(self) -> int:
        return self.src_out - self.src_in

    @property
    def tc_in(self) -> str:
        """Source TC of the cut's first frame (handles included)."""
        return self.source.tc(self.src_in)

    @property
    def tc_out(self) -> str:
        return self.source.tc(self.src_out)


# ------------------------------------------------------------------------------------------ cutting

def fps_label(rate: Fraction) -> str:
    """A rate as NLEs print it: 23.976, 24, 25, 29.97, 59.94 (no drop-frame suffix)."""
    if rate.denominator == 1:
        return str(rate.numerator)
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def hit_frames(hit: Hit, source: Source) -> tuple[int, int]:
    """The hit's first frame and exclusive end frame in the file, from its TC in/out."""
    base = source.base
    start = source.start_frame
    day = frames_per_day(base.rate, base.drop_frame)
    first = (tc_to_frames(hit.tc_in, source.rate) - start) % day
    end = (tc_to_frames(hit.tc_out, source.rate) - start) % day
    if end < first:     # a span that crosses the take's end of day once more cannot be real; be safe
        end = first
    return first, end


def cut_hit(hit: Hit, source: Source, handles: int = DEFAULT_HANDLES) -> Cut:
    """Place a hit on its take and add handles, clamped to the media."""
    if handles < 0:
        raise UsageError(f"Handles must be 0 or more frames, not {handles}.")
    first, end = hit_frames(hit, source)
    notes = []
    if first >= source.frames:
        raise DailiesError(
            f"The hit at {hit.tc_in} lies past the end of {source.name} (its media ends at "
            f"{source.tc(source.frames)}); re-index the take.")
    if end > source.frames:
        notes.append(f"{hit.tc_out} is past the media's end; cut at {source.tc(source.frames)}")
        end = source.frames
    if end <= first:
        end = first + 1
    head = min(handles, first)
    tail = min(handles, source.frames - end)
    return Cut(hit=hit, source=source, first=first, end=end, head=head, tail=tail, notes=notes)


def _natural(value: str | None) -> tuple:
    """Sort key that orders 2 before 10 and 12A before 12B (scene and take numbers)."""
    if value is None:
        return ((1, ""),)
    parts = re.split(r"(\d+)", str(value))
    return tuple((0, int(p)) if p.isdigit() else (0, p.lower()) for p in parts if p != "") or ((0, ""),)


def order_hits(hits: Sequence[Hit], order: str = "rank") -> list[Hit]:
    """``rank``: as the search ranked them; ``scene``: by scene, take, camera, clip, then time."""
    if order not in ORDERS:
        raise UsageError(f"Unknown order '{order}' (use one of: {', '.join(ORDERS)}).")
    if order == "rank":
        return list(hits)
    return sorted(hits, key=lambda h: (_natural(h.scene), _natural(h.take), _natural(h.camera),
                                       _natural(h.name), h.start))


def best_per_take(hits: Iterable[Hit]) -> list[Hit]:
    """Keep each take's first hit (searches return a take's best hit first)."""
    seen: set[str] = set()
    out = []
    for h in hits:
        if h.take_id in seen:
            continue
        seen.add(h.take_id)
        out.append(h)
    return out


def plan_cuts(hits: Sequence[Hit], sources: Mapping[str, Source], *, handles: int = DEFAULT_HANDLES,
              order: str = "rank") -> list[Cut]:
    """Cuts for hits in the requested order. Every hit's take must be in ``sources``."""
    cuts = []
    for h in order_hits(hits, order):
        src = sources.get(h.take_id)
        if src is None:
            raise DailiesError(f"The take of {h.name} ({h.take_id}) is not in the index any more; "
                               "search again.")
        cuts.append(cut_hit(h, src, handles))
    return cuts


def timeline_base(cuts: Sequence[Cut], rate: Fraction | str | None = None) -> TimecodeBase:
    """The timeline's counting: the given rate, or the most common source rate among the cuts."""
    if rate is not None:
        r = parse_rate(rate)
        dfs = [c.source.drop_frame for c in cuts if c.source.rate == r]
        drop = Counter(dfs).most_common(1)[0][0] if dfs else is_drop_frame_rate(r)
        return TimecodeBase(r, drop)
    if not cuts:
        return TimecodeBase(Fraction(24000, 1001), False)
    counts = Counter(c.source.rate for c in cuts)
    best = max(counts.values())
    r = next(c.source.rate for c in cuts if counts[c.source.rate] == best)   # ties: the first cut's rate
    dfs = Counter(c.source.drop_frame for c in cuts if c.source.rate == r)
    return TimecodeBase(r, dfs.most_common(1)[0][0])


def group_by_base(cuts: Sequence[Cut]) -> dict[TimecodeBase, list[Cut]]:
    """Cuts by their source's timecode base, in order of first appearance."""
    groups: dict[TimecodeBase, list[Cut]] = {}
    for c in cuts:
        groups.setdefault(c.source.base, []).append(c)
    return groups


# ------------------------------------------------------------------------------------------ names

def reel_name(name: str, limit: int | None = DEFAULT_REEL_LEN) -> str:
    """A tape/reel name from a clip name, within an EDL's reel limit (8 for CMX 3600).

    Letters and digits only; if too long, lower-case vowels are dropped from the end first
    (``12A_T1_CamA`` -> ``12AT1CmA``), and failing that the name is cut and given a short checksum so
    that different clips keep different reels. ``limit`` 0/None keeps the whole name (spaces -> ``_``).
    """
    if not limit:
        return re.sub(r"\s+", "_", name.strip()) or "AX"
    compact = re.sub(r"[^A-Za-z0-9]", "", name) or "AX"
    if len(compact) <= limit:
        return compact
    chars = list(compact)
    i = len(chars) - 1
    while len(chars) > limit and i > 0:
        if chars[i] in "aeiou":
            del chars[i]
        i -= 1
    if len(chars) <= limit:
        return "".join(chars)
    return hashed_reel(name, limit)


def hashed_reel(name: str, limit: int) -> str:
    digest = _base36(zlib.crc32(name.encode("utf-8")))[:3].rjust(3, "0")
    compact = re.sub(r"[^A-Za-z0-9]", "", name) or "AX"
    return compact[: max(1, limit - len(digest))] + digest


def _base36(n: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def reel_names(sources: Iterable[Source], limit: int | None = DEFAULT_REEL_LEN) -> dict[str, str]:
    """Reel per take id, unique within the set (clashing short names fall back to checksummed ones)."""
    sources = list({s.take_id: s for s in sources}.values())
    reels = {s.take_id: reel_name(s.name, limit) for s in sources}
    clash = Counter(reels.values())
    for s in sources:
        if clash[reels[s.take_id]] > 1 and limit:
            reels[s.take_id] = hashed_reel(s.name + s.take_id, limit)
    return reels


# ------------------------------------------------------------------------------------------ markers

# One colour per speaker, in order of first appearance: (OTIO MarkerColor, Avid, Resolve).
SPEAKER_COLOURS = (
    ("BLUE", "blue", "Blue"), ("GREEN", "green", "Green"), ("YELLOW", "yellow", "Yellow"),
    ("CYAN", "cyan", "Cyan"), ("MAGENTA", "magenta", "Fuchsia"), ("RED", "red", "Red"),
    ("PURPLE", "magenta", "Purple"), ("ORANGE", "yellow", "Sand"), ("PINK", "magenta", "Pink"),
)
NO_SPEAKER_COLOUR = ("WHITE", "white", "Cream")   # lines whose speaker is not known


def speaker_colours(hits: Iterable[Hit]) -> dict[str | None, tuple[str, str, str]]:
    out: dict[str | None, tuple[str, str, str]] = {None: NO_SPEAKER_COLOUR}
    n = 0
    for h in hits:
        if h.speaker and h.speaker not in out:
            out[h.speaker] = SPEAKER_COLOURS[n % len(SPEAKER_COLOURS)]
            n += 1
    return out


def one_line(text: str | None) -> str:
    """Text made safe for one-line formats (no tabs, newlines or pipes)."""
    return re.sub(r"\s+", " ", (text or "").replace("|", "/")).strip()


def marker_text(hit: Hit) -> str:
    """``speaker: text`` (just the text when the speaker is unknown)."""
    text = one_line(hit.text)
    return f"{one_line(hit.speaker)}: {text}" if hit.speaker else text


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """What a marker/clip carries about its hit (OTIO metadata under ``dailies``)."""
    d = hit.to_json()
    d.pop("rankers", None)
    d.pop("diff", None)
    return {k: v for k, v in d.items() if v not in (None, [], {})}
