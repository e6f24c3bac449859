"""Identity across takes: the same voice recognised in every take, under one production-wide id and name.

This module holds all of it: the voice registry (below), the re-reading of a take's diarization
against the voices of the other takes and its filing (:func:`identify`, :func:`identify_all`,
:func:`reread`), and the end-of-run pass over the stored takes (:func:`reread_stored`). The
diarization itself is :mod:`indexer.speakers.diarize` (models in ``load``, refinement in ``refine``,
channel ownership in ``channels``); word attribution is :mod:`indexer.align`; the registry's rows are
the store's (:mod:`indexer.store.voices`).

The registry.

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

Storage: the catalog's ``voice_`` tables, through :class:`indexer.store.voices.VoiceTables` (only the
store runs SQL); embeddings as float32 blobs (a registry holds hundreds of voices at most, so matching
is exact and needs no vector store).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .campplus import NAME as CAMPPLUS_NAME
from .records import Diarization
from .refine import REFINE, _apply_runs, _label_factory, _runs_of, _viterbi, split_by_known_voices
from ..errors import UsageError
from ..store.voices import VoiceTables

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
# The end-of-run pass reads an earlier take again when the run's takes make up this share of the window
# profile of one of its voices (a voice known from ten takes or more is not moved enough by one more to
# be worth reading its takes again: the pass over one new take does not grow with the index). Chosen by
# reasoning, not tuned; the fixture shoot indexed in two runs gives the one-run index's speakers.
MOVED_SHARE = 0.10
WINDOW_CAP = 120                 # ... nor more than this many speech windows (60 s, one every 0.5 s) in its window profile


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
    """What the registry needs of one local speaker (``indexer.speakers.records.LocalSpeaker`` fits)."""

    label: str
    embedding: np.ndarray | None
    seconds: float
    channel: int | None = None
    voice: str | None = None             # the voice this local was read as (reread, below)
    window_sum: np.ndarray | None = None  # sum of the unit embeddings of its speech windows (indexer.speakers.records.Windows)
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
    """The registry over an index catalog's voice tables (``Index.voice_tables()``, or
    ``VoiceTables.memory()`` for a registry of its own)."""

    def __init__(self, tables: VoiceTables, *, threshold: float | None = None):
        self.tables = tables
        stored = tables.meta("threshold") if tables.present() else None
        self.threshold = float(threshold if threshold is not None else stored if stored else DEFAULT_THRESHOLD)
        self._cache: dict[str, _Sums] = {}       # model -> the voices' sums (see centroids())

    # ------------------------------------------------------------------ small helpers
    def _new_id(self) -> str:
        n = int(self.tables.meta("next_id") or "1")
        n = max(n, self.tables.highest_number() + 1)
        self.tables.set_meta("next_id", str(n + 1))
        vid = f"V{n:03d}"
        self.tables.add_voice(vid, _now())
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
        window of speech is compared with in :func:`reread`: like with like.

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

    def filed_takes(self, model: str | None = None) -> set[str]:
        """The takes with locals filed (by ``model``'s embeddings)."""
        return set(self._sums(model or DEFAULT_MODEL).takes)

    def moved_by(self, take_ids: Iterable[str], *, model: str | None = None, share: float = None) -> set[str]:
        """The other takes filed under a voice whose window profile ``take_ids`` make up at least
        ``share`` of (by locals with windows): those whose re-read can change because these takes were
        filed. A voice known from many takes hardly moves when one take joins it, so a new take makes at
        most the takes of voices within ``1/share`` times its own size be read again, whatever the size of
        the index."""
        share = MOVED_SHARE if share is None else share
        sums = self._sums(model or DEFAULT_MODEL)
        mine = set(take_ids)
        joined: dict[str, int] = {}
        for t in mine:
            for vid, _e, w in sums.takes.get(t, ()):
                joined[vid] = joined.get(vid, 0) + (1 if w is not None else 0)
        moved = {v for v, k in joined.items() if k and k >= share * max(1, sums.nwin.get(v, 0))}
        return {t for t, parts in sums.takes.items()
                if t not in mine and any(vid in moved for vid, _e, _w in parts)}

    def _sums(self, model: str) -> "_Sums":
        """Per voice, the weighted sums of its locals' embeddings and window sums (made by ``model``),
        and each take's part of them; rebuilt when the catalog changed by any other way than
        :meth:`register_take` (which keeps them up to date itself)."""
        cached = self._cache.get(model)
        if cached is not None and cached.stamp == self.tables.stamp:
            return cached
        sums = _Sums()
        for take_id, vid, blob, secs, wblob, wcount in self.tables.embeddings(model, DEFAULT_MODEL):
            sums.add(take_id, vid, _vec(blob), float(secs), _vec(wblob), int(wcount or 0))
        sums.stamp = self.tables.stamp
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
        ctx = self.tables.transaction() if commit else _nullcontext()
        with ctx:
            old = [(r[0], r[1], _unit(_vec(r[2])), bool(r[3]))
                   for r in self.tables.take_locals(take_id, model, DEFAULT_MODEL)]
            ids, mat = self.centroids(exclude_take=take_id, model=model)     # (before the delete: no rebuild)
            self.tables.delete_take(take_id)
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
            # 1b. locals already read as a known voice (reread, below) go to that voice,
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
            self.tables.add_locals(
                [(take_id, lab, result[lab], _blob(emb), secs, chan, int(pinned.get(lab, False)),
                  None if sims.get(lab) is None else round(float(sims[lab]), 4), model, now,
                  _blob(window_of[lab][0]) if window_of[lab][1] else None, window_of[lab][1])
                 for lab, emb, secs, chan in new])
            self.tables.set_meta("threshold", repr(self.threshold))
        sums = self._cache.get(model)
        if sums is not None:                  # the take's part replaced: no rebuild for the next call
            sums.drop(take_id)
            for lab, emb, secs, _ in new:
                if result[lab] is not None and emb is not None:
                    sums.add(take_id, result[lab], emb, secs, window_of[lab][0], window_of[lab][1])
            sums.stamp = self.tables.stamp
        return result

    def remove_take(self, take_id: str) -> None:
        with self.tables.transaction():
            self.tables.delete_take(take_id)

    # ------------------------------------------------------------------ reading
    def resolve_id(self, voice_id: str | None) -> str | None:
        """Follow merges: the voice an id stands for now."""
        seen = set()
        while voice_id is not None and voice_id not in seen:
            seen.add(voice_id)
            exists, merged_into = self.tables.merged_into(voice_id)
            if not exists or merged_into is None:
                return voice_id
            voice_id = merged_into
        return voice_id

    def voice(self, voice_id: str | None) -> Voice | None:
        vid = self.resolve_id(voice_id)
        if vid is None:
            return None
        row = self.tables.voice(vid)
        return None if row is None else Voice(row[0], row[1])

    def voice_of(self, take_id: str, label: str | None) -> Voice | None:
        """The voice of a take's local speaker (None when it has none)."""
        if label is None:
            return None
        registered, vid = self.tables.voice_of_local(take_id, label)
        return self.voice(vid) if registered else None

    def mapping(self, take_ids: Iterable[str] | None = None) -> dict[tuple[str, str], Voice]:
        """(take id, local label) -> voice, for every registered local (or those of ``take_ids``)."""
        names = self.tables.names()
        rows = self.tables.assigned()
        wanted = set(take_ids) if take_ids is not None else None
        out = {}
        for take_id, label, vid, _ in rows:
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
            if self.tables.voice(vid) is not None:
                return [vid]
        return self.tables.named(ref)

    def require(self, ref: str) -> list[str]:
        ids = self.find(ref)
        if not ids:
            raise UsageError(f"No voice called {ref.strip()[:80]!r} in this index; `dailies speakers list` shows them.")
        return ids

    def locals_of(self, voice_ids: Iterable[str]) -> list[tuple[str, str]]:
        """(take id, local label) of every local speaker of these voices (merges followed)."""
        wanted = {self.resolve_id(v) for v in voice_ids}
        return [(t, lab) for t, lab, vid, _ in self.tables.assigned() if self.resolve_id(vid) in wanted]

    def summaries(self, take_ids: Iterable[str] | None = None) -> list[VoiceSummary]:
        """Every voice that has speech in the index (or in ``take_ids``), by id."""
        wanted = set(take_ids) if take_ids is not None else None
        acc: dict[str, list[tuple[str, str, float]]] = {}
        for take_id, label, vid, secs in self.tables.assigned():
            if wanted is not None and take_id not in wanted:
                continue
            acc.setdefault(self.resolve_id(vid), []).append((take_id, label, float(secs)))
        names = self.tables.names()
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
        others = [v for v in self.find(name) if v != vid]
        if others:
            # two voices under one name would make `--speaker NAME` and every export mix two people
            raise UsageError(f"{others[0]} is already called {name}; if {vid} is the same person, merge them with "
                             f"`dailies speakers merge {others[0]} {vid}`, otherwise choose another name.")
        with self.tables.transaction():
            self.tables.set_name(vid, name, _now())
        return vid

    def merge(self, keep_ref: str, other_ref: str) -> str:
        """Merge ``other`` into ``keep`` (every take's local of ``other`` becomes ``keep``'s)."""
        keep, other = self._existing(keep_ref), self._existing(other_ref)
        if keep == other:
            raise UsageError(f"{keep_ref} and {other_ref} are already the same voice ({keep}).")
        now = _now()
        with self.tables.transaction():
            names = self.tables.names((keep, other))
            if not names.get(keep) and names.get(other):
                self.tables.set_name(keep, names[other])
            self.tables.merge(keep, other, now)
        return keep

    def shared_takes(self, a_ref: str, b_ref: str) -> int:
        """How many takes have both voices (diarization told them apart there: merging is suspect)."""
        a, b = self._existing(a_ref), self._existing(b_ref)
        return self.tables.shared_takes(a, b)

    def split(self, ref: str, take_id: str, label: str | None = None) -> str:
        """Move a take's local speaker (of voice ``ref``) to a new voice, pinned there; returns its id."""
        vid = self._existing(ref)
        rows = [r for r in self.tables.labels_of_take(take_id)
                if self.resolve_id(r[1]) == vid and (label is None or r[0] == label)]
        if not rows:
            raise UsageError(f"Voice {vid} does not speak in take {take_id}"
                             + (f" as {label}" if label else "") + "; `dailies speakers list --json` shows its takes.")
        if len(rows) > 1:
            raise UsageError(f"Voice {vid} is {len(rows)} local speakers in take {take_id} "
                             f"({', '.join(r[0] for r in rows)}); pick one with --label.")
        with self.tables.transaction():
            new = self._new_id()
            self.tables.pin(take_id, rows[0][0], new, _now())
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


def reread(diar: Diarization, ids: list[str], centroids: np.ndarray, threshold: float) -> tuple[Diarization, dict[str, str]]:
    """Re-read every turn of a take against the voices the registry knows from the *other* takes.

    A take's own diarization can run two people into one local speaker (short takes, quick
    exchanges, similar voices), and a local speaker that mixes two people matches neither of their
    voices. The voices from the other takes are purer references: each window of the take's speech
    (:class:`Windows`) is scored (cosine similarity) against them, each by its window profile (the
    mean of its windows in those takes, ``centroids``: like is compared with like, and it is how the
    session gap below was measured), and against the take's own local speakers; the best path
    through each turn (Viterbi, a change of speaker costs ``reseg_penalty``) gives its speaker. A
    window is nearer its own take's speaker than the same person's voice from other takes (same
    room, microphone and day), so the take's own speakers count ``reread_bias`` less: that gap,
    measured on the AMI train files' reference turns, is 0.17 on average. A local speaker that already matches a voice (``threshold``, as the registry matches)
    stands for that voice. Returns the new diarization and, for each local speaker that stands for a
    known voice, that voice id (the registry then files it there).
    """
    win = diar.windows
    known = [s for s in diar.speakers if s.embedding is not None]
    if win is None or not len(win.start) or not len(ids) or centroids is None or not len(centroids):
        return diar, {}
    cents = np.asarray(centroids, dtype=np.float32)
    pairs = _assign([s.embedding for s in known], list(cents), threshold)
    bound = {known[i].label: ids[j] for i, j, _ in pairs}
    voice_label = {v: lab for lab, v in bound.items()}
    free = [s for s in known if s.label not in bound]
    bias, penalty = REFINE["reread_bias"], REFINE["reseg_penalty"]
    scores = win.emb @ cents.T
    for lab, v in bound.items():
        j = ids.index(v)
        scores[:, j] = np.maximum(scores[:, j], win.emb @ diar.embedding(lab) - bias)
    if free:
        scores = np.concatenate([scores, win.emb @ np.stack([s.embedding for s in free]).T - bias], axis=1)
    placeholder = {f"voice:{v}": v for v in ids if v not in voice_label}    # a voice with no local speaker yet
    names = [voice_label.get(v, f"voice:{v}") for v in ids] + [s.label for s in free]
    index = {lab: k for k, lab in enumerate(names)}
    centres = win.start + win.length / 2
    valid = np.linalg.norm(win.emb, axis=1) > 0
    runs: list[tuple[float, float, str, np.ndarray, str]] = []
    for seg, _, lab in diar.exclusive.itertracks(yield_label=True):
        if seg.duration < REFINE["reread_min"]:
            continue
        rows = np.flatnonzero((centres >= seg.start) & (centres < seg.end) & valid)
        if not len(rows):
            continue
        path = _viterbi(scores[rows], penalty)
        own = index.get(lab)
        if own is not None and (path == own).all():
            continue
        runs.extend(_runs_of(path, centres[rows], rows, float(seg.start), float(seg.end), names, lab))
    if not runs:
        return diar, bound
    make = _label_factory(diar.labels)
    fresh: dict[str, str] = {}
    for k, (a, b, lab, rows, old) in enumerate(runs):
        if lab in placeholder:
            if lab not in fresh:
                fresh[lab] = make()
                bound[fresh[lab]] = placeholder[lab]
            runs[k] = (a, b, fresh[lab], rows, old)
    return _apply_runs(diar, runs, win.emb), bound


def _read_against_others(diar: Diarization, registry, take_id: str, model: str | None) -> tuple[Diarization, dict[str, str]]:
    """A take's diarization corrected by the voices of the other takes (:func:`split_by_known_voices`,
    then :func:`reread`, except for takes attributed by channel: lavs / iso tracks tell the speakers
    apart better than windows)."""
    ids, cents = registry.centroids(exclude_take=take_id, model=model, windows=True)
    diar = split_by_known_voices(diar, cents, registry.threshold)
    return (diar, {}) if diar.channel_owner else reread(diar, ids, cents, registry.threshold)


def window_sums(diar: Diarization, labels: Iterable[str] | None = None) -> dict[str, tuple[np.ndarray, int]]:
    """Per local speaker (of ``labels``, default all), the sum of the unit embeddings of the speech
    windows inside its exclusive turns, and how many (what the registry keeps for a voice's window
    profile)."""
    win = diar.windows
    if win is None or not len(win.start):
        return {}
    wanted = set(diar.labels if labels is None else labels)
    centres = win.start + win.length / 2
    valid = np.linalg.norm(win.emb, axis=1) > 0
    out: dict[str, tuple[np.ndarray, int]] = {}
    for seg, _, lab in diar.exclusive.itertracks(yield_label=True):
        if lab not in wanted:
            continue
        rows = (centres >= seg.start) & (centres < seg.end) & valid
        if rows.any():
            total, n = out.get(lab, (np.zeros(win.emb.shape[1], np.float32), 0))
            out[lab] = (total + win.emb[rows].sum(axis=0), n + int(rows.sum()))
    return out


def _file(diar: Diarization, bound: dict[str, str], registry, take_id: str, model: str | None,
          own: Iterable[str]) -> dict[str, str | None]:
    """File the take's locals. Only the speakers the take's own diarization found (``own``) give
    windows to their voices' window profiles: a stretch that the re-read gave to a voice from another
    take would feed that voice's profile with what was read from it, and each later pass would pull
    harder the same way (on the AMI files, 4.3 s of 219 s changed voice from one pass to the next
    with them, 1.2 s and then none without them)."""
    sums = window_sums(diar, own)
    return registry.register_take(take_id, [LocalIn(s.label, s.embedding, s.seconds, s.channel, bound.get(s.label),
                                                    *sums.get(s.label, (None, 0)))
                                            for s in diar.speakers], model=model)


def identify(diar: Diarization, registry, take_id: str, *, model: str | None = None) -> tuple[Diarization, dict[str, str | None]]:
    """File a take's local speakers under production-wide voices (``registry``: a
    :class:`VoiceRegistry`), first letting the voices of the other takes correct the
    take's own diarization. Returns the diarization the take's lines are attributed with, and local
    label -> voice id."""
    read, bound = _read_against_others(diar, registry, take_id, model)
    return read, _file(read, bound, registry, take_id, model, diar.labels)


def identify_all(diars: dict[str, Diarization], registry, *, model: str | None = None) -> dict[str, tuple[Diarization, dict[str, str | None]]]:
    """:func:`identify` for many takes at once, each against the voices of all the others: every
    take is re-read against the registry as it stands (so a take indexed early gains from the takes
    indexed after it), then all are filed again. ``diars`` are the takes' own diarizations (as the
    diarizer made them); re-filing a take keeps its voice ids (the registry matches its old locals)."""
    read = {take_id: _read_against_others(diar, registry, take_id, model) for take_id, diar in diars.items()}
    return {take_id: (d, _file(d, bound, registry, take_id, model, diars[take_id].labels))
            for take_id, (d, bound) in read.items()}


def reread_stored(index, diarize_key: str, *, model: str | None = None, filed: set[str] | None = None,
                  started=None) -> dict[str, tuple]:
    """The end-of-run pass (:func:`identify_all`) over the takes of an index: every indexed take whose
    diarization is stored (by ``diarize_key``) with speech windows, except takes attributed by channel
    (re-reading those needs the sound), re-read against the voices of all the others and filed again.

    ``filed``: the takes filed since the last pass (None: every take is read again). Then only those are
    read again, with the takes whose voices they moved (:meth:`VoiceRegistry.moved_by`), so the pass
    over one new take does not grow with the index.

    Returns take id -> (the take, its diarization as re-read, local label -> voice id); empty when
    fewer than two takes qualify. ``started(n)`` is called before the n takes are read."""
    diars: dict[str, Diarization] = {}
    takes = {}
    registry = VoiceRegistry(index.voice_tables())
    wanted = None
    if filed is not None:
        if len(registry.filed_takes(model)) < 2:
            return {}
        wanted = set(filed) | registry.moved_by(filed, model=model)
    chosen = index.takes(status="indexed") if wanted is None else \
        index.takes_by_id(sorted(wanted), status="indexed").values()
    for take in chosen:
        data = index.get_step(take.take_id, "diarize", diarize_key)
        if not data:
            continue
        d = Diarization.from_json(data)
        if d.windows is not None and not d.channel_owner:
            diars[take.take_id] = d
            takes[take.take_id] = take
    if not diars or (wanted is None and len(diars) < 2):
        return {}
    if started is not None:
        started(len(diars))
    out = identify_all(diars, registry, model=model)
    return {take_id: (takes[take_id], diar, voice_of) for take_id, (diar, voice_of) in out.items()}


def open_registry(index, *, readonly: bool = False) -> VoiceRegistry | None:
    """The registry of an index (:class:`indexer.store.Index`), or None for a read-only index whose
    catalog has no voice tables (an index of the first release that nothing upgraded)."""
    tables = index.voice_tables()
    if readonly and not tables.present():
        return None
    return VoiceRegistry(tables)
