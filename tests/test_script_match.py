"""Matching a take's words to its scene's dialogue (pure function: no index, no models).

The words here are the fixture shoot's ground truth (fixtures/manifest.json: what was said, when),
laid out word by word inside each delivery's true span, plus recogniser-like errors and chatter.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.script.match import SceneLine, TakeWord, match_scene, scene_candidates
from indexer.textnorm import tokens

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((ROOT / "fixtures" / "manifest.json").read_text())
LINES = [SceneLine(x["id"], x["character"], x["text"]) for x in MANIFEST["script_lines"]]


def words_of(spans: list[tuple[float, float, str]]) -> list[TakeWord]:
    """Each (start, end, text) is one utterance; its words share the span evenly."""
    out: list[TakeWord] = []
    for u, (a, b, text) in enumerate(spans):
        ws = text.split()
        step = (b - a) / len(ws)
        for i, w in enumerate(ws):
            out.append(TakeWord(a + i * step, a + (i + 1) * step, w, utterance=u, utt_start=a, utt_end=b))
    return out


def take_spans(name: str) -> tuple[dict, list[tuple[float, float, str]]]:
    take = next(t for t in MANIFEST["takes"] if t["name"] == name)
    return take, [(d["start"], d["end"], d["text"]) for d in take["deliveries"]]


@pytest.mark.parametrize("name", [t["name"] for t in MANIFEST["takes"] if t["deliveries"]])
def test_every_manifest_delivery_is_matched_to_its_line(name):
    take, spans = take_spans(name)
    m = match_scene(LINES, words_of(spans))
    expected = [f"{MANIFEST['scene']}/{d['script_line']}" for d in take["deliveries"]]
    assert [d.line_id for d in m.deliveries] == expected
    for d, truth in zip(m.deliveries, take["deliveries"]):
        assert d.start == pytest.approx(truth["start"], abs=1e-6)
        assert d.end == pytest.approx(truth["end"], abs=1e-6)
        if truth["kind"] == "false_start":
            assert d.status == "false_start"
        elif truth["kind"] in ("as_written", "restart", "adlib"):
            assert d.status == "delivered"
    skipped = {f"{MANIFEST['scene']}/{n}" for n in take["skipped_lines"]}
    said = {d.line_id for d in m.deliveries}
    assert skipped.isdisjoint(said)
    assert set(m.missing_lines(LINES)) >= skipped


def test_adlib_is_reported_as_added_words():
    take, spans = take_spans("12A_T2_CamA")
    m = match_scene(LINES, words_of(spans))
    first = m.deliveries[0]
    assert first.line_id == "12A/1"
    assert [t for a in first.added for t in tokens(a)] == ["seriously"]
    assert "{+Seriously?+}" in first.diff
    assert first.missing == []


def test_skipped_line_is_missing_and_paraphrase_is_matched_with_its_changes():
    take, spans = take_spans("12A_T2_CamA")
    m = match_scene(LINES, words_of(spans))
    assert m.missing_lines(LINES) == ["12A/3"]
    para = next(d for d in m.deliveries if d.line_id == "12A/6")
    assert para.status == "delivered"
    assert "[-Then-]" in para.diff and "{+decides to+}" in para.diff
    assert 0.5 < para.score < 1.0


def test_restart_counts_twice_and_false_start_is_its_own_delivery():
    take, spans = take_spans("12A_T3_CamB")
    m = match_scene(LINES, words_of(spans))
    ones = [d for d in m.deliveries if d.line_id == "12A/1"]
    assert [d.attempt for d in ones] == [1, 2] and all(d.status == "delivered" for d in ones)
    fives = [d for d in m.deliveries if d.line_id == "12A/5"]
    assert [d.status for d in fives] == ["false_start", "delivered"]
    assert fives[0].delivered == "The director called"
    assert fives[0].missing and "Friday" in fives[0].missing[0]


def test_out_of_order_lines_wild_track():
    take, spans = take_spans("12A_WT1")
    m = match_scene(LINES, words_of(spans))
    assert [d.line_id for d in m.deliveries] == ["12A/8", "12A/7"]


def test_chatter_between_lines_is_not_a_delivery():
    spans = [(0.0, 2.0, "Scene twelve A, take four. Mark."), (2.5, 3.0, "Action!"),
             (3.5, 6.0, "You're still here? It's almost three in the morning."),
             (7.0, 9.0, "The comet won't wait for office hours, Leo."), (10.0, 11.0, "Cut! Thank you, everyone."),
             (12.0, 13.0, "Can we go again?")]
    m = match_scene(LINES, words_of(spans))
    assert [d.line_id for d in m.deliveries] == ["12A/1", "12A/2"]
    assert all(not d.added for d in m.deliveries)


def test_recogniser_errors_still_match_the_right_line():
    spans = [(0.0, 3.0, "You're still here. It's all those free in the morning."),
             (4.0, 7.0, "I'd rather you coffee, black, no sugar."),
             (8.0, 11.0, "We have to follow the data out of the calendar."),
             (12.0, 15.0, "Look, now it is right where I said it would be.")]
    m = match_scene(LINES, words_of(spans))
    assert [d.line_id for d in m.deliveries] == ["12A/1", "12A/3", "12A/7", "12A/8"]
    assert "three-]{+" in m.deliveries[0].diff and "free+}" in m.deliveries[0].diff
    assert "[-not-]{+out of+}" in m.deliveries[2].diff


def test_contraction_that_changes_meaning_is_shown():
    """"can't" for the line's "can" is a change, in the diff and in the coverage: the line was not delivered
    whole as written (a coverage of 1.0 beside a diff marking a change was a wrong answer). Said as two words,
    "can not", the line's "can" was said as written and the diff shows only the added "not"."""
    m = match_scene(LINES, words_of([(0.0, 3.0, "Then she can't have it when the sky cooperates.")]))
    (d,) = m.deliveries
    assert d.line_id == "12A/6" and "[-can-]{+can't+}" in d.diff
    assert d.status == "delivered" and 0.85 < d.coverage < 0.95
    (whole,) = match_scene(LINES, words_of([(0.0, 3.0, "Then she can have it when the sky cooperates.")])).deliveries
    assert whole.coverage == 1.0 and whole.score > d.score
    (two,) = match_scene(LINES, words_of([(0.0, 3.0, "Then she can not have it when the sky cooperates.")])).deliveries
    assert "can {+not+} have" in two.diff and two.coverage == 1.0


