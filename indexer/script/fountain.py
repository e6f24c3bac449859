"""Fountain (https://fountain.io) -> :class:`~indexer.script.model.Script`.

A small parser of our own (see ``indexer/script/__init__.py`` for why no PyPI parser is used). It
follows the Fountain 1.1 syntax: title page, scene headings (``INT.``/``EXT.``/``EST``/``INT./EXT.``/
``I/E`` or forced with ``.``, scene numbers ``#12A#``), character cues (upper case, blank line before,
text right after; forced with ``@``; extensions like ``(V.O.)`` ``(CONT'D)``; dual dialogue ``^``),
parentheticals, dialogue (a line of two spaces keeps a speech going), transitions (``... TO:`` or
forced ``>``), centered text ``>...<``, lyrics ``~``, forced action ``!``, page breaks ``===``,
sections ``#`` and synopses ``=`` (skipped), notes ``[[...]]`` and boneyard ``/* ... */`` (removed),
emphasis ``*`` ``**`` ``_`` (removed from the stored text). Leading indentation is ignored, so
indented plain-text screenplays (character cues and dialogue set in by spaces) read correctly.
"""

from __future__ import annotations

import bisect
import re

from .model import (
    ACTION, CENTERED, CHARACTER, DIALOGUE, HEADING, LYRICS, PAGE_BREAK, PARENTHETICAL, TRANSITION,
    Element, Scene, Script, ScriptError, finish, parse_heading, split_cue,
)

MAX_BYTES = 20 * 1024 * 1024          # a feature screenplay is ~0.3 MB of text

_HEADING = re.compile(r"^(INT\.?\s*/\s*EXT|EXT\.?\s*/\s*INT|I\s*/\s*E|INT|EXT|EST)[.\s]", re.IGNORECASE)
_SCENE_NUMBER = re.compile(r"\s*#([\w.\-]+)#\s*$")
_TITLE_KEY = re.compile(r"^([A-Za-z][A-Za-z ]{0,29}):(.*)$")
_PAGE_BREAK = re.compile(r"^\s*={3,}\s*$")
_EMPHASIS = re.compile(r"(\*{1,3}|_)(?=\S)(.+?)(?<=\S)\1")
_TRANSITION = re.compile(r"^[^a-z]*TO:$")


def strip_emphasis(text: str) -> str:
    text = text.replace("\\*", "\x00").replace("\\_", "\x01")
    for _ in range(3):
        new = _EMPHASIS.sub(r"\2", text)
        if new == text:
            break
        text = new
    return text.replace("\x00", "*").replace("\x01", "_")


def decode(data: bytes, name: str) -> tuple[str, list[str]]:
    """Bytes of a text screenplay -> text (UTF-8 with or without BOM; Windows-1252 as a fallback)."""
    warnings: list[str] = []
    if len(data) > MAX_BYTES:
        raise ScriptError(f"{name} is {len(data) / 1e6:.0f} MB, too big for a screenplay "
                          f"(the limit is {MAX_BYTES // (1024 * 1024)} MB); is it the right file?")
    if b"\x00" in data[:65536]:
        raise ScriptError(f"{name} is not a text file (it contains binary data); "
                          "import a Fountain (.fountain/.txt) or Final Draft (.fdx) screenplay.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise ScriptError(f"{name} is not UTF-8 text (bad byte at offset {exc.start}); "
                              "save it as UTF-8 and import again.") from None
        warnings.append(f"{name} is not UTF-8; read it as Windows-1252")
    return text, warnings


