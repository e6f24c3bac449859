"""Cuts -> one OpenTimelineIO timeline -> the NLE formats, through the OTIO adapters.

* ``.otio``     the timeline itself (``otio_json``): every clip at its own exact rate.
* ``.xml``      FCP 7 XML (``fcp_xml`` adapter, otio-fcp-adapter): Premiere and Resolve import it.
* ``.edl``      CMX 3600 (``cmx_3600`` adapter, otio-cmx3600-adapter), one file per timecode base.
* ``.fcpxml``   FCPXML 1.8, written here (see :func:`fcpxml_string` for why).
* ``.ale``      Avid Log Exchange (``ale`` adapter, otio-ale-adapter), one file per timecode base.

The one timeline: a V1 track (picture) and an A1 track (sync sound), each hit one clip, back to back.
A clip's ``source_range`` is in its own file's frames at its own rate, counted from the file's start
TC, so its start is the source TC in exactly; ``media_reference.available_range`` is the whole file.
Each clip carries a marker over the hit itself (handles excluded) named ``speaker: text``, and the
hit under ``metadata["dailies"]``; and a marker at each review note inside the cut, one frame or the part of its
stretch inside the cut (``Cut.marks``, not in EDLs, which hold one locator an event). Takes at other rates than
the timeline's play in real time, as the NLEs play them in a mixed-rate sequence.

EDLs and ALEs carry one frame rate and one drop-frame mode per file, so a set of cuts from takes
with different timecode bases is written as one file per base (``NAME_23.976.edl``, ``NAME_25.edl``,
``NAME_29.97DF.edl``). For those two formats the adapters are given a copy of the cuts expressed at
the base's *label rate* (see :attr:`TimecodeBase.label_rate`): OTIO infers drop-frame from the rate,
which is right for 29.97 DF but would write 29.97 NDF takes as drop-frame, and counting a non-drop
base at its integer rate writes exactly the labels the file carries. Nothing is rescaled, so every
label is the hit's TC.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from ..errors import NothingToExportError
from .core import (DEFAULT_RECORD_START, DEFAULT_REEL_LEN, Cut, Source, TimecodeBase, fps_label, group_by_base,
                   hit_metadata, marker_text, one_line, reel_names, speaker_colours)


def media_url(path: str) -> str:
    """A file URL for a media path (FCP XML ``pathurl``, FCPXML ``src``, OTIO ``target_url``)."""
    p = Path(path)
    if not p.is_absolute():
        p = Path(os.path.abspath(p))
    return p.as_uri()


def _rt(value: int, rate: float):
    from opentimelineio import opentime

    return opentime.RationalTime(value, rate)


def _range(start: int, duration: int, rate: float):
    from opentimelineio import opentime

    return opentime.TimeRange(_rt(start, rate), _rt(duration, rate))


@dataclass
class StringOut:
    """A planned string-out: the cuts, the timeline's base and what to call it."""

    cuts: list[Cut]
    base: TimecodeBase
    title: str
    reel_len: int | None = DEFAULT_REEL_LEN
    record_start: str = DEFAULT_RECORD_START

    @property
    def reels(self) -> dict[str, str]:
        return reel_names((c.source for c in self.cuts), self.reel_len)


# ------------------------------------------------------------------------------------------ OTIO

def _reference(source: Source, reel: str, rate: float | None = None, start: int | None = None,
               url: str | None = None):
    """An ExternalReference to the whole file at its own rate and start TC."""
    import opentimelineio as otio

    rate = float(source.rate) if rate is None else rate
    start = source.start_frame if start is None else start
    ref = otio.schema.ExternalReference(target_url=url or media_url(source.path),
                                        available_range=_range(start, source.frames, rate))
    ref.name = source.name
    ref.metadata["dailies"] = {"take_id": source.take_id, "rate": str(source.rate), "start_tc": source.start_tc,
                               "drop_frame": source.drop_frame, "frames": source.frames, "reel": reel}
    ref.metadata["fcp_xml"] = {"timecode": {"displayformat": "DF" if source.drop_frame else "NDF",
                                            "reel": {"name": reel}}}
    return ref


