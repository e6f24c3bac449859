"""Production sound: what each channel of a take is (mix, boom, or an iso/lav and whose), where each iso's
owner speaks, and the words of a take heard on its isos (overlapped lines recovered) with the copies of
the same words heard on several mics (bleed) removed.

Roles come from the recorder's iXML ``TRACK_LIST`` names (MIX, BOOM, LAV 1, MAYA ...) when the file has
them, else from the signals: an iso is loud while its owner speaks and drops to bleed while another
voice speaks (or carries a signal no other channel carries); a mix or boom hears every voice. From the
signals alone a take needs two isos to count as iso-recorded, so a mono file, a plain stereo mix or a
boom with one lav indexes exactly as before (from the mix).

Only :mod:`indexer.pipeline` decides when this runs; the words go on to :mod:`indexer.align`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .records import Word
from .speakers.channels import FRAME, channel_levels
from .speakers.records import SAMPLE_RATE

MIX_NAMES = {"MIX", "MX", "L", "R", "LR", "MIXL", "MIXR", "LEFT", "RIGHT", "STEREO", "MONO", "MAIN", "PRODMIX"}
BOOM_NAMES = {"BOOM", "BM", "PLANT", "OVERHEAD", "OH", "SHOTGUN", "PLANTMIC"}
ISO_WORDS = {"LAV", "LAVALIER", "RADIO", "RM", "ISO", "WL", "WIRELESS", "TX", "RADIOMIC", "LAVALIERE"}
DEAD_DB = -70.0          # a channel below this RMS carries nothing (an unused track)
SPEECH_DB = 12.0         # a channel speaks where it is this far above its own noise floor
BLEED_DB = 10.0          # ... unless another iso, each read against its own speech level, is this much hotter
QUIET_DB = -12.0         # signals: an iso falls this far below its speech level while another voice speaks
QUIET_SHARE = 0.10       # ... for at least this share of the take's speech (a mix or boom: < 0.03)
INDEPENDENT_CORR = 0.2   # signals: a channel no other channel carries (|r| below this with every other) is an iso
HANG = 0.30              # seconds an iso stays open before and after its owner's sound
MIN_GAP = 0.50           # gaps shorter than this inside an iso's speech are kept
MIN_SPAN = 0.25          # shorter stretches of sound on an iso are not transcribed


@dataclass
class ChannelRole:
    """One channel of a take: ``channel`` is 0-based (shown 1-based), ``role`` mix | boom | iso | off."""

    channel: int
    role: str
    name: str | None = None          # the track's name (iXML)
    owner: str | None = None         # for an iso whose track name is a name: that voice's name
    source: str = "signal"           # ixml | signal | flag

    def to_json(self) -> dict:
        return {"channel": self.channel + 1, "role": self.role, "name": self.name, "owner": self.owner,
                "source": self.source}

    @classmethod
    def from_json(cls, d: dict) -> "ChannelRole":
        return cls(int(d["channel"]) - 1, d["role"], d.get("name"), d.get("owner"), d.get("source", "signal"))

    def label(self) -> str:
        """As shown in a table: ``3 iso LEO`` / ``1 mix``."""
        who = self.owner or (self.name if self.name and self.name.upper() not in (self.role.upper(),) else None)
        return f"{self.channel + 1} {self.role}" + (f" {who}" if who else "")


def role_from_name(name: str | None) -> tuple[str | None, str | None]:
    """(role, owner) that a track name states, or (None, None) when it states neither (``TRK 3``)."""
    if not name or not name.strip():
        return None, None
    tokens = [t for t in re.split(r"[\s_\-./:]+", name.strip().upper()) if t]
    bare = [re.sub(r"\d+$", "", t) for t in tokens]
    if not tokens:
        return None, None
    if bare[0] in MIX_NAMES or "".join(bare) in MIX_NAMES:
        return "mix", None
    if bare[0] in BOOM_NAMES:
        return "boom", None
    words = [t for t, b in zip(tokens, bare) if b and b not in ISO_WORDS and re.fullmatch(r"[A-Z][A-Z'.]*", t)]
    if any(b in ISO_WORDS for b in bare):
        return "iso", (" ".join(words) or None)
    if words and len(words) == len(tokens):        # a name (the character's or the actor's)
        return "iso", " ".join(words)
    return None, None


def channel_roles(spec: str | list[int], names: list[str | None] | None, chan: np.ndarray | None,
                  count: int, rms_db: list[float] | None = None) -> list[ChannelRole]:
    """Every channel's role. ``spec`` is ``--channels`` (:func:`indexer.speakers.channels.parse_channels`):
    ``mix`` (no isos), ``each`` (every channel an iso), channel numbers (those are the isos) or ``auto``
    (the track names, else the signals in ``chan``, (C, n) at 16 kHz)."""
    names = list(names or []) + [None] * max(0, count - len(names or []))
    dead = [rms_db is not None and c < len(rms_db) and rms_db[c] <= DEAD_DB for c in range(count)]
    if count <= 1 or spec == "mix":
        out = []
        for c in range(count):
            role, owner = role_from_name(names[c])
            out.append(ChannelRole(c, "off" if dead[c] else ("boom" if role == "boom" else "mix"), names[c],
                                   None, "ixml" if names[c] else "signal"))
        return out
    if spec == "each" or isinstance(spec, list):
        isos = set(range(count)) if spec == "each" else {c for c in spec if c < count}
        out = []
        for c in range(count):
            role, owner = role_from_name(names[c])
            out.append(ChannelRole(c, "iso" if c in isos else ("boom" if role == "boom" else "mix"), names[c],
                                   owner if c in isos and role == "iso" else None, "flag"))
        return out
    stated = [role_from_name(n) for n in names[:count]]
    signal = roles_from_signals(chan) if chan is not None and any(r is None for r, _ in stated) else None
    out = []
    for c in range(count):
        role, owner = stated[c]
        if dead[c]:
            out.append(ChannelRole(c, "off", names[c], None, "signal"))
        elif role is not None:
            out.append(ChannelRole(c, role, names[c], owner, "ixml"))
        else:
            out.append(ChannelRole(c, signal[c] if signal else "mix", names[c], None, "signal"))
    if not any(r.source == "ixml" for r in out) and sum(r.role == "iso" for r in out) < 2:
        for r in out:                      # one lav beside a boom: the mix, as before
            if r.role == "iso":
                r.role = "mix"
    return out


def roles_from_signals(chan: np.ndarray) -> list[str]:
    """mix or iso per channel, from the sound alone (see the module's docstring)."""
    count = chan.shape[0]
    levels = _smoothed(channel_levels(chan), 10)        # 100 ms: syllables do not count as quiet
    if levels.shape[1] < 50:
        return ["mix"] * count
    floor = np.percentile(levels, 10, axis=1)
    ref = np.percentile(levels, 95, axis=1)
    live = ref - floor > SPEECH_DB
    active = ((levels - floor[:, None]) > SPEECH_DB).any(axis=0)
    if active.sum() < 50:
        return ["mix"] * count
    norm = (levels - ref[:, None])[:, active]
    step = max(1, chan.shape[1] // 400_000)
    corr = np.abs(np.nan_to_num(np.corrcoef(chan[:, ::step].astype(np.float64))))
    out = []
    for c in range(count):
        others = [d for d in range(count) if d != c and live[d]]
        if not live[c] or not others:
            out.append("mix")
            continue
        quiet = float(np.mean((norm[c] < QUIET_DB) & (norm[others] > -6.0).any(axis=0)))
        independent = float(max(corr[c, d] for d in others)) < INDEPENDENT_CORR
        out.append("iso" if quiet >= QUIET_SHARE or independent else "mix")
    return out


def _smoothed(levels: np.ndarray, frames: int) -> np.ndarray:
    """dB levels averaged (as power) over ``frames`` consecutive frames."""
    if levels.shape[1] < frames:
        return levels
    power = 10 ** (levels / 10)
    k = np.ones(frames) / frames
    return 10 * np.log10(np.maximum(np.array([np.convolve(p, k, mode="same") for p in power]), 1e-10))


def iso_channels(roles: list[ChannelRole] | None) -> list[int]:
    return [r.channel for r in roles or [] if r.role == "iso"]


# --------------------------------------------------------------------------------------------
# where each iso speaks
# --------------------------------------------------------------------------------------------

def iso_activity(chan: np.ndarray, isos: list[int]) -> dict[int, np.ndarray]:
    """Per iso channel, the 10 ms frames where its owner speaks: sound above the channel's noise floor,
    not dominated by another iso (read against each channel's own speech level: bleed), held open
    ``HANG`` s around the sound, short gaps closed, specks dropped."""
    if not isos:
        return {}
    levels = channel_levels(chan[isos])
    floor = np.percentile(levels, 10, axis=1)
    ref = np.percentile(levels, 95, axis=1)
    norm = levels - ref[:, None]
    out = {}
    for k, c in enumerate(isos):
        sound = levels[k] > floor[k] + SPEECH_DB
        if len(isos) > 1:
            hotter = np.max(np.delete(norm, k, axis=0), axis=0) - norm[k] > BLEED_DB
            sound &= ~hotter
        out[c] = _tidy(sound)
    return out


def _tidy(mask: np.ndarray) -> np.ndarray:
    spans = _spans(mask)
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a - merged[-1][1] < MIN_GAP / FRAME:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    hang = int(HANG / FRAME)
    out = np.zeros_like(mask)
    for a, b in merged:
        if (b - a) * FRAME >= MIN_SPAN:
            out[max(0, a - hang): b + hang] = True
    return out


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _masked(signal: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``signal`` kept where ``mask`` (10 ms frames) is set, silence elsewhere (5 ms fades)."""
    hop = int(SAMPLE_RATE * FRAME)
    gain = np.repeat(mask.astype(np.float32), hop)
    gain = np.concatenate([gain, np.zeros(max(0, len(signal) - len(gain)), np.float32)])[: len(signal)]
    k = np.ones(hop // 2, np.float32) / (hop // 2)
    gain = np.convolve(gain, k, mode="same")
    return (signal * gain).astype(np.float32)


# --------------------------------------------------------------------------------------------
# words from the isos (and the mix where no iso speaks)
# --------------------------------------------------------------------------------------------

def transcribe_isos(transcriber, mono: np.ndarray, chan: np.ndarray, roles: list[ChannelRole],
                    progress=None) -> tuple[list[Word], dict]:
    """The take's words: each iso transcribed where its owner speaks (``Word.channel`` set), the mix
    (``mono``) only where no iso does, and bleed removed (:func:`drop_bleed`). Returns the words in
    time order and what was transcribed (seconds per channel, for the record and the bench)."""
    isos = iso_channels(roles)
    active = iso_activity(chan, isos)
    nfr = channel_levels(chan[:1]).shape[1]
    covered = np.zeros(nfr, dtype=bool)
    for m in active.values():
        covered[: len(m)] |= m[:nfr]
    words: list[Word] = []
    seconds: dict[str, float] = {}
    info: dict = {}
    hop = int(SAMPLE_RATE * FRAME)
    for c in isos:
        m = active[c]
        seconds[str(c + 1)] = round(float(m.sum()) * FRAME, 2)
        # the open stretches in groups of at most GROUP_SECONDS of sound, each group one call with the
        # closed stretches silenced (VAD skips them): the whole channel in one call loses text (Whisper
        # drops or repeats lines across long runs of similar stretches), one call per stretch gives it
        # too little context
        for a, b in _groups(_spans(m)):
            t0 = a * FRAME
            part = _masked(chan[c, a * hop: b * hop], m[a:b])
            got, info = transcriber.transcribe(part, progress=(lambda t, t0=t0: progress(t0 + t)) if progress else None)
            words.extend(Word(t0 + w.start, t0 + w.end, w.text, w.probability, c) for w in got
                         if _inside(m, Word(t0 + w.start, t0 + w.end, w.text, w.probability)))
    rest = ~covered
    seconds["mix"] = 0.0
    mix_level = channel_levels(mono[None])[0][:nfr]
    if rest.any() and (mix_level[rest[: len(mix_level)]] > np.percentile(mix_level, 10) + SPEECH_DB).any():
        seconds["mix"] = round(float(rest.sum()) * FRAME, 2)
        got, info = transcriber.transcribe(_masked(mono, rest), progress=progress)
        words.extend(w for w in got if _inside(rest, w))
    levels = channel_levels(chan)
    words = drop_bleed(sorted(words, key=lambda w: (w.start, w.end)), levels)
    info = {**info, "duration": round(len(mono) / SAMPLE_RATE, 3), "transcribed_seconds": seconds}
    info.pop("speech", None)      # one part's speech regions, not the mix's (the speaker step finds the mix's itself)
    return words, info


GROUP_SECONDS = 15.0       # open sound per Whisper call on an iso (25 s lost one actor's lines in the bench)


def _groups(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Consecutive spans (frames) joined while their open frames stay within ``GROUP_SECONDS``."""
    out: list[list[int]] = []
    size = 0
    for a, b in spans:
        if out and size + (b - a) <= GROUP_SECONDS / FRAME:
            out[-1][1] = b
            size += b - a
        else:
            out.append([a, b])
            size = b - a
    return [(a, b) for a, b in out]


def _inside(mask: np.ndarray, w: Word) -> bool:
    mid = int((w.start + w.end) / 2 / FRAME)
    return 0 <= mid < len(mask) and bool(mask[mid])


def drop_bleed(words: list[Word], levels: np.ndarray) -> list[Word]:
    """The same word heard on several mics (overlapping in time, the same or nearly the same text)
    is kept once: on the channel where it is loudest against that channel's own speech level (an
    iso copy beats the mix's)."""
    from rapidfuzz import fuzz

    from .textnorm import normalize_words

    if len(words) < 2:
        return words
    ref = np.percentile(levels, 95, axis=1) if levels.size else np.zeros(0)
    keys = [" ".join(t for t, _ in normalize_words([w.text])) for w in words]

    def loudness(w: Word) -> float:
        if w.channel is None or w.channel >= levels.shape[0]:
            return -np.inf
        a, b = int(w.start / FRAME), max(int(w.start / FRAME) + 1, int(w.end / FRAME))
        seg = levels[w.channel, a:b]
        return float(np.median(seg) - ref[w.channel]) if seg.size else -np.inf

    gone: set[int] = set()
    for i, w in enumerate(words):
        if i in gone:
            continue
        for j in range(i + 1, len(words)):
            v = words[j]
            if v.start >= w.end:
                break
            if j in gone or v.channel == w.channel:
                continue
            shared = min(w.end, v.end) - max(w.start, v.start)
            if shared < 0.5 * min(w.end - w.start, v.end - v.start):
                continue
            if not keys[i] or not keys[j] or fuzz.ratio(keys[i], keys[j]) < 75:
                continue
            if loudness(v) > loudness(w):
                gone.add(i)
                break
            gone.add(j)
    return [w for k, w in enumerate(words) if k not in gone]


# --------------------------------------------------------------------------------------------
# each iso's owner is a voice
# --------------------------------------------------------------------------------------------

def iso_diarization(chan: np.ndarray, picked: list[int], duration: float, embedder=None):
    """Who speaks when, from the isos themselves: one local speaker per iso channel (``ISO3``), its
    turns where the iso is open (:func:`iso_activity`), exclusive where it is the only one, its voice
    embedded (CAM++) on its own channel's sound while it alone speaks. For a take whose diarization of
    the mix did not give every iso an owner (overlapped speech makes one voice of two)."""
    from pyannote.core import Annotation, Segment

    from .speakers.records import Diarization, LocalSpeaker

    active = iso_activity(chan, list(range(len(picked))))
    turns, exclusive = Annotation(), Annotation()
    stack = np.array([active[k] for k in range(len(picked))])
    alone = stack & (stack.sum(axis=0) == 1)
    speakers = []
    owner = {}
    for k, c in enumerate(picked):
        label = f"ISO{c + 1}"
        for a, b in _spans(stack[k]):
            turns[Segment(a * FRAME, min(duration, b * FRAME))] = label
        spans = _spans(alone[k])
        for a, b in spans:
            exclusive[Segment(a * FRAME, min(duration, b * FRAME))] = label
        emb = None
        if embedder is not None and spans:
            hop = int(SAMPLE_RATE * FRAME)
            sound = np.concatenate([chan[k, a * hop: b * hop] for a, b in spans]).astype(np.float32)
            if len(sound) >= SAMPLE_RATE // 2:
                e = np.asarray(embedder.embed_features([embedder.fbank(sound)])[0], dtype=np.float64)
                n = float(np.linalg.norm(e))
                emb = (e / n).astype(np.float32) if np.isfinite(n) and n > 0 else None
        speakers.append(LocalSpeaker(label, emb, float(alone[k].sum()) * FRAME, c))
        owner[k] = label
    diar = Diarization(turns, exclusive, speakers, duration, channel_owner=owner)
    return diar
