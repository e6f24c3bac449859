"""Typed records passed between the steps of the pipeline and returned by searches."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction
from typing import Any

from .timecode import Clock, frame_after, frame_at, rate_str


@dataclass
class AudioStream:
    index: int            # stream index in the container
    channels: int
    sample_rate: int
    codec: str
    layout: str | None = None
    language: str | None = None


@dataclass
class MediaInfo:
    """What probing a file tells us; the facts a take is built on."""

    path: str
    name: str                      # file name without extension: the clip name
    size: int
    mtime_ns: int
    container: str
    duration: float                # seconds
    rate: Fraction                 # picture rate, or the timecode rate of an audio-only file
    start_tc: str                  # as the file states it (or 00:00:00:00 when it states none)
    tc_source: str                 # "tmcd", "stream", "format", "bext", "none"
    drop_frame: bool
    has_video: bool
    frames: int | None = None      # picture frames
    width: int | None = None
    height: int | None = None
    video_codec: str | None = None
    video_stream: int | None = None
    audio: list[AudioStream] = field(default_factory=list)
    subtitle_streams: int = 0
    scene: str | None = None
    take: str | None = None
    camera: str | None = None
    reel: str | None = None
    notes: list[str] = field(default_factory=list)   # things worth telling the user (e.g. no timecode)
    track_names: list[str | None] | None = None       # per channel, from the iXML TRACK_LIST (production sound)

    @property
    def has_audio(self) -> bool:
        return bool(self.audio)

    @property
    def clock(self) -> Clock:
        return Clock.from_start_tc(self.start_tc, self.rate)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["rate"] = rate_str(self.rate)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "MediaInfo":
        d = dict(d)
        d["rate"] = Fraction(d["rate"])
        d["audio"] = [AudioStream(**a) for a in d.get("audio") or []]
        return cls(**d)


@dataclass
class Shot:
    index: int
    first_frame: int               # inclusive
    last_frame: int                # inclusive

    def start(self, rate: Fraction) -> float:
        return float(Fraction(self.first_frame) / rate)

    def end(self, rate: Fraction) -> float:
        return float(Fraction(self.last_frame + 1) / rate)


@dataclass
class Word:
    start: float
    end: float
    text: str                      # as recognised, punctuation attached, no leading space
    probability: float
    channel: int | None = None     # the iso channel (0-based) it was heard on; None: the mix

    def to_json(self) -> list:
        out = [round(self.start, 3), round(self.end, 3), self.text, round(self.probability, 3)]
        return out if self.channel is None else out + [self.channel]

    @classmethod
    def from_json(cls, v: list) -> "Word":
        return cls(float(v[0]), float(v[1]), str(v[2]), float(v[3]), int(v[4]) if len(v) > 4 and v[4] is not None else None)


@dataclass
class Line:
    """One utterance: consecutive words of one speaker between pauses or sentence ends."""

    index: int
    start: float
    end: float
    words: list[Word]
    shots: list[int] = field(default_factory=list)
    speaker: str | None = None

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words).strip()

    @property
    def channel(self) -> int | None:
        """The iso channel (0-based) a line was heard on when all its words come from one; else None."""
        return line_channel(self.words)


def line_channel(words: list[Word]) -> int | None:
    chans = {w.channel for w in words}
    return chans.pop() if len(chans) == 1 else None


@dataclass(frozen=True)
class Take:
    """An indexed (or failed, or pending) take as the catalog holds it: its facts, exact rate, start
    timecode and the clock that turns seconds into source timecode.

    ``take["name"]``, ``dict(take)``: the catalog's columns as stored (``rate`` as "24000/1001",
    ``drop_frame`` as 0/1, ``models``/``info``/``notes`` as JSON text), for code written against the rows."""

    take_id: str
    path: str
    name: str
    scene: str | None
    take: str | None
    camera: str | None
    rate: Fraction
    start_tc: str
    drop_frame: bool
    duration: float | None
    frames: int | None
    status: str
    n_lines: int
    n_shots: int
    n_frames: int
    indexed_at: str | None
    columns: dict[str, Any] = field(repr=False, compare=False)
    circled: bool = False          # circled (printed) by the script supervisor: `dailies circle`
    circle_note: str | None = None

    @classmethod
    def from_columns(cls, row) -> "Take":
        """From a ``takes`` row (anything read by column name: a dict, a database row)."""
        c = {k: row[k] for k in row.keys()}
        return cls(take_id=c["take_id"], path=c["path"], name=c["name"], scene=c.get("scene"), take=c.get("take"),
                   camera=c.get("camera"), rate=Fraction(c["rate"]), start_tc=c["start_tc"],
                   drop_frame=bool(c.get("drop_frame")), duration=c.get("duration"), frames=c.get("frames"),
                   status=c.get("status") or "", n_lines=c.get("n_lines") or 0, n_shots=c.get("n_shots") or 0,
                   n_frames=c.get("n_frames") or 0, indexed_at=c.get("indexed_at"), columns=c,
                   circled=bool(c.get("circled")), circle_note=c.get("circle_note"))

    @functools.cached_property
    def clock(self) -> Clock:
        return Clock.from_start_tc(self.start_tc, self.rate)

    @property
    def rate_str(self) -> str:
        return rate_str(self.rate)

    def hit(self, kind: str, start: float, end: float, text: str, score: float, **more: Any) -> "Hit":
        """A hit in this take from ``start`` to ``end`` seconds (source TC in/out from its clock)."""
        return Hit(kind=kind, clip=self.path, take_id=self.take_id, name=self.name, scene=self.scene,
                   take=self.take, camera=self.camera, start=start, end=end, tc_in=self.clock.tc_in(start),
                   tc_out=self.clock.tc_out(end), rate=self.rate_str, text=text, score=score,
                   circled=self.circled, **more)

    # the catalog's columns, read by name (as rows were)
    def __getitem__(self, key: str) -> Any:
        return self.columns[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.columns.get(key, default)

    def keys(self):
        return self.columns.keys()


def shots_spanning(shots: list[Shot], start: float, end: float, rate: Fraction) -> list[int]:
    """Indexes of the shots that the time span [start, end) overlaps."""
    if not shots:
        return []
    first = frame_at(start, rate)
    last = max(first, frame_after(end, rate) - 1)
    return [s.index for s in shots if s.first_frame <= last and s.last_frame >= first]


@dataclass
class Hit:
    """One search result. Every search returns these, so exports and --json take any of them."""

    kind: str                      # line, speaker, visual, script; circle (a circled take's marker)
    clip: str                      # path as indexed
    take_id: str
    name: str                      # clip name (file name without extension)
    scene: str | None
    take: str | None
    camera: str | None
    start: float                   # seconds from the file's first frame
    end: float
    tc_in: str
    tc_out: str                    # exclusive
    rate: str
    text: str                      # delivered words
    score: float
    shots: list[int] = field(default_factory=list)
    speaker: str | None = None
    voice_id: str | None = None
    match: float | None = None     # share of the query's words delivered (0..1)
    diff: str | None = None        # delivered text with differences from the query marked
    line_ids: list[str] = field(default_factory=list)
    rankers: dict[str, float] = field(default_factory=dict)
    # speakers
    speaker_confidence: float | None = None
    overlap: bool | None = None
    channel: int | None = None     # production sound: the iso channel (1-based) the words were heard on
    # picture: the shot a visual hit stands for, and its best frame
    shot: int | None = None
    frame: int | None = None
    frame_tc: str | None = None
    frame_seconds: float | None = None
    tags: list[str] = field(default_factory=list)
    circled: bool = False          # the hit's take is circled (printed)

    def to_json(self) -> dict[str, Any]:
        # asdict's deep copy, field by field: a hit's fields are plain values, lists of them and one dict of
        # floats (rankers, rebuilt below); asdict's recursion was 4 ms of every 50-hit search answer.
        d = {}
        for name in _HIT_FIELDS:
            v = getattr(self, name)
            d[name] = list(v) if type(v) is list else v
        d["start"] = round(self.start, 3)
        d["end"] = round(self.end, 3)
        if self.frame_seconds is not None:
            d["frame_seconds"] = round(self.frame_seconds, 3)
        if self.speaker_confidence is not None:
            d["speaker_confidence"] = round(self.speaker_confidence, 3)
        d["score"] = round(self.score, 4)
        if self.match is not None:
            d["match"] = round(self.match, 3)
        d["rankers"] = {k: round(v, 4) for k, v in self.rankers.items()}
        return d


_HIT_FIELDS = tuple(f.name for f in fields(Hit))
