"""Refinement of one take's diarization, after pyannote's pipeline: the speakers pyannote ran together
split apart on utterance-level CAM++ embeddings (:func:`refine`), the speaker changes it missed inside
long turns found on sliding windows (:func:`resegment`), a short take's speakers split by the voices
the registry already knows (:func:`split_by_known_voices`), and the speech windows that identity
across takes (:mod:`indexer.speakers.identity`) reads against the other takes (:func:`speech_windows`).

pyannote and scipy are imported inside functions only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .load import EMBED_BUCKET
from .records import SAMPLE_RATE, Diarization, LocalSpeaker, SpeechSegment, Windows

if TYPE_CHECKING:  # pragma: no cover
    from pyannote.core import Annotation

# Segment-level refinement (see refine()): every stretch of exclusive speech (cut into pieces of at
# most segment_max s) of at least short_min s gets its own CAM++ embedding; a local speaker whose
# segments of at least segment_min s form two clearly separate groups is split in two (recursively).
# Set on the fixture shoot's synthetic voices (within ~0.8, between ~0.6 cosine), checked on the AMI
# train files: no false split there for split_gap 0.10-0.20 (train DER unchanged).
# Then resegment(): long turns are re-read with sliding windows to find changes the segmentation
# missed. Train DER is the same for every change penalty from 0.1 to 1 (`eval_diarization.py --tune`);
# 0.25 is set a priori (half the per-window gap between same- and other-speaker cosine on AMI).
# Repeated until nothing changes (the speakers' embeddings, recomputed from their segments, get purer
# each pass), it takes AMI dev+test DER from 51.9 % to 47.5 %; train and the fixture shoot unchanged.
REFINE: dict[str, float] = {
    "segment_min": 1.0, "segment_max": 6.0, "short_min": 0.5,
    "split_gap": 0.15,          # mean within-group similarity must exceed the between-group one by this
    "split_within": 0.70,       # ... and each group must be this coherent (mean cosine similarity)
    "split_seconds": 3.0,       # ... and hold this much speech
    "split_segments": 4,        # a speaker needs this many embedded segments to be tested
    "known_margin": 0.10,       # split_by_known_voices: best voice must beat the second by this
    "known_seconds": 1.5,       # ... on segments at least this long
    # resegment(): long turns re-read with sliding CAM++ windows against the local speakers
    "reseg_window": 1.5,        # s of speech per window
    "reseg_hop": 0.5,           # s between windows
    "reseg_penalty": 0.25,      # cosine similarity a change of speaker must gain over the turn (Viterbi)
    "reseg_min_turn": 2.5,      # turns shorter than this are left as they are
    "reseg_passes": 3,          # re-read until nothing changes, at most this often (AMI: 2 passes)
    # reread(): every exclusive turn re-read against the voices of the *other* takes (see reread())
    "reread_min": 0.3,          # turns shorter than this keep their speaker (one window of the whole turn below 1.5 s)
    "reread_bias": 0.17,        # a window's similarity to its own take's speaker counts this much less:
                                # the session gap on the AMI train files' reference turns (0.173,
                                # eval_diarization.py --tune); train identity is flat from 0 to 0.17,
                                # its one-to-one identity best at 0.17 (see tune() there)
}


def speech_segments(exclusive: "Annotation", audio: np.ndarray, embedder, *,
                    minimum: float | None = None) -> list[SpeechSegment]:
    """Exclusive turns as segments (long ones cut into equal pieces of at most ``segment_max`` s),
    each embedded with CAM++ when it lasts at least ``minimum`` seconds."""

    minimum = REFINE["short_min"] if minimum is None else minimum
    out: list[SpeechSegment] = []
    for seg, _, label in exclusive.itertracks(yield_label=True):
        n = max(1, int(math.ceil(seg.duration / REFINE["segment_max"])))
        for k in range(n):
            a = seg.start + k * seg.duration / n
            b = seg.start + (k + 1) * seg.duration / n
            out.append(SpeechSegment(float(a), float(b), str(label), None))
    todo = [g for g in out if g.seconds >= minimum]
    if todo:
        if hasattr(embedder, "embed_spans"):      # pooled from the file's CAM++ frames (load.PooledSpans)
            embs = embedder.embed_spans([(g.start, g.end) for g in todo])
        else:
            feats = [embedder.fbank(audio[int(g.start * SAMPLE_RATE): int(g.end * SAMPLE_RATE)]) for g in todo]
            embs = embedder.embed_features(feats, bucket=EMBED_BUCKET)
        for g, e in zip(todo, embs):
            n = float(np.linalg.norm(e))
            g.embedding = (e / n).astype(np.float32) if np.isfinite(n) and n > 0 else None
    out.sort(key=lambda g: g.start)
    return out


def _split_groups(embs: np.ndarray, secs: np.ndarray) -> list[list[int]]:
    """Recursively split a speaker's segments in two while the halves are clearly different voices."""
    n = len(embs)
    if n < REFINE["split_segments"]:
        return [list(range(n))]
    from scipy.cluster.hierarchy import fcluster, linkage

    z = linkage(embs, method="average", metric="cosine")
    part = fcluster(z, 2, criterion="maxclust")
    g1 = [i for i in range(n) if part[i] == 1]
    g2 = [i for i in range(n) if part[i] == 2]
    if len(g1) < 2 or len(g2) < 2 or secs[g1].sum() < REFINE["split_seconds"] or secs[g2].sum() < REFINE["split_seconds"]:
        return [list(range(n))]
    sim = embs @ embs.T

    def within(g):
        return float(sim[np.ix_(g, g)][np.triu_indices(len(g), 1)].mean())

    w = min(within(g1), within(g2))
    between = float(sim[np.ix_(g1, g2)].mean())
    if w < REFINE["split_within"] or w - between < REFINE["split_gap"]:
        return [list(range(n))]
    out = []
    for g in (g1, g2):
        out.extend([[g[i] for i in sub] for sub in _split_groups(embs[g], secs[g])])
    return out


