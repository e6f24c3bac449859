"""Screenplays in the index's catalog (sqlite): versioned imports, stored matches, and queries.

Tables (all prefixed ``script_``, created on first import by :func:`ensure_schema`):

* ``script_scripts``   one row per screenplay (by name: the title, or the file name)
* ``script_versions``  one row per import (version 1, 2 ...), with the parsed document as JSON
* ``script_scenes``    scenes of a version: number, heading, INT/EXT, location, time, pages, eighths
* ``script_lines``     dialogue lines of a version: ``line_id`` (``12A/4``), a stable ``uid``, character,
                       text, page; ``change`` says new / changed / same against the previous version
* ``script_matches``   which takes were matched against a version, to which scene, how, and when
* ``script_deliveries`` one row per delivery: line, take, seconds, score, delivered words, diff

An import is one transaction: a file that fails leaves nothing behind. Re-importing a script keeps the
``line_id`` of every unchanged (or edited in place) line; inserted lines get ids like ``12A/3A`` and
removed lines' ids are not reused (as scene numbers are locked in production), unless ``renumber``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import uuid
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import DailiesError
from ..records import Hit
from ..store import Index, now
from ..textnorm import tokens
from ..timecode import Clock
from .match import Delivery, MatchParams, SceneLine, TakeWord, match_scene, scene_candidates, scene_vocab
from .model import Script

MATCHER_VERSION = 2          # 2: deliveries only where heard (issue 20)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS script_scripts(
    script_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, title TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS script_versions(
    version_id INTEGER PRIMARY KEY, script_id INTEGER NOT NULL REFERENCES script_scripts(script_id),
    version INTEGER NOT NULL, path TEXT NOT NULL, format TEXT NOT NULL, sha256 TEXT NOT NULL,
    title TEXT, pages INTEGER, pages_source TEXT, n_scenes INTEGER NOT NULL, n_lines INTEGER NOT NULL,
    warnings TEXT NOT NULL, doc TEXT NOT NULL, imported_at TEXT NOT NULL, UNIQUE(script_id, version));
CREATE TABLE IF NOT EXISTS script_scenes(
    version_id INTEGER NOT NULL REFERENCES script_versions(version_id), idx INTEGER NOT NULL,
    label TEXT NOT NULL, number TEXT, heading TEXT NOT NULL, int_ext TEXT, location TEXT, time_of_day TEXT,
    page_start INTEGER, page_end INTEGER, eighths INTEGER, n_lines INTEGER NOT NULL,
    PRIMARY KEY(version_id, idx));
CREATE TABLE IF NOT EXISTS script_lines(
    version_id INTEGER NOT NULL REFERENCES script_versions(version_id), line_id TEXT NOT NULL,
    uid TEXT NOT NULL, seq INTEGER NOT NULL, scene_idx INTEGER NOT NULL, scene TEXT NOT NULL,
    position INTEGER NOT NULL, character TEXT NOT NULL, extensions TEXT NOT NULL, parentheticals TEXT NOT NULL,
    text TEXT NOT NULL, norm TEXT NOT NULL, dual INTEGER NOT NULL, page INTEGER, layout_lines INTEGER,
    change TEXT NOT NULL, PRIMARY KEY(version_id, line_id));
CREATE INDEX IF NOT EXISTS script_lines_uid ON script_lines(uid);
CREATE TABLE IF NOT EXISTS script_matches(
    version_id INTEGER NOT NULL, take_id TEXT NOT NULL, scene TEXT, scene_source TEXT, take_key TEXT NOT NULL,
    matcher INTEGER NOT NULL, total REAL, matched_at TEXT NOT NULL, PRIMARY KEY(version_id, take_id));
CREATE TABLE IF NOT EXISTS script_deliveries(
    version_id INTEGER NOT NULL, take_id TEXT NOT NULL, n INTEGER NOT NULL, line_id TEXT NOT NULL,
    start REAL NOT NULL, "end" REAL NOT NULL, score REAL NOT NULL, coverage REAL NOT NULL, status TEXT NOT NULL,
    attempt INTEGER NOT NULL, delivered TEXT NOT NULL, diff TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY(version_id, take_id, n));
CREATE INDEX IF NOT EXISTS script_deliveries_line ON script_deliveries(version_id, line_id);
"""

