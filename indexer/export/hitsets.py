"""Where exported hits come from: every search is a function from an open index to ``list[Hit]``.

Line, speaker, visual and script-line searches and whole takes; each returns ``Hit`` records with
``take_id``, ``tc_in``/``tc_out`` (the take's own TC) and ``text``/``speaker`` filled in.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from ..errors import DailiesError
from ..records import Hit
from ..store import Index
from .core import Source, one_line
from .timeline import LogEntry


def search_hits(index: Index, *, line: str | None = None, speaker: str | None = None, visual: str | None = None,
                script_line: str | None = None, scene: str | None = None, limit: int = 100,
                min_match: float = 0.5) -> tuple[str, str, list[Hit]]:
    """The hits of the one search asked for (a line, a speaker, a picture or a script line): (kind, what was
    searched, hits). `dailies export` and the review room's downloads both start here."""
    from ..errors import UsageError

    given = [(k, v) for k, v in (("line", line), ("speaker", speaker), ("visual", visual),
                                 ("script", script_line)) if v]
    if len(given) != 1:
        raise UsageError("Give exactly one of --line \"TEXT\", --speaker NAME, --visual \"TEXT\" or "
                         "--script-line 12A/4.")
    kind, value = given[0]
    if kind == "line":
        return kind, value, line_hits(index, value, scene=scene, limit=limit, min_match=min_match)
    find = {"speaker": speaker_hits, "visual": visual_hits, "script": script_line_hits}[kind]
    return kind, value, find(index, value, scene=scene, limit=limit)


def nothing_found(kind: str, value: str) -> DailiesError:
    """The error of a search that found nothing to export (kind as :func:`search_hits` names it)."""
    from . import _empty

    return _empty({"line": f"no take delivers \"{value}\"", "speaker": f"no line of speaker {value}",
                   "visual": f"no shot looks like \"{value}\"",
                   "script": f"no take delivers script line {value}"}[kind])


def sources_for(index: Index, take_ids: Iterable[str]) -> dict[str, Source]:
    return {tid: Source.from_row(row) for tid, row in index.takes_by_id(take_ids).items()}


def indexed_sources(index: Index, refs: Sequence[str] | None = None) -> list[Source]:
    """Every indexed take (or the ones named), by clip name."""
    if refs:
        rows = [index.take(r) for r in refs]
    else:
        rows = index.takes(status="indexed")
    return [Source.from_row(r) for r in rows]


# ------------------------------------------------------------------------------------------ searches

def line_hits(index: Index, text: str, *, scene: str | None = None, take: str | None = None,
              limit: int = 100, min_match: float = 0.5, semantic: bool = True) -> list[Hit]:
    """Every delivery of a line (the line search), best first, grouped by take."""
    from ..search import LineQuery, search_lines

    return search_lines(index, LineQuery(text=text, scene=scene, take=take, limit=limit, min_match=min_match,
                                         semantic=semantic))


def speaker_hits(index: Index, name: str, *, scene: str | None = None, take: str | None = None,
                 limit: int = 1000, **_) -> list[Hit]:
    """Every line a voice speaks (name or V003), grouped by take."""
    from ..search import search_speaker

    return search_speaker(index, name, scene=scene, take=take, limit=limit)


def visual_hits(index: Index, text: str, *, scene: str | None = None, take: str | None = None,
                limit: int = 50, **_) -> list[Hit]:
    """Shots that look like a description (CLIP), one hit per shot spanning the whole shot."""
    from ..picture.embedder import embedder_for_index
    from ..picture.search import VisualQuery, search_visual

    return search_visual(index, VisualQuery(text=text, scene=scene, take=take, limit=limit),
                         embedder_for_index(index))