def _remove_spans(text: str, name: str) -> list[tuple[str, int]]:
    """Remove boneyard ``/* */`` and notes ``[[ ]]``; return (line, source line number) pairs."""
    spans: list[tuple[int, int, bool]] = []   # (start, end, whole_lines)
    pos = 0
    while True:
        a = text.find("/*", pos)
        if a < 0:
            break
        b = text.find("*/", a + 2)
        if b < 0:
            line = text.count("\n", 0, a) + 1
            raise ScriptError(f"{name}: the boneyard comment opened with /* on line {line} is never closed "
                              "with */ (so the rest of the script would be hidden); close it and import again.")
        spans.append((a, b + 2, False))
        pos = b + 2
    bone_starts = [a for a, _, _ in spans]     # disjoint and in order

    def in_bone(i: int) -> bool:
        j = bisect.bisect_right(bone_starts, i) - 1
        return j >= 0 and i < spans[j][1]

    notes: list[tuple[int, int, bool]] = []
    pos = 0
    while True:                               # ``[[ ... ]]``: the first ``]]`` after each ``[[``
        a = text.find("[[", pos)
        if a < 0:
            break
        b = text.find("]]", a + 2)
        if b < 0:
            break                               # no later ``[[`` can close either
        pos = b = b + 2
        if in_bone(a) or "\n\n" in text[a + 2:b - 2]:
            continue
        whole = (a == 0 or text[a - 1] == "\n") and (b == len(text) or text[b] == "\n")
        if whole and b < len(text):
            b += 1                          # a note on its own line(s): drop the line
        notes.append((a, b, whole))
    spans += notes
    spans.sort()
    out: list[tuple[str, int]] = []
    cur = ""
    cur_src = 1
    src = 1
    pos = 0

    def feed(chunk: str) -> None:
        nonlocal cur, cur_src, src
        parts = chunk.split("\n")
        cur += parts[0]
        for part in parts[1:]:
            out.append((cur, cur_src))
            src += 1
            cur, cur_src = part, src

    for a, b, _ in spans:
        if a < pos:
            continue
        feed(text[pos:a])
        src += text.count("\n", a, b)
        if cur == "" and text[a - 1:a] in ("", "\n") and text[b - 1:b] == "\n":
            cur_src = src
        pos = b
    feed(text[pos:])
    out.append((cur, cur_src))
    return out


def _is_blank(line: str) -> bool:
    return not line.strip()


def _character_cue(stripped: str) -> bool:
    if stripped.startswith("@"):
        return len(stripped) > 1
    name, _, _ = split_cue(stripped)
    if not name or not name[0].isalpha() or "^" in name:
        return False
    if any(c.islower() for c in name) or not any(c.isalpha() for c in name):
        return False
    if stripped.rstrip("^ ").endswith(")") is False and "(" in stripped:
        return False
    return True


