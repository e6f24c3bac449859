"""Index a set of files: the only module that knows the order of the steps.

Per file: stat -> (unchanged? skip) -> content hash -> (known content? skip or follow the move) ->
probe -> one decoding pass (16 kHz audio in memory + reduced frames to the shot detector) ->
speech (faster-whisper, loaded once per run) -> lines (group, refine edges, attach shots) ->
text vectors -> commit (Chroma, then the catalog in one transaction).

The driver's side (:meth:`Indexer._prepare`: skip, hash, probe; :meth:`Indexer._commit`: voices, text
vectors, store) runs in this process, the one writer; the take's heavy work (:meth:`Indexer.compute`: the
decoding pass, speech, speakers, lines) touches no store, so it runs in this process's sound thread
(:meth:`Indexer.run`) or on other processes and machines (:meth:`Indexer.run_on`, Ray workers:
:mod:`indexer.cluster`) with the same result.

Finished steps are saved per take, so an interrupted run (Ctrl-C, kill -9, power cut) resumes
where it stopped; a take only becomes searchable when all of it is committed. A file that fails
is recorded with its reason and the batch goes on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

from . import __version__, hashing
from .align import LineRules, assign_lines, build_lines
from .config import MEDIA_EXTENSIONS, IndexSettings
from .errors import DailiesError, MediaError
from .records import Line, MediaInfo, Shot, Word
from .store import Index
from .threads import CtrlC, Job, Worker

log = logging.getLogger(__name__)


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


def collect_files(paths: Iterable[str | os.PathLike], exclude: Path | None = None) -> tuple[list[str], list[FileResult]]:
    """Files to index: named files as given, folders searched recursively for media extensions."""
    found: list[str] = []
    missing: list[FileResult] = []
    seen: set[str] = set()
    skip_dir = exclude.resolve() if exclude is not None and exclude.exists() else None

    def add(p: Path) -> None:
        # Absolute paths (not symlink-resolved: keep the volume names the user sees), so the index
        # and its exports work from any working directory.
        path = os.path.abspath(p)
        key = str(Path(path).resolve())
        if key not in seen:
            seen.add(key)
            found.append(path)

    for raw in paths:
        p = Path(raw).expanduser()
        try:
            # a path that cannot even be looked at (a folder above it not readable, a name too long) is
            # that path's failure, not the batch's
            is_dir, exists = p.is_dir(), p.exists()
            if exists and not is_dir:
                p.resolve()
        except OSError as exc:
            missing.append(FileResult(os.path.abspath(p), "failed",
                                      message=f"{p}: cannot be read ({exc.strerror or exc})."))
            continue
        if is_dir:
            for root, dirs, files in os.walk(p):
                rootp = Path(root)
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                                 and (skip_dir is None or (rootp / d).resolve() != skip_dir))
                for name in sorted(files):
                    if not name.startswith(".") and Path(name).suffix.lower() in MEDIA_EXTENSIONS:
                        add(rootp / name)
        elif exists:
            add(p)
        else:
            missing.append(FileResult(os.path.abspath(p), "failed", message=f"{p}: no such file or folder."))
    return found, missing


class Indexer:
    """Indexes files into one index. Models are loaded once and kept for the whole run."""

    def __init__(self, index: Index, settings: IndexSettings | None = None, reporter: Reporter | None = None):
        self.index = index
        self.settings = settings or IndexSettings()
        self.reporter = reporter or NullReporter()
        self._transcriber = None
        self.rules = LineRules()
        self.diarizer = None        # speakers, or None when off or the weights are absent
        self.speakers_skipped: str | None = None
        self.clip = None            # CLIP embedder, or None when the picture step is off or has no weights
        self.tagger = None
        self.picture_skipped: str | None = None    # why there is no picture step (said once, recorded)
        self._checked = False
        self.timings: dict[str, float] = {}        # the run's fixed costs, by step (RunSummary.timings)

    # -------------------------------------------------------------- models
    def transcriber(self):
        if self._transcriber is None:
            from .speech import Transcriber

            s = self.settings
            self._transcriber = Transcriber(s.whisper_model, device=s.device, compute_type=s.compute_type,
                                            threads=s.threads, language=s.language, beam_size=s.beam_size,
                                            vad=s.vad)
        return self._transcriber

    def check_models(self, *, speech: bool = True) -> None:
        """Resolve models before touching any file, so a bad model name fails the run at once."""
        from . import embed
        from .speakers.channels import parse_channels

        self._checked = True
        parse_channels(self.settings.channels)        # a bad --channels fails the run at once, speakers or not
        t = time.monotonic()
        if speech:
            self.transcriber()
            self.index.check_embedder("lines", embed.describe())
            t = self._timed("check: speech, text vectors", t)
            self._load_speakers()
            t = self._timed("check: speakers", t)
        self._load_picture()
        self._check_picture_index()
        self._timed("check: picture", t)

    def load_models(self) -> None:
        """A worker's side of :meth:`check_models` (no index): the models its takes need, each once."""
        from .speakers.channels import parse_channels

        self._checked = True
        parse_channels(self.settings.channels)
        self.transcriber()
        self._load_speakers()
        self._load_picture()

    def describe_models(self) -> dict:
        """What this process indexes with (a cluster's driver checks that every worker agrees with it)."""
        return {"whisper": self.transcriber().describe(),
                "diarization": self.diarizer.describe() if self.diarizer is not None else None,
                "clip": self.clip.describe() if self.clip is not None else None}

    def _timed(self, name: str, since: float) -> float:
        now = time.monotonic()
        self.timings[name] = self.timings.get(name, 0.0) + now - since
        return now

    def _load_speakers(self) -> None:
        s = self.settings
        if not s.speakers:
            self.speakers_skipped = "speakers off (--no-speakers)"
            return
        from .models import diarization
        from .speakers.channels import parse_channels
        from .speakers.diarize import Diarizer

        parse_channels(s.channels)                       # a bad --channels fails the run at once
        try:
            models = diarization.resolve(s.diarization_model)
        except diarization.ModelMissingError as exc:      # corrupt weights (ModelCorruptError) stop the run
            self.speakers_skipped = exc.message
            self.reporter.warning(f"No speakers: {exc.message} Lines get no speaker.")
            return
        from .config import torch_device

        device = torch_device(s.device, "speaker diarization")      # --device cuda with no GPU fails at once
        self.diarizer = Diarizer(models, threads=s.threads, channels=s.channels, device=device)
        if models.kind == "pipeline":
            # a pyannote pipeline (folder or hub id) that cannot load stops the run here, in one
            # sentence, instead of failing every file of the batch with the same error
            self.diarizer.pipeline

    def _load_picture(self) -> None:
        s = self.settings
        if not s.visual:
            self.picture_skipped = "picture step off (--no-visual)"
            return
        from .models.clip import parse_clip_spec
        from .picture.step import load_for_indexing

        model, tag = parse_clip_spec(s.clip_model)
        self.clip, self.tagger, message = load_for_indexing(
            model, tag, s.clip_checkpoint, device=s.device, batch_size=s.clip_batch, threads=s.threads,
            vocabulary=s.tag_vocabulary)
        if message:
            self.picture_skipped = message            # the whole sentence is recorded (`dailies status`)
            if "is not on this machine" in message:   # said on every run: one line, what to do
                spec = f"clip:{s.clip_model}" if s.clip_model else "clip"
                self.reporter.warning(f"No picture: no CLIP weights; `dailies models fetch {spec}` "
                                      "or --clip-checkpoint.")
            else:
                self.reporter.warning(f"No picture step: {message}")

    def _check_picture_index(self) -> None:
        """The index's picture vectors must come from the same CLIP (``--force`` drops them)."""
        if self.clip is None:
            return
        from .store import EmbedderMismatchError

        s = self.settings
        desc = self.clip.describe()
        try:
            self.index.check_embedder(
                "frames", desc, advice="re-embed the picture of every take with the new model with "
                                       "`dailies index --visual-only --force FOLDER...` (drops the old vectors), "
                                       "or pass the first model again.")
        except EmbedderMismatchError as exc:
            if not s.force:
                raise
            self.index.drop_vectors("frames")
            self.index.check_embedder("frames", desc)
            self.reporter.warning(f"Dropped every picture vector made with {exc.stored_name}; takes not in this "
                                  "run have no picture vectors until they are re-embedded (--visual-only).")

    def keyframe_policy(self):
        from .picture.keyframes import KeyframePolicy

        return KeyframePolicy(every=self.settings.keyframe_every)

    # -------------------------------------------------------------- run
    def _collect(self, paths: Iterable[str | os.PathLike]) -> tuple["RunSummary", list[str]]:
        """The media files under `paths`; paths that do not exist are reported (and summarised) now."""
        summary = RunSummary()
        files, missing = collect_files(paths, exclude=self.index.path)
        if files:         # the vector store opens while the first take is hashed, decoded and heard
            self.index.vectors.open_soon(("lines",) + (("frames",) if self.clip is not None else ()))
        self.reporter.run_started(len(files) + len(missing))
        for r in missing:
            summary.results.append(r)
            self.reporter.file_finished(r)
        return summary, files

    def run(self, paths: Iterable[str | os.PathLike]) -> RunSummary:
        """Index files, overlapping work: file N+1 is hashed, probed and decoded (shots, keyframes) in this
        thread while file N is heard on two worker threads, its speech on one and then its speakers and
        lines on the other; so file N's speakers are found while file N+1 is transcribed. CTranslate2 and
        ONNX Runtime (or torch) run outside the GIL, each on all the run's threads (the words depend on
        CTranslate2's thread count on some CPUs; the speakers do not). Catalog writes stay in this thread,
        in the files' order; at most two takes' sound is held at once, as with one worker.
        """
        if not self._checked:
            self.check_models()
        summary, files = self._collect(paths)
        t0 = time.monotonic()
        worker = Worker()
        speakers = Worker("dailies-speakers") if self.diarizer is not None else None
        loading = worker.submit(self._load_sound_models, None) if files else None
        pending: tuple[_Prepared, Job, float] | None = None
        ctrl_c = CtrlC()
        try:
            for number, path in enumerate(files, 1):
                ctrl_c.check()
                self.reporter.file_started(number, path)
                started = time.monotonic()
                outcome = self._guard(path, lambda: self._prepare_here(path))
                submitted = None
                if isinstance(outcome, _Prepared):          # its speech starts while the last take's speakers run
                    submitted = (outcome, self._submit_hearing(outcome, worker, speakers), started)
                if pending is not None:
                    self._complete(pending, summary)
                    pending = None
                if isinstance(outcome, FileResult):
                    outcome.seconds = time.monotonic() - started
                    summary.results.append(outcome)
                    self.reporter.file_finished(outcome)
                else:
                    pending = submitted
            if pending is not None:
                ctrl_c.check()
                self._complete(pending, summary)
            if loading is not None:
                # A run whose every file failed at once ends while the worker may still be loading the models: the
                # process must not exit under a native library's load (CI saw `dailies index` of two bad files end
                # "terminate called without an active exception", exit status -6, after its summary). Its error,
                # if any, was no take's: nothing to report.
                loading.wait()
            ctrl_c.check()
            self._end_of_run(summary)
            ctrl_c.check()
        except KeyboardInterrupt:
            summary.interrupted = True
            summary.worker_busy = worker.busy or (speakers is not None and speakers.busy)
        finally:
            ctrl_c.restore()
        summary.seconds = time.monotonic() - t0
        summary.timings = dict(self.timings)
        return summary

    def _submit_hearing(self, p: "_Prepared", worker: Worker, speakers: "Worker | None") -> Job:
        """A take's speech on ``worker``, then its speakers and lines on ``speakers`` (the job returned), which
        starts once the speech is done and the last take's speakers are."""
        if speakers is None:
            return worker.submit(self._hear, p)
        speech = worker.submit(self._hear_speech, p)
        return speakers.submit(self._hear_rest, (p, speech))

    def _hear_rest(self, arg: tuple["_Prepared", Job]) -> "_Prepared":
        p, speech = arg
        heard = speech.result()                 # the speech's error, if any, is the take's
        self._hear_speakers(p, heard)
        self._lines(p, heard)
        return p

    def _load_sound_models(self, _=None) -> None:
        """The models of a take's sound, loaded on the worker thread while this thread hashes and decodes the
        first take (and the vector store opens: :meth:`_collect`), the speaker models beside faster-whisper on a
        thread of their own; the loads run mostly outside the GIL. Timed as the run's own costs. An error is left
        to the first take, which loads again and fails with it."""
        def load_speakers():
            try:
                loaded = self.diarizer.load()
            except Exception:
                return
            if loaded > 0.01:
                self.timings["speakers: model load"] = loaded
        beside = None
        if self.diarizer is not None:
            beside = threading.Thread(target=load_speakers, name="dailies-load-speakers", daemon=True)
            beside.start()
        try:
            t = time.monotonic()
            self.transcriber()._load()
            self.timings["speech: model load"] = time.monotonic() - t
        finally:
            if beside is not None:
                beside.join()

    def _prepare_here(self, path: str) -> "FileResult | _Prepared":
        """A local run's first half of a take: prepared and decoded in this thread; its shots are saved
        at once (a take interrupted while it is transcribed keeps them)."""
        p = self._prepare(path)
        if isinstance(p, _Prepared):
            self._decode_pass(p)
            self._save_steps(p)
        return p

    def run_on(self, pool, paths: Iterable[str | os.PathLike]) -> RunSummary:
        """Index files on a pool of worker processes (:class:`indexer.cluster.RayPool`, or any object with
        ``capacity``, ``submit(key, prepared)`` and ``wait(timeout)``). This process stays the index's one
        writer: it skips what is indexed (by path, then content hash), hashes and probes the rest, submits each
        take (:meth:`compute` runs on a worker) and commits the takes in file order as they come back, so the
        voice registry sees them in the same order as a local run and the index is the same. At most
        ``pool.capacity`` takes are submitted or finished and not yet committed (backpressure: the driver's
        memory is bounded whatever the batch). ``wait`` returns (key, outcome) pairs: the computed take, or
        the one-sentence reason it failed (a worker that died mid-take is the pool's to retry, bounded)."""
        import collections

        if not self._checked:
            self.check_models()
        summary, files = self._collect(paths)
        t0 = time.monotonic()
        ctrl_c = CtrlC()
        todo = collections.deque(enumerate(files, 1))
        order: collections.deque = collections.deque()      # [path, started, outcome or None while out]
        out = 0
        try:
            while todo or order:
                ctrl_c.check()
                while todo and out < pool.capacity:
                    number, path = todo.popleft()
                    self.reporter.file_started(number, path)
                    slot = [path, time.monotonic(), self._guard(path, lambda: self._prepare(path))]
                    if isinstance(slot[2], _Prepared):
                        pool.submit(id(slot), slot[2])
                        getattr(self.reporter, "submitted", lambda *_: None)(path, slot[2].info.duration)
                        slot[2] = None
                        out += 1
                    order.append(slot)
                    out -= self._commit_ready(order, summary)
                    ctrl_c.check()
                if order and order[0][2] is None:
                    by_key = {id(sl): sl for sl in order if sl[2] is None}
                    for key, outcome in pool.wait(0.5):
                        by_key[key][2] = outcome
                out -= self._commit_ready(order, summary)
            self._end_of_run(summary)
            ctrl_c.check()
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            ctrl_c.restore()
        summary.seconds = time.monotonic() - t0
        summary.timings = dict(self.timings)
        summary.retried = getattr(pool, "retried", 0)
        return summary

    def _commit_ready(self, order, summary: RunSummary) -> int:
        """Commit the finished takes at the head of the queue, in file order. Returns how many of them had
        been submitted."""
        committed = 0
        while order and order[0][2] is not None:
            path, started, outcome = order.popleft()
            if isinstance(outcome, _Prepared):
                committed += 1
                outcome = self._guard(path, lambda: self._commit(outcome))
            elif isinstance(outcome, str):              # the worker's one sentence
                committed += 1
                outcome = self._failed(path, outcome)
            outcome.seconds = time.monotonic() - started
            summary.results.append(outcome)
            self.reporter.file_finished(outcome)
        return committed

    def _end_of_run(self, summary: RunSummary) -> None:
        """After the takes: every take's speakers read again against all the others, screenplay matches."""
        if self.diarizer is not None and self.index.meta(VOICES_STALE):
            try:
                t = time.monotonic()
                summary.reread = self.reread_voices()
                self._timed("voices: every take against the others", t)
            except DailiesError as exc:        # the takes keep the speakers they were filed with
                self.reporter.warning(f"Speakers were not re-read across takes: {exc.message}")
            except Exception as exc:  # noqa: BLE001 - never lose a finished run to this last step
                log.debug("reread_voices failed", exc_info=True)
                self.reporter.warning(f"Speakers were not re-read across takes ({type(exc).__name__}: {exc}); "
                                      "the next run tries again.")
        self._match_screenplays()

    def _match_screenplays(self) -> None:
        """The last step of a run: takes indexed (or re-read) since a screenplay was imported are matched
        against it and the matches stored, so `script coverage` and exports only read them."""
        from .script.catalog import match_new_takes

        try:
            match_new_takes(self.index, progress=lambda what, done, total: self.reporter.step(what, done, total))
        except DailiesError as exc:
            self.reporter.warning(f"Takes were not matched to the screenplay: {exc.message}")
        except Exception as exc:  # noqa: BLE001 - never lose a finished run to this last step
            log.debug("match_new_takes failed", exc_info=True)
            self.reporter.warning(f"Takes were not matched to the screenplay ({type(exc).__name__}: {exc}); "
                                  "`dailies script coverage` matches them meanwhile, the next run stores them.")

    def index_file(self, path: str) -> FileResult:
        """Index one file, start to finish, in this thread."""
        if not self._checked:
            self.check_models()
        t0 = time.monotonic()
        outcome = self._guard(path, lambda: self._prepare_here(path))
        if isinstance(outcome, _Prepared):
            outcome = self._guard(path, lambda: self._commit(self._hear(outcome)))
        outcome.seconds = time.monotonic() - t0
        return outcome

    def _complete(self, pending: tuple["_Prepared", "Job", float], summary: RunSummary) -> None:
        prepared, job, started = pending
        result = self._guard(prepared.path, lambda: self._commit(job.result()))
        result.seconds = time.monotonic() - started
        summary.results.append(result)
        self.reporter.file_finished(result)

    def _guard(self, path: str, work):
        """Run one file's work; any failure becomes that file's one-line result (the batch goes on)."""
        try:
            return work()
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one bad file never stops a batch
            return self._failed(path, failure_message(path, exc))

    def _failed(self, path: str, message: str) -> FileResult:
        try:
            st = os.stat(path)
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size = mtime = None
        row = self.index.file_row(path)
        take_id = row["take_id"] if row is not None else None
        self.index.record_file(path, size=size, mtime_ns=mtime, content_hash=row["content_hash"] if row else None,
                               take_id=take_id, status="failed", error=message)
        if take_id:
            take = self.index.take_row(take_id)
            if take is not None and take["status"] != "indexed":
                self.index.fail_take(take_id, message)
        return FileResult(path, "failed", take_id=take_id, message=message)

    # -------------------------------------------------------------- 1. prepare (this thread)
    def _prepare(self, path: str) -> "FileResult | _Prepared":
        """The driver's side of a take before its work: skip unchanged files and known content, hash, probe,
        mark the take pending, and hand over the steps an earlier run finished (the worker reuses them)."""
        idx, rep, force = self.index, self.reporter, self.settings.force
        try:
            st = os.stat(path)
        except OSError as exc:
            raise MediaError(f"{path}: cannot be read ({exc.strerror}).") from None
        if st.st_size == 0:
            raise MediaError(f"{path}: the file is empty (0 bytes).")

        # Unchanged since the last run (same size and modification time)? Nothing to do.
        row = idx.file_row(path)
        if not force and row is not None and row["status"] == "indexed" and row["size"] == st.st_size \
                and row["mtime_ns"] == st.st_mtime_ns:
            take = idx.take_row(row["take_id"]) if row["take_id"] else None
            if take is not None and take["status"] == "indexed":
                return FileResult(path, "unchanged", take_id=take["take_id"], lines=take["n_lines"],
                                  shots=take["n_shots"])

        rep.step("hashing", file=path)
        try:
            digest = hashing.content_hash(path)
        except OSError as exc:
            raise MediaError(f"{path}: cannot be read ({exc.strerror}).") from None
        known = idx.take_by_hash(digest)
        if known is None and st.st_size > hashing.SAMPLED_ABOVE and idx.has_file_of_size(st.st_size):
            # A large take indexed before sampled hashing (moved, or its record lost) is known by its whole hash.
            try:
                whole = hashing.whole_content_hash(path)
            except OSError as exc:
                raise MediaError(f"{path}: cannot be read ({exc.strerror}).") from None
            if idx.take_by_hash(whole) is not None:
                digest, known = whole, idx.take_by_hash(whole)
        take_id = hashing.take_id_for(digest)
        if known is not None and known["status"] == "indexed" and not force:
            if known["path"] != path and os.path.exists(known["path"]):
                idx.record_file(path, size=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=digest,
                                take_id=known["take_id"], status="duplicate",
                                error=f"same content as {known['path']}")
                return FileResult(path, "duplicate", take_id=known["take_id"],
                                  message=f"same content as {known['path']} (already indexed)")
            moved = known["path"] != path
            if moved:
                idx.move_take(known["take_id"], path)
            idx.record_file(path, size=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=digest,
                            take_id=known["take_id"], status="indexed")
            return FileResult(path, "moved" if moved else "unchanged", take_id=known["take_id"],
                              lines=known["n_lines"], shots=known["n_shots"],
                              message=f"moved from {known['path']}" if moved else None)

        rep.step("probing", file=path)
        info = _probe(path, self.settings)
        info.mtime_ns, info.size = st.st_mtime_ns, st.st_size
        for note in info.notes:
            rep.warning(f"{path}: {note}.")
        idx.record_file(path, size=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=digest, take_id=take_id,
                        status="pending")
        if force:
            idx.clear_steps(take_id)
        idx.upsert_take(take_id, digest, info, status="pending")
        prepared = _Prepared(path=path, st=st, digest=digest, take_id=take_id, info=info, t_start=time.monotonic())
        prepared.steps = idx.steps_of(take_id, WORKER_STEPS)
        return prepared

    # -------------------------------------------------------------- the worker's side of a take
    def compute(self, p: "_Prepared") -> "_Prepared":
        """All of a take's heavy work, in order, with no store access: the decoding pass (shots, keyframes
        and their CLIP vectors), speech and speakers, lines. What it returns holds everything the take's
        commit (:meth:`_commit`) writes, and not the sound, so it can travel from a worker process (Ray,
        ``--jobs``) to the driver. A local run calls the same three steps (the decoding pass in this thread,
        the rest in the sound thread), so local and distributed runs give the same index."""
        self._decode_pass(p)
        return self._hear(p)

    def _hear(self, p: "_Prepared") -> "_Prepared":
        """Speech, speakers and lines of a decoded take; drops its sound."""
        heard = self._hear_speech(p)
        self._hear_speakers(p, heard)
        self._lines(p, heard)
        return p

    def _decode_pass(self, p: "_Prepared") -> None:
        """The one decoding pass of a take: sound to 16 kHz in memory, frames to the shot detector and the
        keyframe picker; finished steps of an earlier run are reused, not redone."""
        from .media import decode
        from .shots import ShotDetector

        rep, s, info, take_id = self.reporter, self.settings, p.info, p.take_id
        models, timings = p.models, p.timings
        want_shots = info.has_video and s.shot_detector != "none"
        detector = ShotDetector(info.rate, s.shot_detector, s.shot_threshold) if want_shots else None
        shots_key = f"{s.shot_detector}|{s.shot_threshold}|{detector.settings['version'] if detector else ''}"
        cached_shots = p.cached("shots", shots_key) if want_shots else None
        if detector is not None:
            models["shots"] = {**detector.settings, "threshold": s.shot_threshold}

        transcriber = self.transcriber() if info.has_audio else None
        if transcriber is not None:
            p.asr_key = transcriber.key()
            p.cached_words = p.cached("asr", p.asr_key)
            models["whisper"] = transcriber.describe()
        diarizer = self.diarizer if info.has_audio else None
        if diarizer is not None:
            p.diar_key = diarizer.key()
            p.cached_diar = p.cached("diarize", p.diar_key)
            models["diarization"] = diarizer.describe()
        elif self.speakers_skipped and info.has_audio:
            models["diarization"] = {"skipped": self.speakers_skipped}

        sink = detector if (want_shots and cached_shots is None) else None
        picture_step = None
        if self.clip is not None and info.has_video:
            from .picture.step import PictureStep

            known = [Shot(*v) for v in cached_shots["shots"]] if cached_shots is not None else None
            if known is None and detector is None:      # no shot detection: the whole take is one shot
                known = [Shot(0, 0, max(0, (info.frames or 1) - 1))]
            picture_step = PictureStep(self.clip, info.rate, take_id=take_id, policy=self.keyframe_policy(),
                                       detector=sink, shots=known if sink is None else None, tagger=self.tagger)
        elif self.picture_skipped and info.has_video:
            models["clip"] = {"skipped": self.picture_skipped}
        n_channels = sum(a.channels for a in info.audio)
        keep_channels = s.channels.strip().lower() != "mix" and n_channels > 1
        rep.step("decoding", 0.0, info.duration, file=p.path)
        t = time.monotonic()
        decoded = decode(info, audio=info.has_audio, sink=sink, keep_channels=keep_channels,
                         sinks=[picture_step.sink] if picture_step is not None else None,
                         progress=lambda t_: rep.step("decoding", t_, info.duration, file=p.path),
                         hw_decode=s.hw_decode)
        timings["decode"] = time.monotonic() - t      # with shot detection (keyframe embedding: below)
        if decoded.damaged_packets:
            p.warnings.append(f"{info.path}: {decoded.damaged_packets} damaged packets were skipped.")
        if decoded.frames is not None:
            info.frames = decoded.frames
        # The picture's decoder, as the take records it: the one that found its shots (a resumed take's shots come
        # from the step cache, and its picture may not be decoded again at all).
        picture_decoder = decoded.picture_decoder
        if cached_shots is not None:
            p.shots = [Shot(*v) for v in cached_shots["shots"]]
            info.frames = cached_shots.get("frames", info.frames)
            picture_decoder = cached_shots.get("decoder", picture_decoder)
        elif detector is not None:
            p.shots = detector.finish(decoded.frames)
            p.new_steps.append(("shots", shots_key, {"shots": [[x.index, x.first_frame, x.last_frame] for x in p.shots],
                                                     "frames": info.frames, "decoder": picture_decoder}))
        if picture_decoder is not None:
            models["picture_decoder"] = picture_decoder
        p.audio, p.channels = decoded.audio, decoded.channels
        if info.has_audio:
            self._channel_roles(p, decoded, n_channels)
        if picture_step is not None:
            rep.step("picture", file=p.path)
            p.picture = picture_step.finish(p.shots or [Shot(0, 0, max(0, (info.frames or 1) - 1))], info.frames)
            models["clip"] = p.picture.settings()
            timings["picture"] = p.picture.embed_seconds          # CLIP, inside and after the decoding pass
            timings["decode"] -= min(timings["decode"], p.picture.embed_seconds)

    def _channel_roles(self, p: "_Prepared", decoded, n_channels: int) -> None:
        """What each channel is (:mod:`indexer.tracks`); with iso tracks, the words are the isos' (the
        cached words are looked up again under a key naming them). Without, the take goes on exactly
        as a mix (no channels kept)."""
        from .speakers.channels import parse_channels
        from .tracks import channel_roles, iso_channels

        spec = parse_channels(self.settings.channels)
        p.roles = channel_roles(spec, p.info.track_names, p.channels, n_channels,
                                getattr(decoded, "channel_rms_db", None))
        isos = iso_channels(p.roles)
        if not isos and spec == "auto":
            p.channels = None
        if isos and p.asr_key:
            p.asr_key += "|isos:" + ",".join(str(c + 1) for c in isos)
            p.cached_words = p.cached("asr", p.asr_key)
        p.models["channels"] = [r.to_json() for r in p.roles]

    # -------------------------------------------------------------- 2. listen (worker thread)
    def _hear_speech(self, p: "_Prepared") -> "_Heard":
        """A take's speech: pure computation on its sound, no catalog access.

        Speech and speakers of one take run one after the other, each on all the run's threads. Both at once on
        one thread each was measured on 2 idle cores (120 s of AMI and sample.wav, 2026-12-04): speakers 15.7 s +
        speech 5.7 s one after the other on 2 threads, against 22-24 s at once (the speaker step alone takes
        that long on one thread). Different takes' speech and speakers at once, each on 2 threads, gain instead
        (:meth:`run`): 7.7 s of speech and 9.6 s of speakers one after the other, 13.9 s at once (2026-12-05)."""
        heard = _Heard()
        if not p.info.has_audio or p.audio is None:
            return heard
        rep, duration = self.reporter, p.info.duration
        if p.cached_words is not None:
            heard.words = [Word.from_json(w) for w in p.cached_words["words"]]
        else:
            rep.step("speech", 0.0, duration, file=p.path)
            t = time.monotonic()
            self.transcriber()._load()                # the first take loads the model: timed apart
            if time.monotonic() - t > 0.01:
                heard.timings["speech: model load"] = time.monotonic() - t
            t = time.monotonic()
            isos = _isos(p)
            if isos:
                from .tracks import transcribe_isos

                heard.words, heard.asr_info = transcribe_isos(
                    self.transcriber(), p.audio, p.channels, p.roles,
                    progress=lambda t_: rep.step("speech", t_, duration, file=p.path))
            else:
                heard.words, heard.asr_info = self.transcriber().transcribe(
                    p.audio, progress=lambda t_: rep.step("speech", t_, duration, file=p.path))
            heard.timings["speech"] = time.monotonic() - t
        return heard

    def _hear_speakers(self, p: "_Prepared", heard: "_Heard") -> None:
        """A take's speakers (into ``heard``): pure computation on its sound, no catalog access."""
        if not p.info.has_audio or p.audio is None:
            return
        rep = self.reporter
        if self.diarizer is not None:
            if p.cached_diar is not None:
                heard.diar = self.diarizer.restore(p.cached_diar, channels=p.channels, picked=_isos(p))
            else:
                rep.step("speakers", 0.0, 1.0, file=p.path)
                loaded = self.diarizer.load()              # the first take loads the models: timed apart
                if loaded > 0.01:
                    heard.timings["speakers: model load"] = loaded
                t = time.monotonic()
                heard.diar = self.diarizer(p.audio, channels=p.channels, picked=_isos(p), uri=p.take_id,
                                           progress=lambda step, done, total: rep.step(
                                               f"speakers: {step}", done, total, file=p.path))
                heard.timings["speakers"] = time.monotonic() - t
                heard.timings.update({f"speakers: {k}": v for k, v in self.diarizer.last_timings.items()})
                heard.diar_fresh = True

    def _lines(self, p: "_Prepared", heard: "_Heard") -> None:
        """The take's lines (before any speaker split) and the sound steps to save; the sound is dropped."""
        info, models = p.info, p.models
        if heard.asr_info is not None:
            p.new_steps.append(("asr", p.asr_key, {"words": [w.to_json() for w in heard.words],
                                                   "info": heard.asr_info}))
        if heard.diar_fresh:
            p.new_steps.append(("diarize", p.diar_key, heard.diar.to_json()))
            models["diarization"] = self.diarizer.describe()    # loaded now: what ran (its compute type)
        if self._transcriber is not None and info.has_audio:
            models["whisper"] = self._transcriber.describe()
        if heard.asr_info and heard.asr_info.get("transcribed_seconds"):
            models["transcribed_seconds"] = heard.asr_info["transcribed_seconds"]     # per iso, and the mix
        p.timings.update(heard.timings)
        self.reporter.step("lines", file=p.path)
        t = time.monotonic()
        p.lines = build_lines(heard.words, p.shots, info.rate, p.audio, rules=self.rules, channels=p.channels)
        p.timings["lines"] = time.monotonic() - t
        p.diar = heard.diar
        p.voice_model = self.diarizer.embedding_model if heard.diar is not None else None
        p.audio = p.channels = p.cached_words = p.cached_diar = None
        p.steps = {}

    # -------------------------------------------------------------- 3. commit (this thread: the one writer)
    def _save_steps(self, p: "_Prepared") -> None:
        """The take's steps finished since the last save (resume: they are not redone), and its warnings."""
        for step, key, data in p.new_steps:
            self.index.put_step(p.take_id, step, key, data)
        for message in p.warnings:
            self.reporter.warning(message)
        p.new_steps, p.warnings = [], []

    def _commit(self, p: "_Prepared") -> FileResult:
        """Save the sound steps, attribute lines to voices, and commit the take (the driver's side)."""
        from . import embed

        idx, rep, info, take_id, models = self.index, self.reporter, p.info, p.take_id, p.models
        self._save_steps(p)
        rep.step("voices" if p.diar is not None else "lines", file=p.path)
        t = time.monotonic()
        lines, speakers = p.lines, None
        if p.diar is not None:
            # the lines before any speaker split: reread_voices() attributes them again later
            idx.put_step(take_id, "lines", LINES_STEP_KEY, [_line_json(ln) for ln in lines])
            lines, speakers = self._speakers(take_id, p.diar, lines, p.shots, info, models, model=p.voice_model)
        vectors = embed.embed([ln.text for ln in lines])
        p.timings["lines"] = p.timings.get("lines", 0.0) + time.monotonic() - t
        models["text_embedding"] = embed.describe()
        models["lines"] = asdict(self.rules)
        models["dailies"] = __version__
        rep.step("saving", file=p.path)
        t = time.monotonic()
        tag_rows, n_frames = None, 0
        if p.picture is not None:
            from .picture.step import shot_tag_rows, store_frames

            n_frames = store_frames(idx, take_id, info, p.picture)
            tag_rows = shot_tag_rows(take_id, p.picture)
        p.timings["store"] = time.monotonic() - t       # (the commit itself is not counted)
        models["timings"] = {k: round(v, 3) for k, v in p.timings.items()}
        idx.commit_take(take_id, info, p.shots, lines, vectors, models=models,
                        seconds=time.monotonic() - p.t_start, shot_tags=tag_rows, n_frames=n_frames,
                        speakers=speakers, channels=[r.to_json() for r in p.roles])
        idx.record_file(p.path, size=p.st.st_size, mtime_ns=p.st.st_mtime_ns, content_hash=p.digest,
                        take_id=take_id, status="indexed")
        return FileResult(p.path, "indexed", take_id=take_id, lines=len(lines), shots=len(p.shots),
                          media_seconds=info.duration)

    def _speakers(self, take_id: str, diar, lines, shots, info: MediaInfo, models: dict, *, model: str | None):
        """Production-wide voices for the take's local speakers; lines split where the speaker changes."""
        from .speakers import identity

        reg = identity.VoiceRegistry(self.index.voice_tables())
        # A take may hold two voices its own diarization cannot tell apart: voices already known from
        # other takes can.
        diar, voice_of = identity.identify(diar, reg, take_id, model=model)
        _mark_voices_stale(self.index, take_id)      # the other takes may read differently with this one
        lines, info_ = assign_lines(lines, diar, shots=shots, rate=info.rate)
        models["voices"] = reg.settings()
        return lines, [(li, voice_of.get(li.speaker) if li.speaker else None) for li in info_]

    # -------------------------------------------------------------- every take against the others
    def reread_voices(self) -> int:
        """Every take read again against the voices of all the others (:func:`indexer.speakers.identity.reread_stored`),
        at the end of a run that filed new takes: a take indexed early gains from the takes indexed
        after it. Where that changes who speaks, the take's lines are attributed again (from its lines
        as they were before any speaker split). Takes attributed by channel (``--channels``) keep
        theirs: that needs the sound. Returns the number of takes whose lines changed."""
        import json

        from . import embed
        from .speakers import identity

        idx = self.index
        changed = 0
        out = identity.reread_stored(idx, self.diarizer.key(), model=self.diarizer.embedding_model,
                                     filed=_stale_takes(idx.meta(VOICES_STALE)),
                                     started=lambda n: self.reporter.step("voices, every take against the others",
                                                                          0.0, float(n), file="all takes"))
        if out:
            for n, (take_id, (take, diar, voice_of)) in enumerate(out.items(), 1):
                info = MediaInfo.from_json(json.loads(take["info"]))
                stored = idx.lines_of_take(take_id)
                cached = idx.get_step(take_id, "lines", LINES_STEP_KEY)
                base = [_line_from_json(x) for x in cached] if cached is not None else \
                    [Line(r.idx, r.start, r.end, r.words, r.shots) for r in stored]
                lines, info_ = assign_lines(base, diar, shots=idx.shots(take_id), rate=info.rate)
                speakers = [(li, voice_of.get(li.speaker) if li.speaker else None) for li in info_]
                before = [(round(r.start, 3), round(r.end, 3), r.text, r.speaker, r.voice_id) for r in stored]
                after = [(round(ln.start, 3), round(ln.end, 3), ln.text, ln.speaker, vid)
                         for ln, (_, vid) in zip(lines, speakers)]
                if before != after:
                    idx.replace_lines(take_id, info, lines, embed.embed([ln.text for ln in lines]), speakers)
                    changed += 1
                self.reporter.step("voices, every take against the others", float(n), float(len(out)), file="all takes")
        idx.set_meta(VOICES_STALE, "")
        return changed

    # -------------------------------------------------------------- picture later (--visual-only)
    def add_picture(self, paths: Iterable[str | os.PathLike]) -> RunSummary:
        """The picture step alone, for takes already indexed without it; speech is not redone."""
        from .picture.step import picture_of_take, shot_tag_rows

        summary, files = self._collect(paths)
        t0 = time.monotonic()
        if self.clip is None:
            raise DailiesError(f"No CLIP weights, so no picture step: {self.picture_skipped}")
        try:
            for number, path in enumerate(files, 1):
                self.reporter.file_started(number, path)
                t = time.monotonic()
                row = self.index.file_row(path)
                take = self.index.take_row(row["take_id"]) if row is not None and row["take_id"] else None
                if take is None or take["status"] != "indexed":
                    result = FileResult(path, "failed", message=f"{path}: not indexed yet; run `dailies index` on "
                                                                "it first.")
                elif not take["has_video"]:
                    result = FileResult(path, "unchanged", take_id=take["take_id"], message="no picture")
                else:
                    try:
                        self.reporter.step("picture", file=path)
                        pic = picture_of_take(self.index, take["take_id"], self.clip, tagger=self.tagger,
                                              policy=self.keyframe_policy(),
                                              progress=lambda s_, d=take["duration"]: self.reporter.step(
                                                  "picture", s_, d, file=path))
                        self.index.set_picture(take["take_id"], shot_tag_rows(take["take_id"], pic),
                                               len(pic.frames), pic.settings())
                        result = FileResult(path, "indexed", take_id=take["take_id"], shots=take["n_shots"],
                                            lines=take["n_lines"], message=f"{len(pic.frames)} frames embedded")
                    except DailiesError as exc:
                        result = FileResult(path, "failed", take_id=take["take_id"], message=exc.message)
                result.seconds = time.monotonic() - t
                summary.results.append(result)
                self.reporter.file_finished(result)
        except KeyboardInterrupt:
            summary.interrupted = True
        summary.seconds = time.monotonic() - t0
        return summary