Progress = Callable[[str, int, int], None]


def ensure_schema(db: sqlite3.Connection) -> None:
    with db:
        db.executescript(_SCHEMA)


def has_scripts(db: sqlite3.Connection) -> bool:
    row = db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='script_versions'").fetchone()
    return bool(row) and db.execute("SELECT COUNT(*) FROM script_versions").fetchone()[0] > 0


# ------------------------------------------------------------------------------------------ records

@dataclass
class ScriptDelivery:
    """One delivery of a script line in a take, with the take's facts and source timecode."""

    line_id: str
    character: str
    clip: str
    take_id: str
    name: str
    scene: str | None             # the script scene the take was matched to
    take: str | None
    camera: str | None
    start: float
    end: float
    tc_in: str
    tc_out: str
    rate: str
    score: float
    coverage: float
    status: str                   # delivered | partial | false_start
    attempt: int
    delivered: str
    diff: str
    added: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    substituted: list[list[str]] = field(default_factory=list)
    speaker: str | None = None
    text: str = ""                # the script line as written
    page: int | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = round(self.start, 3)
        d["end"] = round(self.end, 3)
        d["score"] = round(self.score, 4)
        d["coverage"] = round(self.coverage, 4)
        return d

    def to_hit(self) -> Hit:
        """As the record every search returns (kind ``script``), for exports."""
        return Hit(kind="script", clip=self.clip, take_id=self.take_id, name=self.name, scene=self.scene,
                   take=self.take, camera=self.camera, start=self.start, end=self.end, tc_in=self.tc_in,
                   tc_out=self.tc_out, rate=self.rate, text=self.delivered, score=self.score,
                   speaker=self.speaker, match=self.coverage, diff=self.diff, line_ids=[self.line_id])


@dataclass
class TakeMatch:
    take_id: str
    name: str
    scene: str | None             # script scene label, or None when no scene could be found
    scene_source: str | None      # "name" (from the clip name), "dialogue" (found from what is said), None
    deliveries: list[ScriptDelivery]
    missing: list[str]            # line ids of the scene never delivered in this take
    stored: bool = True           # False: computed now (take indexed after the last match)
    no_dialogue: bool = False     # nothing was recognised in the take (MOS, or silence)

    def to_json(self) -> dict[str, Any]:
        return {"take_id": self.take_id, "name": self.name, "scene": self.scene,
                "scene_source": self.scene_source, "no_dialogue": self.no_dialogue, "missing": self.missing,
                "deliveries": [d.to_json() for d in self.deliveries]}


@dataclass
class ImportResult:
    name: str
    version: int
    version_id: int
    script: Script
    unchanged: bool               # same file as the latest version: nothing new imported
    changes: dict[str, int]       # same / changed / new / removed lines against the previous version
    matched: list[TakeMatch] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ import