def script_line_hits(index: Index, ref: str, *, limit: int = 100, script: str | None = None,
                     version: int | None = None, **_) -> list[Hit]:
    """The takes that delivered a script line such as 12A/4, best first (from the imported screenplay: the latest
    version of the last one imported, or the ``script`` and ``version`` named)."""
    from ..script.catalog import all_matches, has_scripts, line_deliveries, resolve_version, script_of

    if not has_scripts(index):
        raise DailiesError("No screenplay is imported in this index; import one with `dailies script import FILE`.")
    version = resolve_version(index, script, version)
    script = script_of(index, version)
    line = script.line(ref)
    if line is None:
        raise DailiesError(f"No line {ref} in the imported script (ids are SCENE/N, e.g. 12A/4; "
                           "`dailies script coverage` lists them).")
    dels = line_deliveries(all_matches(index, version, script), line.line_id)
    hits = [d.to_hit() for d in dels if d.status != "false_start"][:limit]
    circled = {t.take_id for t in index.takes_by_id({h.take_id for h in hits}).values() if t.circled}
    for h in hits:
        h.circled = h.take_id in circled
    return hits


def script_lines_of_takes(index: Index, take_ids: Sequence[str]) -> dict[str, list[str]]:
    """Script lines (e.g. ``12A/4``) each take delivered, for the ALE; empty when no script is imported."""
    from ..script.catalog import all_matches, has_scripts, resolve_version

    if not has_scripts(index):
        return {}
    wanted = set(take_ids)
    out: dict[str, list[str]] = {}
    for tm in all_matches(index, resolve_version(index)):
        if tm.take_id in wanted:
            out[tm.take_id] = list(dict.fromkeys(d.line_id for d in tm.deliveries if d.status != "false_start"))
    return out


def take_hits(index: Index, refs: Sequence[str]) -> list[Hit]:
    """Every line of the named takes, as hits (kind ``line``, score 1), takes in the order given."""
    from ..search import named_lines

    hits: list[Hit] = []
    for ref in refs:
        take = index.take(ref)
        for ln in named_lines(index, index.lines_of_take(take.take_id)):
            hits.append(take.hit("line", ln.start, ln.end, ln.text, 1.0, shots=list(ln.shots), speaker=ln.speaker,
                                 voice_id=ln.voice_id, line_ids=[ln.line_id]))
    return hits


def circle_hits(index: Index, take_ids: Iterable[str] | None = None) -> list[Hit]:
    """One marker hit (kind ``circle``, one frame at the take's first frame, text ``CIRCLED: note``) per
    circled take (of ``take_ids`` when given), by clip name."""
    from fractions import Fraction

    takes = index.takes() if take_ids is None else list(index.takes_by_id(take_ids).values())
    out = []
    for t in sorted((t for t in takes if t.circled), key=lambda t: t.name):
        text = "CIRCLED" + (f": {t.circle_note}" if t.circle_note else "")
        out.append(t.hit("circle", 0.0, float(Fraction(1) / t.rate), text, 1.0))
    return out


def note_hits(index: Index, take_ids: Iterable[str] | None = None) -> list[Hit]:
    """One marker hit (kind ``note``, at the note's frame or over its stretch, text ``NOTE (author): text``) per review
    note (on the takes ``take_ids`` when given), by clip name and frame."""
    from fractions import Fraction

    from ..views import note_frames, note_label, notes_by_take

    by_take = notes_by_take(index, take_ids)
    takes = index.takes_by_id(by_take)
    out = []
    for take_id, notes in by_take.items():
        t = takes[take_id]
        for n in notes:
            f, last = note_frames(n)
            out.append(t.hit("note", float(Fraction(f) / t.rate), float(Fraction(last + 1) / t.rate), note_label(n),
                             1.0))
    return sorted(out, key=lambda h: (h.name, h.take_id, h.start))


def log_entries(index: Index, sources: Sequence[Source], dialogue_words: int = 12) -> list[LogEntry]:
    """What the ALE says about each take: its speakers, its first words, the script lines it holds, its review
    notes."""
    from ..search import named_lines

    from ..views import note_line, notes_by_take

    script = script_lines_of_takes(index, [s.take_id for s in sources])
    notes = notes_by_take(index, [s.take_id for s in sources])
    out = []
    for src in sources:
        lines = named_lines(index, index.lines_of_take(src.take_id))
        speakers = list(dict.fromkeys(one_line(ln.speaker) for ln in lines if ln.speaker))
        words = one_line(" ".join(ln.text for ln in lines)).split()
        dialogue = " ".join(words[:dialogue_words]) + (" ..." if len(words) > dialogue_words else "")
        out.append(LogEntry(src, speakers, dialogue, script.get(src.take_id, []),
                            [note_line(n) for n in notes.get(src.take_id, [])]))
    return out
