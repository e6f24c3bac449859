"""The production-wide voice registry: the same voice recognised across takes, under one id and name.

Each take's diarization finds *local* speakers (``SPEAKER_00`` ...) with one CAM++ embedding each.
The registry matches them to *global voices* (``V001``, ``V002`` ...) by cosine similarity between
the local embedding and each voice's centroid (the duration-weighted mean of its locals' unit
embeddings). A local joins the best voice at or above :data:`DEFAULT_THRESHOLD`, at most one local of
a take per voice (diarization already told them apart); otherwise it starts a new voice.

Stability: ids are never reused. Re-indexing a take first matches its new locals to the take's
previous locals (same audio, so a looser threshold), which keeps their voices, names, merges and
splits; only then are other voices considered. Names live on voices; a merge moves every local of
one voice to the other and leaves an alias so the old id still resolves; a split moves one take's
local to a new voice and pins it there (re-indexing keeps it apart).

Storage: tables prefixed ``voice_`` in the index's catalog (sqlite), embeddings as float32 blobs
(a registry holds hundreds of voices at most, so matching is exact and needs no vector store).
"""

from __future__ import annotations

import datetime as _dt
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .campplus import NAME as CAMPPLUS_NAME
from ..errors import UsageError

# Cosine similarity between a local speaker's CAM++ embedding and a voice centroid at or above which
# they are the same voice. Tuned on the AMI debug *train* files only (scripts/eval_diarization.py
# --tune): identity is best and flat from 0.50 to 0.70 there; ties go to the highest value, because
# a wrong merge puts a wrong name on lines while a wrong split is one `speakers merge` away.
# The same-take threshold applies when a take is re-indexed (same recording, near-identical vectors).
DEFAULT_THRESHOLD = 0.70
SAME_TAKE_THRESHOLD = 0.50
DEFAULT_MODEL = CAMPPLUS_NAME            # the embedding model of the default diarization
MIN_NEW_VOICE_SECONDS = 1.0      # a local speaker with less speech than this starts no new voice
CENTROID_CAP_SECONDS = 60.0      # one long take weighs no more than this in a voice's centroid
WINDOW_CAP = 120                 # ... nor more than this many speech windows (60 s, one every 0.5 s) in its window profile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS voice_voices(
    voice_id TEXT PRIMARY KEY, name TEXT, merged_into TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS voice_locals(
    take_id TEXT NOT NULL, label TEXT NOT NULL, voice_id TEXT, embedding BLOB, seconds REAL NOT NULL,
    channel INTEGER, pinned INTEGER NOT NULL DEFAULT 0, similarity REAL, model TEXT, updated_at TEXT NOT NULL,
    window_sum BLOB, window_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(take_id, label));
CREATE INDEX IF NOT EXISTS voice_locals_voice ON voice_locals(voice_id);
CREATE TABLE IF NOT EXISTS voice_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_ID = re.compile(r"^[Vv](\d{1,6})$")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _unit(v: np.ndarray | None) -> np.ndarray | None:
    if v is None:
        return None
    v = np.asarray(v, dtype=np.float32).reshape(-1)
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n == 0.0:
        return None
    return v / n


def _blob(v: np.ndarray | None) -> bytes | None:
    return None if v is None else np.asarray(v, dtype="<f4").tobytes()


def _vec(b: bytes | None) -> np.ndarray | None:
    return None if b is None else np.frombuffer(b, dtype="<f4").copy()


@dataclass
class LocalIn:
    """What the registry needs of one local speaker (``indexer.speakers.diarize.LocalSpeaker`` fits)."""

    label: str
    embedding: np.ndarray | None
    seconds: float
    channel: int | None = None
    voice: str | None = None             # the voice this local was read as (indexer.speakers.diarize.reread)
    window_sum: np.ndarray | None = None  # sum of the unit embeddings of its speech windows (indexer.speakers.diarize.Windows)
    window_count: int = 0


@dataclass
class Voice:
    voice_id: str
    name: str | None

    @property
    def display(self) -> str:
        return self.name or self.voice_id