def import_script(index: Index, path: str | Path, *, name: str | None = None, renumber: bool = False,
                  match: bool = True, progress: Progress | None = None) -> ImportResult:
    """Import (or re-import) a screenplay into the index, then match the indexed takes against it."""
    from . import load_file

    if not index.writer:
        raise DailiesError("Importing a script needs the index opened for writing.")
    p = Path(path)
    if progress:
        progress("reading", 0, 1)
    data = p.read_bytes() if p.is_file() else b""
    script = load_file(p)
    sha = hashlib.sha256(data).hexdigest()
    ensure_schema(index.db)
    script_name = (name or script.title or p.stem).strip()
    script_name = re.sub(r"\s+", " ", script_name) or p.stem
    db = index.db
    row = db.execute("SELECT * FROM script_scripts WHERE name=?", (script_name,)).fetchone()
    prev = None
    if row is not None:
        prev = db.execute("SELECT * FROM script_versions WHERE script_id=? ORDER BY version DESC LIMIT 1",
                          (row["script_id"],)).fetchone()
    if prev is not None and prev["sha256"] == sha and not renumber:
        result = ImportResult(script_name, prev["version"], prev["version_id"],
                              Script.from_json(json.loads(prev["doc"])), True,
                              {"same": prev["n_lines"], "changed": 0, "new": 0, "removed": 0})
    else:
        prev_lines = [] if prev is None else db.execute(
            "SELECT * FROM script_lines WHERE version_id=? ORDER BY seq", (prev["version_id"],)).fetchall()
        uids, change, counts = _lock_ids(script, prev_lines, renumber)
        with db:                                   # one transaction: all of it or nothing
            if row is None:
                cur = db.execute("INSERT INTO script_scripts(name, title, created_at) VALUES(?,?,?)",
                                 (script_name, script.title, now()))
                script_id = cur.lastrowid
            else:
                script_id = row["script_id"]
            version = 1 if prev is None else prev["version"] + 1
            cur = db.execute(
                "INSERT INTO script_versions(script_id, version, path, format, sha256, title, pages, pages_source, "
                "n_scenes, n_lines, warnings, doc, imported_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (script_id, version, str(p.resolve()), script.format, sha, script.title, script.pages,
                 script.pages_source, len(script.scenes), len(script.lines), json.dumps(script.warnings),
                 json.dumps(script.to_json()), now()))
            version_id = cur.lastrowid
            n_per_scene: dict[int, int] = {}
            for ln in script.lines:
                n_per_scene[ln.scene] = n_per_scene.get(ln.scene, 0) + 1
            db.executemany(
                "INSERT INTO script_scenes(version_id, idx, label, number, heading, int_ext, location, time_of_day, "
                "page_start, page_end, eighths, n_lines) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                [(version_id, s.index, s.label, s.number, s.heading, s.int_ext, s.location, s.time_of_day,
                  s.page_start, s.page_end, s.eighths, n_per_scene.get(s.index, 0)) for s in script.scenes])
            db.executemany(
                "INSERT INTO script_lines(version_id, line_id, uid, seq, scene_idx, scene, position, character, "
                "extensions, parentheticals, text, norm, dual, page, layout_lines, change) "
                "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(version_id, ln.line_id, uids[i], i, ln.scene, ln.scene_number, ln.position, ln.character,
                  json.dumps(ln.extensions), json.dumps(ln.parentheticals), ln.text, " ".join(tokens(ln.text)),
                  int(ln.dual), ln.page, ln.layout_lines, change[i]) for i, ln in enumerate(script.lines)])
        result = ImportResult(script_name, version, version_id, script, False, counts)
    if match and script.lines:
        result.matched = match_takes(index, result.version_id, progress=progress)
    return result


def _scene_key(label: str) -> str:
    return label.strip().upper()


def _lock_ids(script: Script, prev_lines: list[sqlite3.Row], renumber: bool):
    """Keep the previous version's ids for unchanged lines; give inserted lines ``N A``-style ids."""
    from difflib import SequenceMatcher

    n = len(script.lines)
    uids = [uuid.uuid4().hex[:12] for _ in range(n)]
    change = ["new"] * n
    counts = {"same": 0, "changed": 0, "new": 0, "removed": 0}
    if not prev_lines:
        counts["new"] = n
        return uids, change, counts
    by_scene_prev: dict[str, list[sqlite3.Row]] = {}
    for r in prev_lines:
        by_scene_prev.setdefault(_scene_key(r["scene"]), []).append(r)
    by_scene_new: dict[str, list[int]] = {}
    for i, ln in enumerate(script.lines):
        by_scene_new.setdefault(_scene_key(ln.scene_number), []).append(i)
    used_prev: set[str] = set()
    for key, idxs in by_scene_new.items():
        old = by_scene_prev.get(key, [])
        a = [(r["character"], r["norm"]) for r in old]
        b = [(script.lines[i].character, " ".join(tokens(script.lines[i].text))) for i in idxs]
        taken = {r["line_id"].upper() for r in old}
        assigned: list[str | None] = [None] * len(idxs)
        for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
            if tag == "equal" or tag == "replace":
                for off in range(min(i2 - i1, j2 - j1)):
                    r = old[i1 + off]
                    j = j1 + off
                    gi = idxs[j]
                    uids[gi] = r["uid"]
                    change[gi] = "same" if tag == "equal" else "changed"
                    counts["same" if tag == "equal" else "changed"] += 1
                    used_prev.add(r["uid"])
                    if not renumber:
                        assigned[j] = r["line_id"]
        if renumber:
            continue
        # inserted lines: after the previous kept id, "3A", "3B" ...
        scene_label = script.lines[idxs[0]].scene_number
        for j, gi in enumerate(idxs):
            if assigned[j] is not None:
                continue
            prev_id = next((assigned[k] for k in range(j - 1, -1, -1) if assigned[k]), None)
            stem = prev_id.split("/", 1)[1] if prev_id else "0"
            for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
                cand = f"{scene_label}/{stem}{letter}"
                if cand.upper() not in taken:
                    break
            assigned[j] = cand
            taken.add(cand.upper())
        for j, gi in enumerate(idxs):
            script.lines[gi].line_id = assigned[j]
    counts["new"] = change.count("new")
    counts["removed"] = sum(1 for r in prev_lines if r["uid"] not in used_prev)
    return uids, change, counts


