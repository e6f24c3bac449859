"""The catalog of an index (sqlite): takes, files, shots, lines (+ FTS), steps, meta; and the index itself.

Layout of an index folder::

    dailies-index/
      catalog.sqlite   takes, files, shots, lines (+ FTS5 full-text tables), finished steps, meta, voices,
                       screenplays (one schema: store/schema.py)
      chroma/          Chroma PersistentClient (collections ``lines`` and ``frames``: store/vectors.py)
      lock             held (flock) by the one writer

Only the store package (this module, :mod:`.fulltext` (the full-text reads), :mod:`.schema`, :mod:`.vectors`,
:mod:`.voices`, :mod:`.screenplays`) runs SQL or touches Chroma.

Readers open the catalog read-only (``mode=ro``; ``immutable`` when the folder cannot be written, so
a read-only index on a share or a write-protected card reads without creating files there). A reader
of an older schema upgrades the catalog in place when it may write the folder, else says what to do.

Consistency: a take becomes visible to searches in one sqlite transaction (its lines, shots and
``status='indexed'``), after its vectors are in Chroma. Ids are deterministic (take id + position),
so redoing a take after a crash is an upsert: nothing is duplicated and nothing half-written is
ever shown. Finished steps (shots, words) are kept per take so an interrupted run resumes without
redoing them.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import (DailiesError, IndexLockedError, IndexMissingError, IndexReadOnlyError, IndexVersionError,
                      NotFoundError)
from ..records import Line, MediaInfo, Shot, Take, Word, line_channel
from ..textnorm import normalize_words, phonetic
from . import schema
from .fulltext import FullTextReads, _PhraseScores
from .schema import SCHEMA_VERSION
from .screenplays import Screenplays
from .vectors import Vectors
from .voices import VoiceTables

CATALOG = "catalog.sqlite"
LOCK = "lock"



class EmbedderMismatchError(DailiesError):
    """The index holds vectors of another model than the one asked for."""

    def __init__(self, message: str, stored_name: str):
        super().__init__(message)
        self.stored_name = stored_name


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def line_id(take_id: str, idx: int) -> str:
    return f"{take_id}-{idx:05d}"


class _lazy:
    """functools.cached_property without its lock (Python 3.11 takes a lock on every first read, which cost
    a search a tenth of its time over the ~1,500 rows it reads); a racing second computation is harmless."""

    def __init__(self, fn):
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


@dataclass
class LineRow:
    """A line as stored (what search needs). Words are parsed on first use."""

    id: int
    line_id: str
    take_id: str
    idx: int
    start: float
    end: float
    text: str
    norm: str
    phon: str
    words_json: str
    shots_json: str
    speaker: str | None           # the take's local speaker label (see indexer.speakers.identity for the voice)
    voice_id: str | None          # the production-wide voice when indexed (merges are followed by the registry)
    data_json: str | None = None

    @_lazy
    def data(self) -> dict:
        return json.loads(self.data_json) if self.data_json else {}

    @property
    def speaker_confidence(self) -> float | None:
        return self.data.get("speaker_confidence")

    @property
    def overlap(self) -> bool | None:
        return self.data.get("overlap")

    @_lazy
    def words(self) -> list[Word]:
        return [Word.from_json(w) for w in json.loads(self.words_json)]

    @property
    def channel(self) -> int | None:
        """The iso channel (1-based, as shown) a line was heard on when all its words come from one."""
        c = line_channel(self.words)
        return None if c is None else c + 1

    @_lazy
    def shots(self) -> list[int]:
        return json.loads(self.shots_json)

    @_lazy
    def tokens(self) -> list[str]:
        return self.norm.split()

    @_lazy
    def keys(self) -> list[str]:
        return self.phon.split()


VECTORS_REBUILD_META = "vectors_rebuild_started"


def _line_metas(take_id: str, take, lines: list[tuple]) -> list[dict]:
    """The Chroma metadata of a take's line vectors. ``take``: its MediaInfo or catalog Take (path, name, scene,
    take, camera, clock); ``lines``: (index, start, end, shots, speaker, voice id) per line."""
    clock = take.clock
    return [{
        "take_id": take_id, "idx": i, "name": take.name, "clip": take.path,
        "scene": take.scene or "", "take": take.take or "", "camera": take.camera or "",
        "start": round(start, 3), "end": round(end, 3), "tc_in": clock.tc_in(start), "tc_out": clock.tc_out(end),
        "shots": ",".join(str(s) for s in shots), "speaker": speaker or "", "voice_id": vid or "",
    } for i, start, end, shots, speaker, vid in lines]


class Index(FullTextReads):
    """An open index folder. Use :meth:`open` for reading, :meth:`open_writer` to write."""

    def __init__(self, path: Path, db: sqlite3.Connection, *, writer: bool, lock_fd: int | None,
                 chroma_url: str | None):
        self.path = path
        self._db = db
        self.writer = writer
        self._lock_fd = lock_fd
        if chroma_url is None:          # an index made with a Chroma server remembers it (a team's index)
            chroma_url = self.meta(CHROMA_URL_META) or None
        self.chroma_url = chroma_url
        self._df_lock = threading.Lock()
        self._aside: sqlite3.Connection | None = None      # see fts(aside=True)
        self._aside_lock = threading.Lock()
        self._df_cache: tuple[Any, int, dict[str, int]] = (None, 0, {})    # see doc_freq
        self._bm25 = _PhraseScores() if writer else _PhraseScores.shared(path)  # see fts_any
        self.vectors = Vectors(path, chroma_url, lambda: self.meta("index_uid"), readonly=not writer)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | os.PathLike, *, chroma_url: str | None = None) -> "Index":
        """Open an existing index for reading (any number of readers, alongside one writer)."""
        path = Path(path)
        catalog = path / CATALOG
        if not catalog.is_file():
            if path.exists() and not path.is_dir():
                raise IndexMissingError(f"{path} is a file, not a dailies index folder.")
            raise IndexMissingError(
                f"No dailies index at {path}; create one with `dailies index FOLDER` "
                "(or point --index / DAILIES_INDEX at an existing one).")
        version = _schema_version(catalog)
        if version is not None and version < SCHEMA_VERSION:
            _upgrade_for_reading(path, version, chroma_url)
        db = _connect_readonly(catalog)
        idx = cls(path, db, writer=False, lock_fd=None, chroma_url=chroma_url or _chroma_url_env())
        idx._check_version()
        return idx

    @classmethod
    def open_writer(cls, path: str | os.PathLike, *, chroma_url: str | None = None) -> "Index":
        """Open (creating if needed) an index for writing; only one writer at a time."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise IndexMissingError(f"{path} is a file, not a dailies index folder.")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexMissingError(f"Cannot create the index folder {path} ({exc.strerror}).") from None
        if not os.access(path, os.W_OK) or ((path / CATALOG).exists() and not os.access(path / CATALOG, os.W_OK)):
            raise IndexReadOnlyError(
                f"The index {path} is read-only for this user; searching it works, but indexing or importing "
                "needs write permission on the folder (or another --index).")
        try:
            fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except PermissionError:
            raise IndexReadOnlyError(
                f"The index {path} is read-only for this user; searching it works, but indexing or importing "
                "needs write permission on the folder (or another --index).") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="ignore").strip() or "unknown"
            os.close(fd)
            raise IndexLockedError(
                f"The index {path} is being written by another dailies process (pid {holder}); "
                "wait for it to finish or stop it, then run again.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        url = chroma_url or _chroma_url_env()
        if url is None and not (path / CATALOG).exists():
            # A new index: the lock of its vector store is made before its catalog, so every reader that finds
            # the catalog takes it, and the store is made by one process at a time, whichever comes first
            # (readers that made it at once raced in Chroma's own migrations: "table collections already
            # exists", found by the reliability suite). The store itself is made on first use, or on a thread
            # while the run starts (Vectors.open_soon).
            try:
                Vectors.make_lock(path)
            except OSError as exc:
                os.close(fd)
                raise IndexMissingError(f"Cannot create the index folder {path} ({exc.strerror}).") from None
        db = _connect(path / CATALOG)
        idx = cls(path, db, writer=True, lock_fd=fd, chroma_url=url)
        idx._init_schema()
        if url and idx.meta(CHROMA_URL_META) != url:
            idx.set_meta(CHROMA_URL_META, url)
        return idx

    @classmethod
    def open_for_marks(cls, path: str | os.PathLike) -> "Index":
        """Open an existing index to change its review marks (circled takes, review notes) beside the one
        writer, e.g. while `dailies index` runs. No indexing step writes a mark, each change is one short
        sqlite transaction (sqlite orders it with the writer's, waiting up to 30 s), and a take's upsert
        leaves its mark alone, so marks need no writer lock. Nothing else may be written through it."""
        path = Path(path)
        cls.open(path).close()          # IndexMissingError, and an older catalog upgraded, as for any reader
        catalog = path / CATALOG
        if not (os.access(path, os.W_OK) and os.access(catalog, os.W_OK)):
            raise IndexReadOnlyError(
                f"The index {path} is read-only for this user; searching it works, but circling takes or adding "
                "notes needs write permission on the folder (or another --index).")
        idx = cls(path, _connect(catalog), writer=False, lock_fd=None, chroma_url=_chroma_url_env())
        idx._check_version()
        return idx

    def close(self) -> None:
        try:
            self.vectors.close()
            self._db.close()
            if self._aside is not None:
                self._aside.close()
        finally:
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _init_schema(self) -> None:
        version = self.meta("schema_version")
        if version is None:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                schema.create(self._db)
                from .. import __version__

                self._set_meta("schema_version", str(SCHEMA_VERSION))
                self._set_meta("created_at", now())
                self._set_meta("created_by", f"dailies {__version__}")
                self._set_meta("index_uid", uuid.uuid4().hex[:12])
        elif int(version) < SCHEMA_VERSION:
            schema.migrate(self._db, int(version))
            self.set_meta("upgraded_at", now())
        self._check_version()

    def _check_version(self) -> None:
        version = self.meta("schema_version")
        if version is None:
            raise IndexMissingError(f"{self.path} is not a dailies index (its catalog has no schema version).")
        if int(version) > SCHEMA_VERSION:
            raise IndexVersionError(
                f"The index {self.path} was written by a newer dailies (schema {version}, this one reads "
                f"{SCHEMA_VERSION}); upgrade dailies.")

    # ------------------------------------------------------------------ meta
    def meta(self, key: str) -> str | None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                        (key, value))

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._set_meta(key, value)

    # ------------------------------------------------------------------ the store's parts
    def voice_tables(self) -> VoiceTables:
        """The voice registry's tables (see :class:`indexer.speakers.identity.VoiceRegistry`)."""
        return VoiceTables(self._db)

    def screenplays(self) -> Screenplays:
        """The imported screenplays' tables (see :mod:`indexer.script.catalog`)."""
        return Screenplays(self._db)

    def check_embedder(self, kind: str, description: dict, advice: str | None = None) -> None:
        """Refuse to mix vectors of different models in one collection."""
        key = f"embedder:{kind}"
        stored = self.meta(key)
        wanted = json.dumps({k: description[k] for k in ("name", "dim")}, sort_keys=True)
        if stored is None:
            self.set_meta(key, wanted)
        elif stored != wanted:
            raise EmbedderMismatchError(
                f"The index's {kind} vectors were made with {json.loads(stored)['name']}, not "
                f"{description['name']}; " + (advice or "index into a new index folder, or keep the first model."),
                json.loads(stored)["name"])

    def drop_vectors(self, kind: str) -> None:
        """Forget every vector of one kind (e.g. ``frames`` before re-embedding with another model)."""
        self.vectors.drop(kind)
        with self._db:
            self._db.execute("DELETE FROM meta WHERE key IN (?, ?)", (f"embedder:{kind}", "clip_frames"
                                                                     if kind == "frames" else f"-{kind}"))
            if kind == "frames":
                self._forget_picture()

    def _forget_picture(self) -> None:
        """What the catalog keeps of the picture vectors (inside the caller's transaction)."""
        self._db.execute("DELETE FROM shot_tags")
        self._db.execute("UPDATE takes SET n_frames=0")

    def set_aside_vectors(self) -> Path | None:
        """Move the embedded vector store aside, whole, as found (a damaged one: Chroma crashes reading it), for
        :meth:`put_line_vectors` to fill a new one; returns where it went (None: there was none, or the vectors
        are on a Chroma server). The picture is forgotten with it (its vectors come from CLIP, not the catalog):
        what ``drop_vectors("frames")`` forgets besides the vectors."""
        moved = self.vectors.set_aside()
        with self._db:
            self._set_meta(VECTORS_REBUILD_META, now())     # until the caller has put every line back: see below
            self._db.execute("DELETE FROM meta WHERE key IN ('embedder:lines', 'embedder:frames', 'clip_frames')")
            self._forget_picture()
        return moved

    def vectors_rebuild_started(self) -> str | None:
        """When a rebuild of the vectors (:meth:`set_aside_vectors`) started that has not finished: its store is
        partial, though it reads cleanly."""
        return self.meta(VECTORS_REBUILD_META) or None

    def vectors_rebuild_finished(self) -> None:
        self.set_meta(VECTORS_REBUILD_META, "")

    def put_line_vectors(self, take: Take, lines: list[LineRow], vectors: np.ndarray) -> None:
        """A take's line vectors (one per catalog line, in order) become these, with the metadata indexing gives
        them."""
        self.vectors.replace_take(
            "lines", take.take_id, [ln.line_id for ln in lines], vectors,
            _line_metas(take.take_id, take, [(ln.idx, ln.start, ln.end, ln.shots, ln.speaker, ln.voice_id)
                                             for ln in lines]),
            [ln.text for ln in lines])

    # ------------------------------------------------------------------ files and takes
    def file_row(self, path: str) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM files WHERE path=?", (path,)).fetchone()

    def record_file(self, path: str, *, size: int | None, mtime_ns: int | None, content_hash: str | None,
                    take_id: str | None, status: str, error: str | None = None) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO files(path, size, mtime_ns, content_hash, take_id, status, error, updated_at) "
                "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET size=excluded.size, "
                "mtime_ns=excluded.mtime_ns, content_hash=excluded.content_hash, take_id=excluded.take_id, "
                "status=excluded.status, error=excluded.error, updated_at=excluded.updated_at",
                (path, size, mtime_ns, content_hash, take_id, status, error, now()))

    def take_row(self, take_id: str) -> Take | None:
        return _take(self._db.execute("SELECT * FROM takes WHERE take_id=?", (take_id,)).fetchone())

    def has_file_of_size(self, size: int) -> bool:
        """Whether an indexed file of exactly this many bytes is on record."""
        return self._db.execute("SELECT 1 FROM files WHERE size=? AND status IN ('indexed', 'duplicate') LIMIT 1",
                                (size,)).fetchone() is not None

    def take_by_hash(self, content_hash: str) -> Take | None:
        return _take(self._db.execute("SELECT * FROM takes WHERE content_hash=?", (content_hash,)).fetchone())

    def upsert_take(self, take_id: str, content_hash: str, info: MediaInfo, *, status: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO takes(take_id, content_hash, path, name, scene, take, camera, rate, start_tc, "
                "drop_frame, duration, frames, has_video, has_audio, info, status, notes, updated_at) "
                "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(take_id) DO UPDATE SET "
                "path=excluded.path, name=excluded.name, scene=excluded.scene, take=excluded.take, "
                "camera=excluded.camera, rate=excluded.rate, start_tc=excluded.start_tc, "
                "drop_frame=excluded.drop_frame, duration=excluded.duration, frames=excluded.frames, "
                "has_video=excluded.has_video, has_audio=excluded.has_audio, info=excluded.info, "
                "status=excluded.status, notes=excluded.notes, error=NULL, updated_at=excluded.updated_at",
                (take_id, content_hash, info.path, info.name, info.scene, info.take, info.camera,
                 info.to_json()["rate"], info.start_tc, int(info.drop_frame), info.duration, info.frames,
                 int(info.has_video), int(info.has_audio), json.dumps(info.to_json()), status,
                 json.dumps(info.notes), now()))

    def set_circle(self, take_id: str, circled: bool, note: str | None = None) -> Take:
        """Circle (print) a take with a note (None keeps the note it has, "" clears it), or take the circle
        off (the note goes too); survives re-indexing of the same content. Returns the take as it is now."""
        with self._db:
            if not circled:
                self._db.execute("UPDATE takes SET circled=0, circle_note=NULL, circled_at=NULL WHERE take_id=?",
                                (take_id,))
            else:
                self._db.execute("UPDATE takes SET circled=1, circle_note=CASE WHEN ? THEN circle_note ELSE ? END, "
                                "circled_at=? WHERE take_id=?", (note is None, note or None, now(), take_id))
        row = self.take_row(take_id)
        if row is None:
            raise NotFoundError(f"No take {take_id} in the index.")
        return row

    # ------------------------------------------------------------------ review notes (a review mark, as circles)
    def add_note(self, take_id: str, frame: int, text: str, author: str | None,
                 end_frame: int | None = None) -> sqlite3.Row:
        """A note at frame ``frame`` (from the take's first frame) of a take, or from ``frame`` to ``end_frame``
        (its last frame); returns its row."""
        with self._db:
            cur = self._db.execute("INSERT INTO review_notes(take_id, frame, text, author, created_at, end_frame) "
                                   "VALUES(?,?,?,?,?,?)", (take_id, frame, text, author, now(), end_frame))
        return self.note_row(cur.lastrowid)

    def note_row(self, note_id: int) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM review_notes WHERE note_id=?", (note_id,)).fetchone()

    def edit_note(self, note_id: int, text: str) -> bool:
        """Change a note's text (its place, author and time stay); whether there was one."""
        with self._db:
            return self._db.execute("UPDATE review_notes SET text=?, edited_at=? WHERE note_id=?",
                                    (text, now(), note_id)).rowcount > 0

    def delete_note(self, note_id: int) -> bool:
        """Delete a note; whether there was one."""
        with self._db:
            return self._db.execute("DELETE FROM review_notes WHERE note_id=?", (note_id,)).rowcount > 0

    def note_rows(self, take_id: str | None = None) -> list[sqlite3.Row]:
        """The review notes of one take (by frame), or of every take (by take, then frame)."""
        if take_id is not None:
            return self._db.execute("SELECT * FROM review_notes WHERE take_id=? ORDER BY frame, note_id",
                                    (take_id,)).fetchall()
        return self._db.execute("SELECT * FROM review_notes ORDER BY take_id, frame, note_id").fetchall()

    def move_take(self, take_id: str, path: str) -> None:
        """The same content found at another path (renamed or moved): follow it."""
        row = self.take_row(take_id)
        if row is None:
            return
        info = json.loads(row["info"])
        info["path"] = path
        info["name"] = Path(path).stem
        with self._db:
            self._db.execute("UPDATE takes SET path=?, name=?, info=?, updated_at=? WHERE take_id=?",
                            (path, Path(path).stem, json.dumps(info), now(), take_id))

    def fail_take(self, take_id: str, error: str) -> None:
        with self._db:
            self._db.execute("UPDATE takes SET status='failed', error=?, updated_at=? WHERE take_id=?",
                            (error, now(), take_id))

    # ------------------------------------------------------------------ steps (resume)
    def get_step(self, take_id: str, step: str, key: str) -> Any | None:
        row = self._db.execute("SELECT key, data FROM steps WHERE take_id=? AND step=?", (take_id, step)).fetchone()
        if row is None or row["key"] != key:
            return None
        return json.loads(row["data"])

    def steps_of(self, take_id: str, steps: tuple[str, ...]) -> dict[str, tuple[str, Any]]:
        """A take's finished steps of those named: step -> (key, data), for a worker to reuse (it checks the
        key, as :meth:`get_step` does)."""
        rows = self._db.execute(f"SELECT step, key, data FROM steps WHERE take_id=? AND step IN "
                                f"({','.join('?' * len(steps))})", (take_id, *steps)).fetchall()
        return {r["step"]: (r["key"], json.loads(r["data"])) for r in rows}

    def put_step(self, take_id: str, step: str, key: str, data: Any) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO steps(take_id, step, key, data, created_at) VALUES(?,?,?,?,?) "
                "ON CONFLICT(take_id, step) DO UPDATE SET key=excluded.key, data=excluded.data, "
                "created_at=excluded.created_at", (take_id, step, key, json.dumps(data), now()))

    def clear_steps(self, take_id: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM steps WHERE take_id=?", (take_id,))

    # ------------------------------------------------------------------ writing a finished take
    def commit_take(self, take_id: str, info: MediaInfo, shots: list[Shot], lines: list[Line],
                    vectors: np.ndarray, *, models: dict, seconds: float,
                    shot_tags: list[tuple[str, int, str, str, float]] | None = None, n_frames: int = 0,
                    speakers: list | None = None, channels: list[dict] | None = None) -> None:
        """Make a take's results visible: vectors to Chroma, then catalog rows in one transaction.

        Picture vectors (``frames``) are written by :func:`indexer.picture.step.store_frames` just before.
        ``speakers`` holds, per line, (its :class:`indexer.align.LineSpeaker`, its voice id); ``channels``
        each sound channel's role (:meth:`indexer.tracks.ChannelRole.to_json`)."""
        rows = self._put_line_vectors(take_id, info, lines, vectors, speakers)
        with self._db:
            self._insert_lines(take_id, rows)
            if channels is not None:
                self._db.execute("DELETE FROM take_channels WHERE take_id=?", (take_id,))
                self._db.executemany(
                    "INSERT INTO take_channels(take_id, channel, role, name, owner, source) VALUES(?,?,?,?,?,?)",
                    [(take_id, c["channel"], c["role"], c.get("name"), c.get("owner"), c.get("source"))
                     for c in channels])
            self._db.execute("DELETE FROM shots WHERE take_id=?", (take_id,))
            self._db.executemany("INSERT INTO shots(take_id, idx, first_frame, last_frame) VALUES(?,?,?,?)",
                                [(take_id, s.index, s.first_frame, s.last_frame) for s in shots])
            if shot_tags is not None:
                self._db.execute("DELETE FROM shot_tags WHERE take_id=?", (take_id,))
                self._db.executemany("INSERT INTO shot_tags(take_id, shot, grp, label, score) VALUES(?,?,?,?,?)",
                                    shot_tags)
            self._db.execute(
                "UPDATE takes SET status='indexed', error=NULL, models=?, n_lines=?, n_shots=?, n_frames=?, "
                "index_seconds=?, indexed_at=?, updated_at=?, frames=?, info=? WHERE take_id=?",
                (json.dumps(models), len(lines), len(shots), n_frames, round(seconds, 2), now(), now(), info.frames,
                 json.dumps(info.to_json()), take_id))

    def _put_line_vectors(self, take_id: str, info: MediaInfo, lines: list[Line], vectors: np.ndarray,
                          speakers: list | None) -> list[tuple]:
        """Replace a take's line vectors in Chroma; returns the catalog rows of its lines."""
        ids = [line_id(take_id, ln.index) for ln in lines]
        speakers = speakers or [(None, None)] * len(lines)
        if lines:
            metas = _line_metas(take_id, info, [(ln.index, ln.start, ln.end, ln.shots, ln.speaker, vid)
                                                for ln, (_, vid) in zip(lines, speakers)])
        # Whatever an earlier (interrupted or older) run left for this take goes first.
        self.vectors.replace_take("lines", take_id, ids, vectors if lines else [], metas if lines else [],
                                  [ln.text for ln in lines])
        rows = []
        for ln, lid, (spk, vid) in zip(lines, ids, speakers):
            toks = normalize_words([w.text for w in ln.words])
            norm = " ".join(t for t, _ in toks)
            phon = " ".join(phonetic(t) for t, _ in toks)
            data = None
            if spk is not None:
                data = json.dumps({"speaker_confidence": spk.confidence, "overlap": spk.overlap,
                                   "words": [[w.speaker, round(w.confidence, 3), w.overlap] for w in spk.words]})
            rows.append((lid, take_id, ln.index, ln.start, ln.end, ln.text, norm, phon,
                         json.dumps([w.to_json() for w in ln.words]), json.dumps(ln.shots),
                         ln.speaker, vid, data))
        return rows

    def _insert_lines(self, take_id: str, rows: list[tuple]) -> None:
        """Within the caller's transaction: the take's catalog lines become ``rows`` (FTS follows by trigger)."""
        self._db.execute("DELETE FROM lines WHERE take_id=?", (take_id,))
        self._db.executemany(
            'INSERT INTO lines(line_id, take_id, idx, start, "end", text, norm, phon, words, shots, speaker, voice_id, '
            "data) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    def replace_lines(self, take_id: str, info: MediaInfo, lines: list[Line], vectors: np.ndarray,
                      speakers: list) -> None:
        """A take's lines again (same words, new speakers: see Indexer.reread_voices); shots, frames
        and picture tags stay. The take counts as re-indexed now (screenplay matches are redone)."""
        rows = self._put_line_vectors(take_id, info, lines, vectors, speakers)
        with self._db:
            self._insert_lines(take_id, rows)
            self._db.execute("UPDATE takes SET n_lines=?, indexed_at=?, updated_at=? WHERE take_id=?",
                            (len(lines), now(), now(), take_id))

    # ------------------------------------------------------------------ reading
    def takes(self, status: str | None = None) -> list[Take]:
        if status:
            return [Take.from_columns(r) for r in self._db.execute(
                "SELECT * FROM takes WHERE status=? ORDER BY name", (status,))]
        return [Take.from_columns(r) for r in self._db.execute("SELECT * FROM takes ORDER BY name")]

    def takes_by_id(self, take_ids: Iterable[str], status: str | None = None) -> dict[str, Take]:
        """The takes with these ids (only those of ``status`` when given), by id, in one query per 900."""
        ids = sorted(set(take_ids))
        out: dict[str, Take] = {}
        cond = "status=? AND " if status else ""
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            out.update({r["take_id"]: Take.from_columns(r) for r in self._db.execute(
                f"SELECT * FROM takes WHERE {cond}take_id IN ({','.join('?' * len(chunk))})",
                ([status] if status else []) + chunk)})
        return out

    def files(self) -> list[sqlite3.Row]:
        return self._db.execute("SELECT * FROM files ORDER BY path").fetchall()

    def find_takes(self, ref: str) -> list[Take]:
        """Takes matching a take id (or prefix), clip name, or path."""
        rows = self._db.execute(
            "SELECT * FROM takes WHERE take_id=? OR name=? OR path=? ORDER BY name", (ref, ref, ref)).fetchall()
        if not rows and len(ref) >= 4:
            rows = self._db.execute("SELECT * FROM takes WHERE take_id LIKE ? ORDER BY name",
                                   (ref.replace("%", "") + "%",)).fetchall()
        return [Take.from_columns(r) for r in rows]

    def take(self, ref: str) -> Take:
        """The one take a user means by ``ref`` (clip name, take id or its prefix, path), or a clear error."""
        rows = self.find_takes(ref)
        if not rows:
            raise NotFoundError(f"No take '{ref}' in the index; `dailies status` lists the takes.")
        if len(rows) > 1:
            raise DailiesError(f"'{ref}' matches {len(rows)} takes ({', '.join(r['name'] for r in rows[:5])}); "
                               "use the take id.")
        return rows[0]

    def take_channels(self, take_id: str) -> list[dict]:
        """The take's sound channels and their roles (``channel`` 1-based), [] when not known."""
        return [{"channel": r["channel"], "role": r["role"], "name": r["name"], "owner": r["owner"],
                 "source": r["source"]} for r in self._db.execute(
            "SELECT * FROM take_channels WHERE take_id=? ORDER BY channel", (take_id,))]

    def shots(self, take_id: str) -> list[Shot]:
        return [Shot(r["idx"], r["first_frame"], r["last_frame"]) for r in self._db.execute(
            "SELECT * FROM shots WHERE take_id=? ORDER BY idx", (take_id,))]

    def shots_of(self, take_ids: Iterable[str]) -> dict[str, list[Shot]]:
        """Shots of several takes in one query."""
        take_ids = list(take_ids)
        out: dict[str, list[Shot]] = {t: [] for t in take_ids}
        for i in range(0, len(take_ids), 900):
            chunk = take_ids[i:i + 900]
            for r in self._db.execute(f"SELECT * FROM shots WHERE take_id IN ({','.join('?' * len(chunk))}) "
                                     "ORDER BY take_id, idx", chunk):
                out[r["take_id"]].append(Shot(r["idx"], r["first_frame"], r["last_frame"]))
        return out

    def shot_tags(self, take_id: str) -> dict[int, list[str]]:
        """Zero-shot picture tags per shot (e.g. {0: ["INT", "NIGHT", "close-up"]})."""
        out: dict[int, list[str]] = {}
        for r in self._db.execute("SELECT shot, label FROM shot_tags WHERE take_id=? ORDER BY shot, grp", (take_id,)):
            out.setdefault(r["shot"], []).append(r["label"])
        return out

    def set_picture(self, take_id: str, rows: list[tuple[str, int, str, str, float]], n_frames: int,
                    clip: dict) -> None:
        """Record a take's picture step done later (``--visual-only``): its tags, frame count and model."""
        row = self.take_row(take_id)
        models = json.loads(row["models"]) if row is not None and row["models"] else {}
        models["clip"] = clip
        with self._db:
            self._db.execute("DELETE FROM shot_tags WHERE take_id=?", (take_id,))
            self._db.executemany("INSERT INTO shot_tags(take_id, shot, grp, label, score) VALUES(?,?,?,?,?)", rows)
            self._db.execute("UPDATE takes SET n_frames=?, models=?, updated_at=? WHERE take_id=?",
                            (n_frames, json.dumps(models), now(), take_id))

    def lines_of_take(self, take_id: str) -> list[LineRow]:
        return [_line_row(r) for r in self._db.execute(
            "SELECT * FROM lines WHERE take_id=? ORDER BY idx", (take_id,))]

    def lines_by_rowid(self, ids: Iterable[int]) -> list[LineRow]:
        return self._lines_where("id", list(ids))

    def lines_by_line_id(self, ids: Iterable[str]) -> list[LineRow]:
        return self._lines_where("line_id", list(ids))

    def _lines_where(self, column: str, ids: list) -> list[LineRow]:
        """Lines by rowid or line id, as plain tuples in LineRow's field order (a search reads ~1,500)."""
        out: list[LineRow] = []
        cur = self._db.cursor()
        cur.row_factory = None
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            out.extend(LineRow(*r) for r in cur.execute(
                f"SELECT {_LINE_COLUMNS} FROM lines WHERE {column} IN ({','.join('?' * len(chunk))})", chunk))
        return out

    def neighbour_lines(self, lines: Iterable[LineRow], reach: int = 1) -> list[LineRow]:
        """The lines up to ``reach`` positions before and after the given ones in the same take.

        A take's lines are written in one transaction in order, so neighbours are adjacent rowids.
        """
        lines = list(lines)
        have = {ln.id for ln in lines}
        want = sorted({ln.id + d for ln in lines for d in range(-reach, reach + 1) if d} - have)
        return self.lines_by_rowid(want)

    def _aside_db(self) -> sqlite3.Connection:
        if self.writer:
            return self._db
        with self._aside_lock:
            if self._aside is None:
                self._aside = _connect_readonly(self.path / CATALOG)
            return self._aside

    def stats(self) -> dict[str, int]:
        q = self._db.execute
        return {
            "takes": q("SELECT COUNT(*) FROM takes").fetchone()[0],
            "indexed": q("SELECT COUNT(*) FROM takes WHERE status='indexed'").fetchone()[0],
            "failed_files": q("SELECT COUNT(*) FROM files WHERE status='failed'").fetchone()[0],
            "lines": q("SELECT COUNT(*) FROM lines").fetchone()[0],
            "shots": q("SELECT COUNT(*) FROM shots").fetchone()[0],
            "frames": q("SELECT COALESCE(SUM(n_frames), 0) FROM takes WHERE status='indexed'").fetchone()[0],
            "circled": q("SELECT COUNT(*) FROM takes WHERE circled=1").fetchone()[0],
            "review_notes": q("SELECT COUNT(*) FROM review_notes").fetchone()[0],
        }


def _take(r: sqlite3.Row | None) -> Take | None:
    return None if r is None else Take.from_columns(r)


_LINE_COLUMNS = 'id, line_id, take_id, idx, start, "end", text, norm, phon, words, shots, speaker, voice_id, data'


def _line_row(r: sqlite3.Row) -> LineRow:
    return LineRow(
        id=r["id"], line_id=r["line_id"], take_id=r["take_id"], idx=r["idx"], start=r["start"], end=r["end"],
        text=r["text"], norm=r["norm"], phon=r["phon"], words_json=r["words"], shots_json=r["shots"],
        speaker=r["speaker"], voice_id=r["voice_id"], data_json=r["data"])


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=30.0, isolation_level="DEFERRED", check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A reader's connection: ``mode=ro`` (it never writes); ``immutable`` when the folder or the catalog
    cannot be written, where sqlite could not make the WAL's shared-memory file (no writer can be there)."""
    from urllib.parse import quote

    writable = os.access(path.parent, os.W_OK) and os.access(path, os.W_OK)
    uri = f"file:{quote(str(path.resolve()))}?mode=ro" + ("" if writable else "&immutable=1")
    db = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level="DEFERRED", check_same_thread=False)
    db.row_factory = sqlite3.Row
    return db


def _schema_version(catalog: Path) -> int | None:
    db = _connect_readonly(catalog)
    try:
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else None
    except sqlite3.DatabaseError:
        return None
    finally:
        db.close()


def _upgrade_for_reading(path: Path, version: int, chroma_url: str | None) -> None:
    """A reader found a catalog of an older release: upgrade it in place when the folder may be written
    (as a writer would, under the lock), else say in one sentence what to do."""
    if not (os.access(path, os.W_OK) and os.access(path / CATALOG, os.W_OK)):
        raise IndexVersionError(
            f"The index {path} was written by an older dailies (schema {version}, this one reads "
            f"{SCHEMA_VERSION}) and is read-only here; open it once with write permission (e.g. `dailies status` "
            "as its owner) to upgrade it in place.")
    Index.open_writer(path, chroma_url=chroma_url).close()


CHROMA_URL_META = "chroma_url"     # the Chroma server an index's vectors are in (--chroma-url), if any


def _chroma_url_env() -> str | None:
    return os.environ.get("DAILIES_CHROMA_URL") or None
