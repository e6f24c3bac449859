"""Word attribution and line splitting (indexer/align.py), channel ownership, refinement and the re-read
against other takes (indexer/speakers/) on hand-made speaker turns.

The turns here are written by hand (no model): these tests are about how words are given to
speakers, not about diarization itself (tests/test_speakers_diarize.py runs the real models).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from pyannote.core import Annotation, Segment  # noqa: E402

from indexer.align import assign_lines, attribute_words, shot_speech  # noqa: E402
from indexer.errors import UsageError  # noqa: E402
from indexer.records import Line, Shot, Word  # noqa: E402
from indexer.speakers.channels import channel_owners, parse_channels  # noqa: E402
from indexer.speakers.identity import identify, reread  # noqa: E402
from indexer.speakers.records import (Diarization, LocalSpeaker, SpeechSegment, Windows,  # noqa: E402
                                      _turns_from_json, _turns_json)
from indexer.speakers.refine import _split_groups, split_by_known_voices  # noqa: E402


def diar(turns: list[tuple[float, float, str]], exclusive: list[tuple[float, float, str]] | None = None,
         duration: float = 20.0) -> Diarization:
    ann = Annotation()
    for k, (s, e, lab) in enumerate(turns):
        ann[Segment(s, e), k] = lab
    excl = ann if exclusive is None else _turns_from_json([list(t) for t in exclusive])
    speakers = [LocalSpeaker(lab, None, excl.label_duration(lab)) for lab in ann.labels()]
    return Diarization(ann, excl, speakers, duration)


def words(spec: str, start: float = 0.0, dur: float = 0.3, gap: float = 0.1) -> list[Word]:
    out, t = [], start
    for w in spec.split():
        out.append(Word(t, t + dur, w, 0.9))
        t += dur + gap
    return out


def test_words_take_the_speaker_of_the_exclusive_turn():
    d = diar([(0.0, 2.0, "A"), (2.5, 5.0, "B")])
    ws = words("one two three", 0.2) + words("four five", 3.0)
    att = attribute_words(ws, d)
    assert [a.speaker for a in att] == ["A", "A", "A", "B", "B"]
    assert all(a.confidence > 0.9 and not a.overlap for a in att)


def test_overlap_and_nearness_to_a_change_lower_confidence():
    turns = [(0.0, 3.0, "A"), (2.6, 6.0, "B")]
    excl = [(0.0, 2.8, "A"), (2.8, 6.0, "B")]
    d = diar(turns, excl)
    ws = [Word(0.5, 0.8, "far", 0.9), Word(2.6, 2.95, "over", 0.9), Word(4.5, 4.8, "clear", 0.9)]
    att = attribute_words(ws, d)
    assert [a.overlap for a in att] == [False, True, False]
    assert att[1].confidence < 0.5 < att[0].confidence
    assert att[2].confidence > 0.9


def test_a_word_in_a_gap_takes_the_nearest_turn_with_low_confidence():
    d = diar([(0.0, 1.0, "A"), (3.0, 4.0, "B")])
    att = attribute_words([Word(1.1, 1.3, "late", 0.9), Word(2.0, 2.1, "lost", 0.9)], d)
    assert att[0].speaker == "A" and att[0].confidence < 0.5
    assert att[1].speaker is None


def test_no_diarization_means_no_speaker():
    att = attribute_words(words("a b"), None)
    assert [a.speaker for a in att] == [None, None]


def test_lines_are_split_at_speaker_changes_and_keep_their_shots():
    d = diar([(0.0, 1.95, "A"), (2.05, 5.0, "B")])
    ws = words("hi there how", 0.2) + words("fine thanks", 2.2)
    line = Line(0, ws[0].start, ws[-1].end, ws)
    shots = [Shot(0, 0, 47), Shot(1, 48, 200)]
    lines, info = assign_lines([line], d, shots=shots, rate=Fraction(24))
    assert [ln.text for ln in lines] == ["hi there how", "fine thanks"]
    assert [ln.speaker for ln in lines] == ["A", "B"]
    assert [ln.index for ln in lines] == [0, 1]
    assert lines[0].start == line.start and lines[1].end == line.end
    assert lines[0].shots == [0] and lines[1].shots == [1]
    assert info[0].speaker == "A" and info[0].confidence > 0.8 and not info[0].overlap
    assert len(info[1].words) == 2


def test_a_single_weak_word_does_not_split_a_line():
    # diarization puts B on a short blip in the middle of A's sentence
    d = diar([(0.0, 1.22, "A"), (1.22, 1.42, "B"), (1.42, 4.0, "A")])
    ws = words("we have to follow our passions", 0.0)
    lines, info = assign_lines([Line(0, ws[0].start, ws[-1].end, ws)], d)
    assert len(lines) == 1 and lines[0].speaker == "A"
    assert min(w.confidence for w in info[0].words) <= 0.3     # the doubtful word shows it


def test_channel_evidence_decides_on_a_lav():
    # two speakers, boom (ch 0) + a lav on A (ch 1); diarization wrongly gives the second word to A
    rate = 16000
    t = np.arange(rate * 5) / rate
    noise = np.random.default_rng(0).normal(scale=1e-4, size=(2, t.size))
    on_a = (t < 0.9) | ((t >= 2.0) & (t < 2.9))
    on_b = ((t >= 1.0) & (t < 1.9)) | ((t >= 3.0) & (t < 3.9))      # 4-5 s: room tone
    speech_a = np.sin(2 * np.pi * 200 * t) * on_a
    speech_b = np.sin(2 * np.pi * 300 * t) * on_b
    boom = (0.3 * speech_a + 0.3 * speech_b + noise[0]).astype(np.float32)
    lav = (0.5 * speech_a + 0.02 * speech_b + noise[1]).astype(np.float32)
    chan = np.stack([boom, lav])
    d = diar([(0.0, 0.9, "A"), (1.0, 1.9, "B"), (2.0, 2.9, "A"), (3.0, 3.9, "B")], duration=5.0)
    channel_owners(d, chan, [0, 1])
    assert d.channel_owner == {1: "A"}
    wrong = _turns_from_json([[0.0, 0.9, "A"], [1.0, 1.9, "B"], [2.0, 3.6, "A"], [3.6, 3.9, "B"]])
    d.exclusive = wrong
    # a word of B's that diarization gives to A; a word of A's that reaches into a pause
    att = attribute_words([Word(0.3, 0.6, "a", 0.9), Word(3.1, 3.4, "b", 0.9), Word(2.6, 3.0, "a2", 0.9)], d)
    assert [a.speaker for a in att] == ["A", "B", "A"]


def test_channels_flag():
    assert parse_channels(None) == "auto" and parse_channels("mix") == "mix"
    assert parse_channels("each") == "each"
    assert parse_channels("1,3") == [0, 2]
    with pytest.raises(UsageError):
        parse_channels("0,x")


def test_diarization_round_trips_through_json():
    d = diar([(0.0, 1.0, "A"), (0.8, 2.0, "B")])
    d.speakers[0].embedding = np.ones(192, dtype=np.float32) / np.sqrt(192)
    back = Diarization.from_json(d.to_json())
    assert _turns_json(back.turns) == _turns_json(d.turns)
    assert back.labels == d.labels
    assert np.allclose(back.speakers[0].embedding, d.speakers[0].embedding, atol=1e-6)
    assert back.speakers[1].embedding is None


def _unit(v):
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_split_groups_needs_two_coherent_clearly_different_groups():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=192), rng.normal(size=192)
    # two voices with a between-voice similarity ~0.6 (like the fixture's synthetic voices)
    b = _unit(0.75 * _unit(a) + 0.66 * _unit(b))
    a = _unit(a)
    def noisy(v, norm):          # a unit vector at a given noise level (noise vector of that length)
        return _unit(v + norm * rng.normal(size=192) / np.sqrt(192))

    two = np.stack([noisy(a, 0.35) for _ in range(4)] + [noisy(b, 0.35) for _ in range(4)])
    groups = _split_groups(two, np.full(8, 3.0))
    assert sorted(sorted(g) for g in groups) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    # one noisy voice (low within-similarity) is never split
    spread = np.stack([noisy(a, 1.5) for _ in range(8)])
    assert len(_split_groups(spread, np.full(8, 3.0))) == 1
    # too little speech in a group: no split
    assert len(_split_groups(two, np.full(8, 0.5))) == 1


def test_split_by_known_voices_splits_a_short_take():
    rng = np.random.default_rng(2)
    maya, leo = _unit(rng.normal(size=192)), _unit(rng.normal(size=192))
    d = diar([(0.0, 4.0, "SPEAKER_00"), (5.0, 8.0, "SPEAKER_00")], duration=9.0)
    d.segments = [SpeechSegment(0.0, 4.0, "SPEAKER_00", _unit(maya + 0.02 * rng.normal(size=192))),
                  SpeechSegment(5.0, 8.0, "SPEAKER_00", _unit(leo + 0.02 * rng.normal(size=192)))]
    out = split_by_known_voices(d, np.stack([maya, leo]), threshold=0.6)
    assert _turns_json(out.exclusive) == [[0.0, 4.0, "SPEAKER_00"], [5.0, 8.0, "SPEAKER_01"]]
    assert sorted(out.labels) == ["SPEAKER_00", "SPEAKER_01"]
    assert float(out.embedding("SPEAKER_01") @ leo) > 0.9
    # unknown voices or a single known voice: unchanged
    assert split_by_known_voices(d, np.stack([maya]), threshold=0.6) is d
    assert split_by_known_voices(d, np.stack([_unit(rng.normal(size=192)) for _ in range(2)]), 0.6) is d


def test_speech_per_shot():
    shots = [Shot(0, 0, 23), Shot(1, 24, 71)]
    got = shot_speech(shots, Fraction(24), [(0.5, 1.5), (2.5, 2.75)])
    assert got == pytest.approx({0: 0.5, 1: 0.75})


def test_a_weak_first_word_joins_the_rest_of_its_line():
    # the previous speaker's turn runs into the first word of the next line
    d = diar([(0.0, 2.12, "A"), (2.12, 5.0, "B")])
    ws = words("the director called again", 2.0)
    lines, info = assign_lines([Line(0, ws[0].start, ws[-1].end, ws)], d)
    assert len(lines) == 1 and lines[0].speaker == "B"


def _windows(spans: list[tuple[float, float, np.ndarray]], rng, noise: float = 0.3) -> Windows:
    """1.5 s windows every 0.5 s over each span, each a noisy copy of the span's voice."""
    starts, embs = [], []
    for a, b, v in spans:
        for t in np.arange(a, b - 1.5 + 1e-6, 0.5):
            starts.append(t)
            embs.append(_unit(v + noise * rng.normal(size=192) / np.sqrt(192)))
    return Windows(np.array(starts), np.full(len(starts), 1.5), np.stack(embs).astype(np.float32))


