"""Screenplays in the index's catalog (sqlite): versioned imports, stored matches, and queries.

Tables (all prefixed ``script_``, part of the catalog's one schema; their SQL is in
:mod:`indexer.store.screenplays`):

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
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import DailiesError
from ..records import Hit
from ..store import Index, now
from ..textnorm import tokens
from ..timecode import Clock
from .match import Delivery, MatchParams, SceneLine, TakeWord, match_scene, scene_candidates, scene_vocab
from .model import Script

MATCHER_VERSION = 3          # 2: deliveries only where heard (issue 20); 3: a changed word adds no coverage

Progress = Callable[[str, int, int], None]


def has_scripts(index: Index) -> bool:
    """Whether a screenplay was imported into the index."""
    return index.screenplays().any()


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
    script_name = (name or script.title or p.stem).strip()
    script_name = re.sub(r"\s+", " ", script_name) or p.stem
    plays = index.screenplays()
    row = plays.script(script_name)
    prev = None
    if row is not None:
        prev = plays.version(row["script_id"])
    if prev is not None and prev["sha256"] == sha and not renumber:
        result = ImportResult(script_name, prev["version"], prev["version_id"],
                              Script.from_json(json.loads(prev["doc"])), True,
                              {"same": prev["n_lines"], "changed": 0, "new": 0, "removed": 0})
    else:
        prev_lines = [] if prev is None else plays.lines(prev["version_id"])
        uids, change, counts = _lock_ids(script, prev_lines, renumber)
        version = 1 if prev is None else prev["version"] + 1
        n_per_scene: dict[int, int] = {}
        for ln in script.lines:
            n_per_scene[ln.scene] = n_per_scene.get(ln.scene, 0) + 1
        version_id = plays.add_version(             # one transaction: all of it or nothing
            script_name=script_name, title=script.title, script_id=None if row is None else row["script_id"],
            version=version, now=now(),
            fields={"path": str(p.resolve()), "format": script.format, "sha256": sha, "title": script.title,
                    "pages": script.pages, "pages_source": script.pages_source, "n_scenes": len(script.scenes),
                    "n_lines": len(script.lines), "warnings": json.dumps(script.warnings),
                    "doc": json.dumps(script.to_json()), "imported_at": now()},
            scenes=[(s.index, s.label, s.number, s.heading, s.int_ext, s.location, s.time_of_day,
                     s.page_start, s.page_end, s.eighths, n_per_scene.get(s.index, 0)) for s in script.scenes],
            lines=[(ln.line_id, uids[i], i, ln.scene, ln.scene_number, ln.position, ln.character,
                    json.dumps(ln.extensions), json.dumps(ln.parentheticals), ln.text, " ".join(tokens(ln.text)),
                    int(ln.dual), ln.page, ln.layout_lines, change[i]) for i, ln in enumerate(script.lines)])
        result = ImportResult(script_name, version, version_id, script, False, counts)
    if match and script.lines:
        result.matched = match_takes(index, result.version_id, progress=progress)
    return result


def _scene_key(label: str) -> str:
    return label.strip().upper()


def _lock_ids(script: Script, prev_lines: list, renumber: bool):
    """Keep the previous version's ids for unchanged lines; give inserted lines ``N A``-style ids."""
    from difflib import SequenceMatcher

    n = len(script.lines)
    uids = [uuid.uuid4().hex[:12] for _ in range(n)]
    change = ["new"] * n
    counts = {"same": 0, "changed": 0, "new": 0, "removed": 0}
    if not prev_lines:
        counts["new"] = n
        return uids, change, counts
    by_scene_prev: dict[str, list] = {}
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
    plays = index.screenplays()
    if not plays.any():
        return []
    return [{**dict(r), "warnings": json.loads(r["warnings"])} for r in plays.versions()]


def resolve_version(index: Index, name: str | None = None, version: int | None = None):
    """The version to work with (a row of ``script_versions``): the latest import of the named script
    (or of the last imported one)."""
    plays = index.screenplays()
    if not plays.any():
        raise DailiesError(f"No screenplay has been imported into the index {index.path}; "
                           "run `dailies script import FILE` first.")
    if name:
        srow = plays.script(name, nocase=True)
        if srow is None:
            raise DailiesError(f"No script named '{name}' in the index (imported: {', '.join(plays.script_names())}).")
        script_id = srow["script_id"]
    else:
        script_id = plays.last_imported_script()
    row = plays.version(script_id, version)
    if row is None and version is not None:
        raise DailiesError(f"The script has no version {version}.")
    return row


def name_of_script(index: Index, version_row) -> str | None:
    """The name of the script a version belongs to."""
    return index.screenplays().script_name(version_row["script_id"])


def script_of(index: Index, version_row) -> Script:
    """The parsed document of a version, with the ids stored for its lines."""
    script = Script.from_json(json.loads(version_row["doc"]))
    ids = index.screenplays().line_ids(version_row["version_id"])
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