# ------------------------------------------------------------------------------------------ reading

def scripts(index: Index) -> list[dict[str, Any]]:
    if not has_scripts(index.db):
        return []
    rows = index.db.execute(
        "SELECT s.name, s.title, v.version, v.version_id, v.path, v.format, v.pages, v.pages_source, v.n_scenes, "
        "v.n_lines, v.imported_at, v.warnings FROM script_versions v JOIN script_scripts s USING(script_id) "
        "ORDER BY v.version_id").fetchall()
    return [{**dict(r), "warnings": json.loads(r["warnings"])} for r in rows]


def resolve_version(index: Index, name: str | None = None, version: int | None = None) -> sqlite3.Row:
    """The version to work with: the latest import of the named script (or of the last imported one)."""
    db = index.db
    if not has_scripts(db):
        raise DailiesError(f"No screenplay has been imported into the index {index.path}; "
                           "run `dailies script import FILE` first.")
    if name:
        srow = db.execute("SELECT * FROM script_scripts WHERE name=? COLLATE NOCASE", (name,)).fetchone()
        if srow is None:
            names = [r[0] for r in db.execute("SELECT name FROM script_scripts ORDER BY name")]
            raise DailiesError(f"No script named '{name}' in the index (imported: {', '.join(names)}).")
        sql, params = "SELECT * FROM script_versions WHERE script_id=?", [srow["script_id"]]
    else:
        last = db.execute("SELECT script_id FROM script_versions ORDER BY version_id DESC LIMIT 1").fetchone()
        sql, params = "SELECT * FROM script_versions WHERE script_id=?", [last["script_id"]]
    if version is not None:
        row = db.execute(sql + " AND version=?", params + [version]).fetchone()
        if row is None:
            raise DailiesError(f"The script has no version {version}.")
        return row
    return db.execute(sql + " ORDER BY version DESC LIMIT 1", params).fetchone()


def script_of(index: Index, version_row: sqlite3.Row) -> Script:
    """The parsed document of a version, with the ids stored for its lines."""
    script = Script.from_json(json.loads(version_row["doc"]))
    ids = [r[0] for r in index.db.execute(
        "SELECT line_id FROM script_lines WHERE version_id=? ORDER BY seq", (version_row["version_id"],))]
    if len(ids) == len(script.lines):
        for ln, lid in zip(script.lines, ids):
            ln.line_id = lid
    return script


def scene_lines(script: Script) -> dict[str, list[SceneLine]]:
    out: dict[str, list[SceneLine]] = {}
    for ln in script.lines:
        out.setdefault(ln.scene_number, []).append(SceneLine(ln.line_id, ln.character, ln.text))
    return out


# ------------------------------------------------------------------------------------------ matching

def _norm_scene(label: str | None) -> str | None:
    if not label:
        return None
    t = label.strip().upper()
    m = re.match(r"^0*(\d+)(.*)$", t)
    return (m.group(1) + m.group(2)) if m else t


