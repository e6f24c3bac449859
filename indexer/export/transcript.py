"""A take's transcript as subtitles (SRT, WebVTT) or tables (CSV, TXT, JSON), with speaker labels.

SRT and VTT times count from the file's first frame (players and NLEs place sidecar subtitles so);
CSV, TXT and JSON also carry each line's source TC in/out (TC out exclusive).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Sequence

from ..store import LineRow
from .core import Source, one_line

TRANSCRIPT_FORMATS = ("srt", "vtt", "csv", "txt", "json")


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cues(lines: Sequence[LineRow]) -> list[tuple[float, float, LineRow]]:
    """Start/end per line, ends never past the next line's start, never shorter than a frame-ish."""
    out = []
    for i, ln in enumerate(lines):
        start, end = max(0.0, ln.start), max(ln.end, ln.start + 0.04)
        if i + 1 < len(lines) and end > lines[i + 1].start > start:
            end = lines[i + 1].start
        out.append((start, end, ln))
    return out


def srt(lines: Sequence[LineRow]) -> str:
    blocks = []
    for n, (a, b, ln) in enumerate(_cues(lines), start=1):
        text = one_line(ln.text)
        if ln.speaker:
            text = f"{one_line(ln.speaker)}: {text}"
        blocks.append(f"{n}\n{_clock(a, ',')} --> {_clock(b, ',')}\n{text}\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt(lines: Sequence[LineRow], source: Source) -> str:
    out = ["WEBVTT", "", "NOTE", f"{one_line(source.name)} ({source.rate} fps, start {source.start_tc}); "
                                 "times from the file's first frame", ""]
    for n, (a, b, ln) in enumerate(_cues(lines), start=1):
        text = _vtt_escape(one_line(ln.text))
        if ln.speaker:
            # WebVTT voice span: players show the speaker's name, the text stays searchable.
            text = f"<v {_vtt_escape(one_line(ln.speaker))}>{text}</v>"
        out += [str(n), f"{_clock(a, '.')} --> {_clock(b, '.')}", text, ""]
    return "\n".join(out)


def _rows(lines: Sequence[LineRow], source: Source) -> list[dict]:
    clock = source.clock
    return [{"line": ln.idx, "tc_in": clock.tc_in(ln.start), "tc_out": clock.tc_out(ln.end),
             "start": round(ln.start, 3), "end": round(ln.end, 3), "speaker": ln.speaker or "",
             "text": one_line(ln.text), "shots": ",".join(str(s) for s in ln.shots)} for ln in lines]


def table_csv(lines: Sequence[LineRow], source: Source) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["Clip", "Line", "TC In", "TC Out", "Start", "End", "Speaker", "Text", "Shots"])
    for r in _rows(lines, source):
        w.writerow([source.name, r["line"], r["tc_in"], r["tc_out"], f"{r['start']:.3f}", f"{r['end']:.3f}",
                    r["speaker"], r["text"], r["shots"]])
    return buf.getvalue()


def table_txt(lines: Sequence[LineRow], source: Source) -> str:
    head = [f"{source.name}  —  {source.rate} fps, start TC {source.start_tc}",
            f"{source.path}", ""]
    body = []
    for r in _rows(lines, source):
        who = f"{r['speaker']}: " if r["speaker"] else ""
        body.append(f"{r['tc_in']}  {r['tc_out']}  {who}{r['text']}")
    return "\n".join(head + body) + "\n"


def as_json(lines: Sequence[LineRow], source: Source) -> str:
    data = {"clip": source.path, "name": source.name, "take_id": source.take_id, "scene": source.scene,
            "take": source.take, "camera": source.camera, "rate": str(source.rate),
            "start_tc": source.start_tc, "drop_frame": source.drop_frame,
            "lines": [dict(r, words=[w.to_json() for w in ln.words], voice_id=ln.voice_id)
                      for r, ln in zip(_rows(lines, source), lines)]}
    for d in data["lines"]:
        d["shots"] = [int(s) for s in d["shots"].split(",") if s]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render(fmt: str, lines: Sequence[LineRow], source: Source) -> str:
    if fmt == "srt":
        return srt(lines)
    if fmt == "vtt":
        return vtt(lines, source)
    if fmt == "csv":
        return table_csv(lines, source)
    if fmt == "txt":
        return table_txt(lines, source)
    if fmt == "json":
        return as_json(lines, source)
    from ..errors import UsageError

    raise UsageError(f"Unknown transcript format '{fmt}' (use one of: {', '.join(TRANSCRIPT_FORMATS)}).")