@dataclass
class VoiceSummary:
    voice_id: str
    name: str | None
    takes: int
    seconds: float
    locals: list[tuple[str, str, float]]     # (take_id, label, seconds), longest first


@dataclass
class _Sums:
    """What :meth:`VoiceRegistry.centroids` adds up, per voice, and each take's part of it."""

    emb: dict = field(default_factory=dict)          # voice -> sum of weighted unit embeddings
    n: dict = field(default_factory=dict)            # voice -> how many locals
    win: dict = field(default_factory=dict)          # voice -> sum of (capped) window sums
    nwin: dict = field(default_factory=dict)         # voice -> how many locals with windows
    takes: dict = field(default_factory=dict)        # take -> [(voice, embedding part, window part)]
    stamp: int = -1                                  # the connection's total_changes when last in step

    def add(self, take_id: str, vid: str, emb, secs: float, wsum, wcount: int) -> None:
        v = _unit(emb)
        if v is None:
            return
        e = (min(secs, CENTROID_CAP_SECONDS) + 1.0) * v.astype(np.float64)
        w = min(1.0, WINDOW_CAP / wcount) * np.asarray(wsum, dtype=np.float64) if wsum is not None and wcount else None
        self.emb[vid] = self.emb.get(vid, 0.0) + e
        self.n[vid] = self.n.get(vid, 0) + 1
        if w is not None:
            self.win[vid] = self.win.get(vid, 0.0) + w
            self.nwin[vid] = self.nwin.get(vid, 0) + 1
        self.takes.setdefault(take_id, []).append((vid, e, w))

    def _take_off(self, parts) -> None:
        for vid, e, w in parts:
            self.emb[vid], self.n[vid] = self.emb[vid] - e, self.n[vid] - 1
            if w is not None:
                self.win[vid], self.nwin[vid] = self.win[vid] - w, self.nwin[vid] - 1

    def drop(self, take_id: str) -> None:
        """The take's part taken off for good (the take is being filed again)."""
        self._take_off(self.takes.pop(take_id, ()))

    def without(self, take_id: str | None) -> "_Sums":
        """The per-voice sums with the take's part taken off, as a copy (``self`` unchanged)."""
        out = _Sums(dict(self.emb), dict(self.n), dict(self.win), dict(self.nwin))
        out._take_off(self.takes.get(take_id, ()) if take_id is not None else ())
        return out