def test_reread_gives_each_stretch_the_known_voice_it_sounds_like():
    """One local speaker that is really two known people (MAYA 0-6 s, LEO 6-12 s, one turn): read
    against the registry's voices, the turn is cut near 6 s and each part is bound to its voice."""
    rng = np.random.default_rng(3)
    maya, leo = _unit(rng.normal(size=192)), _unit(rng.normal(size=192))
    d = diar([(0.0, 12.0, "SPEAKER_00")], duration=12.0)
    mixed = _unit(maya + leo)
    d.speakers = [LocalSpeaker("SPEAKER_00", mixed, 12.0)]
    d.segments = [SpeechSegment(0.0, 6.0, "SPEAKER_00", mixed), SpeechSegment(6.0, 12.0, "SPEAKER_00", mixed)]
    d.windows = _windows([(0.0, 6.0, maya), (6.0, 12.0, leo)], rng)
    out, bound = reread(d, ["V001", "V002"], np.stack([maya, leo]), threshold=0.7)
    turns = _turns_json(out.exclusive)
    assert len(turns) == 2 and abs(turns[0][1] - 6.0) <= 0.5, turns
    assert {bound[turns[0][2]], bound[turns[1][2]]} == {"V001", "V002"} and bound[turns[0][2]] == "V001"
    assert not out.exclusive.get_overlap() and out.windows is d.windows
    # the windows survive the step cache
    back = Windows.from_json(d.windows.to_json())
    assert np.allclose(back.emb, d.windows.emb, atol=2e-3) and np.allclose(back.start, d.windows.start)


