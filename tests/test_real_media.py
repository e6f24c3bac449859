"""Real recordings from ../shared/eval (skipped with the reason when absent)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from conftest import EVAL, frame_of, need
from indexer.config import IndexSettings
from indexer.media import decode, probe
from indexer.pipeline import Indexer
from indexer.search import LineQuery, search_lines
from indexer.shots import ShotDetector
from indexer.store import Index
from indexer.timecode import Clock

TOS = EVAL / "film" / "tears_of_steel" / "tos_opencast_speech_to_text_test.mp4"
JFK = EVAL / "speech" / "fw_jfk.flac"
LIBRI = EVAL / "speech" / "lhotse" / "2412-153948-0000.flac"
POPEYE = EVAL / "film" / "popeye_showorder" / "popeye_vob_T00-1.mkv"


@pytest.fixture(scope="module")
def real_index(tmp_path_factory):
    files = [need(TOS), need(JFK), need(LIBRI)]
    path = tmp_path_factory.mktemp("real") / "index"
    with Index.open_writer(path) as idx:
        summary = Indexer(idx, IndexSettings()).run(files)
    assert [r.status for r in summary.results] == ["indexed"] * 3, [r.message for r in summary.results]
    return path


@pytest.mark.parametrize("method", ["adaptive", "content"])
def test_tears_of_steel_cut_at_frame_72(method):
    info = probe(need(TOS))
    assert info.rate == 24 and info.has_audio
    detector = ShotDetector(info.rate, method)
    decoded = decode(info, audio=False, sink=detector)
    shots = detector.finish(decoded.frames)
    assert [s.first_frame for s in shots] == [0, 72]
    assert shots[-1].last_frame == decoded.frames - 1 == 203


def test_tears_of_steel_line_found_at_the_right_timecode(real_index):
    with Index.open(real_index) as idx:
        hits = search_lines(idx, LineQuery(text="we have to follow our passions"))
    assert hits, "the line was not found"
    hit = hits[0]
    assert hit.name == TOS.stem
    # Official subtitle cue: 25.0-27.0 s of the film; the clip starts ~22.5 s (+-0.3 s) into it.
    rate = Fraction(24)
    assert frame_of(2.2, rate) <= frame_of(hit.start, rate) <= frame_of(4.0, rate)
    assert hit.end <= 5.3
    assert hit.tc_in == Clock.from_start_tc("00:00:00:00", rate).tc_in(hit.start)
    assert hit.rate == "24" and hit.match >= 0.99
    assert 1 in hit.shots                    # after the cut at frame 72 (3.0 s)
    # "Look Celia" is said in the same utterance before the line: not part of the hit
    assert "Look" not in hit.text


def test_jfk(real_index):
    with Index.open(real_index) as idx:
        hits = search_lines(idx, LineQuery(text="ask not what your country can do for you"))
        assert [h.name for h in hits] == ["fw_jfk"]
        assert hits[0].match == 1.0
        # a misremembered version still finds it
        loose = search_lines(idx, LineQuery(text="don't ask what the country can do for you"))
        assert loose and loose[0].name == "fw_jfk"


def test_librispeech(real_index):
    with Index.open(real_index) as idx:
        hits = search_lines(idx, LineQuery(text="the narrative would be tedious to him and painful to myself"))
        assert hits and hits[0].name == LIBRI.stem
        assert hits[0].match >= 0.8
        assert not search_lines(idx, LineQuery(text="robot hand nightmares giant claws"))


def test_popeye_picture_only_with_subtitles():
    info = probe(need(POPEYE))
    assert info.rate == Fraction(30000, 1001)
    assert not info.has_audio and info.subtitle_streams == 1
    detector = ShotDetector(info.rate)
    decoded = decode(info, sink=detector)
    assert decoded.frames == 1800                      # 60.06 s (the subtitle stream runs longer)
    assert len(detector.finish(decoded.frames)) >= 8    # a cartoon with many cuts
