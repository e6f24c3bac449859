"""Timecode at exact rates: known values a script supervisor would check by hand."""

from fractions import Fraction as F

import pytest

from indexer.errors import DailiesError
from indexer.timecode import Clock, frame_after, frame_at, frames_to_tc, parse_rate, rate_label, rate_str, tc_to_frames

NTSC = F(30000, 1001)
FILM = F(24000, 1001)


def test_23976_is_non_drop_and_counts_24():
    clock = Clock.from_start_tc("01:00:00:00", FILM)
    assert clock.start_frame == 86400
    assert not clock.drop_frame
    assert clock.tc(23) == "01:00:00:23"
    assert clock.tc(24) == "01:00:01:00"
    # one real second is 23.976 frames: the instant 1.0 s falls inside frame 23
    assert clock.tc_in(1.0) == "01:00:00:23"
    assert clock.tc_out(1.0) == "01:00:01:00"


@pytest.mark.parametrize("start, frames, expected", [
    ("01:00:59;20", 9, "01:00:59;29"),
    ("01:00:59;20", 10, "01:01:00;02"),     # ;00 and ;01 do not exist at minute 1
    ("00:00:59;29", 1, "00:01:00;02"),
    ("00:09:59;29", 1, "00:10:00;00"),      # every tenth minute keeps its frames
    ("00:59:59;20", 10, "01:00:00;00"),     # minute 60 is a tenth minute: nothing dropped
])
def test_2997_drop_frame_across_minute_boundaries(start, frames, expected):
    clock = Clock.from_start_tc(start, NTSC)
    assert clock.drop_frame
    assert clock.tc(frames) == expected


def test_drop_frame_frame_count_matches_real_time():
    # 10 minutes of 29.97 DF = 17982 frames; one hour = 107892 frames
    assert tc_to_frames("00:10:00;00", NTSC) == 17982
    assert tc_to_frames("01:00:00;00", NTSC) == 107892
    assert frames_to_tc(107892, NTSC) == "01:00:00;00"


def test_2997_non_drop_when_the_file_says_so():
    clock = Clock.from_start_tc("01:00:59:20", NTSC)
    assert not clock.drop_frame
    assert clock.tc(10) == "01:01:00:00"


def test_25_fps():
    clock = Clock.from_start_tc("15:30:10:05", F(25))
    assert clock.tc(20) == "15:30:11:00"
    assert clock.tc_in(2.0) == "15:30:12:05"


def test_5994_drop_frame_drops_four():
    rate = F(60000, 1001)
    clock = Clock.from_start_tc("00:00:59;59", rate)
    assert clock.tc(1) == "00:01:00;04"


def test_frame_of_an_instant():
    assert frame_at(0.0, FILM) == 0
    assert frame_at(1001 / 24000 * 10, FILM) == 10          # exactly on a frame boundary
    assert frame_at(1001 / 24000 * 10 - 1e-3, FILM) == 9
    assert frame_after(1001 / 24000 * 10, FILM) == 10
    assert frame_after(1001 / 24000 * 10 + 1e-3, FILM) == 11


def test_rates():
    assert parse_rate("23.976") == FILM
    assert parse_rate("29.97") == NTSC
    assert parse_rate("24000/1001") == FILM
    assert parse_rate(25) == F(25)
    assert rate_str(FILM) == "24000/1001"
    assert rate_str(F(25)) == "25"
    assert rate_label(NTSC, True) == "29.97 DF"
    assert rate_label(FILM) == "23.976"
    with pytest.raises(DailiesError):
        parse_rate("fast")
    with pytest.raises(DailiesError):
        tc_to_frames("25:99:00:00x", F(25))


@pytest.mark.parametrize("rate", [F(30000, 1001), F(60000, 1001), F(24000, 1001), F(25)])
def test_non_drop_timecode_runs_to_the_end_of_its_day(rate):
    """Non-drop TC counts nominal frames: at 29.97 NDF the last minute of the day is 23:59:xx, not a
    roll-over to 00:00 after 24 h of real time (86 s early, as OTIO counts)."""
    fps = round(rate)
    for tc in ("23:58:00:00", "23:59:00:00", f"23:59:59:{fps - 1:02d}", "12:34:56:07", "00:00:00:00"):
        assert frames_to_tc(tc_to_frames(tc, rate), rate, False) == tc
    assert frames_to_tc(fps * 86400, rate, False) == "00:00:00:00"       # the next day starts at midnight
