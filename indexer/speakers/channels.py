"""Channel ownership (boom + lavs / iso tracks): which sound channels ``--channels`` takes, which local
speaker each channel belongs to (a lav is markedly louder while its wearer speaks), and what an owned
channel says about who speaks at a given moment (:func:`channel_vote`, used by word attribution in
:mod:`indexer.align`).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UsageError
from .records import SAMPLE_RATE, Diarization

FRAME = 0.01
OWNER_DB = 10.0          # a lav is typically 15-30 dB louder on its wearer than on the other actors


def parse_channels(value: str | None) -> str | list[int]:
    """``auto`` | ``mix`` | ``each`` | ``N,M`` (1-based channel numbers) -> "auto", "mix", "each" or
    [0-based indexes]. ``auto`` (the default): iso tracks from the file's track names or its sound
    (:mod:`indexer.tracks`)."""
    v = (value or "auto").strip().lower()
    if v in ("mix", "each", "auto"):
        return v
    try:
        picked = [int(x) for x in v.replace(" ", "").split(",") if x]
    except ValueError:
        picked = []
    if not picked or min(picked) < 1:
        raise UsageError(f"--channels {value!r}: use auto, mix, each, or channel numbers like 1,2.")
    return [p - 1 for p in picked]


def pick_channels(spec: str | list[int], count: int) -> list[int]:
    """The channels (0-based) that ``spec`` (``"each"`` or a list, from :func:`parse_channels`) takes
    of a file with ``count`` channels."""
    return list(range(count)) if spec == "each" else [c for c in spec if c < count]


def channel_levels(chan: np.ndarray) -> np.ndarray:
    """(C, frames) level of each channel in dB, 10 ms frames."""
    hop = int(SAMPLE_RATE * FRAME)
    n = chan.shape[1] // hop
    if n == 0:
        return np.zeros((chan.shape[0], 0))
    power = np.square(chan[:, : n * hop].astype(np.float64)).reshape(chan.shape[0], n, hop).mean(axis=2)
    return 10 * np.log10(np.maximum(power, 1e-10))


def channel_owners(diar: Diarization, chan: np.ndarray, picked: list[int]) -> None:
    """Which local speaker each channel belongs to: a lav/iso channel is markedly louder
    (``OWNER_DB``) while its wearer speaks than while anyone else does; a boom is not."""
    levels = channel_levels(chan)
    diar.channel_levels = levels
    nfr = levels.shape[1]
    masks = {}
    for label in diar.labels:
        m = np.zeros(nfr, dtype=bool)
        for seg in diar.exclusive.label_timeline(label):
            m[int(seg.start / FRAME): min(nfr, int(math.ceil(seg.end / FRAME)))] = True
        masks[label] = m
    for row, c in enumerate(picked):
        med = {lab: float(np.median(levels[row, m])) for lab, m in masks.items() if m.sum() >= 20}
        if len(med) < 2:
            continue
        ranked = sorted(med.items(), key=lambda kv: kv[1], reverse=True)
        (best, lv), (_, second) = ranked[0], ranked[1]
        if lv - second >= OWNER_DB:
            diar.channel_owner[row] = best
            for s in diar.speakers:
                if s.label == best and s.channel is None:
                    s.channel = c


def channel_vote(diar: Diarization, a: float, b: float, label: str | None, conf: float) -> tuple[str | None, float]:
    """Let an owned channel (a lav) confirm or correct a word's speaker. The channel's level relative
    to the other channels is read only where there is sound (a word's times may reach into a pause,
    where a cold lav proves nothing)."""
    levels = diar.channel_levels
    fa, fb = int(a / FRAME), max(int(a / FRAME) + 1, int(math.ceil(b / FRAME)))
    for row, owner in diar.channel_owner.items():
        ref = _owner_reference(diar, row, owner)
        if ref is None or fa >= levels.shape[1]:
            continue
        rel, active, on, off = ref
        sel = rel[fa:fb][active[fa:fb]]
        if sel.size < 3:
            continue
        lv = float(np.median(sel))
        margin = (on - off) / 3
        if lv >= on - margin:              # the owner's channel is hot: the owner speaks
            if label == owner:
                conf = min(1.0, conf + 0.3)
            else:
                label, conf = owner, 0.6
        elif lv <= off + margin and label == owner:   # someone speaks, not into the owner's lav
            others = [s.label for s in diar.speakers if s.label != owner]
            if len(others) == 1:
                label, conf = others[0], 0.6
            else:
                conf *= 0.5
    return label, conf


def _owner_reference(diar: Diarization, row: int, owner: str):
    """For an owned channel: (its level relative to the other channels per frame, frames with sound,
    median relative level while the owner speaks, median while the others speak)."""
    cache = getattr(diar, "_owner_ref", None)
    if cache is None:
        cache = {}
        object.__setattr__(diar, "_owner_ref", cache)
    if row in cache:
        return cache[row]
    levels = diar.channel_levels
    if levels is None or levels.shape[0] < 2 or row >= levels.shape[0]:
        cache[row] = None
        return None
    others = [r for r in range(levels.shape[0]) if r != row]
    rel = levels[row] - levels[others].mean(axis=0)
    loudest = levels.max(axis=0)
    active = loudest > float(np.percentile(loudest, 10)) + 15.0
    nfr = levels.shape[1]
    on = np.zeros(nfr, dtype=bool)
    off = np.zeros(nfr, dtype=bool)
    for seg, _, lab in diar.exclusive.itertracks(yield_label=True):
        sl = slice(int(seg.start / FRAME), min(nfr, int(math.ceil(seg.end / FRAME))))
        (on if lab == owner else off)[sl] = True
    on &= active
    off &= active
    if on.sum() < 20 or off.sum() < 20:
        cache[row] = None
    else:
        cache[row] = (rel, active, float(np.median(rel[on])), float(np.median(rel[off])))
    return cache[row]