def refine(diar: Diarization, audio: np.ndarray, embedder) -> Diarization:
    """Check each local speaker on segment-level embeddings and split the ones that are two voices.

    pyannote's segmentation can take two similar voices for one within its 10 s windows; a segment
    embedding sees a whole utterance of one voice, which tells them apart when the window-level
    view cannot. Also gives every speaker an utterance-level embedding (for the voice registry).
    """
    segments = speech_segments(diar.exclusive, audio, embedder)
    new_label = {i: g.label for i, g in enumerate(segments)}
    names = _label_factory(diar.labels)
    for label in list(diar.labels):
        idx = [i for i, g in enumerate(segments) if g.label == label and g.embedding is not None
               and g.seconds >= REFINE["segment_min"]]
        if len(idx) < REFINE["split_segments"]:
            continue
        embs = np.stack([segments[i].embedding for i in idx])
        secs = np.array([segments[i].seconds for i in idx])
        groups = _split_groups(embs, secs)
        if len(groups) < 2:
            continue
        groups.sort(key=lambda g: -secs[g].sum())          # the main group keeps the label
        for k, g in enumerate(groups):
            lab = label if k == 0 else names()
            for j in g:
                new_label[idx[j]] = lab
        _assign_rest(segments, new_label, label, [[idx[j] for j in g] for g in groups])
    return relabel(diar, segments, new_label)


