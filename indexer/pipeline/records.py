"""What a run reports and hands around: the reporter protocol, each file's result, the run's summary, and a take
between its steps (:class:`_Prepared`, which travels to a cluster worker and back)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

from ..records import MediaInfo, Shot, Word


class Reporter(Protocol):
    """Progress and messages from a run (the CLI draws them; tests may record them). ``step`` may be
    called from the worker thread (speech and speakers of the previous file)."""

    def run_started(self, total: int) -> None: ...
    def file_started(self, number: int, path: str) -> None: ...
    def step(self, name: str, done: float | None = None, total: float | None = None,
             file: str | None = None) -> None: ...
    def file_finished(self, result: "FileResult") -> None: ...
    def warning(self, message: str) -> None: ...
    def submitted(self, path: str, media_seconds: float) -> None: ...   # a take handed to a worker (cluster runs)


class NullReporter:
    def run_started(self, total: int) -> None: pass
    def file_started(self, number: int, path: str) -> None: pass
    def step(self, name: str, done: float | None = None, total: float | None = None,
             file: str | None = None) -> None: pass
    def file_finished(self, result: "FileResult") -> None: pass
    def warning(self, message: str) -> None: pass
    def submitted(self, path: str, media_seconds: float) -> None: pass


@dataclass
class FileResult:
    path: str
    status: str                 # indexed | unchanged | duplicate | moved | failed
    take_id: str | None = None
    message: str | None = None
    lines: int = 0
    shots: int = 0
    seconds: float = 0.0
    media_seconds: float = 0.0


@dataclass
class RunSummary:
    results: list[FileResult] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    worker_busy: bool = False          # interrupted while a file was being transcribed
    reread: int = 0                    # takes whose lines changed when all takes were read again (voices)
    timings: dict = field(default_factory=dict)   # seconds of the run's own work (model checks, end-of-run pass)
    retried: int = 0                   # takes submitted again after their worker died (cluster runs)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed else 0


@dataclass
class _Prepared:
    """A take after its decoding pass, waiting for the sound models."""

    path: str
    st: os.stat_result
    digest: str
    take_id: str
    info: MediaInfo
    t_start: float
    shots: list[Shot] = field(default_factory=list)
    audio: object = None                  # 16 kHz mono float32
    channels: object = None               # (C, n) when the take has iso tracks (or --channels asks for them)
    roles: list = field(default_factory=list)   # tracks.ChannelRole per channel
    picture: object = None                # picture.step.PictureResult
    models: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    asr_key: str = ""
    cached_words: dict | None = None
    diar_key: str = ""
    cached_diar: dict | None = None
    steps: dict = field(default_factory=dict)        # step -> (key, data): what an earlier run finished
    new_steps: list = field(default_factory=list)    # (step, key, data) finished now, saved by the driver
    warnings: list = field(default_factory=list)     # said by the driver (the worker may be another process)
    lines: list = field(default_factory=list)        # the take's lines before any speaker split
    diar: object = None                              # the take's diarization (speakers.records.Diarization)
    voice_model: str | None = None                   # what made the speakers' embeddings

    def cached(self, step: str, key: str):
        """A step an earlier run finished with the same settings (``key``), or None."""
        row = self.steps.get(step)
        return row[1] if row is not None and row[0] == key else None


@dataclass
class _Heard:
    words: list[Word] = field(default_factory=list)
    asr_info: dict | None = None          # set when the words are new (to be saved as a step)
    diar: object = None
    diar_fresh: bool = False
    timings: dict = field(default_factory=dict)

