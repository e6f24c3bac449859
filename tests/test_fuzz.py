"""Property-based fuzzing (Hypothesis) of everything that parses what a user types or hands us: the Fountain
and Final Draft parsers, the timecode and rate parsers, and line queries. The property is the project's
promise about bad input: it is read, or refused with our one-sentence :class:`DailiesError`; no other
exception escapes.

Each property runs twice: a few seconds with a fixed seed in the default run (the same examples every
time, so it cannot flake), and many more random examples in the slow run.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.errors import DailiesError
from indexer.script import parse_bytes
from indexer.script.model import Script
from indexer.timecode import COMMON_RATES, frames_to_tc, parse_rate, tc_to_frames

FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=3000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _one_sentence(exc: DailiesError) -> None:
    msg = str(exc)
    assert msg and "\n" not in msg and "Traceback" not in msg, repr(msg)


def both(prop, *strategies, **named):
    """Two tests from one property: the fast, seeded one and a slow, random one with more examples."""
    return FAST(given(*strategies, **named)(prop)), pytest.mark.slow(SLOW(given(*strategies, **named)(prop)))


# ------------------------------------------------------------------------------------------ Fountain

# Lines built from the pieces Fountain gives meaning to, so the examples reach the parser's branches
# (headings, cues, dual dialogue, notes, boneyard, emphasis, page breaks, title page keys ...).
_PIECES = ["INT. ", "EXT. ", "INT./EXT. ", "I/E ", "EST ", ".", "@", "!", "~", ">", "<", "=", "===", "#", "#1A#",
           "[[", "]]", "/*", "*/", "*", "**", "_", "\\*", "^", "(", ")", "(V.O.)", "(CONT'D)", "TO:", "Title:",
           "Author: ", " - DAY", "BOB", "MAYA", "hello", "Hi.", "  ", "\t", "\r", "\u00e9", "\u2019", "\ufeff", "\x00",
           "\u2028", "1", "\u00b2", " "]
_LINE = st.lists(st.sampled_from(_PIECES) | st.text(max_size=6), max_size=8).map("".join)
_FOUNTAIN = st.lists(_LINE, max_size=40).map("\n".join)


def _fountain_text(text: str) -> None:
    for data in (text.encode("utf-8", "surrogatepass"), text.encode("utf-8", "replace")):
        try:
            script = parse_bytes(data, "fuzz.fountain")
        except DailiesError as exc:
            _one_sentence(exc)
            continue
        assert isinstance(script, Script)
        assert [ln.line_id for ln in script.lines] == list(dict.fromkeys(ln.line_id for ln in script.lines))
        script.to_json()


def _fountain_bytes(data: bytes) -> None:
    try:
        parse_bytes(data, "fuzz.fountain")
    except DailiesError as exc:
        _one_sentence(exc)


test_fountain_text, test_fountain_text_slow = both(_fountain_text, _FOUNTAIN)
test_fountain_bytes, test_fountain_bytes_slow = both(_fountain_bytes, st.binary(max_size=2000))


# ------------------------------------------------------------------------------------------ Final Draft

_ATTR = st.sampled_from(["", "1", "2", "1 3/8", "3/8", "\u00b2", "\u0663", "-1", "x", " 4 ", "1/8 1/8",
                         "99999999999999999999"]) | st.text(max_size=5)
_TYPES = st.sampled_from(["Scene Heading", "Action", "General", "Character", "Parenthetical", "Dialogue",
                          "Transition", "Shot", "Lyrics", "New Act", "Cast List", "Weird", ""])
_XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


@st.composite
def _fdx(draw) -> bytes:
    paras = []
    for _ in range(draw(st.integers(0, 12))):
        attrs = f' Type="{_esc(draw(_TYPES))}"'
        if draw(st.booleans()):
            attrs += f' Number="{_esc(draw(_ATTR))}"'
        if draw(st.booleans()):
            attrs += f' StartsNewPage="{draw(st.sampled_from(["Yes", "No", "yes", ""]))}"'
        if draw(st.booleans()):
            attrs += ' Alignment="Center"'
        inner = "".join(f"<Text>{_esc(draw(_XML_TEXT))}</Text>" for _ in range(draw(st.integers(0, 3))))
        if draw(st.booleans()):
            inner += f'<SceneProperties Page="{_esc(draw(_ATTR))}" Length="{_esc(draw(_ATTR))}"/>'
        para = f"<Paragraph{attrs}>{inner}</Paragraph>"
        if draw(st.integers(0, 5)) == 0:
            para = f"<DualDialogue>{para}{para}</DualDialogue>"
        paras.append(para)
    title = ""
    if draw(st.booleans()):
        title = f"<TitlePage><Content><Paragraph><Text>{_esc(draw(_XML_TEXT))}</Text></Paragraph></Content></TitlePage>"
    doc = (f'<?xml version="1.0"?><FinalDraft DocumentType="Script"><Content>{"".join(paras)}</Content>'
           f'{title}</FinalDraft>')
    data = doc.encode()
    if draw(st.integers(0, 4)) == 0:                      # and damaged: a cut, or a byte changed
        i = draw(st.integers(0, len(data)))
        data = data[:i] + draw(st.binary(max_size=3)) + data[i + draw(st.integers(0, 3)):]
    return data


def _fdx_property(data: bytes) -> None:
    try:
        script = parse_bytes(data, "fuzz.fdx")
    except DailiesError as exc:
        _one_sentence(exc)
        return
    assert isinstance(script, Script)
    script.to_json()


def test_a_superscript_page_number_is_not_a_page():
    """Found by the fuzzer: ``Page="²"`` passed str.isdigit() and int() then raised ValueError."""
    doc = ('<?xml version="1.0"?><FinalDraft DocumentType="Script"><Content><Paragraph Type="Scene Heading">'
           '<Text>INT. ROOM - DAY</Text><SceneProperties Page="\u00b2" Length="1"/></Paragraph>'
           '<Paragraph Type="Character"><Text>BOB</Text></Paragraph><Paragraph Type="Dialogue"><Text>Hi.</Text>'
           '</Paragraph></Content></FinalDraft>')
    script = parse_bytes(doc.encode(), "superscript.fdx")
    assert script.scenes[0].stored_page is None and script.pages_source == "paginated"
    assert [ln.text for ln in script.lines] == ["Hi."]


test_fdx, test_fdx_slow = both(_fdx_property, _fdx())
test_fdx_bytes, test_fdx_bytes_slow = both(_fdx_property, st.binary(max_size=500).map(lambda b: b"<?xml" + b))


# ------------------------------------------------------------------------------------------ timecode

_RATES = st.sampled_from(COMMON_RATES) | st.fractions(min_value=Fraction(1, 1001), max_value=1000)
_TC_TEXT = st.from_regex(r"\A\s?\d{1,3}[:;.,]\d{1,3}[:;.,]\d{1,3}[:;.,]\d{1,4}\s?\Z") | st.text(max_size=16)
_RATE_TEXT = st.sampled_from(["24000/1001", "23.976", "29.97", "0", "-25", "1/0", "nan", "inf", "1e400", "25/",
                              "\u0662\u0665", "25 ", "1_000"]) | st.text(max_size=12)


def _timecode(tc: str, rate: Fraction) -> None:
    try:
        frames = tc_to_frames(tc, rate)
    except DailiesError as exc:
        _one_sentence(exc)
        return
    assert frames >= 0
    assert tc_to_frames(frames_to_tc(frames, rate), rate) == frames


def _rate(text: str) -> None:
    try:
        rate = parse_rate(text)
    except DailiesError as exc:
        _one_sentence(exc)
        return
    assert rate > 0


def _frames_round_trip(frames: int, rate: Fraction) -> None:
    try:
        tc = frames_to_tc(frames, rate)
    except DailiesError as exc:
        _one_sentence(exc)
        return
    assert tc_to_frames(tc, rate) == frames


test_timecode, test_timecode_slow = both(_timecode, _TC_TEXT, _RATES)
test_rate, test_rate_slow = both(_rate, _RATE_TEXT)
test_frames_round_trip, test_frames_round_trip_slow = both(
    _frames_round_trip, st.integers(0, 23 * 3600 * 24), st.sampled_from(COMMON_RATES))   # (TC wraps at 24 h)


def test_a_newline_in_a_rate_or_timecode_is_shown_escaped_on_one_line():
    """Found by the fuzzer: the message quoted the raw text, so a pasted newline split it over two lines."""
    for call in (lambda: parse_rate("25\nfps"), lambda: tc_to_frames("01:00\n:00:00", Fraction(25))):
        with pytest.raises(DailiesError) as err:
            call()
        assert "\n" not in str(err.value) and "\\n" in str(err.value)


# ------------------------------------------------------------------------------------------ line queries

_WORDS = ["we", "have", "to", "follow", "the", "data", "comet", "won't", "Maya's", "'cause", "3", "1999", "12A",
          "NEAR", "OR", "AND", "NOT", "*", '"', "'", "(", ")", ":", "^", "-", "norm:", "phon:", "{", "}", "\u00e9",
          "\u2019", "\x00", "%", "_", "\\"]
_QUERY = st.lists(st.sampled_from(_WORDS) | st.text(max_size=8), max_size=12).map(" ".join)


@pytest.fixture(scope="module")
def reader(shoot_index):
    from indexer.store import Index

    with Index.open(shoot_index) as idx:
        yield idx


def _query(idx, text: str, scene: str | None, take: str | None, speaker: str | None) -> None:
    from indexer.search import LineQuery, search_lines

    try:
        hits = search_lines(idx, LineQuery(text=text, scene=scene, take=take, speaker=speaker, limit=5))
    except DailiesError as exc:
        _one_sentence(exc)
        return
    assert all(0 <= h.score and h.start <= h.end for h in hits)


def test_an_unknown_speaker_with_a_newline_is_named_on_one_line(reader):
    """Found by the fuzzer: ``--speaker`` text was echoed raw, so a newline split the message."""
    from indexer.search import LineQuery, search_lines

    with pytest.raises(DailiesError) as err:
        search_lines(reader, LineQuery(text="we", speaker="NOBODY\nELSE"))
    _one_sentence(err.value)
    assert "NOBODY\\nELSE" in str(err.value)


_FILTER = st.none() | st.sampled_from(["12A", "3", "T2", "12A_T2_CamA", "", "%", "_", "'", "MAYA", "V001"]) | \
    st.text(max_size=5)


def _query_property(reader, text, scene, take, speaker):
    _query(reader, text, scene, take, speaker)


test_line_query, test_line_query_slow = both(_query_property, text=_QUERY, scene=_FILTER, take=_FILTER,
                                             speaker=_FILTER)


def test_a_hit_on_a_lines_last_word_never_ends_before_it_starts(reader):
    """Found by the fuzzer ("to (" on the fixture shoot): a hit on a line's lone last word took the line's
    refined end, which falls before Whisper's start of that word ("Leo.", 10.70 -> 10.57). Every line's
    last word, searched alone, gives hits that start before they end."""
    from indexer.search import LineQuery, search_lines

    words = {ln.words[-1].text for take in reader.takes(status="indexed")
             for ln in reader.lines_of_take(take.take_id) if ln.words}
    assert "Leo." in words
    for word in sorted(words):
        if any(c.isalnum() for c in word):
            for h in search_lines(reader, LineQuery(text=word, limit=5)):
                assert h.start < h.end, (word, h.name, h.start, h.end)