def test_two_lines_in_one_utterance_are_split_at_the_right_word():
    words = words_of([(1.0, 9.0, "Look. There it is. Right where I said it would be. We have to follow the data, "
                                 "not the calendar.")])
    m = match_scene(LINES, words)
    assert [d.line_id for d in m.deliveries] == ["12A/8", "12A/7"]
    assert m.deliveries[0].delivered.endswith("be.") and m.deliveries[1].delivered.startswith("We")
    assert m.deliveries[0].end <= m.deliveries[1].start


def test_off_screen_line_is_a_line_like_any_other():
    lines = [SceneLine("5/1", "NARRATOR", "It was the winter the river froze."),
             SceneLine("5/2", "ANNA", "Papa, look, the boats are stuck!")]
    m = match_scene(lines, words_of([(0.0, 3.0, "It was the winter the river froze."),
                                     (4.0, 6.0, "Papa look the boats are stuck")]))
    assert [d.line_id for d in m.deliveries] == ["5/1", "5/2"]


def test_nothing_said_nothing_matched():
    assert match_scene(LINES, []).deliveries == []
    assert match_scene([], words_of([(0.0, 1.0, "hello there")])).deliveries == []
    m = match_scene(LINES, words_of([(0.0, 2.0, "Completely unrelated words about lunch orders.")]))
    assert m.deliveries == []


def test_scene_candidates_rank_the_scene_that_shares_rare_words():
    scenes = {"12A": LINES, "3": [SceneLine("3/1", "HANK", "Cherry pie and a map of the county, please.")]}
    words = words_of([(0.0, 2.0, "I brought you coffee. Black, no sugar.")])
    assert scene_candidates(scenes, words)[0] == "12A"
    words = words_of([(0.0, 2.0, "cherry pie and a county map")])
    assert scene_candidates(scenes, words)[0] == "3"