def _take_key(take: sqlite3.Row) -> str:
    return f"{take['indexed_at']}|{take['n_lines']}|{take['name']}|{take['scene']}"


def take_words(index: Index, take_id: str) -> list[TakeWord]:
    words: list[TakeWord] = []
    for u, ln in enumerate(index.lines_of_take(take_id)):
        for w in ln.words:
            words.append(TakeWord(w.start, w.end, w.text, utterance=u, speaker=ln.speaker,
                                  utt_start=ln.start, utt_end=ln.end))
    return words


class _ScriptCache:
    """What matching needs of a script, computed once for many takes."""

    def __init__(self, script: Script):
        self.scenes = scene_lines(script)
        self._vocab: dict[str, set[str]] | None = None

    @property
    def vocab(self) -> dict[str, set[str]]:
        if self._vocab is None:
            self._vocab = scene_vocab(self.scenes)
        return self._vocab


def match_take(take: sqlite3.Row, words: list[TakeWord], script: Script,
               params: MatchParams = MatchParams(), cache: _ScriptCache | None = None) -> TakeMatch:
    """Assign a take to a scene (its name, else its dialogue) and align its words to that scene."""
    cache = cache or _ScriptCache(script)
    scenes = cache.scenes
    label_of = {_norm_scene(lbl): lbl for lbl in scenes}
    all_labels = {_norm_scene(s.label): s.label for s in script.scenes}
    wanted = _norm_scene(take["scene"])
    scene, source, result = None, None, None
    if wanted and wanted in label_of:
        scene, source = label_of[wanted], "name"
        result = match_scene(scenes[scene], words, params)
    elif wanted and wanted in all_labels:
        scene, source = all_labels[wanted], "name"          # a scene without dialogue
    elif words:
        best = None
        for cand in scene_candidates(scenes, words, vocab=cache.vocab):
            m = match_scene(scenes[cand], words, params)
            if m.heard < params.scene_words:        # a few shared words are chance, not the scene
                continue
            if best is None or m.matched_weight > best[1].matched_weight:
                best = (cand, m)
        if best is not None:
            scene, source, result = best[0], "dialogue", best[1]
    deliveries: list[ScriptDelivery] = []
    missing: list[str] = []
    if not words:                                           # MOS: nothing said, nothing missing
        return TakeMatch(take["take_id"], take["name"], scene, source, [], [], no_dialogue=True)
    if scene is not None:
        by_id = {ln.line_id: ln for ln in script.lines}
        rate = Fraction(take["rate"])
        clock = Clock.from_start_tc(take["start_tc"], rate)
        for d in (result.deliveries if result else []):
            ln = by_id.get(d.line_id)
            deliveries.append(_delivery(take, clock, d, scene, ln.text if ln else "", ln.page if ln else None))
        said = {d.line_id for d in deliveries}
        missing = [sl.line_id for sl in scenes.get(scene, []) if sl.line_id not in said]
    return TakeMatch(take["take_id"], take["name"], scene, source, deliveries, missing)


def _delivery(take: sqlite3.Row, clock: Clock, d: Delivery, scene: str, text: str, page: int | None) -> ScriptDelivery:
    return ScriptDelivery(
        line_id=d.line_id, character=d.character, clip=take["path"], take_id=take["take_id"], name=take["name"],
        scene=scene, take=take["take"], camera=take["camera"], start=d.start, end=d.end,
        tc_in=clock.tc_in(d.start), tc_out=clock.tc_out(d.end), rate=take["rate"], score=d.score,
        coverage=d.coverage, status=d.status, attempt=d.attempt, delivered=d.delivered, diff=d.diff,
        added=d.added, missing=d.missing, substituted=[list(x) for x in d.substituted], speaker=d.speaker,
        text=text, page=page)


