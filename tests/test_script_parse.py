"""Screenplay import: Fountain and Final Draft parsing, ids, pagination, hostile and broken input."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import need

from indexer.script import load_file, parse_bytes
from indexer.script.fdx import parse_fdx, parse_length
from indexer.script.fountain import parse_fountain
from indexer.script.model import ScriptError
from indexer.script.pages import eighths_label, paginate

ROOT = Path(__file__).resolve().parents[1]
EVAL = Path(os.environ.get("DAILIES_EVAL", ROOT.parent / "shared" / "eval"))
SCRIPTS = EVAL / "script"


# ------------------------------------------------------------------------------------------ the fixture scene

def test_fixture_scene_matches_the_manifest():
    manifest = json.loads((ROOT / "fixtures" / "manifest.json").read_text())
    s = load_file(ROOT / "fixtures" / "scene.fountain")
    assert s.title == "The Comet" and s.format == "fountain"
    (scene,) = s.scenes
    assert (scene.number, scene.int_ext, scene.location, scene.time_of_day) == ("12A", "INT", "OBSERVATORY DOME", "NIGHT")
    assert [(ln.line_id, ln.character, ln.text) for ln in s.lines] == \
        [(x["id"], x["character"], x["text"]) for x in manifest["script_lines"]]
    assert s.lines[0].extensions == ["O.S."] and s.lines[0].off_screen
    assert s.lines[1].parentheticals == ["(without looking up)"]
    assert s.characters == ["LEO", "MAYA"]
    assert s.pages == 1 and scene.page_start == scene.page_end == 1 and 1 <= scene.eighths <= 8


# ------------------------------------------------------------------------------------------ Fountain syntax

SAMPLE = """Title: _**SAMPLE**_
Credit: Written by
Author: Someone
Contact:
    1 Main St.

# ACT ONE

= Setting up.

INT. HOUSE - DAY #1#

A room. [[a note]] Quiet.

/* EXT. CUT SCENE - NIGHT

BOB
Gone.
*/

