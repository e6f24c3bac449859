"""Words (+ shots, + later speaker turns) -> lines. Pure functions, no I/O.

A *line* is an utterance: consecutive words between pauses or at sentence ends. Whisper's word
times are good to a tenth of a second or so; an editor needs the first and last frame of the
delivery, so each line's outer edges are refined on the sound itself (short-time energy against
the local noise floor), never moving by more than a few hundred milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from .records import Line, Shot, Word, shots_spanning

SENTENCE_END = (".", "?", "!", "…")


@dataclass(frozen=True)
class LineRules:
    max_gap: float = 0.7          # a pause this long always ends a line
    sentence_gap: float = 0.3     # a sentence end followed by this much pause ends a line
    max_duration: float = 15.0    # longer utterances are split at their longest pause


def group_words(words: list[Word], rules: LineRules = LineRules()) -> list[Line]:
    """Group words into utterances by pauses and sentence ends."""
    groups: list[list[Word]] = []
    current: list[Word] = []
    for word in words:
        if current:
            prev = current[-1]
            gap = word.start - prev.end
            if gap >= rules.max_gap or (prev.text.endswith(SENTENCE_END) and gap >= rules.sentence_gap):
                groups.append(current)
                current = []
        current.append(word)
    if current:
        groups.append(current)

    out: list[list[Word]] = []
    for g in groups:
        out.extend(_split_long(g, rules.max_duration))
    return [Line(index=i, start=g[0].start, end=g[-1].end, words=list(g)) for i, g in enumerate(out)]


def _split_long(words: list[Word], max_duration: float) -> list[list[Word]]:
    if len(words) < 2 or words[-1].end - words[0].start <= max_duration:
        return [words]
    # Prefer the longest pause after a sentence end, else the longest pause.
    best, best_key = 1, (-1, -1.0)
    for i in range(1, len(words)):
        gap = words[i].start - words[i - 1].end
        key = (1 if words[i - 1].text.endswith(SENTENCE_END) else 0, gap)
        if key > best_key:
            best, best_key = i, key
    return _split_long(words[:best], max_duration) + _split_long(words[best:], max_duration)


# --------------------------------------------------------------------------------------------
# Edge refinement on the audio
# --------------------------------------------------------------------------------------------

HOP = 0.005        # 5 ms analysis hop
WIN = 0.020        # 20 ms window


def energy_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Short-time energy in dB, one value per ``HOP`` seconds."""
    hop = int(sample_rate * HOP)
    win = int(sample_rate * WIN)
    if audio.size < win:
        return np.full(1, -120.0)
    n = 1 + (audio.size - win) // hop
    # Mean square over each window via a cumulative sum (fast on hours of audio).
    sq = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
    starts = np.arange(n) * hop
    ms = (sq[starts + win] - sq[starts]) / win
    return 10.0 * np.log10(np.maximum(ms, 1e-12))


def refine_edges(lines: list[Line], audio: np.ndarray | None, sample_rate: int = 16000,
                 search_before: float = 0.30, search_after: float = 0.60, min_pause: float = 0.6) -> list[Line]:
    """Fit lines to the sound: split a line at a clear pause inside it, then move each line's start
    to the speech onset and its end to the speech offset nearby.

    Whisper's word times smear across pauses (the word before a pause often "ends" when the next one
    starts), so pauses are found on the sound itself. The threshold sits between the local noise floor
    and the line's own level; an edge moves only within ``search_before``/``search_after`` seconds and
    never into a neighbouring line.
    """
    if audio is None or audio.size == 0 or not lines:
        return lines
    env = energy_db(audio, sample_rate)
    total = len(audio) / sample_rate
    split: list[Line] = []
    for line in lines:
        split.extend(_split_on_pauses(env, line, min_pause))
    out: list[Line] = []
    for k, line in enumerate(split):
        prev_end = out[-1].end if out else 0.0
        next_start = split[k + 1].start if k + 1 < len(split) else total
        start, end = _refine_one(env, line.start, line.end, prev_end, next_start, search_before, search_after)
        out.append(_with_edges(line, start, end, len(out)))
    return out


def _with_edges(line: Line, start: float, end: float, index: int) -> Line:
    words = list(line.words)
    if words:
        words[0] = replace(words[0], start=min(start, words[0].end))
        words[-1] = replace(words[-1], end=max(end, words[-1].start))
    return replace(line, index=index, start=start, end=end, words=words)


def _idx(t: float) -> int:
    return int(round(t / HOP))


