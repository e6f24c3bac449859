"""Screenplay import scales linearly with the file's size (issue 20: 2 MB took 4.8 s, 8 MB 63 s).

Each construct that was quadratic is parsed and paginated at n and 4n copies in the same test; the CPU
time must grow about 4x (linear), not 16x (quadratic). The bound (8x) is generous so a busy machine
cannot fail it, and no absolute time is asserted.
"""

from __future__ import annotations

import time

import pytest

from indexer.script import parse_bytes

SIZES = {"long action": 6000, "long speech": 6000, "title page": 15000}   # larger where a line is cheap
CONSTRUCTS = {
    # one action paragraph many pages long (text joined per line; page splits rescanned the whole block)
    "long action": lambda n: "INT. ROOM - DAY\n\n" + "He walks across the room. He sits down.\n" * n,
    # one speech many pages long (the same for dialogue, with (MORE) / (CONT'D))
    "long speech": lambda n: "INT. ROOM - DAY\n\nBOB\n" + "I keep talking. And talking.\n" * n,
    # boneyard and notes: every note was checked against every boneyard span
    "notes": lambda n: "INT. ROOM - DAY\n\n" + "/* bone */ Action here [[a note]].\n\n" * n,
    # a title page key continued over many lines
    "title page": lambda n: "Title: A\nNotes:\n" + "    more notes\n" * n + "\nINT. ROOM - DAY\n\nBOB\nHi.\n",
}


def _cpu_seconds(text: str) -> float:
    data = text.encode()
    best = float("inf")
    for _ in range(2):                         # the faster of two runs: less noise from a busy machine
        t0 = time.process_time()
        parse_bytes(data, "scale.fountain")
        best = min(best, time.process_time() - t0)
    return best


@pytest.mark.parametrize("construct", list(CONSTRUCTS))
def test_import_time_grows_linearly(construct):
    build = CONSTRUCTS[construct]
    n = SIZES.get(construct, 3000)
    small, large = _cpu_seconds(build(n)), _cpu_seconds(build(4 * n))
    ratio = large / max(small, 1e-3)
    assert ratio < 8, f"{construct}: 4x the size took {ratio:.1f}x the time ({small:.2f} s -> {large:.2f} s)"


def test_a_long_screenplay_keeps_its_structure():
    """The linear joins give the same text as before: lines of a block joined by newlines, in order."""
    s = parse_bytes(CONSTRUCTS["long action"](200).encode(), "a.fountain")
    (action,) = [e for e in s.elements if e.kind == "action"]
    assert action.text.split("\n") == ["He walks across the room. He sits down."] * 200
    s = parse_bytes(CONSTRUCTS["long speech"](200).encode(), "s.fountain")
    (line,) = s.lines
    assert line.text == " ".join(["I keep talking. And talking."] * 200)
    assert s.pages is not None and s.pages >= 4          # a speech of 200 lines runs over pages
    s = parse_bytes(CONSTRUCTS["notes"](50).encode(), "n.fountain")
    assert all("note" not in e.text and "bone" not in e.text for e in s.elements)
    assert sum(e.text.count("Action here") for e in s.elements) == 50
    s = parse_bytes(CONSTRUCTS["title page"](5).encode(), "t.fountain")
    assert s.title_page["notes"] == "\n".join(["more notes"] * 5)