BOB (V.O.) (CONT'D)
(softly)
*Hello* there.
  
Still me.

@McCLANE
Yippee.

3CPO
Not a cue.

ALICE
Left side.

CARL ^
Right side.

> FADE TO BLACK.

CUT TO:

.FLASHBACK

~Happy birthday to you

ext. garden -- night

>THE END<

===

I/E CAR - MOVING #7B#

ALICE
Go!
"""


def test_fountain_elements_and_ids():
    s = parse_bytes(SAMPLE.encode(), "sample.fountain")
    assert s.title_page["title"] == "SAMPLE" and s.title_page["contact"] == "1 Main St."
    assert [sc.label for sc in s.scenes] == ["1", "2", "3", "7B"]   # unnumbered: position in the script
    assert [sc.heading for sc in s.scenes] == ["INT. HOUSE - DAY", "FLASHBACK", "ext. garden -- night",
                                                "I/E CAR - MOVING"]
    assert s.scenes[2].time_of_day == "night" and s.scenes[3].int_ext == "INT/EXT"
    ids = [(ln.line_id, ln.character) for ln in s.lines]
    assert ids == [("1/1", "BOB"), ("1/2", "McCLANE"), ("1/3", "ALICE"), ("1/4", "CARL"), ("7B/1", "ALICE")]
    bob = s.lines[0]
    assert bob.extensions == ["V.O.", "CONT'D"] and bob.parentheticals == ["(softly)"]
    assert bob.text == "Hello there. Still me."           # emphasis removed, two-space line keeps the speech
    assert s.lines[2].dual and s.lines[3].dual and not s.lines[1].dual
    kinds = [e.kind for e in s.elements]
    assert kinds.count("transition") == 2 and "centered" in kinds and "lyrics" in kinds and "page_break" in kinds
    action = next(e for e in s.elements if e.kind == "action")
    assert action.text == "A room.  Quiet."                # the note is gone
    assert not any("CUT SCENE" in e.text for e in s.elements)  # the boneyard is gone
    assert any(e.kind == "action" and e.text.startswith("3CPO") for e in s.elements)
    assert s.elements[-1].page == 2                         # after the forced page break


def test_duplicate_scene_numbers_are_made_unique_with_a_warning():
    s = parse_fountain("INT. A - DAY #4#\n\nBOB\nHi.\n\nINT. B - DAY #4#\n\nBOB\nBye.\n")
    assert [ln.line_id for ln in s.lines] == ["4/1", "4~2/1"]
    assert any("used twice" in w for w in s.warnings)


# The element dumps shipped with wildwinter/fountain-tools; three files are left out on purpose:
# Tags (a non-standard #tag extension), Boneyards and Parenthetical (that parser's own quirks: text
# before a boneyard and a second parenthetical in a row are kept as action/dialogue there).
_DUMP_KINDS = {"HEADING": "heading", "CHARACTER": "character", "DIALOGUE": "dialogue",
               "PARENTHETICAL": "parenthetical", "TRANSITION": "transition"}


def _dump_cases():
    folder = SCRIPTS / "fixtures" / "fountain-tools"
    if not folder.exists():
        return []
    out = []
    for f in sorted(folder.glob("*.fountain")):
        if f.stem in ("Tags", "Boneyards", "Parenthetical"):
            continue
        for cand in (f.with_suffix(".txt"), f.with_name(f.stem + "-Merged.txt")):
            if cand.exists():
                out.append(pytest.param(f, cand, id=f.stem))
                break
    return out


@pytest.mark.parametrize("fountain, dump", _dump_cases())
def test_fountain_tools_element_dumps(fountain, dump):
    want = [_DUMP_KINDS[m.group(1)] for m in re.finditer(r"^(?:\[\[\d+\]\]|/\*\d+\*/)?([A-Z]+):", dump.read_text(), re.M)
            if m.group(1) in _DUMP_KINDS]
    s = parse_fountain(fountain.read_bytes(), fountain.name)
    got = [e.kind for e in s.elements if e.kind in _DUMP_KINDS.values()]
    assert got == want


# ------------------------------------------------------------------------------------------ every eval screenplay

_HEAD = re.compile(r"^(INT\.?\s*/\s*EXT|EXT\.?\s*/\s*INT|I\s*/\s*E|INT|EXT|EST)[.\s]", re.I)


def count_fountain(text: str) -> tuple[int, int, set[str]]:
    """Scenes, speeches and speaking characters, counted independently of the parser: paragraph
    blocks (separated by blank lines) whose first line is a heading or an upper-case cue."""
    text = text.replace("\r\n", "\n").lstrip("\ufeff").replace("\t", "    ")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"\[\[.*?\]\]", "", text, flags=re.S)
    blocks, cur = [], []
    for line in text.split("\n"):
        if not line.strip() and line != "  ":
            if cur:
                blocks.append(cur)
                cur = []
        else:
            cur.append(line.strip())
    if cur:
        blocks.append(cur)
    if blocks and re.match(r"^[A-Za-z][A-Za-z ]*:", blocks[0][0]):
        blocks = blocks[1:]
    scenes, speeches, chars = 0, 0, set()
    for b in blocks:
        first = b[0]
        if (first.startswith(".") and len(first) > 1 and first[1].isalnum()) or _HEAD.match(first):
            scenes += 1
            continue
        forced = first.startswith("@")
        cue = first[1:].strip() if forced else first
        base = cue[:-1].rstrip() if cue.endswith("^") else cue
        if "^" in base:
            continue
        name = re.sub(r"\([^)]*\)", "", base).strip()
        if len(b) >= 2 and name and (forced or (name[0].isalpha() and name == name.upper())) \
                and not (not forced and re.match(r"^[^a-z]*TO:$", first)):
            if any(ln and not (ln.startswith("(") and ln.endswith(")")) for ln in b[1:]):
                speeches += 1
                chars.add(re.sub(r"\s+", " ", name))
    return scenes, speeches, chars


def count_fdx(data: bytes) -> tuple[int, int, set[str]]:
    """The same from the XML itself: Scene Heading paragraphs, Character paragraphs followed by
    Dialogue, and the cue names without extensions."""
    from defusedxml import ElementTree as ET

    content = ET.fromstring(data).find("Content")
    paras = []
    for p in content:
        dd = p.find("DualDialogue")
        paras.extend(dd.findall("Paragraph") if dd is not None else [p])
    kinds = [(p.get("Type"), "".join(t.text or "" for t in p.findall("Text")).strip()) for p in paras]
    scenes = sum(1 for k, _ in kinds if k == "Scene Heading")
    speeches, chars = 0, set()
    for i, (k, text) in enumerate(kinds):
        if k != "Character" or not text:
            continue
        j = i + 1
        spoken = False
        while j < len(kinds) and kinds[j][0] in ("Dialogue", "Parenthetical"):
            spoken |= kinds[j][0] == "Dialogue" and bool(kinds[j][1])
            j += 1
        if spoken:
            speeches += 1
            chars.add(re.sub(r"\s+", " ", re.sub(r"\([^)]*\)", "", text).rstrip("^ ").strip()))
    return scenes, speeches, chars


def _all_screenplays():
    if not SCRIPTS.exists():
        return [pytest.param(None, marks=pytest.mark.needs(SCRIPTS))]
    files = sorted(p for p in SCRIPTS.rglob("*") if p.suffix in (".fountain", ".fdx")
                   or (p.suffix == ".txt" and p.parent.name == "plaintext"))
    return [pytest.param(p, id=str(p.relative_to(SCRIPTS))) for p in files]


@pytest.mark.parametrize("path", _all_screenplays())
def test_every_eval_screenplay_imports_with_the_counts_the_file_holds(path, tmp_path):
    from indexer.script.catalog import import_script
    from indexer.store import Index

    data = path.read_bytes()
    with Index.open_writer(tmp_path / "index") as idx:
        res = import_script(idx, path, match=False)
        stored = idx._db.execute("SELECT COUNT(*) FROM script_lines WHERE version_id=?", (res.version_id,)).fetchone()[0]
    s = res.script
    want = count_fdx(data) if path.suffix == ".fdx" else count_fountain(data.decode("utf-8-sig"))
    assert (len(s.scenes), len(s.lines), set(s.characters)) == want
    assert stored == len(s.lines)
    assert s.pages >= 1 and all(sc.eighths >= 1 for sc in s.scenes)
    assert len({ln.line_id for ln in s.lines}) == len(s.lines)
    if not s.lines:
        assert any("no dialogue" in w for w in s.warnings)


def test_fdx_and_fountain_twins_agree():
    folder = need(SCRIPTS / "fdx")
    pairs = [(f, f.with_suffix(".fountain")) for f in sorted(folder.glob("*.fdx"))]
    pairs += [(f, SCRIPTS / "fountain" / f.name.replace(".screenplain.fdx", ".fountain"))
              for f in sorted(folder.glob("*.screenplain.fdx"))]
    checked = 0
    for fdx, fountain in pairs:
        if not fountain.exists():
            continue
        a, b = load_file(fdx), load_file(fountain)
        assert [(ln.character, ln.text) for ln in a.lines] == [(ln.character, ln.text) for ln in b.lines], fdx.name
        checked += 1
    assert checked >= 8


# ------------------------------------------------------------------------------------------ pages

def test_pages_stated_by_final_draft_are_used_and_our_layout_agrees():
    files = [f for f in sorted(need(SCRIPTS / "fdx").glob("*.fdx")) if b"SceneProperties" in f.read_bytes()]
    assert files
    total = exact = 0
    for f in files:
        ours = paginate(parse_fdx(f.read_bytes(), f.name), use_stored=False)
        stated = load_file(f)
        assert stated.pages_source == "stored"
        for a, b in zip(ours.scenes, stated.scenes):
            assert b.page_start == b.stored_page and b.eighths == b.stored_eighths
            assert a.page_start == b.stored_page, f.name           # same page breaks
            assert abs(a.eighths - b.stored_eighths) <= 1, f.name   # lengths within 1/8 page
            total += 1
            exact += a.eighths == b.stored_eighths
    assert exact / total >= 0.75


def test_big_fish_paginates_near_its_printed_length():
    s = load_file(need(SCRIPTS / "fountain" / "Big-Fish.fountain"))
    assert 110 <= s.pages <= 132          # the printed script is about 120 pages (SOURCE.md)
    starts = [sc.page_start for sc in s.scenes]
    assert starts == sorted(starts) and starts[0] == 2 and starts[-1] <= s.pages   # a forced break after the prologue


def test_long_speech_breaks_at_a_sentence_with_more_and_contd():
    filler = "\n\n".join(f"Line {i} of action." for i in range(24))          # 24 one-line paragraphs = 47 lines
    speech = " ".join(f"Sentence number {i} is here." for i in range(12))   # ~10 lines of dialogue
    s = paginate(parse_fountain(f"INT. ROOM - DAY\n\n{filler}\n\nBOB\n{speech}\n"))
    bob = s.lines[0]
    assert bob.page == 1
    assert bob.layout_lines > len(speech) // 36 + 2     # (MORE) and BOB (CONT'D) were added
    assert s.pages == 2 and s.scenes[0].page_end == 2


def test_heading_is_never_last_on_a_page():
    filler = "\n\n".join(f"Line {i} of action." for i in range(27))          # ends on line 53
    s = paginate(parse_fountain(f"INT. ROOM - DAY\n\n{filler}\n\nINT. HALL - NIGHT\n\nBOB\nHi.\n"))
    assert s.scenes[1].page_start == 2


def test_eighths_helpers():
    assert [parse_length(x) for x in ("3/8", "1 2/8", "1", "", "x")] == [3, 10, 8, None, None]
    assert [eighths_label(x) for x in (3, 8, 11)] == ["3/8", "1", "1 3/8"]


# ------------------------------------------------------------------------------------------ bad input

def test_unclosed_boneyard_is_one_clear_error():
    with pytest.raises(ScriptError, match=r"bad\.fountain.*line 3.*never closed"):
        parse_bytes(b"INT. A - DAY\n\n/* oops\n\nBOB\nHi.\n", "bad.fountain")


def test_binary_file_is_refused():
    with pytest.raises(ScriptError, match="not a text file"):
        parse_bytes(b"\x00\x01\x02PK\x03\x04" * 10, "movie.fountain")


def test_unknown_format_is_refused():
    with pytest.raises(ScriptError, match=r"script\.pdf is not a screenplay format.*\.fdx"):
        parse_bytes(b"%PDF-1.4 whatever", "script.pdf")


def test_script_without_dialogue_imports_with_a_warning():
    s = parse_bytes(b"INT. EMPTY ROOM - DAY\n\nNothing happens.\n", "quiet.fountain")
    assert s.lines == [] and any("no dialogue" in w for w in s.warnings)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<FinalDraft><Content><Paragraph Type="Action"><Text>&lol3;</Text></Paragraph></Content></FinalDraft>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<FinalDraft><Content><Paragraph Type="Action"><Text>&xxe;</Text></Paragraph></Content></FinalDraft>"""


@pytest.mark.parametrize("data, message", [
    (BILLION_LAUGHS, "declares XML entities"),
    (EXTERNAL, "declares XML entities|refuses"),
    (b"<FinalDraft><Content><Paragraph Type=\"Action\"><Text>unclosed", "not valid XML"),
    (b"<?xml version=\"1.0\"?><html><body/></html>", "not a Final Draft document"),
    (b"<?xml version=\"1.0\"?><FinalDraft Version=\"1\"></FinalDraft>", "without a <Content>"),
])
def test_hostile_or_invalid_fdx_is_one_clear_error(data, message):
    with pytest.raises(ScriptError, match=message):
        parse_bytes(data, "script.fdx")


def test_huge_fdx_is_refused_before_parsing(monkeypatch):
    import indexer.script.fdx as fdx

    monkeypatch.setattr(fdx, "MAX_BYTES", 1000)
    with pytest.raises(ScriptError, match="too big"):
        parse_bytes(b"<FinalDraft>" + b" " * 2000 + b"</FinalDraft>", "huge.fdx")


def test_fdx_dual_dialogue_and_scene_numbers():
    data = b"""<?xml version="1.0"?><FinalDraft DocumentType="Script" Version="5"><Content>
    <Paragraph Number="12A" Type="Scene Heading"><SceneProperties Length="1 2/8" Page="3"/><Text>INT. LAB - NIGHT</Text></Paragraph>
    <Paragraph Type="Character"><Text>MAYA (O.S.)</Text></Paragraph>
    <Paragraph Type="Dialogue"><Text>First </Text><Text>part.</Text></Paragraph>
    <Paragraph Type="Parenthetical"><Text>(beat)</Text></Paragraph>
    <Paragraph Type="Dialogue"><Text>Second part.</Text></Paragraph>
    <Paragraph><DualDialogue>
      <Paragraph Type="Character"><Text>LEO</Text></Paragraph><Paragraph Type="Dialogue"><Text>Left.</Text></Paragraph>
      <Paragraph Type="Character"><Text>MAYA</Text></Paragraph><Paragraph Type="Dialogue"><Text>Right.</Text></Paragraph>
    </DualDialogue></Paragraph>
    <Paragraph Type="Action"><ScriptNote><Paragraph><Text>a note</Text></Paragraph></ScriptNote><Text>She works.</Text></Paragraph>
    </Content></FinalDraft>"""
    s = parse_bytes(data, "lab.fdx")
    assert [(ln.line_id, ln.character, ln.text, ln.dual) for ln in s.lines] == [
        ("12A/1", "MAYA", "First part. Second part.", False), ("12A/2", "LEO", "Left.", True),
        ("12A/3", "MAYA", "Right.", True)]
    assert s.lines[0].extensions == ["O.S."] and s.lines[0].parentheticals == ["(beat)"]
    assert (s.scenes[0].page_start, s.scenes[0].eighths) == (3, 10)
    assert [e.text for e in s.elements if e.kind == "action"] == ["She works."]