def _clip(cut: Cut, reel: str, colours, *, rate: float | None = None, start: int | None = None,
          url: str | None = None, with_marker: bool = True):
    import opentimelineio as otio

    src = cut.source
    rate = float(src.rate) if rate is None else rate
    start = src.start_frame if start is None else start
    clip = otio.schema.Clip(name=src.name, media_reference=_reference(src, reel, rate, start, url),
                            source_range=_range(start + cut.src_in, cut.frames, rate))
    clip.metadata["dailies"] = hit_metadata(cut.hit)
    clip.metadata["cmx_3600"] = {"reel": reel}
    if with_marker:
        colour = colours.get(cut.hit.speaker, colours[None])[0]
        marker = otio.schema.Marker(name=marker_text(cut.hit),
                                    marked_range=_range(start + cut.first, cut.end - cut.first, rate),
                                    color=getattr(otio.schema.MarkerColor, colour))
        marker.metadata["dailies"] = {"speaker": cut.hit.speaker, "text": cut.hit.text,
                                      "score": round(cut.hit.score, 4), "kind": cut.hit.kind,
                                      "tc_in": cut.hit.tc_in, "tc_out": cut.hit.tc_out}
        clip.markers.append(marker)
        for frame, frames, name in cut.marks:   # the team's review notes inside the cut
            note = otio.schema.Marker(name=name, marked_range=_range(start + frame, frames, rate),
                                      color=otio.schema.MarkerColor.YELLOW)
            note.metadata["dailies"] = {"kind": "note", "text": name, "tc": src.tc(frame)}
            clip.markers.append(note)
    return clip


def build_timeline(plan: StringOut):
    """The string-out as an OTIO Timeline: V1 picture, A1 sound, one clip per cut, back to back."""
    import opentimelineio as otio

    if not plan.cuts:
        raise NothingToExportError("Nothing to export: the result set is empty.")
    reels = plan.reels
    colours = speaker_colours(c.hit for c in plan.cuts)
    tl = otio.schema.Timeline(name=plan.title)
    r = float(plan.base.rate)
    tl.global_start_time = _rt(plan.base.frames(plan.record_start), r)
    tl.metadata["dailies"] = {"rate": str(plan.base.rate), "drop_frame": plan.base.drop_frame,
                              "record_start": plan.base.tc(plan.base.frames(plan.record_start)),
                              "events": len(plan.cuts)}
    tl.metadata["fcp_xml"] = {"timecode": {"displayformat": "DF" if plan.base.drop_frame else "NDF"}}
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    for cut in plan.cuts:
        reel = reels[cut.source.take_id]
        length = _range(0, cut.frames, float(cut.source.rate))
        if cut.source.has_video:
            video.append(_clip(cut, reel, colours))
        else:
            video.append(otio.schema.Gap(source_range=length))
        if cut.source.has_audio:
            audio.append(_clip(cut, reel, colours, with_marker=not cut.source.has_video))
        else:
            audio.append(otio.schema.Gap(source_range=length))
    tl.tracks.append(video)
    if any(c.source.has_audio for c in plan.cuts):
        tl.tracks.append(audio)
    return tl


def otio_string(plan: StringOut) -> str:
    import opentimelineio as otio

    return otio.adapters.write_to_string(build_timeline(plan), "otio_json")


# ------------------------------------------------------------------------------------------ FCP 7 XML

def fcp7_string(plan: StringOut, timeline=None) -> str:
    """FCP 7 XML (xmeml 4) through the ``fcp_xml`` adapter.

    FCP 7 places a clip item's markers in frames from the media's first frame, where OTIO places a
    clip's markers in the clip's source time (which starts at the file's TC); the copy given to the
    adapter has its clip markers moved to media frames.
    """
    import opentimelineio as otio

    tl = copy.deepcopy(timeline if timeline is not None else build_timeline(plan))
    for clip in tl.find_clips():
        ref = clip.media_reference
        if ref is None or ref.available_range is None:
            continue
        zero = ref.available_range.start_time
        for m in clip.markers:
            m.marked_range = otio.opentime.TimeRange(m.marked_range.start_time - zero, m.marked_range.duration)
    return otio.adapters.write_to_string(tl, "fcp_xml")


# ------------------------------------------------------------------------------------------ EDL

EDL_CHANNEL = {(True, True): "B", (True, False): "V", (False, True): "A"}


