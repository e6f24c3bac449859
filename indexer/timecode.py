"""SMPTE timecode at exact rational rates, via ``opentimelineio.opentime``.

Conventions used everywhere in dailies:

* A rate is a :class:`fractions.Fraction` (24000/1001, 25, 30000/1001 ...), never a rounded float.
* Frame *n* of a file covers the interval ``[n / rate, (n + 1) / rate)`` seconds from the first frame.
* A source timecode is ``start_frame + n`` where ``start_frame`` is the file's start timecode as a
  frame count (what OTIO's ``from_timecode`` returns).
* Drop-frame numbering only exists at 30000/1001 and 60000/1001 and is written with ``;``.
  23.976 (24000/1001) is always non-drop and counts 24 frames per second.
* ``tc_in`` is the frame containing the start instant; ``tc_out`` is exclusive (the first frame after
  the end instant), as in EDLs and OTIO's ``end_time_exclusive``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from opentimelineio import opentime

from .errors import DailiesError

DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))
COMMON_RATES = (
    Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
    Fraction(48000, 1001), Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60),
)
# Slack for float error when turning seconds into frame numbers (well under a frame at any rate).
_EPS = 1e-6


def _quoted(value) -> str:
    """What the user typed, quoted on one line (a newline in it shows as \\n): errors stay one sentence."""
    return repr(str(value)[:80])


def parse_rate(value: str | int | float | Fraction) -> Fraction:
    """Parse ``"24000/1001"``, ``"23.976"``, ``25`` ... into an exact rate.

    Decimal spellings of the NTSC rates (23.976, 29.97, 59.94, 47.952) map to their exact fractions.
    """
    if isinstance(value, Fraction):
        rate = value
    else:
        text = str(value).strip()
        try:
            rate = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise DailiesError(f"{_quoted(value)} is not a frame rate (use e.g. 24000/1001, 23.976, 25).") from None
    if rate <= 0:
        raise DailiesError(f"{_quoted(value)} is not a frame rate (it must be positive).")
    if rate.denominator != 1 and rate.denominator != 1001:
        # 23.976 / 29.97 / 59.94 typed as decimals: snap to the NTSC fraction they stand for.
        for known in COMMON_RATES:
            if abs(float(known) - float(rate)) < 0.0015:
                return known
    return rate


def rate_str(rate: Fraction) -> str:
    """``Fraction(24000, 1001)`` -> ``"24000/1001"``; ``Fraction(25)`` -> ``"25"``."""
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def rate_label(rate: Fraction, drop_frame: bool = False) -> str:
    """How editors say a rate: 23.976, 24, 25, 29.97 DF, 59.94 NDF ..."""
    if rate.denominator == 1:
        text = str(rate.numerator)
    else:
        text = f"{float(rate):.3f}".rstrip("0").rstrip(".")
    if is_drop_frame_rate(rate):
        text += " DF" if drop_frame else " NDF"
    return text


def is_drop_frame_rate(rate: Fraction) -> bool:
    return rate in DROP_FRAME_RATES


def nominal_fps(rate: Fraction) -> int:
    """The frame count per timecode second (24 for 23.976, 30 for 29.97)."""
    return round(rate)


_TC = re.compile(r"^(\d{1,2})[:;.,](\d{2})[:;.,](\d{2})[:;.,](\d{2,3})$")


def tc_to_frames(tc: str, rate: Fraction) -> int:
    """Timecode string -> frame count at ``rate`` (``;``/``.`` mark drop-frame)."""
    text = tc.strip()
    m = _TC.match(text)
    if not m or int(m.group(2)) > 59 or int(m.group(3)) > 59 or int(m.group(4)) >= nominal_fps(rate):
        raise DailiesError(f"{_quoted(tc)} is not a valid timecode at {rate_str(rate)} fps.")
    try:
        rt = opentime.from_timecode(text, float(rate))
    except Exception:
        raise DailiesError(f"{_quoted(tc)} is not a valid timecode at {rate_str(rate)} fps.") from None
    return int(round(rt.value))


def counted_frames(tc: str, rate: Fraction, drop_frame: bool) -> int:
    """Frame count of ``tc`` read in one counting, whichever separator was typed (``01:00:00:00`` is read as
    drop-frame when ``drop_frame``, ``01:00:00;00`` as non-drop when not)."""
    text = tc.strip()
    if drop_frame and not any(c in text for c in ";.,"):
        head, _, ff = text.rpartition(":")
        text = f"{head};{ff}"
    elif not drop_frame:
        text = text.replace(";", ":").replace(".", ":").replace(",", ":")
    return tc_to_frames(text, rate)


def frames_to_tc(frames: int, rate: Fraction, drop_frame: bool | None = None) -> str:
    """Frame count -> timecode string. ``drop_frame=None`` infers it from the rate."""
    if drop_frame is None:
        drop_frame = is_drop_frame_rate(rate)
    if drop_frame and not is_drop_frame_rate(rate):
        drop_frame = False
    if drop_frame:
        # OTIO's drop-frame count rolls over at 24 h (timecode is time of day), which for DF is real time.
        return opentime.to_timecode(opentime.RationalTime(frames, float(rate)), float(rate), drop_frame)
    # Non-drop timecode labels every frame at the nominal rate, so its day is nominal x 86400 frames. OTIO
    # rolls 29.97/59.94 NDF over after 24 h of *real* time, 86 s early: 23:59:00:00 became 00:00:26:12.
    fps = nominal_fps(rate)
    frame = frames % (fps * 86400)
    secs, ff = divmod(frame, fps)
    width = max(2, len(str(fps - 1)))
    return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}:{ff:0{width}d}"


def frames_per_day(rate: Fraction, drop_frame: bool = False) -> int:
    """Frames in 24 hours of timecode at ``rate`` (drop-frame skips 2 or 4 labels a minute, not every tenth)."""
    nominal = nominal_fps(rate)
    per_day = nominal * 86400
    if drop_frame:
        per_day -= (nominal // 15) * (24 * 60 - 24 * 6)
    return per_day


def frame_at(seconds: float, rate: Fraction) -> int:
    """The frame whose interval contains ``seconds`` (from the first frame)."""
    return max(0, math.floor(seconds * rate + _EPS))


def frame_after(seconds: float, rate: Fraction) -> int:
    """The first frame that starts at or after ``seconds`` (exclusive end of a span ending there)."""
    return max(0, math.ceil(seconds * rate - _EPS))


@dataclass(frozen=True)
class Clock:
    """Maps seconds from a file's first frame to that file's own source timecode."""

    rate: Fraction
    start_frame: int = 0
    drop_frame: bool = False

    @classmethod
    def from_start_tc(cls, start_tc: str | None, rate: Fraction) -> "Clock":
        if not start_tc:
            return cls(rate, 0, is_drop_frame_rate(rate))
        drop = is_drop_frame_rate(rate) and (";" in start_tc or "." in start_tc or "," in start_tc)
        return cls(rate, tc_to_frames(start_tc, rate), drop)

    @property
    def start_tc(self) -> str:
        return frames_to_tc(self.start_frame, self.rate, self.drop_frame)

    def tc(self, frame: int) -> str:
        """Timecode of frame ``frame`` of the file."""
        return frames_to_tc(self.start_frame + frame, self.rate, self.drop_frame)

    def tc_in(self, seconds: float) -> str:
        return self.tc(frame_at(seconds, self.rate))

    def tc_out(self, seconds: float) -> str:
        return self.tc(frame_after(seconds, self.rate))

    def seconds(self, frame: int) -> float:
        return float(Fraction(frame) / self.rate)

    def frame_of(self, tc: str) -> int:
        """The frame (from the file's first) that carries source timecode ``tc``, read in the file's own counting
        (``;`` or ``:`` either way), past midnight when the file crosses it."""
        return (counted_frames(tc, self.rate, self.drop_frame) - self.start_frame) % frames_per_day(
            self.rate, self.drop_frame)
