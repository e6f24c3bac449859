"""The lined-script coverage report: script lines x takes, and a summary per scene.

Rows are dialogue lines (page, scene, character, text); columns are the takes matched to the scene
(grouped by setup: scene as slated and camera); a cell says ``delivered``, ``partial`` (with the
deviation) or ``missing``, and is empty where the take does not cover that scene. Per scene: lines
never delivered in any take, lines only ever delivered in part, and the eighths of a page covered
(the scene's length times the share of its dialogue, by printed lines, delivered in full at least
once). Renderings: CSV, JSON and one self-contained printable HTML file (the CLI draws the table).
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .catalog import ScriptDelivery, TakeMatch
from .model import Script
from .pages import eighths_label

_RANK = {"delivered": 0, "partial": 1, "false_start": 2}
_MARKUP = re.compile(r"\[-|\{\+")


@dataclass
class Column:
    take_id: str
    name: str
    scene: str                    # script scene the take covers
    setup: str                    # slate scene + camera, e.g. "12A cam B"
    take: str | None
    camera: str | None
    no_dialogue: bool = False     # MOS (or nothing recognised): its cells are left empty


@dataclass
class Cell:
    status: str                   # delivered | partial | missing
    deliveries: int = 0           # how many times the line was said in the take (restarts count)
    score: float | None = None
    diff: str | None = None       # the best delivery's diff, when it deviates from the script
    tc_in: str | None = None
    tc_out: str | None = None
    start: float | None = None    # the best delivery's start, seconds from the take's first frame (to play it)


@dataclass
class Row:
    line_id: str
    scene: str
    page: int | None
    character: str
    text: str
    cells: dict[str, Cell] = field(default_factory=dict)   # take_id -> cell


@dataclass
class SceneSummary:
    scene: str
    heading: str
    page_start: int | None
    page_end: int | None
    eighths: int | None
    lines: int
    delivered: int                # lines delivered in full in at least one take
    partial_only: list[str]       # lines only ever delivered in part
    never: list[str]              # lines never delivered in any take
    takes: list[str]              # clip names covering the scene
    eighths_covered: int

    @property
    def length(self) -> str:
        return eighths_label(self.eighths)

    @property
    def covered(self) -> str:
        return eighths_label(self.eighths_covered)


@dataclass
class Coverage:
    script: str
    version: int
    title: str | None
    pages: int | None
    columns: list[Column]
    rows: list[Row]
    scenes: list[SceneSummary]
    unassigned: list[str]         # takes no scene could be found for (MOS, wild tracks of other scenes)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for s, summ in zip(d["scenes"], self.scenes):
            s["length"] = summ.length
            s["covered"] = summ.covered
        return d


def _best(dels: list[ScriptDelivery]) -> ScriptDelivery:
    return min(dels, key=lambda d: (_RANK.get(d.status, 3), -d.score))


def build(script: Script, name: str, version: int, matches: list[TakeMatch], scene: str | None = None,
          takes: dict[str, dict] | None = None) -> Coverage:
    """The coverage of ``script`` by the matched takes; ``takes`` maps take ids to their catalog facts
    (take, camera) for the column headings."""
    takes = takes or {}
    scenes = script.scenes
    if scene:
        key = scene.strip().upper()
        scenes = [s for s in scenes if s.label.upper() == key]
    labels = {s.label for s in scenes}
    cols: list[Column] = []
    by_take: dict[str, TakeMatch] = {}
    unassigned: list[str] = []
    for m in sorted(matches, key=lambda m: m.name):
        if m.scene is None:
            unassigned.append(m.name)
            continue
        if m.scene not in labels:
            continue
        info = takes.get(m.take_id, {})
        cam = info.get("camera")
        cols.append(Column(m.take_id, m.name, m.scene, f"{m.scene}" + (f" cam {cam}" if cam else ""),
                           info.get("take"), cam, m.no_dialogue))
        by_take[m.take_id] = m
    rows: list[Row] = []
    for ln in script.lines:
        if ln.scene_number not in labels:
            continue
        row = Row(ln.line_id, ln.scene_number, ln.page, ln.character, ln.text)
        for c in cols:
            if c.scene != ln.scene_number or c.no_dialogue:
                continue
            dels = [d for d in by_take[c.take_id].deliveries if d.line_id == ln.line_id]
            if not dels:
                row.cells[c.take_id] = Cell("missing")
                continue
            best = _best(dels)
            status = "delivered" if best.status == "delivered" else "partial"
            row.cells[c.take_id] = Cell(status, len(dels), best.score,
                                        best.diff if _MARKUP.search(best.diff or "") else None, best.tc_in, best.tc_out,
                                        round(best.start, 3))
        rows.append(row)
    summaries: list[SceneSummary] = []
    for s in scenes:
        srows = [r for r in rows if r.scene == s.label]
        layout = {ln.line_id: max(1, ln.layout_lines) for ln in script.lines if ln.scene_number == s.label}
        full = [r.line_id for r in srows if any(c.status == "delivered" for c in r.cells.values())]
        part = [r.line_id for r in srows if r.line_id not in full and any(c.status == "partial" for c in r.cells.values())]
        never = [r.line_id for r in srows if r.line_id not in full and r.line_id not in part]
        total = sum(layout.values()) or 1
        share = sum(layout[i] for i in full) / total
        eighths = s.eighths or 0
        covered = round(eighths * share) if srows else 0
        if full and covered == 0:
            covered = 1
        summaries.append(SceneSummary(
            scene=s.label, heading=s.heading, page_start=s.page_start, page_end=s.page_end, eighths=s.eighths,
            lines=len(srows), delivered=len(full), partial_only=part, never=never,
            takes=[c.name + (" (MOS)" if c.no_dialogue else "") for c in cols if c.scene == s.label],
            eighths_covered=covered))
    return Coverage(name, version, script.title, script.pages, cols, rows, summaries, unassigned)


# ------------------------------------------------------------------------------------------ renderings

def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return ""
    text = cell.status
    if cell.deliveries > 1:
        text += f" x{cell.deliveries}"
    if cell.diff:
        text += f": {cell.diff}"
    return text


def to_csv(cov: Coverage) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["page", "scene", "line_id", "character", "text"] + [c.name for c in cov.columns])
    for r in cov.rows:
        w.writerow([r.page if r.page is not None else "", r.scene, r.line_id, r.character, r.text]
                   + [_cell_text(r.cells.get(c.take_id)) for c in cov.columns])
    return buf.getvalue()


def to_json(cov: Coverage) -> str:
    return json.dumps(cov.to_json(), indent=2, ensure_ascii=False)


def diff_html(diff: str) -> str:
    """wdiff notation -> <del>/<ins> (escaped)."""
    out = []
    pos = 0
    for m in re.finditer(r"\[-(.*?)-\]|\{\+(.*?)\+\}", diff):
        out.append(html.escape(diff[pos:m.start()]))
        if m.group(1) is not None:
            out.append(f"<del>{html.escape(m.group(1))}</del>")
        else:
            out.append(f"<ins>{html.escape(m.group(2))}</ins>")
        pos = m.end()
    out.append(html.escape(diff[pos:]))
    return "".join(out)


_CSS = """
body{font-family:"Courier Prime","Courier New",Courier,monospace;font-size:10.5pt;margin:1.2em;color:#111}
h1{font-size:15pt;margin:0 0 .2em} h2{font-size:12pt;margin:1.4em 0 .3em;border-bottom:1px solid #999}
.meta{color:#555;margin-bottom:1em}
table{border-collapse:collapse;width:100%;margin-bottom:.8em}
th,td{border:1px solid #bbb;padding:3px 5px;vertical-align:top;text-align:left}
th{background:#eee;font-weight:bold}
td.c{text-align:center;min-width:5.5em;font-size:9pt}
td.delivered{background:#e3f4e1} td.partial{background:#fff3cd} td.missing{background:#f8d7da}
td.na{background:#f6f6f6}
.d{display:block;text-align:left;font-size:8.5pt;color:#333;margin-top:2px}
del{color:#b00020;text-decoration:line-through} ins{color:#006400;text-decoration:underline}
.char{font-weight:bold;white-space:nowrap} .id{white-space:nowrap;color:#444}
.legend span{display:inline-block;padding:1px 6px;margin-right:6px;border:1px solid #bbb}
@media print{@page{size:landscape;margin:12mm} body{margin:0} section{page-break-before:always}
 section:first-of-type{page-break-before:auto} tr{page-break-inside:avoid}
 td.delivered,td.partial,td.missing,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def to_html(cov: Coverage) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>Coverage — {e(cov.title or cov.script)}</title><style>{_CSS}</style></head><body>",
             f"<h1>Lined script coverage — {e(cov.title or cov.script)}</h1>",
             f"<div class=\"meta\">script “{e(cov.script)}” version {cov.version}"
             + (f", {cov.pages} pages" if cov.pages else "")
             + f"; {len(cov.columns)} take{'s' if len(cov.columns) != 1 else ''} matched"
             + (f"; no scene found for: {e(', '.join(cov.unassigned))}" if cov.unassigned else "") + "</div>",
             "<div class=\"legend\"><span class=\"delivered\" style=\"background:#e3f4e1\">delivered</span>"
             "<span style=\"background:#fff3cd\">partial</span><span style=\"background:#f8d7da\">missing</span>"
             "<del>script words not said</del> <ins>words said, not in the script</ins></div>",
             "<h2>Summary by scene</h2><table><tr><th>scene</th><th>heading</th><th>pages</th><th>length</th>"
             "<th>covered</th><th>lines</th><th>delivered</th><th>partial only</th><th>never delivered</th>"
             "<th>takes</th></tr>"]
    for s in cov.scenes:
        pages = "" if s.page_start is None else (str(s.page_start) if s.page_end in (None, s.page_start)
                                                 else f"{s.page_start}–{s.page_end}")
        parts.append(
            f"<tr><td>{e(s.scene)}</td><td>{e(s.heading)}</td><td>{pages}</td><td>{e(s.length)}</td>"
            f"<td>{e(s.covered)}</td><td>{s.lines}</td><td>{s.delivered}</td><td>{e(', '.join(s.partial_only))}</td>"
            f"<td>{e(', '.join(s.never))}</td><td>{e(', '.join(s.takes))}</td></tr>")
    parts.append("</table>")
    for s in cov.scenes:
        rows = [r for r in cov.rows if r.scene == s.scene]
        if not rows:
            continue
        cols = [c for c in cov.columns if c.scene == s.scene]
        parts.append(f"<section><h2>Scene {e(s.scene)} — {e(s.heading)}</h2><table><tr><th>page</th><th>line</th>"
                     "<th>character</th><th>text</th>"
                     + "".join(f"<th>{e(c.name)}<br><small>{e(c.setup)}</small></th>" for c in cols) + "</tr>")
        for r in rows:
            cells = []
            for c in cols:
                cell = r.cells.get(c.take_id)
                if cell is None:
                    cells.append("<td class=\"c na\"></td>")
                    continue
                label = cell.status + (f" ×{cell.deliveries}" if cell.deliveries > 1 else "")
                detail = f"<span class=\"d\">{diff_html(cell.diff)}</span>" if cell.diff else ""
                tc = f"<span class=\"d\">{e(cell.tc_in)}</span>" if cell.tc_in else ""
                cells.append(f"<td class=\"c {cell.status}\">{e(label)}{tc}{detail}</td>")
            parts.append(f"<tr><td>{r.page or ''}</td><td class=\"id\">{e(r.line_id)}</td>"
                         f"<td class=\"char\">{e(r.character)}</td><td>{e(r.text)}</td>{''.join(cells)}</tr>")
        parts.append("</table></section>")
    parts.append("</body></html>")
    return "\n".join(parts)
