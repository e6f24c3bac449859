"""Words + shots + speaker turns -> lines. Pure functions, no I/O; every cut of a line is made here.

A *line* is an utterance: consecutive words between pauses or at sentence ends. Whisper's word
times are good to a tenth of a second or so; an editor needs the first and last frame of the
delivery, so each line's outer edges are refined on the sound itself (short-time energy against
the local noise floor), never moving by more than a few hundred milliseconds.

With a take's diarization (:class:`indexer.speakers.records.Diarization`), each word is attributed
to a local speaker (:func:`attribute_words`) and :func:`assign_lines` splits lines where the speaker
changes and gives each line its speaker, a confidence and an overlap flag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from .records import Line, Shot, Word, shots_spanning
from .speakers.channels import channel_vote

if TYPE_CHECKING:  # pragma: no cover
    from pyannote.core import Annotation

    from .speakers.records import Diarization

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
    """The line with its refined edges; its first and last words stretched to them, and kept inside them.

    Whisper sometimes places a line's last word, with no length, past the end of the speech the sound
    shows ("Leo." at 10.70-10.70 when the speech ends at 10.57): that word was said between the word
    before it and the offset, so it gets that span rather than lying outside its own line (and a search
    for it would end before it began). Likewise a first word placed before the onset."""
    words = list(line.words)
    if words:
        first = words[0]
        if first.end <= start:
            nxt = words[1].start if len(words) > 1 else end
            first = replace(first, end=max(start, min(nxt, end)))
        words[0] = replace(first, start=min(start, first.end))
        last = words[-1]
        if last.start >= end and len(words) > 1:
            last = replace(last, start=max(start, min(words[-2].end, end)))
        words[-1] = replace(last, end=max(end, last.start))
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


COLLAPSED_WORD = 0.02            # s: a word this short had its timing collapsed by Whisper's alignment
COLLAPSED_WIDTH = 0.25           # ... and is given this much, taken from the pause before it (else after it)


def widen_collapsed(words: list[Word]) -> list[Word]:
    """Words whose timing Whisper's alignment collapsed to (almost) nothing, given a width.

    faster-whisper sometimes times a segment's last word as an instant (``Leo.`` at 9.21-9.21 s on the fixture
    take 12A_T3, on an AVX2-only CPU): the word was said, and the line, hit or export made of it alone would
    last no time at all. Such a word ends where Whisper says and starts ``COLLAPSED_WIDTH`` earlier, in the
    pause before it (never before the previous word of its channel ends); with no pause there, it takes the
    pause after it. Other words are returned as they are."""
    out = list(words)
    last_end: dict = {}
    for i, w in enumerate(out):
        if w.end - w.start < COLLAPSED_WORD:
            before = last_end.get(w.channel, 0.0)
            start = max(before, w.end - COLLAPSED_WIDTH)
            if w.end - start >= COLLAPSED_WORD:
                out[i] = w = replace(w, start=start)
            else:
                nxt = next((v.start for v in out[i + 1:] if v.channel == w.channel), w.start + COLLAPSED_WIDTH)
                end = min(nxt, w.start + COLLAPSED_WIDTH)
                if end - w.start >= COLLAPSED_WORD:
                    out[i] = w = replace(w, end=end)
        last_end[w.channel] = max(last_end.get(w.channel, 0.0), w.end)
    return out


def build_lines(words: list[Word], shots: list[Shot], rate: Fraction, audio: np.ndarray | None,
                sample_rate: int = 16000, rules: LineRules = LineRules(),
                channels: np.ndarray | None = None) -> list[Line]:
    """The whole step: group, refine edges on the sound, attach shots. Words heard on iso channels
    (``Word.channel``, production sound) make lines of their own channel, edges refined on that
    channel's sound (``channels``, (C, n)), so two actors talking over each other keep two lines.
    Words Whisper timed as an instant are widened first (:func:`widen_collapsed`)."""
    words = widen_collapsed(words)
    groups: dict = {}
    for w in words:
        groups.setdefault(w.channel, []).append(w)
    if set(groups) <= {None}:
        lines = group_words(words, rules)
        lines = refine_edges(lines, audio, sample_rate)
        return assign_shots(lines, shots, rate)
    lines = []
    for chan, ws in groups.items():
        sound = channels[chan] if chan is not None and channels is not None and chan < len(channels) else audio
        lines.extend(refine_edges(group_words(ws, rules), sound, sample_rate))
    lines.sort(key=lambda ln: (ln.start, ln.end))
    for i, ln in enumerate(lines):
        ln.index = i
    return assign_shots(lines, shots, rate)


# --------------------------------------------------------------------------------------------
# Speakers: who said each word, and lines split where the speaker changes
# --------------------------------------------------------------------------------------------

NEAR_CHANGE = 0.30               # a word this close (s) to a change of speaker gets a lower confidence
OVERLAP_SHARE = 0.25             # a word this much inside overlapped speech is flagged ``overlap``
GAP_REACH = 0.60                 # a word in a gap between turns takes the nearest turn within this reach


@dataclass
class WordSpeaker:
    """Who said one word, how sure we are (0..1), and whether it was in overlapped speech."""

    speaker: str | None
    confidence: float
    overlap: bool


@dataclass
class LineSpeaker:
    speaker: str | None
    confidence: float | None
    overlap: bool
    words: list[WordSpeaker]


# --------------------------------------------------------------------------------------------
# attributing words
# --------------------------------------------------------------------------------------------

def _intervals(ann: "Annotation") -> dict[str, list[tuple[float, float]]]:
    """Each label's turns as sorted, merged (start, end) intervals."""
    out: dict[str, list[tuple[float, float]]] = {}
    for seg, _, label in ann.itertracks(yield_label=True):
        out.setdefault(str(label), []).append((seg.start, seg.end))
    return {lab: _merged(iv) for lab, iv in out.items()}


