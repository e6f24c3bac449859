"""Exports: hits from any search -> OpenTimelineIO -> EDL, FCP 7 XML, FCPXML, ALE, OTIO, markers, transcripts.

One route for every format: hits + their takes' facts (:class:`Source`) -> :class:`Cut` (frames of the
file, handles clamped to the media) -> an OTIO timeline (or the adapter-specific copies described in
:mod:`.timeline`) -> a writer. The functions here return ``[(path, text, description)]`` and write
nothing; :func:`.output.write_files` writes them all or none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import DailiesError, NothingToExportError
from ..records import Hit
from .core import (DEFAULT_HANDLES, DEFAULT_REEL_LEN, ORDERS, Cut, Source, TimecodeBase, best_per_take,
                   cut_hit, order_hits, plan_cuts, reel_name, reel_names, timeline_base)
from .output import (ALE_FORMATS, MARKER_FORMATS, STRINGOUT_FORMATS, TRANSCRIPT_EXT, numbered, per_take_paths,
                     pick_format, write_files)
from .timeline import StringOut, ale_strings, build_timeline, edl_strings, fcp7_string, fcpxml_string, otio_string

__all__ = [
    "Cut", "Source", "TimecodeBase", "StringOut", "plan_stringout", "render_stringout", "render_markers",
    "stringout_outputs", "marker_outputs", "ale_outputs", "transcript_outputs",
    "render_ale", "render_transcript", "write_files", "pick_format", "build_timeline", "cut_hit", "plan_cuts",
    "reel_name", "reel_names", "best_per_take", "order_hits", "timeline_base", "DEFAULT_HANDLES",
    "DEFAULT_REEL_LEN", "ORDERS", "STRINGOUT_FORMATS", "MARKER_FORMATS", "ALE_FORMATS", "TRANSCRIPT_EXT",
]

Output = tuple[Path, str, str]


def _empty(what: str) -> NothingToExportError:
    return NothingToExportError(f"Nothing to export: {what}; no file was written.")


def plan_stringout(hits: Sequence[Hit], sources: dict[str, Source], *, handles: int = DEFAULT_HANDLES,
                   rate: str | None = None, order: str = "rank", title: str = "dailies string-out",
                   reel_len: int | None = DEFAULT_REEL_LEN, one_per_take: bool = False) -> StringOut:
    if one_per_take:
        hits = best_per_take(hits)
    if not hits:
        raise _empty("the search found no hits")
    cuts = plan_cuts(hits, sources, handles=handles, order=order)
    return StringOut(cuts=cuts, base=timeline_base(cuts, rate), title=title, reel_len=reel_len)


def render_stringout(plan: StringOut, fmt: str, out: Path) -> list[Output]:
    n = len(plan.cuts)
    what = f"{n} event{'s' if n != 1 else ''}"
    base = plan.base.label
    if fmt == "otio":
        return [(out, otio_string(plan), f"OTIO timeline, {what}, {base}")]
    if fmt == "xml":
        return [(out, fcp7_string(plan), f"FCP 7 XML, {what}, {base} sequence")]
    if fmt == "fcpxml":
        return [(out, fcpxml_string(plan), f"FCPXML {what}, {base} project")]
    if fmt == "edl":
        edls = edl_strings(plan)
        paths = numbered(out, [b.label for b, _ in edls])
        counts = {b: sum(1 for c in plan.cuts if c.source.base == b) for b, _ in edls}
        return [(p, text, f"CMX 3600 EDL, {counts[b]} event{'s' if counts[b] != 1 else ''}, {b.label}")
                for p, (b, text) in zip(paths, edls)]
    raise DailiesError(f"Unknown string-out format '{fmt}' (use one of: {', '.join(STRINGOUT_FORMATS)}).")


def stringout_outputs(index, kind: str, value: str, hits: Sequence[Hit], fmt: str, out: Path, *,
                      handles: int = DEFAULT_HANDLES, rate: str | None = None, order: str = "rank",
                      all_hits: bool = False, reel_len: int | None = DEFAULT_REEL_LEN,
                      title: str | None = None) -> tuple[list[Output], list[str]]:
    """A search's hits (``kind`` and ``value`` as :func:`.hitsets.search_hits` gives them) cut into a string-out
    in format ``fmt`` named after ``out``: the outputs, and the notes on cuts whose handles the media cut short.
    A line or script-line search keeps each take's best delivery unless ``all_hits``. `dailies export
    stringout` writes these files; the review room sends them."""
    from .hitsets import sources_for

    if order not in ORDERS:
        raise DailiesError(f"Unknown order '{order}' (use rank or scene).")
    sources = sources_for(index, [h.take_id for h in hits])
    plan = plan_stringout(hits, sources, handles=handles, rate=rate, order=order, title=title or f"{kind}: {value}",
                          reel_len=reel_len or None, one_per_take=not all_hits and kind in ("line", "script"))
    mark_review_notes(index, plan)
    return render_stringout(plan, fmt, out), [n for c in plan.cuts for n in c.notes]


def mark_review_notes(index, plan: StringOut) -> None:
    """Each cut gets a marker at every review note inside it (handles included), over the part of a note's stretch
    inside it: the editor sees on the timeline what the team noted ("NOTE (author): text"). EDLs carry one locator
    an event and do not take them."""
    from ..views import note_frames, note_label, notes_by_take

    by_take = notes_by_take(index, {c.source.take_id for c in plan.cuts})
    for cut in plan.cuts:
        for n in by_take.get(cut.source.take_id, []):
            first, last = note_frames(n)
            first, last = max(first, cut.src_in), min(last, cut.src_out - 1)
            if first <= last:
                cut.marks.append((first, last - first + 1, note_label(n)))


def marker_outputs(index, hits: Sequence[Hit], fmt: str, out: Path) -> list[Output]:
    """Markers for these hits in format ``fmt`` named after ``out`` (a folder or a file), with a "CIRCLED: note"
    marker first on each circled take among them and a "NOTE (author): text" marker at each review note on
    them. `dailies export markers` writes these files; the review room sends them."""
    from .hitsets import circle_hits, note_hits, sources_for

    if hits and hits[0].kind not in ("circle", "note"):     # (circles or notes alone: as given)
        takes = {h.take_id for h in hits}
        hits = circle_hits(index, takes) + note_hits(index, takes) + list(hits)
    return render_markers(hits, sources_for(index, [h.take_id for h in hits]), fmt, out)


def ale_outputs(index, out: Path, refs: Sequence[str] | None = None, *, dialogue_words: int = 12,
                reel_len: int | None = DEFAULT_REEL_LEN) -> list[Output]:
    """An Avid Log Exchange of the indexed takes (or the ones ``refs`` name), one file per frame rate named after
    ``out``: what `dailies export ale` writes and the review room sends."""
    from .hitsets import indexed_sources, log_entries

    entries = log_entries(index, indexed_sources(index, list(refs) if refs else None), dialogue_words=dialogue_words)
    return render_ale(entries, out, reel_len=reel_len or None)


def transcript_outputs(index, ref: str, fmt: str, out: Path | None = None) -> list[Output]:
    """The transcript of the take ``ref`` names (clip name, take id, path) with its speakers' names, in format
    ``fmt``, named ``out`` (default: CLIPNAME.FORMAT): what `dailies export transcript` writes and the review
    room sends."""
    from ..search import named_lines

    row = index.take(ref)
    lines = named_lines(index, index.lines_of_take(row["take_id"]))
    target = out if out is not None else Path(f"{row['name']}{TRANSCRIPT_EXT[fmt]}")
    return render_transcript(lines, Source.from_row(row), fmt, target)


def render_markers(hits: Sequence[Hit], sources: dict[str, Source], fmt: str, out: Path) -> list[Output]:
    from . import markers as mk

    if not hits:
        raise _empty("there are no markers to write")
    takes = mk.group_markers(hits, sources)
    colours = mk.speaker_colours(h for t in takes for h, _, _ in t.marks)

    def count(t) -> str:
        return f"{len(t.marks)} marker{'s' if len(t.marks) != 1 else ''}"

    if fmt in ("avid", "resolve"):
        ext = MARKER_FORMATS[fmt]
        paths = per_take_paths(out, [t.source.name for t in takes], ext)
        render = mk.avid_markers if fmt == "avid" else mk.resolve_marker_edl
        label = "Avid marker list" if fmt == "avid" else "Resolve marker EDL"
        return [(p, render(t, colours), f"{label}, {count(t)} on {t.source.name} ({t.source.base.label})")
                for p, t in zip(paths, takes)]
    total = sum(len(t.marks) for t in takes)
    summary = f"{total} marker{'s' if total != 1 else ''} on {len(takes)} take{'s' if len(takes) != 1 else ''}"
    if fmt == "premiere":
        return [(out, mk.premiere_xml(takes), f"FCP 7 XML for Premiere, {summary}")]
    if fmt == "csv":
        return [(out, mk.markers_csv(takes), f"marker CSV, {summary}")]
    if fmt == "otio":
        return [(out, mk.otio_markers(takes), f"OTIO, {summary}")]
    raise DailiesError(f"Unknown marker format '{fmt}' (use one of: {', '.join(MARKER_FORMATS)}).")


def render_ale(entries, out: Path, reel_len: int | None = DEFAULT_REEL_LEN) -> list[Output]:
    if not entries:
        raise _empty("the index has no indexed takes")
    ales = ale_strings(entries, reel_len)
    paths = numbered(out, [b.label for b, _ in ales])
    counts = {}
    for e in entries:
        counts[e.source.base] = counts.get(e.source.base, 0) + 1
    return [(p, text, f"ALE, {counts[b]} take{'s' if counts[b] != 1 else ''}, {b.label}")
            for p, (b, text) in zip(paths, ales)]


def render_transcript(lines, source: Source, fmt: str, out: Path) -> list[Output]:
    from .transcript import render

    if not lines:
        raise _empty(f"{source.name} has no transcribed lines")
    return [(out, render(fmt, lines, source), f"{fmt.upper()} transcript of {source.name}, {len(lines)} lines")]
