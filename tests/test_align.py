"""Words -> lines: grouping by pauses and sentence ends; edges refined on the sound."""

from fractions import Fraction

import numpy as np

from indexer.align import LineRules, assign_shots, group_words, refine_edges
from indexer.records import Shot, Word


def w(start, end, text):
    return Word(start, end, text, 0.9)


def test_pauses_and_sentence_ends_split_lines():
    words = [w(0.0, 0.3, "You're"), w(0.35, 0.6, "still"), w(0.65, 1.0, "here?"),
             w(1.45, 1.7, "It's"), w(1.75, 2.2, "late."),          # sentence end + 0.45 s pause: split
             w(2.3, 2.6, "Go"), w(2.62, 2.9, "home,"),           # sentence end + 0.1 s: same line
             w(4.0, 4.3, "Leo.")]                                # 1.1 s pause: split
    lines = group_words(words)
    assert [ln.text for ln in lines] == ["You're still here?", "It's late. Go home,", "Leo."]
    assert [ln.index for ln in lines] == [0, 1, 2]
    assert lines[1].start == 1.45 and lines[1].end == 2.9


def test_long_utterances_split_at_their_longest_pause():
    words = [w(i * 0.5, i * 0.5 + 0.4, f"w{i}") for i in range(40)]   # 20 s without a pause
    words[20] = w(10.0 + 0.3, 10.4, "w20")                            # longest gap before w20
    lines = group_words(words, LineRules(max_duration=15.0))
    assert len(lines) == 2
    assert lines[1].words[0].text == "w20"


def _bursts(spans, seconds=6.0, sr=16000):
    rng = np.random.default_rng(1)
    audio = rng.normal(0, 10 ** (-60 / 20), int(seconds * sr)).astype(np.float32)
    t = np.arange(audio.size) / sr
    for a, b in spans:
        m = (t >= a) & (t < b)
        audio[m] += 0.2 * np.sin(2 * np.pi * 220 * t[m])
    return audio


def test_edges_move_to_the_speech_onset_and_offset():
    audio = _bursts([(1.00, 2.50), (3.20, 4.00)])
    # recogniser edges off by 50-150 ms either way
    lines = group_words([w(0.88, 1.5, "one"), w(1.6, 2.62, "two."), w(3.33, 3.9, "three.")])
    refined = refine_edges(lines, audio)
    assert abs(refined[0].start - 1.00) < 0.015
    assert abs(refined[0].end - 2.50) < 0.03
    assert abs(refined[1].start - 3.20) < 0.015
    assert abs(refined[1].end - 4.00) < 0.03
    assert refined[0].words[0].start == refined[0].start


def test_edges_stay_when_the_sound_gives_no_clear_edge():
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 0.1, 16000 * 4).astype(np.float32)        # loud noise, no speech structure
    lines = group_words([w(1.0, 2.0, "hello.")])
    assert refine_edges(lines, noise)[0].start == 1.0


def test_lines_know_the_shots_they_span():
    rate = Fraction(24000, 1001)
    shots = [Shot(0, 0, 71), Shot(1, 72, 150)]
    lines = assign_shots(group_words([w(2.5, 3.5, "across"), w(5.0, 5.5, "after.")]), shots, rate)
    assert lines[0].shots == [0, 1]       # 2.5 s = frame 59, 3.5 s = frame 83
    assert lines[1].shots == [1]


def test_whisper_pieces_of_a_hyphenated_word_are_one_word():
    """Whisper gives "Mm-hmm" as " Mm" + "-hmm" (no space before the second piece); the transcript showed
    "Mm -hmm" and "jerk -tongue" (issue 20). Pieces with their own leading space stay words."""
    from indexer.speech import join_pieces

    words = join_pieces([(" Mm", 1.0, 1.2, 0.9), ("-hmm", 1.2, 1.5, 0.8), (" a", 1.6, 1.7, 0.99),
                         (" jerk", 2.0, 2.3, 0.9), ("-tongue", 2.3, 2.8, 0.7), (" twenty-", 3.0, 3.2, 0.9),
                         ("five", 3.2, 3.5, 0.9), (" -", 3.6, 3.7, 0.5), (" well", 3.8, 4.0, 0.9)])
    assert [w.text for w in words] == ["Mm-hmm", "a", "jerk-tongue", "twenty-five", "-", "well"]
    assert (words[0].start, words[0].end, words[0].probability) == (1.0, 1.5, 0.8)
    from indexer.records import Line

    assert Line(index=0, start=1.0, end=2.8, words=words[:3]).text == "Mm-hmm a jerk-tongue"


def test_a_word_whisper_timed_as_an_instant_is_widened_into_the_pause_before_it():
    """faster-whisper tiny.en on an AVX2-only CPU timed the fixture take 12A_T3's "Leo." as 9.21-9.21 s (its real
    words, recorded in tests/golden/sound_steps.json): the line made of it lasted no time at all."""
    import json
    from pathlib import Path

    from indexer.align import COLLAPSED_WIDTH, build_lines, widen_collapsed

    steps = json.loads((Path(__file__).parent / "golden" / "sound_steps.json").read_text())
    words = [Word.from_json(w) for w in steps["913e517edd17"]["asr"][1]["words"]]
    leo = next(i for i, w in enumerate(words) if w.text == "Leo.")
    assert words[leo].start == words[leo].end == 9.21
    wide = widen_collapsed(words)
    assert wide[leo].end == 9.21 and abs(wide[leo].start - (9.21 - COLLAPSED_WIDTH)) < 1e-9
    assert wide[leo].start >= wide[leo - 1].end
    collapsed = [i for i, w in enumerate(words) if w.end - w.start < 0.02]
    assert len(collapsed) == 2                       # "Leo." twice in this take
    for i, (w, v) in enumerate(zip(words, wide)):
        if i in collapsed:
            assert v.end == w.end and v.end - v.start >= 0.02 and (i == 0 or v.start >= wide[i - 1].end)
        else:
            assert v == w
    lines = build_lines(words, [], Fraction(25), None)
    assert all(ln.end > ln.start for ln in lines)
    assert any(ln.text == "Leo." and ln.start < 9.21 for ln in lines)


def test_a_collapsed_word_with_no_pause_before_it_takes_the_pause_after_it():
    from indexer.align import COLLAPSED_WIDTH, widen_collapsed

    words = [Word(1.0, 1.5, "one", 0.9), Word(1.5, 1.5, "two", 0.9), Word(2.5, 2.8, "three.", 0.9),
             Word(3.0, 3.0, "four", 0.9, channel=1), Word(3.0, 3.1, "five", 0.9, channel=1)]
    wide = widen_collapsed(words)
    assert (wide[1].start, wide[1].end) == (1.5, 1.5 + COLLAPSED_WIDTH)
    assert (wide[3].start, wide[3].end) == (3.0 - COLLAPSED_WIDTH, 3.0)       # channel 1 has nothing before it
    assert wide[0] == words[0] and wide[2] == words[2] and wide[4] == words[4]
