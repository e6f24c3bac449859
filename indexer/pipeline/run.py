"""Runs over a set of files (:class:`Indexer`): the models a run loads, the local run (files overlapped on this
process's threads), the run on a pool of worker processes (Ray), each file's failure kept to itself, and the
passes at the end of a run. One take's steps are :class:`indexer.pipeline.take.TakeSteps`."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterable

from ..align import LineRules
from ..config import MEDIA_EXTENSIONS, IndexSettings
from ..errors import DailiesError
from ..store import Index
from ..threads import CtrlC, Job, Worker
from .records import FileResult, NullReporter, Reporter, RunSummary, _Prepared
from .take import VOICES_STALE, TakeSteps, failure_message

log = logging.getLogger("indexer.pipeline")


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




class Indexer(TakeSteps):
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
            from ..speech import Transcriber

            s = self.settings
            self._transcriber = Transcriber(s.whisper_model, device=s.device, compute_type=s.compute_type,
                                            threads=s.threads, language=s.language, beam_size=s.beam_size,
                                            vad=s.vad)
        return self._transcriber

    def check_models(self, *, speech: bool = True) -> None:
        """Resolve models before touching any file, so a bad model name fails the run at once."""
        from .. import embed
        from ..speakers.channels import parse_channels

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
        from ..speakers.channels import parse_channels

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
        from ..models import diarization
        from ..speakers.channels import parse_channels
        from ..speakers.diarize import Diarizer

        parse_channels(s.channels)                       # a bad --channels fails the run at once
        try:
            models = diarization.resolve(s.diarization_model)
        except diarization.ModelMissingError as exc:      # corrupt weights (ModelCorruptError) stop the run
            self.speakers_skipped = exc.message
            self.reporter.warning(f"No speakers: {exc.message} Lines get no speaker.")
            return
        from ..config import torch_device

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
        from ..models.clip import parse_clip_spec
        from ..picture.step import load_for_indexing

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
        from ..store import EmbedderMismatchError

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
        from ..picture.keyframes import KeyframePolicy

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
        from ..script.catalog import match_new_takes

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

    # -------------------------------------------------------------- picture later (--visual-only)
    def add_picture(self, paths: Iterable[str | os.PathLike]) -> RunSummary:
        """The picture step alone, for takes already indexed without it; speech is not redone."""
        from ..picture.step import picture_of_take, shot_tag_rows

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


