"""The steps of one take, in order (:class:`TakeSteps`, a part of :class:`indexer.pipeline.Indexer`): the driver
prepares it (skip, hash, probe), the decoding pass and the sound steps compute it with no store access (in this
process's threads, or on a worker process or machine), and the driver commits it (speakers into the voice registry,
text vectors, the catalog) and re-reads every take's speakers at the end of a run."""

from __future__ import annotations

import logging
import os
import time
import traceback
from dataclasses import asdict

from .. import __version__, hashing
from ..align import assign_lines, build_lines
from ..config import IndexSettings
from ..errors import DailiesError, MediaError
from ..records import Line, MediaInfo, Shot, Word
from ..store import Index
from .records import FileResult, _Heard, _Prepared

log = logging.getLogger("indexer.pipeline")


class TakeSteps:
    """One take's steps; mixed into :class:`indexer.pipeline.Indexer`, which holds the index, the settings, the
    reporter and the models they use."""

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
        from ..media import decode
        from ..shots import ShotDetector

        rep, s, info, take_id = self.reporter, self.settings, p.info, p.take_id
        models, timings = p.models, p.timings
        want_shots = info.has_video and s.shot_detector != "none"
        detector = ShotDetector(info.rate, s.shot_detector, s.shot_threshold) if want_shots else None
        shots_key = (f"{s.shot_detector}|{s.shot_threshold}|{detector.settings['version'] if detector else ''}"
                     f"|{detector.settings['input'] if detector else ''}")
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
            from ..picture.step import PictureStep

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
        from ..speakers.channels import parse_channels
        from ..tracks import channel_roles, iso_channels

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
                from ..tracks import transcribe_isos

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
                                               f"speakers: {step}", done, total, file=p.path),
                                           speech=self._speech_regions(p, heard))
                heard.timings["speakers"] = time.monotonic() - t
                heard.timings.update({f"speakers: {k}": v for k, v in self.diarizer.last_timings.items()})
                heard.diar_fresh = True

    def _speech_regions(self, p: "_Prepared", heard: "_Heard") -> list | None:
        """Where the take's sound has speech, for the speaker step ([start, end] samples): the regions faster-whisper's
        voice activity detector found in it while transcribing it (kept with the words, so a resumed take reads the
        same), else the same detector run on it now (words of iso tracks, words saved before regions were, no VAD)."""
        if self.diarizer.models.kind != "default":
            return None
        info = heard.asr_info if heard.asr_info is not None else (p.cached_words or {}).get("info") or {}
        if info.get("speech") is not None:
            return info["speech"]
        from ..speech import speech_regions

        return speech_regions(p.audio)

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
        from .. import embed

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
            from ..picture.step import shot_tag_rows, store_frames

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
        from ..speakers import identity

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

        from .. import embed
        from ..speakers import identity

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
    from ..tracks import iso_channels

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
    from ..media import probe

    return probe(path, audio_tc_rate=settings.audio_tc_rate)