def parse_fountain(data: bytes | str, name: str = "script.fountain") -> Script:
    """Parse a Fountain screenplay. Raises :class:`ScriptError` on unreadable input."""
    warnings: list[str] = []
    if isinstance(data, bytes):
        text, warnings = decode(data, name)
    else:
        text = data
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ").lstrip("\ufeff")
    lines = _remove_spans(text, name)

    # ---------------------------------------------------------------- title page
    title_page: dict[str, str] = {}
    title_more: dict[str, list[str]] = {}     # continuation lines, joined once (not += per line)
    i = 0
    while i < len(lines) and _is_blank(lines[i][0]):
        i += 1
    if i < len(lines) and _TITLE_KEY.match(lines[i][0]) and not _HEADING.match(lines[i][0]):
        key = None
        while i < len(lines) and not _is_blank(lines[i][0]):
            raw = lines[i][0]
            m = _TITLE_KEY.match(raw)
            if m and not raw[:1].isspace():
                key = m.group(1).strip().lower()
                title_page[key] = strip_emphasis(m.group(2).strip())
                title_more[key] = []                # a key given again starts over
            elif key is not None:
                title_more.setdefault(key, []).append(strip_emphasis(raw.strip()))
            i += 1
    for key, more in title_more.items():
        title_page[key] = "\n".join([title_page[key], *more]).strip()
    body = lines[i:]

    elements: list[Element] = []
    scenes: list[Scene] = []
    n = len(body)
    k = 0
    prev_blank = True
    in_dialogue = False

    more: dict[int, list[str]] = {}            # element index -> lines that continue its text

    def add(kind: str, txt: str, src: int, **kw) -> Element:
        el = Element(kind=kind, text=txt, scene=len(scenes), source_line=src, **kw)
        elements.append(el)
        return el

    def extend(txt: str) -> None:
        """Continue the last element's text by a line (joined once at the end: linear, not quadratic)."""
        more.setdefault(len(elements) - 1, []).append(txt)

    def next_nonblank(j: int) -> bool:
        return j + 1 < n and not _is_blank(body[j + 1][0])

    while k < n:
        raw, src = body[k]
        stripped = raw.strip()
        if in_dialogue:
            if _PAGE_BREAK.match(raw):
                in_dialogue = False
                add(PAGE_BREAK, "", src)
                prev_blank = True
                k += 1
                continue
            if _is_blank(raw) and raw != "  ":
                in_dialogue = False
                prev_blank = True
                k += 1
                continue
            if stripped.startswith("(") and stripped.endswith(")"):
                add(PARENTHETICAL, strip_emphasis(stripped), src)
            else:
                kind = LYRICS if stripped.startswith("~") else DIALOGUE
                txt = stripped[1:].strip() if kind == LYRICS else stripped
                last = elements[-1]
                if last.kind == kind:
                    extend(strip_emphasis(txt))
                else:
                    add(kind, strip_emphasis(txt), src)
            prev_blank = False
            k += 1
            continue

        if _is_blank(raw):
            prev_blank = True
            k += 1
            continue
        if _PAGE_BREAK.match(raw):
            add(PAGE_BREAK, "", src)
            prev_blank = True
            k += 1
            continue
        if stripped.startswith("#"):                       # section: structure only
            prev_blank = True
            k += 1
            continue
        if stripped.startswith("=") and not stripped.startswith("=="):   # synopsis
            k += 1
            continue

        forced_heading = stripped.startswith(".") and len(stripped) > 1 and stripped[1].isalnum()
        if forced_heading or (prev_blank and _HEADING.match(stripped)):
            head = stripped[1:] if forced_heading else stripped
            number = None
            m = _SCENE_NUMBER.search(head)
            if m:
                number = m.group(1)
                head = head[: m.start()].rstrip()
            head = strip_emphasis(head)
            int_ext, location, tod = parse_heading(head)
            scenes.append(Scene(index=len(scenes) + 1, number=number, heading=head, int_ext=int_ext,
                                location=location, time_of_day=tod, source_line=src))
            add(HEADING, head, src)
            prev_blank = False
            k += 1
            continue
        if stripped.startswith("!"):
            _add_action(elements, add, extend, strip_emphasis(stripped[1:]), src, prev_blank)
            prev_blank = False
            k += 1
            continue
        if stripped.startswith(">") and stripped.endswith("<") and len(stripped) > 1:
            add(CENTERED, strip_emphasis(stripped[1:-1].strip()), src)
            prev_blank = False
            k += 1
            continue
        if stripped.startswith(">"):
            add(TRANSITION, strip_emphasis(stripped[1:].strip()), src)
            prev_blank = False
            k += 1
            continue
        if stripped.startswith("~"):
            add(LYRICS, strip_emphasis(stripped[1:].strip()), src)
            prev_blank = False
            k += 1
            continue
        next_blank = k + 1 >= n or _is_blank(body[k + 1][0])
        if prev_blank and next_blank and _TRANSITION.match(stripped):
            add(TRANSITION, strip_emphasis(stripped), src)
            prev_blank = False
            k += 1
            continue
        if prev_blank and next_nonblank(k) and _character_cue(stripped):
            cue = stripped[1:].strip() if stripped.startswith("@") else stripped
            name_, ext, dual = split_cue(cue)
            if dual:
                _mark_previous_speech_dual(elements)
            add(CHARACTER, strip_emphasis(cue.rstrip("^ ").strip()), src, character=strip_emphasis(name_),
                extensions=ext, dual=dual)
            in_dialogue = True
            prev_blank = False
            k += 1
            continue
        _add_action(elements, add, extend, strip_emphasis(stripped), src, prev_blank)
        prev_blank = False
        k += 1

    for j, extra in more.items():
        elements[j].text = "\n".join([elements[j].text, *extra])
    script = Script(title=title_page.get("title"), format="fountain", elements=elements, scenes=scenes,
                    lines=[], title_page=title_page, warnings=warnings)
    return finish(script)


def _add_action(elements: list[Element], add, extend, txt: str, src: int, prev_blank: bool) -> None:
    last = elements[-1] if elements else None
    if last is not None and last.kind == ACTION and not prev_blank:
        extend(txt)
    else:
        add(ACTION, txt, src)


def _mark_previous_speech_dual(elements: list[Element]) -> None:
    for el in reversed(elements):
        if el.kind in (DIALOGUE, PARENTHETICAL):
            el.dual = True
            continue
        if el.kind == CHARACTER:
            el.dual = True
        break