class VoiceRegistry:
    """The registry over an index catalog's sqlite connection (``Index.db``)."""

    def __init__(self, db: sqlite3.Connection, *, threshold: float | None = None, create: bool = True):
        self.db = db
        if create:
            with db:
                db.executescript(_SCHEMA)
                columns = {r[1] for r in db.execute("PRAGMA table_info(voice_locals)")}
                if "window_sum" not in columns:          # an index made before the window profiles
                    db.execute("ALTER TABLE voice_locals ADD COLUMN window_sum BLOB")
                    db.execute("ALTER TABLE voice_locals ADD COLUMN window_count INTEGER NOT NULL DEFAULT 0")
        stored = self._meta("threshold") if self._has_tables() else None
        self.threshold = float(threshold if threshold is not None else stored if stored else DEFAULT_THRESHOLD)
        self._cache: dict[str, _Sums] = {}       # model -> the voices' sums (see centroids())

    # ------------------------------------------------------------------ small helpers
    def _has_tables(self) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE name='voice_voices'").fetchone() is not None

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM voice_meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO voice_meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET "
                        "value=excluded.value", (key, value))

    def _new_id(self) -> str:
        n = int(self._meta("next_id") or "1")
        row = self.db.execute("SELECT MAX(CAST(SUBSTR(voice_id, 2) AS INTEGER)) FROM voice_voices").fetchone()
        n = max(n, (row[0] or 0) + 1)
        self._set_meta("next_id", str(n + 1))
        vid = f"V{n:03d}"
        now = _now()
        self.db.execute("INSERT INTO voice_voices(voice_id, name, merged_into, created_at, updated_at) "
                        "VALUES(?, NULL, NULL, ?, ?)", (vid, now, now))
        return vid

    def settings(self) -> dict:
        """What decides matching (recorded in the catalog with the models)."""
        return {"threshold": self.threshold, "same_take_threshold": SAME_TAKE_THRESHOLD, "model": DEFAULT_MODEL,
                "min_new_voice_seconds": MIN_NEW_VOICE_SECONDS, "metric": "cosine"}

    # ------------------------------------------------------------------ matching
    def centroids(self, exclude_take: str | None = None, model: str | None = None, *,
                  windows: bool = False) -> tuple[list[str], np.ndarray]:
        """(voice ids, unit centroids (V, D)) from the locals of every take but ``exclude_take``,
        counting only embeddings made by ``model`` (vectors of different models never mix).

        ``windows``: a voice's *window profile* instead, the mean of the CAM++ embeddings of its speech
        windows in those takes, where its locals have windows (else its centroid). That is what a
        window of speech is compared with in :func:`indexer.speakers.diarize.reread`: like with like.

        The sums over every take are kept between calls (and the excluded take's part taken off), so
        the end-of-run pass over T takes costs O(T), not O(T^2) (scripts/bench_voices.py: 1000 takes,
        1.3 s instead of 47 s)."""
        sums = self._sums(model or DEFAULT_MODEL).without(exclude_take)
        ids = sorted(v for v, k in sums.n.items() if k > 0)
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        rows = []
        for i in ids:
            p = _unit(sums.win[i]) if windows and sums.nwin.get(i, 0) > 0 else None
            rows.append(p if p is not None and p.shape == sums.emb[i].shape else _unit(sums.emb[i]))
        return ids, np.stack(rows).astype(np.float32)

    def _sums(self, model: str) -> "_Sums":
        """Per voice, the weighted sums of its locals' embeddings and window sums (made by ``model``),
        and each take's part of them; rebuilt when the catalog changed by any other way than
        :meth:`register_take` (which keeps them up to date itself)."""
        cached = self._cache.get(model)
        if cached is not None and cached.stamp == self.db.total_changes:
            return cached
        sums = _Sums()
        for take_id, vid, blob, secs, wblob, wcount in self.db.execute(
                "SELECT take_id, voice_id, embedding, seconds, window_sum, window_count FROM voice_locals WHERE "
                "voice_id IS NOT NULL AND embedding IS NOT NULL AND COALESCE(model, ?) = ?", (DEFAULT_MODEL, model)):
            sums.add(take_id, vid, _vec(blob), float(secs), _vec(wblob), int(wcount or 0))
        sums.stamp = self.db.total_changes
        self._cache = {model: sums}
        return sums

    def register_take(self, take_id: str, speakers: Sequence[LocalIn], *, model: str | None = None,
                      commit: bool = True) -> dict[str, str | None]:
        """Match a take's local speakers to voices (creating new ones); returns label -> voice id.

        Replaces whatever the take had registered before, keeping its voices where the new locals
        match the old ones (re-indexing keeps ids, names, merges and splits). ``model`` names the
        embedding model (default CAM++); only voices with embeddings of that model are matched.
        """
        model = model or DEFAULT_MODEL
        ctx = self.db if commit else _nullcontext()
        with ctx:
            old = [(r[0], r[1], _unit(_vec(r[2])), bool(r[3])) for r in self.db.execute(
                "SELECT label, voice_id, embedding, pinned FROM voice_locals WHERE take_id=? AND "
                "COALESCE(model, ?) = ?", (take_id, DEFAULT_MODEL, model))]
            ids, mat = self.centroids(exclude_take=take_id, model=model)     # (before the delete: no rebuild)
            self.db.execute("DELETE FROM voice_locals WHERE take_id=?", (take_id,))
            new = [(s.label, _unit(s.embedding), float(s.seconds), s.channel) for s in speakers]
            window_of = {s.label: (s.window_sum, int(s.window_count)) for s in speakers}
            result: dict[str, str | None] = {}
            pinned: dict[str, bool] = {}
            sims: dict[str, float | None] = {}

            # 1. the take's previous locals (same recording): inherit their voice
            old_usable = [(lab, vid, e, pin) for lab, vid, e, pin in old if e is not None and vid is not None]
            pairs = _assign([e for _, e, _, _ in new], [e for _, _, e, _ in old_usable], SAME_TAKE_THRESHOLD)
            for i, j, sim in pairs:
                lab = new[i][0]
                result[lab] = self.resolve_id(old_usable[j][1])
                pinned[lab] = old_usable[j][3]
                sims[lab] = sim
            # 1b. locals already read as a known voice (indexer.speakers.diarize.reread) go to that voice,
            #     unless the user pinned this take's local to a voice of their choosing
            for s in speakers:
                vid = self.resolve_id(s.voice) if s.voice else None
                if vid is None or pinned.get(s.label) or self.voice(vid) is None:
                    continue
                result[s.label] = vid
                e = _unit(s.embedding)
                sims[s.label] = float(mat[ids.index(vid)] @ e) if e is not None and vid in ids else None
            # 2. the other takes' voices
            taken = {v for v in result.values() if v}
            free = [k for k, vid in enumerate(ids) if vid not in taken]
            rest = [i for i in range(len(new)) if new[i][0] not in result]
            pairs = _assign([new[i][1] for i in rest], [mat[k] for k in free], self.threshold)
            for a, b, sim in pairs:
                lab = new[rest[a]][0]
                result[lab] = ids[free[b]]
                sims[lab] = sim
            # 3. new voices (in order of speech time, so the main speaker of a first take is V001)
            for lab, emb, secs, _ in sorted(new, key=lambda x: -x[2]):
                if lab in result:
                    continue
                if emb is None or secs < MIN_NEW_VOICE_SECONDS:
                    result[lab] = None
                    continue
                result[lab] = self._new_id()
                sims[lab] = None
            now = _now()
            self.db.executemany(
                "INSERT INTO voice_locals(take_id, label, voice_id, embedding, seconds, channel, pinned, similarity, "
                "model, updated_at, window_sum, window_count) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                [(take_id, lab, result[lab], _blob(emb), secs, chan, int(pinned.get(lab, False)),
                  None if sims.get(lab) is None else round(float(sims[lab]), 4), model, now,
                  _blob(window_of[lab][0]) if window_of[lab][1] else None, window_of[lab][1])
                 for lab, emb, secs, chan in new])
            self._set_meta("threshold", repr(self.threshold))
        sums = self._cache.get(model)
        if sums is not None:                  # the take's part replaced: no rebuild for the next call
            sums.drop(take_id)
            for lab, emb, secs, _ in new:
                if result[lab] is not None and emb is not None:
                    sums.add(take_id, result[lab], emb, secs, window_of[lab][0], window_of[lab][1])
            sums.stamp = self.db.total_changes
        return result

    def remove_take(self, take_id: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM voice_locals WHERE take_id=?", (take_id,))

    # ------------------------------------------------------------------ reading
    def resolve_id(self, voice_id: str | None) -> str | None:
        """Follow merges: the voice an id stands for now."""
        seen = set()
        while voice_id is not None and voice_id not in seen:
            seen.add(voice_id)
            row = self.db.execute("SELECT merged_into FROM voice_voices WHERE voice_id=?", (voice_id,)).fetchone()
            if row is None or row[0] is None:
                return voice_id
            voice_id = row[0]
        return voice_id

    def voice(self, voice_id: str | None) -> Voice | None:
        vid = self.resolve_id(voice_id)
        if vid is None:
            return None
        row = self.db.execute("SELECT voice_id, name FROM voice_voices WHERE voice_id=?", (vid,)).fetchone()
        return None if row is None else Voice(row[0], row[1])

    def voice_of(self, take_id: str, label: str | None) -> Voice | None:
        """The voice of a take's local speaker (None when it has none)."""
        if label is None:
            return None
        row = self.db.execute("SELECT voice_id FROM voice_locals WHERE take_id=? AND label=?",
                              (take_id, label)).fetchone()
        return None if row is None else self.voice(row[0])

    def mapping(self, take_ids: Iterable[str] | None = None) -> dict[tuple[str, str], Voice]:
        """(take id, local label) -> voice, for every registered local (or those of ``take_ids``)."""
        names = {r[0]: r[1] for r in self.db.execute("SELECT voice_id, name FROM voice_voices")}
        rows = self.db.execute("SELECT take_id, label, voice_id FROM voice_locals WHERE voice_id IS NOT NULL").fetchall()
        wanted = set(take_ids) if take_ids is not None else None
        out = {}
        for take_id, label, vid in rows:
            if wanted is not None and take_id not in wanted:
                continue
            vid = self.resolve_id(vid)
            out[(take_id, label)] = Voice(vid, names.get(vid))
        return out

    def find(self, ref: str) -> list[str]:
        """Voice ids for a name (case-insensitive) or an id (merged ids resolve); [] if none."""
        ref = ref.strip()
        m = _ID.match(ref)
        if m:
            vid = self.resolve_id(f"V{int(m.group(1)):03d}")
            exists = self.db.execute("SELECT 1 FROM voice_voices WHERE voice_id=?", (vid,)).fetchone()
            if exists:
                return [vid]
        return [r[0] for r in self.db.execute(
            "SELECT voice_id FROM voice_voices WHERE merged_into IS NULL AND name = ? COLLATE NOCASE "
            "ORDER BY voice_id", (ref,))]

    def require(self, ref: str) -> list[str]:
        ids = self.find(ref)
        if not ids:
            raise UsageError(f"No voice called {ref.strip()[:80]!r} in this index; `dailies speakers list` shows them.")
        return ids

    def locals_of(self, voice_ids: Iterable[str]) -> list[tuple[str, str]]:
        """(take id, local label) of every local speaker of these voices (merges followed)."""
        wanted = {self.resolve_id(v) for v in voice_ids}
        return [(t, lab) for t, lab, vid in self.db.execute(
            "SELECT take_id, label, voice_id FROM voice_locals WHERE voice_id IS NOT NULL ORDER BY take_id, label")
            if self.resolve_id(vid) in wanted]

    def summaries(self, take_ids: Iterable[str] | None = None) -> list[VoiceSummary]:
        """Every voice that has speech in the index (or in ``take_ids``), by id."""
        wanted = set(take_ids) if take_ids is not None else None
        acc: dict[str, list[tuple[str, str, float]]] = {}
        for take_id, label, vid, secs in self.db.execute(
                "SELECT take_id, label, voice_id, seconds FROM voice_locals WHERE voice_id IS NOT NULL"):
            if wanted is not None and take_id not in wanted:
                continue
            acc.setdefault(self.resolve_id(vid), []).append((take_id, label, float(secs)))
        names = {r[0]: r[1] for r in self.db.execute("SELECT voice_id, name FROM voice_voices")}
        out = []
        for vid in sorted(acc, key=_id_key):
            loc = sorted(acc[vid], key=lambda x: -x[2])
            out.append(VoiceSummary(vid, names.get(vid), len({t for t, _, _ in loc}), sum(s for _, _, s in loc), loc))
        return out

    # ------------------------------------------------------------------ editing (the `speakers` commands)
    def _existing(self, ref: str) -> str:
        ids = self.require(ref)
        if len(ids) > 1:
            raise UsageError(f"'{ref}' names several voices ({', '.join(ids)}); use a voice id.")
        return ids[0]

    def name(self, ref: str, name: str) -> str:
        """Give a voice a name (e.g. the character); returns its id."""
        name = name.strip()
        if not name:
            raise UsageError("A voice's name cannot be empty.")
        if _ID.match(name):
            raise UsageError(f"'{name}' looks like a voice id; choose another name.")
        vid = self._existing(ref)
        with self.db:
            self.db.execute("UPDATE voice_voices SET name=?, updated_at=? WHERE voice_id=?", (name, _now(), vid))
        return vid

    def merge(self, keep_ref: str, other_ref: str) -> str:
        """Merge ``other`` into ``keep`` (every take's local of ``other`` becomes ``keep``'s)."""
        keep, other = self._existing(keep_ref), self._existing(other_ref)
        if keep == other:
            raise UsageError(f"{keep_ref} and {other_ref} are already the same voice ({keep}).")
        now = _now()
        with self.db:
            names = dict(self.db.execute("SELECT voice_id, name FROM voice_voices WHERE voice_id IN (?, ?)",
                                         (keep, other)).fetchall())
            if not names.get(keep) and names.get(other):
                self.db.execute("UPDATE voice_voices SET name=? WHERE voice_id=?", (names[other], keep))
            self.db.execute("UPDATE voice_locals SET voice_id=?, updated_at=? WHERE voice_id=?", (keep, now, other))
            self.db.execute("UPDATE voice_voices SET merged_into=?, updated_at=? WHERE voice_id=?", (keep, now, other))
            self.db.execute("UPDATE voice_voices SET merged_into=? WHERE merged_into=?", (keep, other))
            self.db.execute("UPDATE voice_voices SET updated_at=? WHERE voice_id=?", (now, keep))
        return keep

    def shared_takes(self, a_ref: str, b_ref: str) -> int:
        """How many takes have both voices (diarization told them apart there: merging is suspect)."""
        a, b = self._existing(a_ref), self._existing(b_ref)
        return self.db.execute("SELECT COUNT(*) FROM (SELECT take_id FROM voice_locals WHERE voice_id IN (?, ?) "
                               "GROUP BY take_id HAVING COUNT(DISTINCT voice_id) > 1)", (a, b)).fetchone()[0]

    def split(self, ref: str, take_id: str, label: str | None = None) -> str:
        """Move a take's local speaker (of voice ``ref``) to a new voice, pinned there; returns its id."""
        vid = self._existing(ref)
        rows = [r for r in self.db.execute(
            "SELECT label, voice_id FROM voice_locals WHERE take_id=? ORDER BY label", (take_id,))
            if self.resolve_id(r[1]) == vid and (label is None or r[0] == label)]
        if not rows:
            raise UsageError(f"Voice {vid} does not speak in take {take_id}"
                             + (f" as {label}" if label else "") + "; `dailies speakers list --json` shows its takes.")
        if len(rows) > 1:
            raise UsageError(f"Voice {vid} is {len(rows)} local speakers in take {take_id} "
                             f"({', '.join(r[0] for r in rows)}); pick one with --label.")
        with self.db:
            new = self._new_id()
            self.db.execute("UPDATE voice_locals SET voice_id=?, pinned=1, updated_at=? WHERE take_id=? AND label=?",
                            (new, _now(), take_id, rows[0][0]))
        return new


def _id_key(vid: str) -> tuple[int, str]:
    m = _ID.match(vid)
    return (int(m.group(1)) if m else 10**9, vid)


def _assign(rows: list[np.ndarray | None], cols: list[np.ndarray], threshold: float) -> list[tuple[int, int, float]]:
    """One-to-one matching maximising total similarity among pairs at or above ``threshold``."""
    ri = [i for i, r in enumerate(rows) if r is not None]
    if not ri or not cols:
        return []
    sim = np.stack([rows[i] for i in ri]) @ np.stack(cols).T
    from scipy.optimize import linear_sum_assignment

    cost = np.where(sim >= threshold, -sim, 1e3)
    r, c = linear_sum_assignment(cost)
    return [(ri[a], int(b), float(sim[a, b])) for a, b in zip(r, c) if sim[a, b] >= threshold]


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def open_registry(db: sqlite3.Connection, *, readonly: bool = False) -> VoiceRegistry | None:
    """The registry of an index, or None for a read-only index that has none yet."""
    if readonly:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name='voice_voices'").fetchone() is None:
            return None
        return VoiceRegistry(db, create=False)
    return VoiceRegistry(db)
