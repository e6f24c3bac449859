"""Markers on source clips: one per hit (or per line of a take), named ``speaker: text``.

Markers sit at the take's own source TC, so they land on the master clip when imported onto it.
Takes' TCs overlap (every take of a scene may start near 01:00:00:00), so the per-clip formats are
written one file per take:

* ``avid``     Avid Media Composer marker list (``.txt``), as the Markers window exports and imports
               it: ``user<TAB>TC<TAB>track<TAB>colour<TAB>comment<TAB>duration`` per line.
* ``resolve``  DaVinci Resolve marker EDL (``.edl``), as Resolve's "Export > Timeline Markers to EDL"
               writes it: a one-frame event at the marker and a ``note |C:ResolveColor.. |M:name |D:n``
               line after it.
* ``premiere`` FCP 7 XML (``.xml``, one file): a sequence per take holding the whole take, with the
               markers on the clip and on the sequence (Premiere and Resolve import both).
* ``csv``      one table of all markers, columns as Premiere's marker CSV export plus clip facts.
* ``otio``     OpenTimelineIO (one file): a timeline per take, the markers on its clip.

The hand-written formats (Avid, Resolve) are golden-tested line by line against examples of the files
those NLEs write (tests/golden/README.md says where each example came from).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Sequence

from ..errors import DailiesError
from ..records import Hit
from .core import Source, cut_hit, marker_text, one_line, speaker_colours
from .timeline import _range, _reference

MARKER_USER = "dailies"


@dataclass
class TakeMarkers:
    """The markers of one take: (hit, first frame, exclusive end frame) in the file's frames."""

    source: Source
    marks: list[tuple[Hit, int, int]]


def group_markers(hits: Sequence[Hit], sources: dict[str, Source]) -> list[TakeMarkers]:
    """Markers per take, takes in order of first appearance, each take's markers in time order."""
    takes: dict[str, TakeMarkers] = {}
    for h in hits:
        src = sources.get(h.take_id)
        if src is None:
            raise DailiesError(f"The take of {h.name} ({h.take_id}) is not in the index any more; search again.")
        cut = cut_hit(h, src, handles=0)
        takes.setdefault(src.take_id, TakeMarkers(src, [])).marks.append((h, cut.first, cut.end))
    for t in takes.values():
        t.marks.sort(key=lambda m: (m[1], m[2]))
    return list(takes.values())


def avid_markers(take: TakeMarkers, colours=None, user: str = MARKER_USER) -> str:
    """Avid Media Composer marker list for one take (import onto the master clip)."""
    colours = colours or speaker_colours(h for h, _, _ in take.marks)
    track = "V1" if take.source.has_video else "A1"
    rows = []
    for h, first, end in take.marks:
        colour = colours.get(h.speaker, colours[None])[1]
        rows.append("\t".join([one_line(user), take.source.tc(first), track, colour, marker_text(h),
                               str(max(1, end - first))]))
    return "\n".join(rows) + "\n"


def resolve_marker_edl(take: TakeMarkers, colours=None) -> str:
    """DaVinci Resolve marker EDL for one take (import onto a timeline or clip at the take's TC)."""
    colours = colours or speaker_colours(h for h, _, _ in take.marks)
    src = take.source
    fcm = "FCM: DROP FRAME" if src.drop_frame else "FCM: NON-DROP FRAME"
    out = [f"TITLE: {one_line(src.name)}", fcm, ""]
    for n, (h, first, end) in enumerate(take.marks, start=1):
        tc_a, tc_b = src.tc(first), src.tc(first + 1)
        colour = colours.get(h.speaker, colours[None])[2]
        out.append(f"{n:03d}  001      V     C        {tc_a} {tc_b} {tc_a} {tc_b}  ")
        out.append(f" |C:ResolveColor{colour} |M:{marker_text(h)} |D:{max(1, end - first)}")
        out.append("")
    return "\n".join(out) + "\n"


