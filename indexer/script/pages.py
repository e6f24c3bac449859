"""Pagination by the industry convention, page spans and eighths per scene.

US Letter, Courier 12 pt (10 characters an inch, 6 lines an inch), :data:`LINES_PER_PAGE` lines of
text a page (the page-number line and margins excluded). Element widths and the blank lines before
each element follow Final Draft's default screenplay template (the same numbers its ``.fdx`` files
store in ``<ElementSettings>``): action, scene headings and shots 6.0" (60 characters), character cues
3.5" from 3.75", parentheticals 2.0" from 3.25", dialogue 3.69" from 2.56", transitions 1.5";
two blank lines before a scene heading, one before action, cues, transitions and shots, none before
parentheticals and dialogue.

Breaking rules: a scene heading is never the last thing on a page (it moves with at least two lines
of what follows); a character cue stays with its first lines of dialogue; dialogue breaks across a
page only at a sentence end with at least two lines on each side, adding ``(MORE)`` at the bottom and
``NAME (CONT'D)`` at the top of the next page; otherwise the whole speech moves. Action breaks at a
sentence end with at least two lines on each side, else moves. A scene's length is counted in eighths
of a page (55 / 8 lines each, at least 1/8).

When the file states its pages (Final Draft ``SceneProperties Page``/``Length``), those are used for
the scenes and our layout only places elements within them.
"""

from __future__ import annotations

import textwrap
from collections import deque
from dataclasses import dataclass

from .model import (
    ACTION, CENTERED, CHARACTER, DIALOGUE, HEADING, LYRICS, PAGE_BREAK, PARENTHETICAL, SHOT, TRANSITION,
    Script,
)

LINES_PER_PAGE = 55
WIDTH = {HEADING: 60, ACTION: 60, SHOT: 60, CENTERED: 60, CHARACTER: 35, PARENTHETICAL: 20, DIALOGUE: 36,
         LYRICS: 36, TRANSITION: 15}
SPACE_BEFORE = {HEADING: 2, ACTION: 1, SHOT: 1, CENTERED: 1, CHARACTER: 1, TRANSITION: 1, PARENTHETICAL: 0,
                DIALOGUE: 0, LYRICS: 0}
_SENTENCE_END = (".", "?", "!", "\u2026", ".\"", "?\"", "!\"", "--", "\u2014")


@dataclass
class _Row:
    element: int          # index into script.elements
    text: str
    kind: str


@dataclass
class _Block:
    rows: list[_Row]
    space: int
    kind: str             # heading, speech, action, other
    cue: str | None = None  # speech: the cue for (CONT'D)


def wrap(text: str, width: int) -> list[str]:
    out: list[str] = []
    for para in text.split("\n"):
        if not para.strip():
            out.append("")
            continue
        out.extend(textwrap.wrap(para, width=width, break_long_words=True, break_on_hyphens=False) or [""])
    return out or [""]


def _blocks(script: Script) -> list[_Block | None]:
    """Layout blocks in order; ``None`` marks a forced page break."""
    blocks: list[_Block | None] = []
    els = script.elements
    i = 0
    while i < len(els):
        el = els[i]
        if el.kind == PAGE_BREAK:
            blocks.append(None)
            i += 1
            continue
        if el.kind == CHARACTER:
            rows = [_Row(i, el.text + (" ^" if False else ""), CHARACTER)]
            j = i + 1
            while j < len(els) and els[j].kind in (PARENTHETICAL, DIALOGUE, LYRICS):
                width = WIDTH[els[j].kind]
                rows.extend(_Row(j, t, els[j].kind) for t in wrap(els[j].text, width))
                j += 1
            blocks.append(_Block(rows, SPACE_BEFORE[CHARACTER], "speech", cue=el.character or el.text))
            i = j
            continue
        kind = el.kind if el.kind in WIDTH else ACTION
        rows = [_Row(i, t, kind) for t in wrap(el.text, WIDTH[kind])]
        blocks.append(_Block(rows, SPACE_BEFORE.get(kind, 1), "heading" if kind == HEADING else
                             ("action" if kind in (ACTION, SHOT, CENTERED) else "other")))
        i += 1
    return blocks


def _last_sentence_split(rows, first: int, last: int) -> int | None:
    """The largest row count k in [first, last] (rows[:k] on this page) where row k-1 ends a sentence
    and row k may start the next page. Looks at the rows of one page only, so a block many pages long
    is laid out in time linear in its length."""
    for k in range(min(last, len(rows) - 2), first - 1, -1):
        t = rows[k - 1].text.rstrip()
        if t.endswith(_SENTENCE_END) and rows[k - 1].kind in (ACTION, SHOT, DIALOGUE, LYRICS) and \
                rows[k].kind in (ACTION, SHOT, DIALOGUE, LYRICS, PARENTHETICAL):
            return k
    return None


def _take(rows: deque, k: int) -> list:
    return [rows.popleft() for _ in range(min(k, len(rows)))]


@dataclass
class Placed:
    """One printed row of the layout: its page, its line on the page (0-based, blank lines counted), its
    kind (an element kind, or ``more`` for ``(MORE)``), its text and the element it comes from."""

    page: int
    y: int
    kind: str
    text: str
    element: int