def failure_message(path: str, exc: BaseException) -> str:
    """One file's failure in one sentence naming the file (the same for a local run and a worker's)."""
    if isinstance(exc, DailiesError):
        return exc.message
    if isinstance(exc, MemoryError):
        return f"{path}: ran out of memory while indexing."
    log.debug("unexpected error on %s\n%s", path, "".join(traceback.format_exception(exc)))
    return f"{path}: unexpected error ({type(exc).__name__}: {exc}); run with --debug for details."


WORKER_STEPS = ("shots", "asr", "diarize")     # the finished steps a take's worker may reuse


def _isos(p: "_Prepared") -> list[int]:
    from .tracks import iso_channels

    return iso_channels(p.roles) if p.channels is not None else []


VOICES_STALE = "voices_stale"      # meta: the takes filed since Indexer.reread_voices() last ran (JSON list;
                                   # "1", as older versions wrote it: every take)


def _stale_takes(value: str | None) -> set[str] | None:
    """The takes filed since the last end-of-run pass, or None for every take."""
    import json

    try:
        ids = json.loads(value) if value else []
    except ValueError:
        return None
    return set(ids) if isinstance(ids, list) else None


def _mark_voices_stale(index: Index, take_id: str) -> None:
    import json

    ids = _stale_takes(index.meta(VOICES_STALE))
    if ids is not None:                     # None: every take is to be read again already
        index.set_meta(VOICES_STALE, json.dumps(sorted(ids | {take_id})))
LINES_STEP_KEY = "1"


def _line_json(line: Line) -> dict:
    return {"index": line.index, "start": round(line.start, 4), "end": round(line.end, 4), "shots": line.shots,
            "words": [w.to_json() for w in line.words]}


def _line_from_json(d: dict) -> Line:
    return Line(d["index"], d["start"], d["end"], [Word.from_json(w) for w in d["words"]], list(d["shots"]))


def _probe(path: str, settings: IndexSettings) -> MediaInfo:
    from .media import probe

    return probe(path, audio_tc_rate=settings.audio_tc_rate)
