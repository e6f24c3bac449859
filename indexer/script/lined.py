"""The lined script as data: the screenplay's printed pages (rows as :func:`.pages.paginate` lays them
out) and, for every take matched to a scene, the script lines it covers and how each was delivered.

Geometry-free: rows are counted in printed lines (Courier 12 pt: six to the inch) from the top of the
page's text area; the review room's templates turn them into inches. One take line per take matched to
a scene runs down the dialogue of that scene; each of its segments is one script line with a state:

* ``delivered``  said as written (its best delivery, :func:`.catalog.line_deliveries`' order)
* ``deviates``   said in full, but not as written (``diff`` holds the wdiff of what was said)
* ``partial``    only partly said (or only a false start)
* ``skipped``    never said in the take
* ``mos``        the take recorded no dialogue (MOS): nothing can be said about the line
"""

from __future__ import annotations

from typing import Any

from .catalog import TakeMatch, line_deliveries
from .model import CHARACTER, DIALOGUE, LYRICS, PARENTHETICAL, Script
from .pages import LINES_PER_PAGE, Placed, paginate

SPEECH_KINDS = (CHARACTER, PARENTHETICAL, DIALOGUE, LYRICS, "more")


def deviates(diff: str | None) -> bool:
    """Whether a wdiff says the words differ from the script (``[-...-]`` or ``{+...+}``)."""
    return bool(diff) and ("[-" in diff or "{+" in diff)


def take_label(scene: str | None, take: str | None, camera: str | None, name: str) -> str:
    """``12A-3 B``: the scene/take/camera a lined script writes at the top of a take line."""
    if not take:
        return name
    return f"{scene}-{take}" + (f" {camera}" if camera else "")


def layout(script: Script) -> list[Placed]:
    """Every printed row of the script, page by page (the pagination `script import` computed)."""
    placed: list[Placed] = []
    paginate(script, placed=placed)
    return placed


def build(script: Script, name: str, version: int, matches: list[TakeMatch], takes: dict[str, Any]) -> dict:
    """The lined script of a version: its pages (rows with their scene and script line) and its takes
    (each take matched to a scene: one segment per line of that scene, per page the scene is on).

    A page's ``page`` counts our layout's sheets from 1; its ``number`` is what is printed on it: the same,
    or, where the file states its pages (Final Draft), the stated page of what starts the sheet (``5A``
    after ``5`` when our layout needs one more sheet than the file did)."""
    placed = layout(script)
    els = script.elements
    labels = {s.index: s.label for s in script.scenes}
    line_of_speech = {i: ln.line_id for i, ln in enumerate(script.lines)}
    char_of = {ln.line_id: ln.character for ln in script.lines}
    pages: dict[int, dict] = {}
    spans: dict[tuple[int, str], list[int]] = {}          # (page, line id) -> [first y, last y]
    seen: set[int] = set()
    for r in placed:
        el = els[r.element]
        first = r.element not in seen
        seen.add(r.element)
        line_id = line_of_speech.get(el.speech) if el.speech is not None and r.kind in SPEECH_KINDS else None
        page = pages.setdefault(r.page, {"page": r.page, "number": str(r.page), "rows": [], "takes": []})
        if not page["rows"] and script.pages_source in ("stored", "mixed") and el.page is not None:
            page["number"] = str(el.page)        # the page the file states (Final Draft) for what starts here
        page["rows"].append({"y": r.y, "kind": r.kind, "text": r.text, "scene": labels.get(el.scene),
                             "line_id": line_id, "first": first})
        if line_id is not None:
            span = spans.setdefault((r.page, line_id), [r.y, r.y])
            span[0], span[1] = min(span[0], r.y), max(span[1], r.y)
    last = None
    for k in sorted(pages):                     # our layout may need more sheets than the file's pages: 5, 5A
        num = pages[k]["number"]
        base = num.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        if last is not None and base == last[0]:
            num = base + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[min(last[1], 25)]
            last = (base, last[1] + 1)
        else:
            last = (base, 0)
        pages[k]["number"] = num
    line_pages: dict[str, list[int]] = {}
    for (pg, lid) in spans:
        line_pages.setdefault(lid, []).append(pg)
    scene_lines: dict[str, list[str]] = {}
    for ln in script.lines:
        scene_lines.setdefault(ln.scene_number, []).append(ln.line_id)

    out_takes = []
    for m in sorted(matches, key=lambda m: (m.scene or "", m.name)):
        if m.scene is None:
            continue
        info = takes.get(m.take_id, {})
        t = {"take_id": m.take_id, "name": m.name, "scene": m.scene, "take": info.get("take"),
             "camera": info.get("camera"), "circled": bool(info.get("circled", False)),
             "circle_note": info.get("circle_note"), "no_dialogue": m.no_dialogue,
             "start_tc": info.get("start_tc"), "duration": info.get("duration"),
             "review_notes": info.get("review_notes", []),
             "label": take_label(m.scene, info.get("take"), info.get("camera"), m.name), "lines": []}
        for lid in scene_lines.get(m.scene, []):
            best = (line_deliveries([m], lid) or [None])[0]
            if m.no_dialogue:
                state = "mos"
            elif best is None:
                state = "skipped"
            elif best.status != "delivered":
                state = "partial"
            else:
                state = "deviates" if deviates(best.diff) else "delivered"
            n = sum(1 for d in m.deliveries if d.line_id == lid)
            t["lines"].append({
                "line_id": lid, "character": char_of.get(lid), "state": state, "deliveries": n,
                "start": None if best is None else round(best.start, 3),
                "end": None if best is None else round(best.end, 3),
                "tc_in": None if best is None else best.tc_in, "tc_out": None if best is None else best.tc_out,
                "delivered": None if best is None else best.delivered,
                "diff": None if best is None else best.diff})
        out_takes.append(t)

    # Where each take line is drawn: per page, one segment per script line of its scene on that page.
    order = {t["take_id"]: k for k, t in enumerate(out_takes)}
    for t in out_takes:
        by_page: dict[int, list[dict]] = {}
        for ln in t["lines"]:
            for pg in line_pages.get(ln["line_id"], []):
                y0, y1 = spans[(pg, ln["line_id"])]
                by_page.setdefault(pg, []).append({"line_id": ln["line_id"], "y0": y0, "y1": y1})
        first = min(by_page) if by_page else None
        for pg, segs in sorted(by_page.items()):
            pages[pg]["takes"].append({"take_id": t["take_id"], "column": order[t["take_id"]],
                                       "top": pg == first, "y0": min(s["y0"] for s in segs),
                                       "y1": max(s["y1"] for s in segs), "segments": segs})
    for pg in pages.values():
        used = sorted({x["column"] for x in pg["takes"]})
        for x in pg["takes"]:
            x["slot"] = used.index(x["column"])          # columns packed per page: only its takes
        pg["columns"] = len(used)

    return {"script": name, "version": version, "title": script.title, "pages_count": script.pages,
            "lines_per_page": LINES_PER_PAGE, "pages": [pages[k] for k in sorted(pages)], "takes": out_takes,
            "cameras": sorted({t["camera"] for t in out_takes if t["camera"]}),
            "characters": script.characters, "dialogue": [{"line_id": ln.line_id, "character": ln.character,
                                                            "text": ln.text} for ln in script.lines]}