def paginate(script: Script, lines_per_page: int = LINES_PER_PAGE, use_stored: bool = True,
             placed: list[Placed] | None = None) -> Script:
    """Lay the script out; set element/line pages, scene page spans and eighths, and the page count.

    With ``use_stored`` (the default), pages and lengths the file states win over our layout. A ``placed``
    list receives every printed row of our layout, in order (the lined script draws them)."""
    blocks = _blocks(script)
    page = 1
    y = 0
    row_page: dict[int, int] = {}          # element index -> page of its first row
    elem_lines: dict[int, int] = {}        # element index -> printed lines (its space before included)
    last_page_of: dict[int, int] = {}      # element index -> page of its last row

    def put(rows: list[_Row], space: int) -> None:
        nonlocal y
        if y == 0:
            space = 0
        y += space
        if rows:
            elem_lines[rows[0].element] = elem_lines.get(rows[0].element, 0) + space
        for r in rows:
            row_page.setdefault(r.element, page)
            last_page_of[r.element] = page
            elem_lines[r.element] = elem_lines.get(r.element, 0) + 1
            if placed is not None:
                placed.append(Placed(page, y, r.kind, r.text, r.element))
            y += 1

    def new_page() -> None:
        nonlocal page, y
        page += 1
        y = 0

    for bi, block in enumerate(blocks):
        if block is None:
            if y > 0:
                new_page()
            continue
        rows = block.rows
        space = 0 if y == 0 else block.space
        room = lines_per_page - y
        if block.kind == "heading":
            nxt = blocks[bi + 1] if bi + 1 < len(blocks) else None
            need = space + len(rows)
            if nxt is not None:
                need += nxt.space + min(2, len(nxt.rows))
            if need > room and y > 0:
                new_page()
            put(rows, space)
            continue
        if space + len(rows) <= room:
            put(rows, space)
            continue
        # Does not fit: split at a sentence end, or move to the next page.
        rows = deque(rows)                  # taken from the front a page at a time (no re-slicing)
        while rows:
            space = 0 if y == 0 else block.space
            room = lines_per_page - y
            if space + len(rows) <= room:
                put(list(rows), space)
                break
            if block.kind in ("speech", "action"):
                more = 1 if block.kind == "speech" else 0
                first = 3 if block.kind == "speech" else 2     # cue + 2 lines / 2 lines
                k = _last_sentence_split(rows, first, room - space - more)
                if y == 0 and k is None:                        # longer than a page: cut anywhere
                    k = max(1, room - more)
                if k is not None:
                    put(_take(rows, k), space)
                    if more and placed is not None:
                        placed.append(Placed(page, y, "more", "(MORE)", placed[-1].element))
                    y += more                                    # (MORE)
                    new_page()
                    if block.kind == "speech":
                        rows.appendleft(_Row(rows[0].element, f"{block.cue} (CONT'D)", CHARACTER))
                    continue
            if y == 0:                                          # other blocks longer than a page
                put(_take(rows, room), 0)
                new_page()
                continue
            new_page()
    total_pages = page if y > 0 or page == 1 else page - 1

    # Elements and lines.
    for i, el in enumerate(script.elements):
        el.page = row_page.get(i)
    for i, el in enumerate(script.elements):
        if el.page is None:
            el.page = script.elements[i - 1].page if i else 1
    members_of: dict[int, list[int]] = {}
    for i, e in enumerate(script.elements):
        if e.speech is not None:
            members_of.setdefault(e.speech, []).append(i)
    for ln_i, ln in enumerate(script.lines):
        members = members_of.get(ln_i, [])
        ln.page = script.elements[members[0]].page if members else None
        ln.layout_lines = sum(elem_lines.get(i, 0) for i in members)

    # Scenes: span and eighths.
    per_scene_lines: dict[int, int] = {}
    per_scene_last: dict[int, int] = {}
    for i, el in enumerate(script.elements):
        if el.scene:
            per_scene_lines[el.scene] = per_scene_lines.get(el.scene, 0) + elem_lines.get(i, 0)
            per_scene_last[el.scene] = max(per_scene_last.get(el.scene, 0), last_page_of.get(i, el.page or 1))
    heads = {e.scene: e for e in script.elements if e.kind == HEADING}
    for s in script.scenes:
        head = heads.get(s.index)
        s.page_start = head.page if head else None
        s.page_end = per_scene_last.get(s.index, s.page_start)
        n_lines = per_scene_lines.get(s.index, 0)
        s.layout_lines = n_lines
        s.eighths = max(1, round(n_lines * 8 / lines_per_page))
    script.pages = total_pages
    script.pages_source = "paginated"
    if use_stored:
        _apply_stored(script)
    return script


def _apply_stored(script: Script) -> None:
    """Use the pages and lengths the file states (Final Draft) over our own layout."""
    stored = [s for s in script.scenes if s.stored_page is not None]
    if not stored:
        return
    offsets: dict[int, int] = {}
    for s in script.scenes:
        if s.stored_page is None or s.page_start is None:
            continue
        offsets[s.index] = s.stored_page - s.page_start
        span = (s.page_end or s.page_start) - s.page_start
        s.page_start = s.stored_page
        s.page_end = s.stored_page + span
        if s.stored_eighths:
            s.eighths = s.stored_eighths
    for a, b in zip(script.scenes, script.scenes[1:]):
        if a.stored_page is not None and b.stored_page is not None and a.page_end is not None:
            a.page_end = max(a.page_start or 1, min(a.page_end, b.stored_page))
    for el in script.elements:
        if el.scene in offsets and el.page is not None:
            el.page += offsets[el.scene]
    for ln in script.lines:
        if ln.scene in offsets and ln.page is not None:
            ln.page += offsets[ln.scene]
    script.pages = max([script.pages or 0] + [s.page_end or 0 for s in script.scenes])
    script.pages_source = "stored" if len(stored) == len(script.scenes) else "mixed"


def eighths_label(eighths: int | None) -> str:
    """11 -> ``"1 3/8"``; 8 -> ``"1"``; 3 -> ``"3/8"``."""
    if eighths is None:
        return ""
    whole, rest = divmod(int(eighths), 8)
    if whole and rest:
        return f"{whole} {rest}/8"
    return str(whole) if whole else f"{rest}/8"