def _levels(env: np.ndarray, start: float, end: float, lo_bound: float, hi_bound: float) -> float | None:
    """The speech/silence threshold around a line, or None when the sound gives no clear contrast."""
    n = env.size
    a = max(0, _idx(max(lo_bound, start - 0.8)))
    b = min(n, _idx(min(hi_bound, end + 1.1)) + 1)
    if b - a < 10:
        return None
    floor = float(np.percentile(env[a:b], 10))
    core = env[max(0, _idx(start)): max(_idx(start) + 1, min(n, _idx(end)))]
    if core.size == 0:
        return None
    level = float(np.percentile(core, 90))
    if level - floor < 12.0:          # too noisy to tell speech from background: keep Whisper's times
        return None
    return floor + 0.08 * (level - floor) + 3.0


def _split_on_pauses(env: np.ndarray, line: Line, min_pause: float) -> list[Line]:
    if len(line.words) < 2:
        return [line]
    thr = _levels(env, line.start, line.end, line.start - 0.8, line.end + 1.1)
    if thr is None:
        return [line]
    a, b = _idx(line.start), min(env.size, _idx(line.end))
    quiet = env[a:b] <= thr
    run = int(min_pause / HOP)
    pauses: list[tuple[float, float]] = []
    i = 0
    while i < quiet.size:
        if quiet[i]:
            j = i
            while j < quiet.size and quiet[j]:
                j += 1
            if j - i >= run:
                # quiet windows [i, j): the sound stops near window i's start + WIN and resumes near j's end
                pauses.append(((a + i) * HOP + WIN, (a + j) * HOP + WIN - HOP))
            i = j
        else:
            i += 1
    parts: list[Line] = []
    words = list(line.words)
    for p0, p1 in pauses:
        mid = (p0 + p1) / 2
        left = [w for w in words if (w.start + w.end) / 2 < mid]
        right = [w for w in words if (w.start + w.end) / 2 >= mid]
        if not left or not right:
            continue
        parts.append(_with_edges(Line(0, left[0].start, p0, left), left[0].start, p0, 0))
        words = right
        words[0] = replace(words[0], start=max(words[0].start, p1))
    if not parts:
        return [line]
    parts.append(Line(0, words[0].start, line.end, words))
    return parts


def _refine_one(env: np.ndarray, start: float, end: float, lo_bound: float, hi_bound: float,
                before: float, after: float) -> tuple[float, float]:
    thr = _levels(env, start, end, lo_bound, hi_bound)
    if thr is None:
        return start, end
    n = env.size
    above = env > thr
    run = int(0.03 / HOP)

    # Onset: the first run of >= 30 ms above threshold in the search window, followed back to where
    # it began (never before the previous line, nor more than `before` earlier).
    s_lo, s_hi = max(0, _idx(max(lo_bound, start - before))), min(n - 1, _idx(start + after))
    new_start = start
    for i in range(s_lo, s_hi):
        if above[i: i + run].all():
            j, stop = i, max(0, _idx(max(lo_bound, start - before)))
            while j > stop and above[j - 1]:
                j -= 1
            # window j is the first to touch the sound: the onset lies near its far end
            new_start = max(lo_bound, j * HOP + WIN - HOP)
            break
    # Offset: the last run of >= 30 ms above threshold in the search window, followed forward to where
    # it ends (never into the next line, nor more than `before` later).
    e_lo, e_hi = max(0, _idx(end - after)), min(n - 1, _idx(min(hi_bound, end + before)))
    new_end = end
    for i in range(e_hi, e_lo, -1):
        if i - run >= 0 and above[i - run: i].all():
            j = i
            while j < e_hi and above[j]:
                j += 1
            # window j is the first past the sound: the offset lies near its start
            new_end = min(hi_bound, j * HOP + HOP)
            break
    if new_end <= new_start:
        return start, end
    return new_start, new_end


def frame_cut(a_end: float, b_start: float, rate: Fraction) -> tuple[float, float]:
    """The end of a line and the start of the next one when the speaker changes between them.

    Where they touch (less than a frame apart, or overlapping by less than a frame), both move to the
    frame boundary nearest to the cut, so the frame of the cut belongs to one line only: TC out is
    exclusive, and the two lines no longer overlap by a frame. Lines further apart are left alone
    (a real overlap of two voices stays one)."""
    if abs(b_start - a_end) >= 1 / float(rate):
        return a_end, b_start
    t = float(Fraction(round((a_end + b_start) / 2 * rate)) / rate)
    return (t, t) if t > 0 else (a_end, b_start)


def assign_shots(lines: list[Line], shots: list[Shot], rate: Fraction) -> list[Line]:
    """Fill each line's ``shots`` with the indexes of the shots its span overlaps."""
    return [replace(line, shots=shots_spanning(shots, line.start, line.end, rate)) for line in lines]


def build_lines(words: list[Word], shots: list[Shot], rate: Fraction, audio: np.ndarray | None,
                sample_rate: int = 16000, rules: LineRules = LineRules()) -> list[Line]:
    """The whole step: group, refine edges on the sound, attach shots."""
    lines = group_words(words, rules)
    lines = refine_edges(lines, audio, sample_rate)
    return assign_shots(lines, shots, rate)
