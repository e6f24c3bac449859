"""Script matching never claims deliveries that did not happen (issue 20).

A screenplay unrelated to the footage (charade-1963-draft, Brick-and-Steel from ../shared/eval) is
matched against real conversations: the reference transcripts of the pyannote sample and of the AMI
meeting ES2011a, and the recognised words of the fixture shoot. Before the fix, takes were assigned to
scenes and lines marked delivered or partial on one shared word ("Me?", "What?", "Yes, but --"); now
not one delivery may be reported. The same matcher still finds every speech of the sample's own
script (built from sample.stm as scripts/eval_script_match.py builds it).
"""

from __future__ import annotations

import gzip
import json
import sys

import pytest

from conftest import EVAL, ROOT, need
from indexer.script import load_file
from indexer.script.catalog import _ScriptCache, match_take, take_words
from indexer.records import Take
from indexer.script.match import TakeWord
from indexer.store import Index
from indexer.textnorm import split_words

UNRELATED = ("charade-1963-draft.fountain", "Brick-and-Steel.fountain")


def _words(turns: list[tuple[float, float, str]]) -> list[TakeWord]:
    """A reference transcript as a take's words (each turn one utterance, its words spread over it)."""
    out = []
    for u, (a, b, text) in enumerate(turns):
        ws = split_words(text)
        for i, w in enumerate(ws):
            out.append(TakeWord(a + (b - a) * i / len(ws), a + (b - a) * (i + 1) / len(ws), w, utterance=u,
                                utt_start=a, utt_end=b))
    return out


def _stm() -> list[tuple[float, float, str]]:
    rows = [ln.split(maxsplit=5) for ln in
            need(EVAL / "diarization" / "pyannote_sample" / "sample.stm").read_text().splitlines()]
    return [(float(p[3]), float(p[4]), p[5]) for p in rows if len(p) == 6]


def _ami() -> list[tuple[float, float, str]]:
    path = need(EVAL / "diarization" / "lhotse_ami_ES2011a" / "ES2011a_sups.jsonl.gz")
    rows = sorted((json.loads(ln) for ln in gzip.open(path, "rt")), key=lambda r: r["start"])
    return [(r["start"], r["start"] + r["duration"], r["text"].lower()) for r in rows]


def _take(name: str) -> Take:
    return Take.from_columns({"take_id": name, "name": name, "scene": None, "take": "1", "camera": None,
                              "path": name, "rate": "25", "start_tc": "00:00:00:00"})


@pytest.fixture(scope="module")
def unrelated():
    return {name: (s := load_file(need(EVAL / "script" / "fountain" / name)), _ScriptCache(s)) for name in UNRELATED}


@pytest.mark.parametrize("conversation", ["sample", "ami"])
def test_no_delivery_of_an_unrelated_screenplay_in_a_real_conversation(unrelated, conversation):
    words = _words(_stm() if conversation == "sample" else _ami())
    for name, (script, cache) in unrelated.items():
        tm = match_take(_take(conversation), words, script, cache=cache)
        assert tm.scene is None and not tm.deliveries, \
            (name, tm.scene, [(d.line_id, d.status, d.delivered) for d in tm.deliveries])


def test_no_delivery_of_an_unrelated_screenplay_in_the_shoot(unrelated, shoot_index):
    with Index.open(shoot_index) as idx:
        for row in idx.takes(status="indexed"):
            words = take_words(idx, row["take_id"])
            for name, (script, cache) in unrelated.items():
                tm = match_take(Take.from_columns(dict(row, scene=None)), words, script, cache=cache)
                assert not tm.deliveries, (row["name"], name, [(d.line_id, d.delivered) for d in tm.deliveries])


def test_the_samples_own_script_is_still_matched_line_by_line(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import eval_script_match as esm
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    refs = esm.speeches(esm.read_stm(need(EVAL / "diarization" / "pyannote_sample" / "sample.stm")))
    path = tmp_path / "long_distance.fountain"
    path.write_text(esm.fountain(refs))
    script = load_file(path)
    tm = match_take(_take("phone_call"), _words(_stm()), script)
    assert tm.scene == "2" and tm.scene_source == "dialogue"
    lines = [ln.line_id for ln in script.lines if ln.scene_number == "2"]
    for ln, ref in zip(lines, refs):
        assert any(d.line_id == ln and min(d.end, ref["end"]) > max(d.start, ref["start"]) for d in tm.deliveries), ln
    assert {d.line_id for d in tm.deliveries} <= set(lines)