def _viterbi(scores: np.ndarray, penalty: float) -> np.ndarray:
    """Best state per row of ``scores`` (windows x speakers) when every change of state costs ``penalty``."""
    n, k = scores.shape
    total = scores[0].astype(np.float64)
    back = np.zeros((n, k), dtype=np.int64)
    for t in range(1, n):
        best = int(total.argmax())
        switch = total[best] - penalty
        stay = total >= switch
        back[t] = np.where(stay, np.arange(k), best)
        total = np.where(stay, total, switch) + scores[t]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(total.argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _window_embeddings(audio: np.ndarray, windows: list[tuple[float, float]], embedder,
                       cache: dict | None = None, *, chunk: int = 256) -> np.ndarray:
    """Unit CAM++ embeddings of ``windows`` ((start, length) in s) of ``audio``; a row of zeros where
    none could be made. ``cache`` (keyed by window) saves recomputing the windows of an unchanged turn."""

    cache = {} if cache is None else cache
    keys = [(int(round(t * SAMPLE_RATE)), int(round(n * SAMPLE_RATE))) for t, n in windows]
    todo = sorted({k for k in keys if k not in cache})
    for i in range(0, len(todo), chunk):            # fbank of a chunk at a time: memory stays small
        part = todo[i:i + chunk]
        if hasattr(embedder, "embed_spans"):      # pooled from the file's CAM++ frames (load.PooledSpans)
            embs = embedder.embed_spans([(a / SAMPLE_RATE, (a + n) / SAMPLE_RATE) for a, n in part])
        else:
            embs = embedder.embed_features([embedder.fbank(audio[a: a + n]) for a, n in part])
        for k, e in zip(part, embs):
            norm = float(np.linalg.norm(e))
            cache[k] = (e / norm).astype(np.float32) if np.isfinite(norm) and norm > 0 else None
    dim = next((cache[k].shape[0] for k in keys if cache[k] is not None), 192)
    return np.stack([cache[k] if cache[k] is not None else np.zeros(dim, np.float32) for k in keys]) \
        if keys else np.zeros((0, dim), np.float32)


def speech_windows(diar: Diarization, audio: np.ndarray, embedder, cache: dict | None = None) -> Windows:
    """Windows over every exclusive turn of at least ``reread_min`` s (see :class:`Windows`)."""
    win, hop = REFINE["reseg_window"], REFINE["reseg_hop"]
    spans: list[tuple[float, float]] = []
    for seg, _, _ in diar.exclusive.itertracks(yield_label=True):
        if seg.duration < REFINE["reread_min"]:
            continue
        if seg.duration < win:
            spans.append((float(seg.start), float(seg.duration)))
        else:
            spans.extend((float(t), win) for t in np.arange(seg.start, seg.end - win + 1e-6, hop))
    embs = _window_embeddings(audio, spans, embedder, cache)
    return Windows(np.array([t for t, _ in spans], dtype=np.float64),
                   np.array([n for _, n in spans], dtype=np.float64), embs)


def resegment(diar: Diarization, audio: np.ndarray, embedder, *, chunk: int = 256,
              cache: dict | None = None) -> Diarization:
    """Find the speaker changes pyannote's segmentation missed inside long turns.

    In quick exchanges between two similar voices, the segmentation model can run several replies
    into one turn (AMI dev00: 13 s of alternating speakers as one). Each turn of at least
    ``reseg_min_turn`` s is re-read with CAM++ windows (``reseg_window`` s every ``reseg_hop`` s),
    each scored against the file's local speakers; the best path through the turn, where a change
    of speaker costs ``reseg_penalty`` of cosine similarity, gives the speaker of each stretch.
    Nothing changes where the turn's own speaker stays the best match. Needs two local speakers.
    """
    known = [s for s in diar.speakers if s.embedding is not None]
    if len(known) < 2 or not diar.segments:
        return diar
    names = [s.label for s in known]
    cents = np.stack([s.embedding for s in known]).astype(np.float32)
    win, hop, penalty = REFINE["reseg_window"], REFINE["reseg_hop"], REFINE["reseg_penalty"]
    turns = [(seg.start, seg.end, lab) for seg, _, lab in diar.exclusive.itertracks(yield_label=True)
             if seg.duration >= REFINE["reseg_min_turn"] and lab in names]
    starts = [np.arange(a, b - win + 1e-6, hop) for a, b, _ in turns]
    flat = [(float(t), win) for st in starts for t in st]
    if not flat:
        return diar
    embs = _window_embeddings(audio, flat, embedder, cache, chunk=chunk)
    # per turn: runs (start, end, label, window rows, the turn's label)
    runs: list[tuple[float, float, str, np.ndarray, str]] = []
    row = 0
    for (a, b, lab), st in zip(turns, starts):
        rows = np.arange(row, row + len(st))
        row += len(st)
        path = _viterbi(embs[rows] @ cents.T, penalty)
        if not (path == names.index(lab)).all():
            runs.extend(_runs_of(path, st + win / 2, rows, a, b, names, lab))
    if not runs:
        return diar
    return _apply_runs(diar, runs, embs)


def _runs_of(path: np.ndarray, centres: np.ndarray, rows: np.ndarray, a: float, b: float, names: list[str],
             old: str) -> list[tuple[float, float, str, np.ndarray, str]]:
    """A turn [a, b) of speaker ``old`` cut where the Viterbi ``path`` over its windows changes state."""
    cuts = [a] + [float((centres[i] + centres[i + 1]) / 2) for i in range(len(path) - 1)
                  if path[i] != path[i + 1]] + [b]
    firsts = [0] + [i + 1 for i in range(len(path) - 1) if path[i] != path[i + 1]] + [len(path)]
    return [(cuts[j], cuts[j + 1], names[path[firsts[j]]], rows[firsts[j]:firsts[j + 1]], old)
            for j in range(len(cuts) - 1)]


def _apply_runs(diar: Diarization, runs: list[tuple[float, float, str, np.ndarray, str]],
                embs: np.ndarray) -> Diarization:
    """``diar`` with each run (start, end, label, window rows, the turn's old label) given to its
    label: segments are cut at the runs' edges and embedded from their windows; overlapped turns kept."""
    from pyannote.core import Annotation, Segment, Timeline

    segs: list[SpeechSegment] = []
    for g in diar.segments:
        inside = [r for r in runs if r[1] > g.start and r[0] < g.end]
        if not inside or (len(inside) == 1 and inside[0][2] == g.label):
            segs.append(g)
            continue
        for a, b, lab, rows, _ in inside:
            a, b = max(a, g.start), min(b, g.end)
            if b - a <= 0:
                continue
            c = embs[rows].sum(axis=0)
            n = float(np.linalg.norm(c))
            segs.append(SpeechSegment(a, b, lab, (c / n).astype(np.float32) if n > 0 else None))
    exclusive = Annotation(uri=diar.exclusive.uri)
    for k, g in enumerate(segs):
        exclusive[Segment(g.start, g.end), k] = g.label
    # Turns: a stretch given to another speaker moves to that speaker's turns, except where that
    # speaker already talks (overlapped speech, which the exclusive view gives to one of the two):
    # there both turns stay as they were.
    spoken = {lab: diar.turns.label_timeline(lab, copy=True).support() for lab in diar.turns.labels()}
    for a, b, lab, _, old in runs:
        if lab == old:
            continue
        spoken.setdefault(lab, Timeline())
        free = Timeline([Segment(a, b)]).extrude(spoken[lab])
        spoken[old] = spoken.get(old, Timeline()).extrude(free)
        spoken[lab] = spoken[lab].union(free).support()
    turns = Annotation(uri=diar.turns.uri)
    for lab, tl in spoken.items():
        for k, seg in enumerate(tl):
            turns[seg, k] = lab
    return _rebuilt(diar, turns, exclusive.support(collar=0.0), segs)


def _label_factory(existing: list[str]):
    used = set(existing)
    counter = [0]

    def make() -> str:
        while f"SPEAKER_{counter[0]:02d}" in used:
            counter[0] += 1
        lab = f"SPEAKER_{counter[0]:02d}"
        used.add(lab)
        return lab

    return make


def _assign_rest(segments: list[SpeechSegment], new_label: dict[int, str], old: str,
                 groups: list[list[int]]) -> None:
    """Segments of a split speaker that were not part of the test go to the closest group: by
    embedding when they have one, else to the group of the nearest tested segment in time."""
    members = {k for g in groups for k in g}
    cents = []
    for g in groups:
        c = np.mean([segments[k].embedding for k in g], axis=0)
        cents.append(c / np.linalg.norm(c))
    for i, seg in enumerate(segments):
        if seg.label != old or i in members:
            continue
        if seg.embedding is not None:
            best = int(np.argmax([float(seg.embedding @ c) for c in cents]))
        else:
            mid = (seg.start + seg.end) / 2
            best = min(range(len(groups)), key=lambda gi: min(
                abs(mid - (segments[k].start + segments[k].end) / 2) for k in groups[gi]))
        new_label[i] = new_label[groups[best][0]]


def relabel(diar: Diarization, segments: list[SpeechSegment], new_label: dict[int, str]) -> Diarization:
    """A diarization whose exclusive turns take the segments' new labels; overlapped turns follow
    (a split speaker's turn takes, piece by piece, the label of the exclusive speech it covers, and
    the nearest one in time where it covers none). Speakers get utterance-level embeddings."""
    from pyannote.core import Annotation, Segment, Timeline

    segs = [SpeechSegment(g.start, g.end, new_label.get(i, g.label), g.embedding) for i, g in enumerate(segments)]
    split_from = {g.label for i, g in enumerate(segments) if new_label.get(i, g.label) != g.label}
    exclusive = Annotation(uri=diar.exclusive.uri)
    for k, g in enumerate(segs):
        exclusive[Segment(g.start, g.end), k] = g.label
    exclusive = exclusive.support(collar=0.0)

    families: dict[str, list[SpeechSegment]] = {}
    for old_seg, new_seg in zip(segments, segs):
        families.setdefault(old_seg.label, []).append(new_seg)
    turns = Annotation(uri=diar.turns.uri)
    k = 0
    for seg, _, label in diar.turns.itertracks(yield_label=True):
        if label not in split_from:
            turns[seg, k] = label
            k += 1
            continue
        family = [g for g in families.get(label, []) if g.end > seg.start and g.start < seg.end] \
            or families.get(label, [])
        covered = Timeline()
        for g in family:
            part = seg & Segment(g.start, g.end)
            if part and part.duration > 0:
                turns[part, k] = g.label
                k += 1
                covered.add(part)
        for gap in Timeline([seg]).extrude(covered.support()):
            if gap.duration <= 0 or not family:
                continue
            mid = (gap.start + gap.end) / 2
            near = min(family, key=lambda g: abs(mid - (g.start + g.end) / 2))
            turns[gap, k] = near.label
            k += 1
    return _rebuilt(diar, turns.support(collar=0.0), exclusive, segs)


def _rebuilt(diar: Diarization, turns: "Annotation", exclusive: "Annotation",
             segs: list[SpeechSegment]) -> Diarization:
    """``diar`` with new turns and segments; each speaker's embedding is the duration-weighted mean
    of its segments' (its old one when it has no embedded segment)."""
    speakers = []
    old = {s.label: s for s in diar.speakers}
    for label in turns.labels():
        mine = [g for g in segs if g.label == label and g.embedding is not None]
        if mine:
            w = np.array([min(g.seconds, REFINE["segment_max"]) for g in mine])
            c = (np.stack([g.embedding for g in mine]) * w[:, None]).sum(axis=0)
            emb = (c / np.linalg.norm(c)).astype(np.float32)
        else:
            emb = old[label].embedding if label in old else None
        speakers.append(LocalSpeaker(str(label), emb, float(exclusive.label_duration(label))))
    return Diarization(turns, exclusive, speakers, diar.duration, dict(diar.channel_owner),
                       diar.channel_levels, segs, diar.windows)


def split_by_known_voices(diar: Diarization, centroids: np.ndarray, threshold: float) -> Diarization:
    """Split a local speaker whose segments clearly belong to different voices already known to the
    registry (``centroids``: unit rows, one per voice, from the other takes). Helps short takes,
    where there are too few segments for :func:`refine` to tell two similar voices apart."""
    if centroids is None or len(centroids) < 2 or not diar.segments:
        return diar
    segments = diar.segments
    new_label = {i: g.label for i, g in enumerate(segments)}
    names = _label_factory(diar.labels)
    changed = False
    for label in diar.labels:
        idx = [i for i, g in enumerate(segments) if g.label == label and g.embedding is not None
               and g.seconds >= REFINE["known_seconds"]]
        votes: dict[int, list[int]] = {}
        for i in idx:
            sims = centroids @ segments[i].embedding
            order = np.argsort(-sims)
            if sims[order[0]] >= threshold and sims[order[0]] - sims[order[1]] >= REFINE["known_margin"]:
                votes.setdefault(int(order[0]), []).append(i)
        if len(votes) < 2:
            continue
        groups = sorted(votes.values(), key=lambda g: -sum(segments[i].seconds for i in g))
        for k, g in enumerate(groups):
            lab = label if k == 0 else names()
            for i in g:
                new_label[i] = lab
        _assign_rest(segments, new_label, label, groups)
        changed = True
    return relabel(diar, segments, new_label) if changed else diar