def edl_strings(plan: StringOut) -> list[tuple[TimecodeBase, str]]:
    """One CMX 3600 EDL per timecode base among the cuts, through the ``cmx_3600`` adapter.

    Record TC starts at ``record_start`` and runs frame for frame with the sources (each EDL has one
    base). Reels come from clip names (:func:`reel_name`); each event carries ``* FROM CLIP NAME:``
    and ``* FROM CLIP:`` (the file), and a ``* LOC:`` at the record TC where the hit begins.
    The adapter writes no FCM line and one channel per track; the FCM line (``DROP FRAME`` /
    ``NON-DROP FRAME``) is added after the title, and each event's channel is set from its take
    (``B`` picture and sound, ``V`` picture only, ``A`` sound only).
    """
    groups = group_by_base(plan.cuts)
    out = []
    for base, cuts in groups.items():
        title = plan.title if len(groups) == 1 else f"{plan.title} ({base.label})"
        out.append((base, _edl_for_base(plan, base, cuts, title)))
    return out


def _edl_for_base(plan: StringOut, base: TimecodeBase, cuts: list[Cut], title: str) -> str:
    import opentimelineio as otio

    lr = base.label_rate
    reels = plan.reels
    colours = speaker_colours(c.hit for c in plan.cuts)
    tl = otio.schema.Timeline(name=title)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    record = base.frames(plan.record_start)
    if record:
        track.append(otio.schema.Gap(source_range=_range(0, record, lr)))
    for cut in cuts:
        src = cut.source
        clip = _clip(cut, reels[src.take_id], colours, rate=lr, url=os.path.abspath(src.path), with_marker=False)
        # Avid and Resolve read an EDL locator at its record TC.
        colour = colours.get(cut.hit.speaker, colours[None])[0]
        marker = otio.schema.Marker(name=marker_text(cut.hit), marked_range=_range(record + cut.head, 0, lr),
                                    color=getattr(otio.schema.MarkerColor, colour))
        clip.markers.append(marker)
        track.append(clip)
        record += cut.frames
    tl.tracks.append(track)
    text = otio.adapters.write_to_string(tl, "cmx_3600", rate=lr, style="avid", reelname_len=None)
    return _edl_fixups(text, base, cuts)


def _edl_fixups(text: str, base: TimecodeBase, cuts: list[Cut]) -> str:
    fcm = "FCM: DROP FRAME" if base.drop_frame else "FCM: NON-DROP FRAME"
    lines = text.splitlines()
    out: list[str] = []
    event = 0
    for line in lines:
        if line.startswith("TITLE:"):
            out.append(line)
            out.append(fcm)
            continue
        if line[:3].isdigit() and len(line) > 20:
            cut = cuts[event]
            event += 1
            parts = line.split()
            # "NNN  REEL     V     C        in out in out": swap the channel field for the take's.
            channel = EDL_CHANNEL.get((cut.source.has_video, cut.source.has_audio), "V")
            reel = parts[1]
            line = f"{parts[0]}  {reel:8} {channel:5} C        {' '.join(parts[4:8])}"
        out.append(line)
    if not any(x.startswith("TITLE:") for x in lines):
        out.insert(0, fcm)
    return "\n".join(out).rstrip("\n") + "\n"


# ------------------------------------------------------------------------------------------ FCPXML

FCPXML_VERSION = "1.8"
# Final Cut's names for the standard formats (other sizes are described by width/height alone).
_FCPX_SIZES = {(1920, 1080): "1080", (1280, 720): "720", (3840, 2160): "3840x2160", (4096, 2160): "4096x2160"}
_FCPX_RATES = {Fraction(24000, 1001): "2398", Fraction(24): "24", Fraction(25): "25", Fraction(30000, 1001): "2997",
               Fraction(30): "30", Fraction(50): "50", Fraction(60000, 1001): "5994", Fraction(60): "60"}


def _secs(frames: int, rate: Fraction) -> str:
    """FCPXML rational time: ``frames / rate`` seconds, e.g. ``1001/24000s``, ``0s``, ``3600s``."""
    t = Fraction(frames) / rate
    if t == 0:
        return "0s"
    return f"{t.numerator}s" if t.denominator == 1 else f"{t.numerator}/{t.denominator}s"