def _take_timeline(take: TakeMarkers, colours, *, clip_markers: bool, sequence_markers: bool):
    """A timeline holding the whole take, at its own rate, starting at its start TC."""
    import opentimelineio as otio

    src = take.source
    rate = float(src.rate)
    tl = otio.schema.Timeline(name=src.name)
    tl.global_start_time = otio.opentime.RationalTime(src.start_frame, rate)
    tl.metadata["fcp_xml"] = {"timecode": {"displayformat": "DF" if src.drop_frame else "NDF"}}
    from .core import reel_names

    reel = reel_names([src])[src.take_id]
    track = otio.schema.Track(name="V1" if src.has_video else "A1",
                              kind=otio.schema.TrackKind.Video if src.has_video else otio.schema.TrackKind.Audio)
    clip = otio.schema.Clip(name=src.name, media_reference=_reference(src, reel),
                            source_range=_range(src.start_frame, src.frames, rate))
    for h, first, end in take.marks:
        colour = getattr(otio.schema.MarkerColor, colours.get(h.speaker, colours[None])[0])
        meta = {"dailies": {"speaker": h.speaker, "text": h.text, "tc_in": h.tc_in, "tc_out": h.tc_out,
                            "kind": h.kind, "score": round(h.score, 4)}}
        if clip_markers:
            clip.markers.append(otio.schema.Marker(name=marker_text(h), color=colour, metadata=meta,
                                                   marked_range=_range(src.start_frame + first, end - first, rate)))
        if sequence_markers:
            tl.tracks.markers.append(otio.schema.Marker(name=marker_text(h), color=colour, metadata=meta,
                                                        marked_range=_range(first, end - first, rate)))
    track.append(clip)
    tl.tracks.append(track)
    return tl


def otio_markers(takes: Sequence[TakeMarkers]) -> str:
    import opentimelineio as otio

    colours = speaker_colours(h for t in takes for h, _, _ in t.marks)
    col = otio.schema.SerializableCollection(name="dailies markers")
    for t in takes:
        col.append(_take_timeline(t, colours, clip_markers=True, sequence_markers=False))
    return otio.adapters.write_to_string(col if len(col) > 1 else col[0], "otio_json")


def premiere_xml(takes: Sequence[TakeMarkers]) -> str:
    """FCP 7 XML through the ``fcp_xml`` adapter; clip markers in media frames, as FCP 7 counts them."""
    import opentimelineio as otio

    colours = speaker_colours(h for t in takes for h, _, _ in t.marks)
    timelines = []
    for t in takes:
        tl = _take_timeline(t, colours, clip_markers=True, sequence_markers=True)
        for clip in tl.find_clips():
            zero = clip.media_reference.available_range.start_time
            for m in clip.markers:
                m.marked_range = otio.opentime.TimeRange(m.marked_range.start_time - zero, m.marked_range.duration)
        timelines.append(tl)
    if len(timelines) == 1:
        return otio.adapters.write_to_string(timelines[0], "fcp_xml")
    col = otio.schema.SerializableCollection(name="dailies markers", children=timelines)
    return otio.adapters.write_to_string(col, "fcp_xml")


CSV_COLUMNS = ["Marker Name", "Description", "In", "Out", "Duration", "Marker Type",
               "Clip", "Scene", "Take", "Camera", "Speaker", "Color", "Source File"]


def markers_csv(takes: Sequence[TakeMarkers]) -> str:
    colours = speaker_colours(h for t in takes for h, _, _ in t.marks)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for t in takes:
        src = t.source
        for h, first, end in t.marks:
            dur = max(1, end - first)
            w.writerow([marker_text(h), one_line(h.text), src.tc(first), src.tc(first + dur),
                        src.base.tc(dur), "Comment", src.name, src.scene or "", src.take or "",
                        src.camera or "", h.speaker or "", colours.get(h.speaker, colours[None])[1], src.path])
    return buf.getvalue()