def test_reread_leaves_a_new_voice_with_its_own_speaker():
    """A person the registry does not know stays the take's own speaker (not pulled to the nearest
    known voice), and a take with no known voices is left as it is."""
    rng = np.random.default_rng(4)
    maya, stranger = _unit(rng.normal(size=192)), _unit(rng.normal(size=192))
    d = diar([(0.0, 8.0, "SPEAKER_00")], duration=8.0)
    d.speakers = [LocalSpeaker("SPEAKER_00", stranger, 8.0)]
    d.segments = [SpeechSegment(0.0, 8.0, "SPEAKER_00", stranger)]
    d.windows = _windows([(0.0, 8.0, stranger)], rng)
    out, bound = reread(d, ["V001"], np.stack([maya]), threshold=0.7)
    assert out is d and bound == {}
    assert reread(d, [], np.zeros((0, 192)), threshold=0.7) == (d, {})


def test_only_a_takes_own_speakers_feed_the_window_profiles():
    """Filing a re-read take: the stretch the re-read gave to a voice from another take does not
    feed that voice's window profile (it was read from it; each later pass would pull harder), the
    take's own speakers do."""
    from indexer.speakers.identity import LocalIn, VoiceRegistry
    from indexer.store import VoiceTables

    rng = np.random.default_rng(5)
    maya, leo = _unit(rng.normal(size=192)), _unit(rng.normal(size=192))
    reg = VoiceRegistry(VoiceTables.memory())
    reg.register_take("t1", [LocalIn("SPEAKER_00", leo, 6.0, window_sum=4 * leo, window_count=4)])
    # t2: one local speaker that is MAYA for 8 s, then LEO for 6 s
    d = diar([(0.0, 14.0, "SPEAKER_00")], duration=14.0)
    d.speakers = [LocalSpeaker("SPEAKER_00", maya, 14.0)]
    d.segments = [SpeechSegment(0.0, 8.0, "SPEAKER_00", maya), SpeechSegment(8.0, 14.0, "SPEAKER_00", leo)]
    d.windows = _windows([(0.0, 8.0, maya), (8.0, 14.0, leo)], rng)
    out, voice_of = identify(d, reg, "t2")
    assert len(out.labels) == 2 and set(voice_of.values()) == {"V001", "V002"}      # LEO's stretch found
    sums = dict(((lab, n) for lab, n in reg.tables._db.execute(
        "SELECT label, window_count FROM voice_locals WHERE take_id='t2'")))
    assert sums["SPEAKER_00"] > 0                                   # the take's own speaker: its windows
    assert [n for lab, n in sums.items() if lab != "SPEAKER_00"] == [0]   # the re-read stretch: none
    _, prof = reg.centroids(exclude_take="t3", windows=True)
    assert np.allclose(prof[0], leo, atol=1e-5)                     # LEO's profile: t1's windows only
