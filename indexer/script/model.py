"""The screenplay model: scenes, elements and numbered dialogue lines (typed dataclasses, no I/O).

A parsed script is a flat list of :class:`Element` in reading order (title page excluded), grouped
into :class:`Scene` objects, plus one :class:`DialogueLine` per spoken speech (a character cue and
the dialogue under it; parentheticals are kept apart from the spoken text). Dialogue lines get the
id ``SCENE/N``: the scene number as written (``12A``; the scene's 1-based position in the script
when the heading has no number) and the 1-based position of the speech in that scene.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import DailiesError


class ScriptError(DailiesError):
    """A screenplay file cannot be imported (one sentence naming the file and what is wrong)."""


# Element kinds.
HEADING = "heading"
ACTION = "action"
CHARACTER = "character"
PARENTHETICAL = "parenthetical"
DIALOGUE = "dialogue"
TRANSITION = "transition"
CENTERED = "centered"
LYRICS = "lyrics"
PAGE_BREAK = "page_break"
SHOT = "shot"
KINDS = (HEADING, ACTION, CHARACTER, PARENTHETICAL, DIALOGUE, TRANSITION, CENTERED, LYRICS, PAGE_BREAK, SHOT)

_EXTENSION = re.compile(r"\(([^()]*)\)")
_TIMES_OF_DAY = (
    "DAY", "NIGHT", "MORNING", "EVENING", "AFTERNOON", "DUSK", "DAWN", "SUNSET", "SUNRISE", "LATER",
    "CONTINUOUS", "MOMENTS LATER", "SAME", "SAME TIME", "MAGIC HOUR", "NOON", "MIDNIGHT", "LATE NIGHT",
    "EARLY MORNING", "TWILIGHT",
)
_INT_EXT = re.compile(
    r"^\s*(INT\.?\s*/\s*EXT|EXT\.?\s*/\s*INT|I\s*/\s*E|E\s*/\s*I|INT|EXT|EST)[.\s]\s*", re.IGNORECASE)


@dataclass
class Element:
    kind: str                       # one of KINDS
    text: str                       # plain text (emphasis markup removed), lines joined with "\n"
    scene: int = 0                  # 1-based index of the scene it belongs to (0: before the first heading)
    source_line: int | None = None  # 1-based line in the source file (Fountain) or paragraph number (FDX)
    character: str | None = None    # CHARACTER: the name without extensions
    extensions: list[str] = field(default_factory=list)  # CHARACTER: "V.O.", "O.S.", "CONT'D" ...
    dual: bool = False              # CHARACTER/PARENTHETICAL/DIALOGUE: part of dual dialogue
    speech: int | None = None       # CHARACTER/PARENTHETICAL/DIALOGUE: index into Script.lines
    page: int | None = None         # page the element starts on (after pagination)


@dataclass
class DialogueLine:
    """One speech: a character cue and what is said under it."""

    line_id: str                    # "12A/4"
    scene: int                      # 1-based scene index
    scene_number: str               # "12A" (or the scene's position when unnumbered)
    position: int                   # 1-based position of the speech in its scene
    character: str                  # cue without extensions ("LEO")
    extensions: list[str]           # ("O.S.", "V.O.", "CONT'D" ...)
    text: str                       # the spoken words (parentheticals removed), one line
    parentheticals: list[str] = field(default_factory=list)
    dual: bool = False
    page: int | None = None
    layout_lines: int = 0           # printed lines the speech takes (cue included), after pagination

    @property
    def off_screen(self) -> bool:
        return any(e.replace(" ", "").upper() in ("V.O.", "O.S.", "O.C.", "VO", "OS", "OC")
                   for e in self.extensions)


@dataclass
class Scene:
    index: int                      # 1-based position in the script
    number: str | None              # as written (#12A# / FDX Number), or None
    heading: str                    # the heading text without the number
    int_ext: str | None = None      # INT, EXT, INT/EXT, EST
    location: str | None = None
    time_of_day: str | None = None
    source_line: int | None = None
    page_start: int | None = None
    page_end: int | None = None
    eighths: int | None = None      # length in eighths of a page
    stored_page: int | None = None  # page stated by the file (FDX SceneProperties Page)
    stored_eighths: int | None = None  # length stated by the file (FDX SceneProperties Length)
    layout_lines: int = 0           # printed lines the scene takes (our layout)

    @property
    def label(self) -> str:
        """The scene's number as written, or its position in the script."""
        return self.number or str(self.index)


@dataclass
class Script:
    title: str | None
    format: str                     # fountain, fdx
    elements: list[Element]
    scenes: list[Scene]
    lines: list[DialogueLine]
    title_page: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    pages: int | None = None        # page count after pagination
    pages_source: str | None = None  # "stored" (from the file), "paginated" (our layout), "mixed"

    @property
    def characters(self) -> list[str]:
        """Speaking characters, in order of first appearance."""
        return list(dict.fromkeys(ln.character for ln in self.lines))

    def scene_by_label(self, label: str) -> Scene | None:
        key = label.strip().upper()
        for s in self.scenes:
            if s.label.upper() == key:
                return s
        return None

    def line(self, line_id: str) -> DialogueLine | None:
        for ln in self.lines:
            if ln.line_id.upper() == line_id.strip().upper():
                return ln
        return None

    def to_json(self) -> dict[str, Any]:
        """The same dict as ``dataclasses.asdict`` (whose deep copies cost seconds on a long script)."""
        d = _fields(self)
        for key, items in (("elements", self.elements), ("scenes", self.scenes), ("lines", self.lines)):
            d[key] = [_fields(x) for x in items]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Script":
        return cls(
            title=d.get("title"), format=d["format"],
            elements=[Element(**e) for e in d["elements"]],
            scenes=[Scene(**s) for s in d["scenes"]],
            lines=[DialogueLine(**ln) for ln in d["lines"]],
            title_page=d.get("title_page") or {}, warnings=d.get("warnings") or [],
            pages=d.get("pages"), pages_source=d.get("pages_source"))