def match_takes(index: Index, version_id: int, take_ids: Iterable[str] | None = None,
                progress: Progress | None = None) -> list[TakeMatch]:
    """Match indexed takes against a script version and store the deliveries (one transaction per take)."""
    ensure_schema(index.db)
    vrow = index.db.execute("SELECT * FROM script_versions WHERE version_id=?", (version_id,)).fetchone()
    script = script_of(index, vrow)
    takes = index.takes(status="indexed")
    if take_ids is not None:
        wanted = set(take_ids)
        takes = [t for t in takes if t["take_id"] in wanted]
    out: list[TakeMatch] = []
    cache = _ScriptCache(script)
    for i, take in enumerate(takes):
        if progress:
            progress(f"matching {take['name']}", i, len(takes))
        tm = match_take(take, take_words(index, take["take_id"]), script, cache=cache)
        _store(index, version_id, take, tm)
        out.append(tm)
    if progress:
        progress("matched", len(takes), len(takes))
    return out


def _store(index: Index, version_id: int, take: sqlite3.Row, tm: TakeMatch) -> None:
    with index.db:
        index.db.execute("DELETE FROM script_deliveries WHERE version_id=? AND take_id=?", (version_id, tm.take_id))
        index.db.execute(
            "INSERT INTO script_matches(version_id, take_id, scene, scene_source, take_key, matcher, total, matched_at) "
            "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(version_id, take_id) DO UPDATE SET scene=excluded.scene, "
            "scene_source=excluded.scene_source, take_key=excluded.take_key, matcher=excluded.matcher, "
            "total=excluded.total, matched_at=excluded.matched_at",
            (version_id, tm.take_id, tm.scene, tm.scene_source, _take_key(take), MATCHER_VERSION,
             len(tm.deliveries), now()))
        index.db.executemany(
            "INSERT INTO script_deliveries(version_id, take_id, n, line_id, start, \"end\", score, coverage, status, "
            "attempt, delivered, diff, data) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(version_id, tm.take_id, n, d.line_id, d.start, d.end, d.score, d.coverage, d.status, d.attempt,
              d.delivered, d.diff, json.dumps(d.to_json())) for n, d in enumerate(tm.deliveries)])


def all_matches(index: Index, version_row: sqlite3.Row, script: Script | None = None) -> list[TakeMatch]:
    """Every indexed take's match against a version: stored ones, and (in memory) takes not yet matched."""
    script = script or script_of(index, version_row)
    vid = version_row["version_id"]
    stored = {r["take_id"]: r for r in index.db.execute("SELECT * FROM script_matches WHERE version_id=?", (vid,))}
    rows: dict[str, list[sqlite3.Row]] = {}
    for r in index.db.execute("SELECT take_id, data FROM script_deliveries WHERE version_id=? ORDER BY take_id, n",
                              (vid,)):
        rows.setdefault(r["take_id"], []).append(r)
    cache = _ScriptCache(script)
    by_scene = cache.scenes
    out: list[TakeMatch] = []
    for take in index.takes(status="indexed"):
        s = stored.get(take["take_id"])
        if s is not None and s["take_key"] == _take_key(take) and s["matcher"] == MATCHER_VERSION:
            dels = [ScriptDelivery(**json.loads(r["data"])) for r in rows.get(take["take_id"], [])]
            for d in dels:              # the clip may have moved since
                d.clip, d.name = take["path"], take["name"]
            said = {d.line_id for d in dels}
            no_dialogue = take["n_lines"] == 0
            missing = [sl.line_id for sl in by_scene.get(s["scene"], [])] if s["scene"] and not no_dialogue else []
            out.append(TakeMatch(take["take_id"], take["name"], s["scene"], s["scene_source"], dels,
                                 [m for m in missing if m not in said], no_dialogue=no_dialogue))
        else:
            tm = match_take(take, take_words(index, take["take_id"]), script, cache=cache)
            tm.stored = False
            out.append(tm)
    return out


def line_deliveries(matches: list[TakeMatch], line_id: str) -> list[ScriptDelivery]:
    """Every delivery of one line across takes, best first (full deliveries before partial ones)."""
    rank = {"delivered": 0, "partial": 1, "false_start": 2}
    dels = [d for m in matches for d in m.deliveries if d.line_id.upper() == line_id.strip().upper()]
    return sorted(dels, key=lambda d: (rank.get(d.status, 3), -d.score, d.name, d.start))
