"""Final Draft ``.fdx`` (XML) -> :class:`~indexer.script.model.Script`, read safely.

The XML is parsed with defusedxml: entity declarations (the "billion laughs" expansion attack),
external entities and DTD tricks are refused with one clear error, and files above
:data:`MAX_BYTES` are refused before parsing. Nothing is imported from a file that fails.

What is read: ``<Content>`` paragraphs by ``Type`` (Scene Heading, Action, Character, Parenthetical,
Dialogue, Transition, Shot, General ...), ``<DualDialogue>`` groups, scene ``Number`` attributes,
``<SceneProperties Page= Length=>`` (the page a scene starts on and its length in eighths, as Final
Draft computed them), ``StartsNewPage`` page breaks, and the title from ``<TitlePage>``. Script notes
(``<ScriptNote>``) are not part of the text.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element as XmlElement
from xml.etree.ElementTree import ParseError

from .model import (
    ACTION, CENTERED, CHARACTER, DIALOGUE, HEADING, LYRICS, PAGE_BREAK, PARENTHETICAL, SHOT, TRANSITION,
    Element, Scene, Script, ScriptError, finish, parse_heading, split_cue,
)

MAX_BYTES = 50 * 1024 * 1024          # a feature FDX is 0.5-3 MB

_TYPES = {
    "scene heading": HEADING, "action": ACTION, "general": ACTION, "character": CHARACTER,
    "parenthetical": PARENTHETICAL, "dialogue": DIALOGUE, "transition": TRANSITION, "shot": SHOT,
    "lyrics": LYRICS, "lyric": LYRICS, "cast list": ACTION, "new act": ACTION, "end of act": ACTION,
}


def parse_length(value: str | None) -> int | None:
    """``"1 3/8"`` -> 11 eighths; ``"2/8"`` -> 2; ``"1"`` -> 8."""
    if not value or not value.strip():
        return None
    whole, eighths = 0, 0
    for part in value.split():
        if re.fullmatch(r"\d+", part):
            whole = int(part)
        elif m := re.fullmatch(r"(\d+)/8", part):
            eighths = int(m.group(1))
        else:
            return None
    return whole * 8 + eighths


def _xml(data: bytes, name: str) -> XmlElement:
    import defusedxml
    from defusedxml import ElementTree as SafeET

    if len(data) > MAX_BYTES:
        raise ScriptError(f"{name} is {len(data) / 1e6:.0f} MB, too big for a Final Draft script "
                          f"(the limit is {MAX_BYTES // (1024 * 1024)} MB); refusing to read it.")
    if not data.strip():
        raise ScriptError(f"{name} is empty; export the script again from Final Draft.")
    try:
        return SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except defusedxml.EntitiesForbidden:
        raise ScriptError(f"{name} declares XML entities, which dailies refuses to expand (a known attack on "
                          "XML readers); export the script again from Final Draft.") from None
    except defusedxml.DefusedXmlException as exc:
        raise ScriptError(f"{name} uses XML features dailies refuses to read ({type(exc).__name__}); "
                          "export the script again from Final Draft.") from None
    except ParseError as exc:
        line, col = getattr(exc, "position", (0, 0))
        raise ScriptError(f"{name} is not valid XML (line {line}, column {col}: "
                          f"{str(exc).split(':')[0]}); it is damaged or not a Final Draft file.") from None
    except (ValueError, RecursionError) as exc:
        raise ScriptError(f"{name} cannot be read as XML ({exc}).") from None


def _text(p: XmlElement) -> str:
    """A paragraph's own text (its <Text> runs; notes and properties left out)."""
    parts = [(t.text or "") for t in p.findall("Text")]
    return "".join(parts).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ").strip()


def parse_fdx(data: bytes, name: str = "script.fdx") -> Script:
    root = _xml(data, name)
    if _local(root.tag) != "FinalDraft":
        raise ScriptError(f"{name} is XML but not a Final Draft document (its root is <{_local(root.tag)}>, "
                          "not <FinalDraft>).")
    content = root.find("Content")
    if content is None:
        raise ScriptError(f"{name} is a Final Draft file without a <Content> section (nothing to import).")

    elements: list[Element] = []
    scenes: list[Scene] = []
    warnings: list[str] = []
    counter = 0

    def add_paragraph(p: XmlElement, dual: bool) -> None:
        nonlocal counter
        counter += 1
        ptype = (p.get("Type") or "").strip()
        kind = _TYPES.get(ptype.lower())
        text = _text(p)
        if p.get("StartsNewPage", "").lower() == "yes" and elements:
            elements.append(Element(kind=PAGE_BREAK, text="", scene=len(scenes), source_line=counter))
        if kind is None:
            if not text:
                return
            kind = CENTERED if (p.get("Alignment") or "").lower() == "center" else ACTION
        if kind == HEADING:
            props = p.find("SceneProperties")
            number = (p.get("Number") or "").strip() or None
            int_ext, location, tod = parse_heading(text)
            stored_page = None
            stored_len = None
            if props is not None:
                page = (props.get("Page") or "").strip()
                stored_page = int(page) if re.fullmatch(r"[0-9]+", page) else None   # ("²".isdigit())
                stored_len = parse_length(props.get("Length"))
            scenes.append(Scene(index=len(scenes) + 1, number=number, heading=text, int_ext=int_ext,
                                location=location, time_of_day=tod, source_line=counter,
                                stored_page=stored_page, stored_eighths=stored_len))
            elements.append(Element(kind=HEADING, text=text, scene=len(scenes), source_line=counter))
            return
        if not text and kind not in (PAGE_BREAK,):
            return
        el = Element(kind=kind, text=text, scene=len(scenes), source_line=counter, dual=dual)
        if kind == CHARACTER:
            cue, ext, dual_mark = split_cue(text)
            el.character = cue
            el.extensions = ext
            el.dual = dual or dual_mark
        elements.append(el)

    for p in content:
        if _local(p.tag) != "Paragraph":
            continue
        dd = p.find("DualDialogue")
        if dd is not None:
            for q in dd:
                if _local(q.tag) == "Paragraph":
                    add_paragraph(q, True)
            continue
        add_paragraph(p, False)

    title = None
    tp = root.find("TitlePage")
    if tp is not None:
        for p in tp.iter("Paragraph"):
            t = _text(p)
            if any(c.isalnum() for c in t):
                title = t
                break
    script = Script(title=title, format="fdx", elements=elements, scenes=scenes, lines=[],
                    title_page={"title": title} if title else {}, warnings=warnings)
    return finish(script)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