def _merged(iv: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for s, e in sorted(iv):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(a, b) for a, b in out]


def _covered(iv: list[tuple[float, float]], a: float, b: float) -> float:
    """Seconds of [a, b] inside sorted, disjoint intervals ``iv``."""
    import bisect

    k = max(0, bisect.bisect_right(iv, (a, math.inf)) - 1)
    total = 0.0
    while k < len(iv) and iv[k][0] < b:
        total += max(0.0, min(b, iv[k][1]) - max(a, iv[k][0]))
        k += 1
    return total


def _distance(iv: list[tuple[float, float]], t: float) -> float:
    """Distance from ``t`` to sorted, disjoint intervals ``iv`` (0 inside one)."""
    import bisect

    k = bisect.bisect_right(iv, (t, math.inf))
    best = math.inf
    for j in (k - 1, k):
        if 0 <= j < len(iv):
            s, e = iv[j]
            best = min(best, 0.0 if s <= t <= e else (s - t if t < s else t - e))
    return best


def attribute_words(words: list[Word], diar: Diarization | None) -> list[WordSpeaker]:
    """Per word: the local speaker (from the exclusive turns), a confidence 0..1, an overlap flag.

    Confidence is the share of the word covered by the winner's exclusive turns, lowered near a
    change of speaker (within ``NEAR_CHANGE`` s) and in overlapped speech; with per-channel levels
    (``--channels each``), a lav/iso channel that clearly says who speaks confirms or overrides.
    """
    if diar is None or not diar.speakers:
        return [WordSpeaker(None, 0.0, False) for _ in words]
    import bisect

    excl = _intervals(diar.exclusive)
    over = _merged([(s.start, s.end) for s in diar.overlap()])
    changes = sorted(_changes(diar.exclusive))
    owner_of = {s.channel: s.label for s in diar.speakers if s.channel is not None}
    out = []
    for w in words:
        a, b = float(w.start), float(max(w.end, w.start + 0.02))
        dur = b - a
        cover = {lab: _covered(iv, a, b) / dur for lab, iv in excl.items()}
        label, share = max(cover.items(), key=lambda kv: kv[1]) if cover else (None, 0.0)
        if share <= 0.0:
            mid = (a + b) / 2
            dist = {lab: _distance(iv, mid) for lab, iv in excl.items()}
            near_lab, d = min(dist.items(), key=lambda kv: kv[1])
            if d <= GAP_REACH:
                label, share = near_lab, 0.5 * (1.0 - d / GAP_REACH)
            else:
                label, share = None, 0.0
        conf = share
        in_overlap = _covered(over, a, b) / dur
        overlap = in_overlap >= OVERLAP_SHARE
        if overlap:
            conf *= 0.5
        if changes:
            k = bisect.bisect_left(changes, a)
            near = [changes[j] for j in (k - 1, k, k + 1) if 0 <= j < len(changes)]
            d_change = min(0.0 if a <= c <= b else min(abs(c - a), abs(c - b)) for c in near)
            if d_change < NEAR_CHANGE:
                conf *= 0.5 + 0.5 * d_change / NEAR_CHANGE
        if w.channel is not None and w.channel in owner_of:      # heard on an iso: its owner said it
            label, conf = owner_of[w.channel], max(conf, 0.9)
        elif diar.channel_owner and diar.channel_levels is not None:
            label, conf = channel_vote(diar, a, b, label, conf)
        out.append(WordSpeaker(label, round(float(min(1.0, max(0.0, conf))), 3), bool(overlap)))
    return out


def _changes(ann: "Annotation") -> list[float]:
    """Times where the exclusive speaker changes (the boundary between two different speakers'
    turns, taken at the middle of any gap shorter than 1 s)."""
    segs = sorted((seg.start, seg.end, str(lab)) for seg, _, lab in ann.itertracks(yield_label=True))
    out = []
    for (s1, e1, l1), (s2, e2, l2) in zip(segs, segs[1:]):
        if l1 != l2 and s2 - e1 < 1.0:
            out.append((e1 + s2) / 2 if s2 > e1 else s2)
    return out

# --------------------------------------------------------------------------------------------
# lines
# --------------------------------------------------------------------------------------------

