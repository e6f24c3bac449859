"""The speaker step's records: one take's diarization (:class:`Diarization`: turns, exclusive turns,
local speakers with their embeddings, speech segments and windows, channel ownership) and its
(de)serialisation for the per-take step cache.

pyannote is imported inside functions only (``pyannote.core`` to rebuild turns from the cache).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from pyannote.core import Annotation, Timeline

SAMPLE_RATE = 16000              # the speaker step takes 16 kHz mono float32 (the decode pass's sound)


@dataclass
class LocalSpeaker:
    """A speaker as one take's diarization sees it (``label``), with what identifies the voice."""

    label: str
    embedding: np.ndarray | None         # (192,) float32, unit length; None when none could be made
    seconds: float                       # exclusive speech time in the take
    channel: int | None = None           # the channel this speaker dominates (iso/lav), if any


@dataclass
class SpeechSegment:
    """A stretch of one speaker's exclusive speech with its own CAM++ embedding (unit length)."""

    start: float
    end: float
    label: str
    embedding: np.ndarray | None

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Windows:
    """CAM++ embeddings of short windows of exclusive speech (``reseg_window`` s every ``reseg_hop`` s,
    one window of the whole turn when it is shorter): what :func:`reread` matches against the voices
    of the other takes."""

    start: np.ndarray                    # (N,) s
    length: np.ndarray                   # (N,) s
    emb: np.ndarray                      # (N, D) float32, unit rows (zero rows: no embedding)

    def to_json(self) -> dict[str, Any]:
        import base64

        return {"start": [round(float(v), 3) for v in self.start], "length": [round(float(v), 3) for v in self.length],
                "dim": int(self.emb.shape[1]),
                "emb_f16": base64.b64encode(self.emb.astype("<f2").tobytes()).decode("ascii")}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Windows":
        import base64

        emb = np.frombuffer(base64.b64decode(d["emb_f16"]), dtype="<f2").astype(np.float32)
        return cls(np.asarray(d["start"], dtype=np.float64), np.asarray(d["length"], dtype=np.float64),
                   emb.reshape(-1, int(d["dim"])))


@dataclass
class Diarization:
    turns: "Annotation"                  # speaker turns, overlap included
    exclusive: "Annotation"              # one speaker at a time
    speakers: list[LocalSpeaker]
    duration: float
    channel_owner: dict[int, str] = field(default_factory=dict)   # channel index -> local label
    channel_levels: np.ndarray | None = None   # (C, frames) level in dB, 10 ms frames
    segments: list[SpeechSegment] = field(default_factory=list)
    windows: Windows | None = None

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.speakers]

    def overlap(self) -> "Timeline":
        return self.turns.get_overlap()

    def embedding(self, label: str) -> np.ndarray | None:
        for s in self.speakers:
            if s.label == label:
                return s.embedding
        return None

    # ---- (de)serialisation for the per-take step cache
    def to_json(self) -> dict[str, Any]:
        return {
            "duration": round(self.duration, 3),
            "turns": _turns_json(self.turns),
            "exclusive": _turns_json(self.exclusive),
            "speakers": [{"label": s.label, "seconds": round(s.seconds, 3), "channel": s.channel,
                          "embedding": None if s.embedding is None else [round(float(v), 6) for v in s.embedding]}
                         for s in self.speakers],
            "channel_owner": {str(k): v for k, v in self.channel_owner.items()},
            "segments": [[round(g.start, 3), round(g.end, 3), g.label,
                          None if g.embedding is None else [round(float(v), 5) for v in g.embedding]]
                         for g in self.segments],
            "windows": None if self.windows is None else self.windows.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Diarization":
        return cls(
            turns=_turns_from_json(d["turns"]), exclusive=_turns_from_json(d["exclusive"]),
            speakers=[LocalSpeaker(s["label"], None if s["embedding"] is None else
                                   np.asarray(s["embedding"], dtype=np.float32), s["seconds"], s.get("channel"))
                      for s in d["speakers"]],
            duration=d["duration"], channel_owner={int(k): v for k, v in d.get("channel_owner", {}).items()},
            segments=[SpeechSegment(a, b, lab, None if e is None else np.asarray(e, dtype=np.float32))
                      for a, b, lab, e in d.get("segments", [])],
            windows=Windows.from_json(d["windows"]) if d.get("windows") else None)


def _turns_json(ann: "Annotation") -> list[list]:
    return [[round(seg.start, 3), round(seg.end, 3), str(label)] for seg, _, label in ann.itertracks(yield_label=True)]


def _turns_from_json(rows: list[list]) -> "Annotation":
    from pyannote.core import Annotation, Segment

    ann = Annotation()
    for k, (start, end, label) in enumerate(rows):
        ann[Segment(start, end), k] = label
    return ann