def fcpxml_string(plan: StringOut) -> str:
    """FCPXML 1.8 (Final Cut Pro 10.4+, Resolve): a project whose spine holds the cuts.

    Written here because otio-fcpx-xml-adapter 1.0.0 cannot write 23.976 or 29.97 timelines (its
    frame-duration table is keyed by ``int(rate)``, so it fails with a ValueError) and writes no
    ``tcFormat``; its reader truncates NTSC rates to integers. The same cuts and rules as the other
    formats: ``asset`` = the whole file (``start`` = its start TC as time), ``asset-clip`` ``start`` =
    the source in (the hit's TC less the head handle), ``offset`` = position in the project, snapped
    to the project's frames; a marker over the hit itself, ``value`` = ``speaker: text``.
    """
    from xml.etree import ElementTree as ET

    if not plan.cuts:
        raise NothingToExportError("Nothing to export: the result set is empty.")
    seq_rate = plan.base.rate
    root = ET.Element("fcpxml", version=FCPXML_VERSION)
    res = ET.SubElement(root, "resources")
    formats: dict[tuple, str] = {}
    assets: dict[str, str] = {}
    ids = iter(f"r{i}" for i in range(1, 10_000_000))

    def fmt(rate: Fraction, width: int | None, height: int | None) -> str:
        key = (rate, width, height)
        if key not in formats:
            fid = next(ids)
            attrs = {"id": fid, "frameDuration": _secs(1, rate)}
            name = _FCPX_SIZES.get((width, height))
            if name and rate in _FCPX_RATES:
                attrs["name"] = f"FFVideoFormat{name}p{_FCPX_RATES[rate]}"
            if width and height:
                attrs.update(width=str(width), height=str(height))
            ET.SubElement(res, "format", attrs)
            formats[key] = fid
        return formats[key]

    seq_w = next((c.source.width for c in plan.cuts if c.source.rate == seq_rate and c.source.width), None)
    seq_h = next((c.source.height for c in plan.cuts if c.source.rate == seq_rate and c.source.height), None)
    seq_fmt = fmt(seq_rate, seq_w, seq_h)
    reels = plan.reels
    for cut in plan.cuts:
        src = cut.source
        if src.take_id in assets:
            continue
        aid_fmt = fmt(src.rate, src.width, src.height) if src.has_video else None
        aid = next(ids)
        attrs = {"id": aid, "name": src.name, "uid": src.take_id, "src": media_url(src.path),
                 "start": _secs(src.start_frame, src.rate), "duration": _secs(src.frames, src.rate),
                 "hasVideo": "1" if src.has_video else "0", "hasAudio": "1" if src.has_audio else "0"}
        if aid_fmt:
            attrs["format"] = aid_fmt
        if src.has_audio:
            attrs.update(audioSources="1", audioChannels=str(max(1, src.audio_channels or 1)),
                         audioRate=str(src.audio_rate or 48000))
        asset = ET.SubElement(res, "asset", attrs)
        md = ET.SubElement(asset, "metadata")
        ET.SubElement(md, "md", key="com.apple.proapps.studio.reel", value=reels[src.take_id])
        if src.scene:
            ET.SubElement(md, "md", key="com.apple.proapps.studio.scene", value=str(src.scene))
        if src.take:
            ET.SubElement(md, "md", key="com.apple.proapps.studio.shot", value=str(src.take))
        if src.camera:
            ET.SubElement(md, "md", key="com.apple.proapps.studio.cameraName", value=str(src.camera))
        assets[src.take_id] = aid

    library = ET.SubElement(root, "library")
    event = ET.SubElement(library, "event", name="dailies")
    project = ET.SubElement(event, "project", name=plan.title)
    record = plan.base.frames(plan.record_start)
    tc_format = "DF" if plan.base.drop_frame else "NDF"
    # Offsets on the project's frame grid: each cut starts where the real time so far falls.
    elapsed = Fraction(0)
    offsets = []
    for cut in plan.cuts:
        a = round(elapsed * seq_rate)
        elapsed += Fraction(cut.frames) / cut.source.rate
        offsets.append((a, round(elapsed * seq_rate)))
    sequence = ET.SubElement(project, "sequence", {
        "format": seq_fmt, "duration": _secs(offsets[-1][1], seq_rate), "tcStart": _secs(record, seq_rate),
        "tcFormat": tc_format, "audioLayout": "stereo", "audioRate": "48k"})
    spine = ET.SubElement(sequence, "spine")
    for cut, (a, b) in zip(plan.cuts, offsets):
        src = cut.source
        rate = src.rate
        attrs = {"ref": assets[src.take_id], "name": src.name, "offset": _secs(record + a, seq_rate),
                 "start": _secs(src.start_frame + cut.src_in, rate),
                 "duration": _secs(b - a, seq_rate) if rate != seq_rate else _secs(cut.frames, rate),
                 "tcFormat": "DF" if src.drop_frame else "NDF"}
        if src.has_video:
            attrs["format"] = fmt(src.rate, src.width, src.height)
        clip = ET.SubElement(spine, "asset-clip", attrs)
        ET.SubElement(clip, "note").text = f"{cut.hit.kind} hit, score {cut.hit.score:.3f}, " \
                                           f"{cut.hit.tc_in}-{cut.hit.tc_out}"
        ET.SubElement(clip, "marker", {"start": _secs(src.start_frame + cut.first, rate),
                                       "duration": _secs(cut.end - cut.first, rate),
                                       "value": marker_text(cut.hit)})
        for frame, frames, name in cut.marks:   # the team's review notes inside the cut
            ET.SubElement(clip, "marker", {"start": _secs(src.start_frame + frame, rate),
                                           "duration": _secs(frames, rate), "value": name})
    ET.indent(root, "    ")
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n\n' + body + "\n"