def _take_key(take) -> str:
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


def match_take(take, words: list[TakeWord], script: Script,
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
        clock = take.clock
        for d in (result.deliveries if result else []):
            ln = by_id.get(d.line_id)
            deliveries.append(_delivery(take, clock, d, scene, ln.text if ln else "", ln.page if ln else None))
        said = {d.line_id for d in deliveries}
        missing = [sl.line_id for sl in scenes.get(scene, []) if sl.line_id not in said]
    return TakeMatch(take["take_id"], take["name"], scene, source, deliveries, missing)


def _delivery(take, clock: Clock, d: Delivery, scene: str, text: str, page: int | None) -> ScriptDelivery:
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
    vrow = index.screenplays().version_by_id(version_id)
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


def _fresh(stored, take) -> bool:
    """Whether a stored match still stands for the take (same lines, name and scene; same matcher)."""
    return stored is not None and stored["take_key"] == _take_key(take) and stored["matcher"] == MATCHER_VERSION


def unmatched_takes(index: Index, version_row) -> list[str]:
    """Indexed takes whose match against a version is missing or out of date."""
    stored = index.screenplays().matches(version_row["version_id"])
    return [t.take_id for t in index.takes(status="indexed") if not _fresh(stored.get(t.take_id), t)]


def match_new_takes(index: Index, progress: Progress | None = None) -> int:
    """Match and store every take indexed (or re-read, renamed) since the latest version of each imported
    screenplay was matched, so coverage and exports read stored matches. Returns how many were matched."""
    n = 0
    for vrow in index.screenplays().latest_versions():
        ids = unmatched_takes(index, vrow)
        if ids:
            n += len(match_takes(index, vrow["version_id"], ids, progress=progress))
    return n


def _store(index: Index, version_id: int, take, tm: TakeMatch) -> None:
    index.screenplays().put_match(
        version_id, tm.take_id, scene=tm.scene, scene_source=tm.scene_source, take_key=_take_key(take),
        matcher=MATCHER_VERSION, total=len(tm.deliveries), now=now(),
        deliveries=[(n, d.line_id, d.start, d.end, d.score, d.coverage, d.status, d.attempt, d.delivered, d.diff,
                     json.dumps(d.to_json())) for n, d in enumerate(tm.deliveries)])


def all_matches(index: Index, version_row, script: Script | None = None) -> list[TakeMatch]:
    """Every indexed take's match against a version, as stored when the take was indexed or the script
    imported; a take no run has matched yet (an index of an older release, a reader racing the writer)
    is matched in memory (``stored=False``)."""
    script = script or script_of(index, version_row)
    vid = version_row["version_id"]
    stored = index.screenplays().matches(vid)
    rows = index.screenplays().deliveries(vid)
    cache = _ScriptCache(script)
    return [_match_of(index, take, stored.get(take["take_id"]), rows.get(take["take_id"], []), script, cache)
            for take in index.takes(status="indexed")]


def take_match(index: Index, version_row, take, script: Script | None = None) -> TakeMatch:
    """One indexed take's match against a version (a row of ``takes``), as :func:`all_matches` gives it,
    reading only that take's stored match (the review room's take page)."""
    script = script or script_of(index, version_row)
    vid, tid = version_row["version_id"], take["take_id"]
    stored = index.screenplays().matches(vid, tid).get(tid)
    rows = index.screenplays().deliveries(vid, tid).get(tid, [])
    return _match_of(index, take, stored, rows, script, _ScriptCache(script))


def _match_of(index: Index, take, stored, rows: list[str], script: Script, cache: _ScriptCache) -> TakeMatch:
    """The stored match of a take if it still stands, else one made now in memory (``stored=False``)."""
    if _fresh(stored, take):
        dels = [ScriptDelivery(**json.loads(data)) for data in rows]
        for d in dels:              # the clip may have moved since
            d.clip, d.name = take["path"], take["name"]
        said = {d.line_id for d in dels}
        no_dialogue = take["n_lines"] == 0
        scene = stored["scene"]
        missing = [sl.line_id for sl in cache.scenes.get(scene, [])] if scene and not no_dialogue else []
        return TakeMatch(take["take_id"], take["name"], scene, stored["scene_source"], dels,
                         [m for m in missing if m not in said], no_dialogue=no_dialogue)
    tm = match_take(take, take_words(index, take["take_id"]), script, cache=cache)
    tm.stored = False
    return tm


def line_deliveries(matches: list[TakeMatch], line_id: str) -> list[ScriptDelivery]:
    """Every delivery of one line across takes, best first (full deliveries before partial ones)."""
    rank = {"delivered": 0, "partial": 1, "false_start": 2}
    dels = [d for m in matches for d in m.deliveries if d.line_id.upper() == line_id.strip().upper()]
    return sorted(dels, key=lambda d: (rank.get(d.status, 3), -d.score, d.name, d.start))