def _fields(obj) -> dict[str, Any]:
    """A dataclass's fields as a dict; its lists and dicts (of plain values here) copied one level."""
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v
    return out


# ------------------------------------------------------------------------------------ helpers

def split_cue(cue: str) -> tuple[str, list[str], bool]:
    """``"STEEL (V.O.) (CONT'D) ^"`` -> ``("STEEL", ["V.O.", "CONT'D"], dual)``."""
    text = cue.strip()
    dual = text.endswith("^")
    if dual:
        text = text[:-1].rstrip()
    extensions = [m.group(1).strip() for m in _EXTENSION.finditer(text)]
    name = _EXTENSION.sub("", text).strip()
    name = re.sub(r"\s+", " ", name)
    extensions = [e.replace("\u2019", "'") for e in extensions if e.strip()]
    return name, extensions, dual


def parse_heading(text: str) -> tuple[str | None, str | None, str | None]:
    """``"INT. OBSERVATORY DOME - NIGHT"`` -> ``("INT", "OBSERVATORY DOME", "NIGHT")``."""
    t = text.strip()
    m = _INT_EXT.match(t)
    int_ext = None
    rest = t
    if m:
        raw = re.sub(r"[.\s]", "", m.group(1).upper())
        int_ext = {"I/E": "INT/EXT", "E/I": "INT/EXT", "EXT/INT": "INT/EXT"}.get(raw, raw)
        rest = t[m.end():]
    rest = rest.strip(" .")
    parts = re.split(r"\s+[-\u2013\u2014]{1,2}\s+|\s+--\s*|\s*--\s+", rest)
    time_of_day = None
    if len(parts) > 1:
        last = parts[-1].strip(" .")
        time_of_day = last or None
        location = " - ".join(p.strip() for p in parts[:-1] if p.strip()) or None
    else:
        location = rest or None
        up = rest.upper()
        for tod in _TIMES_OF_DAY:        # "EXT. PARK DAY"
            if up.endswith(" " + tod):
                time_of_day = rest[-len(tod):]
                location = rest[: -len(tod)].strip(" -.") or None
                break
    return int_ext, location, time_of_day


def number_lines(script: Script) -> None:
    """Give every dialogue line its ``SCENE/N`` id (scene number as written, or scene position)."""
    per_scene: dict[int, int] = {}
    labels = {s.index: s.label for s in script.scenes}
    for ln in script.lines:
        n = per_scene.get(ln.scene, 0) + 1
        per_scene[ln.scene] = n
        ln.position = n
        ln.scene_number = labels.get(ln.scene, "0")
        ln.line_id = f"{ln.scene_number}/{n}"


def check_scene_numbers(script: Script) -> None:
    """Warn about duplicate scene numbers (line ids would clash); make them unique."""
    seen: dict[str, int] = {}
    for s in script.scenes:
        key = s.label.upper()
        if key in seen:
            script.warnings.append(
                f"scene number {s.label} is used twice (scenes {seen[key]} and {s.index}); "
                f"the second is called {s.label}~{s.index}")
            s.number = f"{s.label}~{s.index}"
        seen[s.label.upper()] = s.index


def build_lines(script: Script) -> None:
    """Collect speeches from the elements (CHARACTER + following PARENTHETICAL/DIALOGUE)."""
    script.lines = []
    current: DialogueLine | None = None
    members: list[Element] = []
    spoken: list[str] = []

    def close() -> None:
        nonlocal current, members, spoken
        if current is not None:
            current.text = " ".join(" ".join(s.split()) for s in spoken if s.strip())
            speech = len(script.lines) if current.text else None   # a cue with no words is not a line
            if current.text:
                script.lines.append(current)
            for e in members:
                e.speech = speech
        current, members, spoken = None, [], []

    for el in script.elements:
        if el.kind == CHARACTER:
            close()
            current = DialogueLine(line_id="", scene=el.scene, scene_number="", position=0,
                                   character=el.character or el.text, extensions=list(el.extensions),
                                   text="", dual=el.dual)
            members.append(el)
        elif el.kind in (DIALOGUE, PARENTHETICAL, LYRICS) and current is not None:
            members.append(el)
            if el.kind == PARENTHETICAL:
                current.parentheticals.append(el.text)
            else:
                spoken.append(el.text)
        else:
            close()
    close()
    number_lines(script)


def finish(script: Script) -> Script:
    """Number scenes' lines, dedupe scene numbers; shared by both parsers."""
    check_scene_numbers(script)
    build_lines(script)
    if not script.title:
        script.title = script.title_page.get("title") or None
    return script