def smooth(attrib: list[WordSpeaker], words: list[Word], *, max_flip_words: int = 1,
           max_flip_seconds: float = 0.5, weak: float = 0.6) -> list[WordSpeaker]:
    """Give a short, weakly attributed run of words to the speaker around it: between two runs of
    the same speaker, or at the start or end of a line next to a longer run (diarization edges are
    less precise than word times, and a line rarely changes speaker without a pause)."""
    out = list(attrib)
    runs = _runs([x.speaker for x in out])
    if len(runs) < 2:
        return out

    def short_and_weak(s1: int, e1: int) -> bool:
        return (e1 - s1 <= max_flip_words and words[e1 - 1].end - words[s1].start <= max_flip_seconds
                and max(x.confidence for x in out[s1:e1]) < weak)

    def give(s1: int, e1: int, speaker: str) -> None:
        for i in range(s1, e1):
            out[i] = WordSpeaker(speaker, round(min(out[i].confidence, 0.3), 3), out[i].overlap)

    for k, (s1, e1, sp1) in enumerate(runs):
        before = runs[k - 1] if k > 0 else None
        after = runs[k + 1] if k + 1 < len(runs) else None
        if sp1 is None or not short_and_weak(s1, e1):
            continue
        if before and after and before[2] == after[2] and before[2] not in (None, sp1):
            give(s1, e1, before[2])
        elif before is None and after and after[2] is not None and after[1] - after[0] > e1 - s1:
            give(s1, e1, after[2])
        elif after is None and before and before[2] is not None and before[1] - before[0] > e1 - s1:
            give(s1, e1, before[2])
    return out


def _runs(values: list) -> list[tuple[int, int, Any]]:
    runs = []
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            runs.append((start, i, values[start]))
            start = i
    return runs


def assign_lines(lines: list[Line], diar: Diarization | None, *, shots: list[Shot] | None = None,
                 rate: Fraction | None = None) -> tuple[list[Line], list[LineSpeaker]]:
    """Attribute every word, split lines where the speaker changes, and give each line its speaker.

    Returns the new lines (re-numbered; ``Line.speaker`` is the local label) and, in the same order,
    a :class:`LineSpeaker` with the line's confidence (the words' mean), its overlap flag (any word
    in overlapped speech) and the per-word attribution. Without a diarization, lines are returned as
    they are with no speaker.
    """
    new_lines: list[Line] = []
    info: list[LineSpeaker] = []
    for line in lines:
        if not line.words:
            new_lines.append(line)
            info.append(LineSpeaker(None, None, False, []))
            continue
        attrib = smooth(attribute_words(line.words, diar), line.words)
        for s, e, sp in _merge_unknown(_runs([a.speaker for a in attrib])):
            words = line.words[s:e]
            ws = attrib[s:e]
            part = replace(line, start=words[0].start if s > 0 else line.start,
                           end=words[-1].end if e < len(line.words) else line.end, words=list(words),
                           speaker=sp)
            if shots is not None and rate is not None:
                part.shots = shots_spanning(shots, part.start, part.end, rate)
            new_lines.append(part)
            weights = [max(0.02, w.end - w.start) for w in words]
            conf = float(np.average([x.confidence for x in ws], weights=weights)) if sp is not None else None
            info.append(LineSpeaker(sp, None if conf is None else round(conf, 3), any(x.overlap for x in ws), ws))
    if rate is not None:
        for a, b in zip(new_lines, new_lines[1:]):
            end, start = frame_cut(a.end, b.start, rate)
            if a.speaker != b.speaker and a.start < end and start < b.end:
                a.end, b.start = end, start
                if shots is not None:
                    a.shots = shots_spanning(shots, a.start, a.end, rate)
                    b.shots = shots_spanning(shots, b.start, b.end, rate)
    for i, ln in enumerate(new_lines):
        ln.index = i
    return new_lines, info


def _merge_unknown(runs: list[tuple[int, int, Any]]) -> list[tuple[int, int, Any]]:
    """Runs of words with no speaker join the neighbouring run (a line is never split by them)."""
    known = [r for r in runs if r[2] is not None]
    if not known:
        return [(runs[0][0], runs[-1][1], None)] if runs else []
    out: list[list] = []
    for s, e, sp in runs:
        if sp is None:
            if out:
                out[-1][1] = e
            else:
                out.append([s, e, None])
            continue
        if out and (out[-1][2] is None or out[-1][2] == sp):
            out[-1][1] = e
            out[-1][2] = sp
        else:
            out.append([s, e, sp])
    return [tuple(x) for x in out]


def shot_speech(shots: list[Shot], rate: Fraction, spans: Iterable[tuple[float, float]]) -> dict[int, float]:
    """Seconds of speech in each shot, for spans (start, end) in seconds (e.g. one speaker's words):
    ``{shot index: seconds}``, only shots with some speech. For `search shots --speaker`."""
    out: dict[int, float] = {}
    bounds = [(s.index, s.start(rate), s.end(rate)) for s in shots]
    for a, b in spans:
        for idx, s0, s1 in bounds:
            d = min(b, s1) - max(a, s0)
            if d > 0:
                out[idx] = out.get(idx, 0.0) + d
    return out