# ------------------------------------------------------------------------------------------ ALE

ALE_COLUMNS = ["Name", "Tracks", "Start", "End", "Duration", "Tape", "FPS", "Scene", "Take", "Camera",
               "Speakers", "Dialogue", "Script lines", "Circled", "Comments", "Review notes", "Source File"]


@dataclass
class LogEntry:
    """One take's row in an ALE: its facts plus what was heard in it."""

    source: Source
    speakers: list[str]
    dialogue: str
    script_lines: list[str]
    notes: list[str] = field(default_factory=list)      # review notes, "TC text (author)", by frame


def _tracks(src: Source) -> str:
    tracks = "V" if src.has_video else ""
    if src.has_audio:
        n = max(1, min(src.audio_channels or 1, 8))
        tracks += "".join(f"A{i}" for i in range(1, n + 1))
    return tracks or "V"


def ale_strings(entries: Sequence[LogEntry], reel_len: int | None = DEFAULT_REEL_LEN) -> list[tuple[TimecodeBase, str]]:
    """One ALE per timecode base among the takes, through the ``ale`` adapter.

    ``Start``/``End`` are each take's own TC (End exclusive, as Avid writes it); ``FPS`` its rate as
    Avid names it (23.976, 25, 29.97); drop-frame starts are written with ``;``. The adapter writes
    ``FPS`` in the heading from the rate it counts at, which for non-drop NTSC bases is the integer
    label rate; the heading is set back to the base's true rate afterwards.
    """
    import opentimelineio as otio

    reels = reel_names((e.source for e in entries), reel_len)
    groups: dict[TimecodeBase, list[LogEntry]] = {}
    for e in entries:
        groups.setdefault(e.source.base, []).append(e)
    out = []
    for base, group in groups.items():
        lr = base.label_rate
        col = otio.schema.SerializableCollection(name=f"dailies {base.label}")
        heights = {e.source.height for e in group if e.source.height}
        video_format = "CUSTOM"
        if heights == {1080}:
            video_format = "1080"
        elif heights == {720}:
            video_format = "720"
        col.metadata["ALE"] = {"header": {"VIDEO_FORMAT": video_format, "AUDIO_FORMAT": "48khz",
                                          "FPS": str(lr)}, "columns": list(ALE_COLUMNS)}
        for e in group:
            src = e.source
            clip = otio.schema.Clip(name=src.name,
                                    media_reference=otio.schema.ExternalReference(
                                        target_url=os.path.abspath(src.path),
                                        available_range=_range(src.start_frame, src.frames, lr)),
                                    source_range=_range(src.start_frame, src.frames, lr))
            clip.metadata["ALE"] = {
                "Tracks": _tracks(src), "Tape": reels[src.take_id], "FPS": fps_label(src.rate),
                "Scene": src.scene or "", "Take": src.take or "", "Camera": src.camera or "",
                "Speakers": ", ".join(e.speakers), "Dialogue": e.dialogue,
                "Script lines": ", ".join(e.script_lines), "Circled": "Y" if src.circled else "",
                "Comments": one_line(src.circle_note), "Review notes": one_line("; ".join(e.notes))}
            col.append(clip)
        text = otio.adapters.write_to_string(col, "ale", columns=list(ALE_COLUMNS), fps=lr)
        fps_line = f"FPS\t{lr}"
        text = text.replace(fps_line, f"FPS\t{fps_label(base.rate)}", 1)
        out.append((base, text))
    return out
