"""pyannote's speaker-diarization pipeline, without ``pyannote.audio``: the same steps and the same
arithmetic as ``pyannote.audio.pipelines.SpeakerDiarization`` (4.0) with agglomerative clustering,
over networks given as plain functions, so that the speaker step needs neither ``pyannote.audio``
(whose import pulls in Lightning, torchmetrics and torchvision: some 7 s) nor, with the ONNX
networks (:mod:`indexer.speakers.nets`), torch (3-4 s to import).

Steps, as pyannote does them (its names):

1. **segmentation**: the segmentation model on 10 s chunks every ``step`` seconds (the last chunk
   padded with zeros); its powerset output made into 0/1 activity of up to 3 local speakers;
2. **speaker_counting**: how many speakers speak in each output frame (the chunks' activity summed,
   averaged over the chunks that cover the frame, rounded);
3. **embeddings**: one speaker embedding per (chunk, local speaker), on the speaker's frames of the
   chunk without overlapped speech (all its frames when that leaves too little);
4. **clustering**: agglomerative clustering (centroid linkage, cosine) of the embeddings of local
   speakers who speak alone for at least a fifth of their chunk; clusters smaller than
   ``min_cluster_size`` joined to the nearest large one; every local speaker then assigned to its
   nearest centroid;
5. **discrete_diarization**: each frame given the ``count`` most active clusters;
6. **turns**: frames made into turns, speakers named SPEAKER_00, SPEAKER_01... in order of their
   cluster, and the exclusive diarization (at most one speaker a frame) the same way.

Where this file departs from pyannote's code it does so only in how the work is arranged, never
in the result: the fbank features of every chunk are cut from one fbank of the whole file (chunks
start on a multiple of the 10 ms hop, and Kaldi fbank is computed frame by frame), and the
embeddings of the whole file are batched together instead of twelve at a time. One departure is asked
for: given where a voice activity detector heard speech, chunks far from any are not run at all
(:func:`chunks_to_run`); they count as missing, as pyannote's aggregation counts frames no chunk covers.
``tests/test_speaker_engine.py`` holds the turns equal to ``pyannote.audio``'s on real speech.

Only numpy, scipy and pyannote.core are imported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Callable

import numpy as np

SAMPLE_RATE = 16000
CHUNK_SECONDS = 10.0                 # segmentation-3.0's chunk
CHUNK_SAMPLES = 160000
LOCAL_SPEAKERS = 3                   # segmentation-3.0: up to 3 speakers a chunk, at most 2 at once
MAX_AT_ONCE = 2
# segmentation-3.0's output frames (pyannote's Model.receptive_field for this model)
FRAME_START, FRAME_DURATION, FRAME_STEP = 0.0, 0.0619375, 0.016875
FBANK_HOP = 160                      # samples per fbank frame (10 ms)
MIN_ACTIVE_RATIO = 0.2               # pyannote's filter_embeddings default
# samples: a chunk is run when the detector's speech comes this close to it (3 s), so silences under 16 s skip nothing.
# Chosen on the tuning data only (scripts/eval_diarization.py --tuning-only): at 0.5 s one AMI train file's turns changed
# (trn07, DER 57.14 -> 57.68 %; its quiet speaker is mostly below the detector's threshold); at 3 s and 10 s every
# figure was the same as with every chunk run. Then the held-out files once, at 3 s: every figure the same (sample.wav
# 5.21 %, AMI dev+test 43.29 %, cross-take identity 94.8 %).
SPEECH_MARGIN = 48000


def powerset_mapping(classes: int = LOCAL_SPEAKERS, at_once: int = MAX_AT_ONCE) -> np.ndarray:
    """(powerset classes, classes) 0/1: which speakers each powerset class holds, in pyannote's order
    ({}, {0}, {1}, {2}, {0, 1}, {0, 2}, {1, 2} for 3 and 2)."""
    sets = [s for size in range(at_once + 1) for s in combinations(range(classes), size)]
    out = np.zeros((len(sets), classes), dtype=np.float32)
    for i, s in enumerate(sets):
        out[i, list(s)] = 1.0
    return out


def chunks_to_run(total: int, step: int, speech: list[tuple[int, int]] | None) -> np.ndarray:
    """Which of ``total`` chunks (``step`` samples apart, 10 s each) to run the segmentation on: all without
    ``speech``; else those that a speech region ((start, end) samples) reaches within ``SPEECH_MARGIN``.

    A chunk no region reaches is wholly silence to the voice activity detector (faster-whisper's, whose probabilities
    the transcription computed: :func:`indexer.speech.speech_regions`); the segmentation would find no one there.
    Every frame within ``SPEECH_MARGIN`` of a region is covered only by chunks that are run, so its activity, count
    and speakers are the same as when every chunk is run; only frames further into the detector's silence are
    averaged over fewer chunks, and only speech the detector missed there can be lost (none is transcribed there)."""
    run = np.ones(total, dtype=bool)
    if speech is None:
        return run
    run[:] = False
    for a, b in speech:
        lo, hi = a - SPEECH_MARGIN, b + SPEECH_MARGIN          # chunk c spans [c * step, c * step + CHUNK_SAMPLES)
        first = max(0, -(-(lo - CHUNK_SAMPLES + 1) // step))
        last = min(total - 1, (hi - 1) // step) if hi > 0 else -1
        if first <= last:
            run[first: last + 1] = True
    return run


@dataclass
class Params:
    """The pipeline's hyper-parameters (pyannote's names)."""
    threshold: float = 0.70
    min_cluster_size: int = 12
    method: str = "centroid"
    min_duration_off: float = 0.0

    @classmethod
    def of(cls, params: dict) -> "Params":
        c = params.get("clustering", {})
        return cls(threshold=float(c.get("threshold", 0.70)), min_cluster_size=int(c.get("min_cluster_size", 12)),
                   method=str(c.get("method", "centroid")),
                   min_duration_off=float(params.get("segmentation", {}).get("min_duration_off", 0.0)))


@dataclass
class Result:
    turns: Any                       # pyannote.core.Annotation, overlap included
    exclusive: Any                   # one speaker at a time
    centroids: np.ndarray            # (speakers, dim), rows in the order of turns.labels()


class Engine:
    """Diarizes one 16 kHz mono waveform.

    ``segment(chunks)``: (B, 1, 160000) float32 -> (B, frames, 7) powerset scores (any monotone
    scores: only their argmax is used). ``embed(file_audio, chunk_starts, masks)``: the embeddings
    (len(masks), dim) of the chunks' masked speech (see :class:`ChunkEmbeddings`), NaN rows for too
    little speech.
    """

    def __init__(self, segment: Callable[[np.ndarray], np.ndarray], embed, *, params: dict,
                 step: float = 0.1, batch_size: int = 4, exclude_overlap: bool = True,
                 min_embed_seconds: float = 0.25):
        self.segment = segment
        self.embed = embed
        self.params = Params.of(params)
        self.step = step * CHUNK_SECONDS              # seconds between chunks
        self.batch_size = batch_size
        self.exclude_overlap = exclude_overlap
        self.min_embed_seconds = min_embed_seconds
        self._mapping = powerset_mapping()
        self.last_skipped = 0                         # chunks the last call did not run (no speech near them)

    def instantiate(self, params: dict) -> None:
        """New hyper-parameters (pyannote's name for it; the evaluation's sweeps use it)."""
        self.params = Params.of(params)

    @property
    def embedder(self):
        """The CAM++ embedder the embedding step runs."""
        return self.embed.embedder

    # -------------------------------------------------------------- 1. segmentation
    def segmentations(self, audio: np.ndarray, hook=None, speech: list[tuple[int, int]] | None = None):
        """(chunks, frames, 3) 0/1 activity on pyannote's sliding window of chunks, or None when ``speech`` leaves
        no chunk to run. ``speech`` ((start, end) samples, e.g. faster-whisper's VAD): a chunk that no region
        reaches (within ``SPEECH_MARGIN``) is not run, and its rows are NaN: missing, so a frame's speaker count is
        the average of the chunks run over it, and the chunk has no local speaker (:func:`chunks_to_run`)."""
        from pyannote.core import SlidingWindow, SlidingWindowFeature

        step = round(self.step * SAMPLE_RATE)
        n = len(audio)
        full = 0 if n < CHUNK_SAMPLES else (n - CHUNK_SAMPLES) // step + 1
        last = n < CHUNK_SAMPLES or (n - CHUNK_SAMPLES) % step > 0
        total = full + int(last)
        run = chunks_to_run(total, step, speech)
        self.last_skipped = total - int(run.sum())
        if not run.any():
            return None
        if hook is not None:
            hook("segmentation", None, completed=0, total=total)
        data = None

        def chunk(i: int) -> np.ndarray:
            if i < full:
                return audio[i * step: i * step + CHUNK_SAMPLES]
            tail = np.zeros(CHUNK_SAMPLES, dtype=np.float32)          # the last chunk, padded with zeros
            rest = audio[full * step:]
            tail[:len(rest)] = rest
            return tail
        todo = np.flatnonzero(run)
        for c in range(0, len(todo), self.batch_size):
            idx = todo[c: c + self.batch_size]
            batch = np.stack([chunk(int(i)) for i in idx])[:, None, :]
            out = self._multilabel(self.segment(np.ascontiguousarray(batch, dtype=np.float32)))
            if data is None:                  # chunks not run are missing (NaN), as pyannote's aggregation knows them
                data = np.full((total,) + out.shape[1:], np.nan, dtype=out.dtype)
            data[idx] = out
            if hook is not None:
                hook("segmentation", None, completed=int(idx[-1]) + 1, total=total)
        return SlidingWindowFeature(data, SlidingWindow(start=0.0, duration=CHUNK_SECONDS, step=self.step))

    def _multilabel(self, scores: np.ndarray) -> np.ndarray:
        """pyannote's Powerset.to_multilabel (hard): the argmax class's speakers."""
        return self._mapping[np.argmax(scores, axis=-1)]

    # -------------------------------------------------------------- 2. counting
    @staticmethod
    def frames():
        from pyannote.core import SlidingWindow

        return SlidingWindow(start=FRAME_START, duration=FRAME_DURATION, step=FRAME_STEP)

    @staticmethod
    def aggregate(scores, frames, *, skip_average: bool):
        """pyannote's Inference.aggregate with no warm-up and no Hamming window, missing = 0."""
        from pyannote.core import SlidingWindow, SlidingWindowFeature

        data = scores.data
        num_chunks, per_chunk, classes = data.shape
        chunks = scores.sliding_window
        frames = SlidingWindow(start=chunks.start, duration=frames.duration, step=frames.step)
        num_frames = frames.closest_frame(chunks.start + chunks.duration + (num_chunks - 1) * chunks.step
                                          + 0.5 * frames.duration) + 1
        total = np.zeros((num_frames, classes), dtype=np.float32)
        covered = np.zeros((num_frames, classes), dtype=np.float32)
        seen = np.zeros((num_frames, classes), dtype=np.float32)
        for c in range(num_chunks):
            score = data[c]
            mask = 1 - np.isnan(score)
            score = np.nan_to_num(score, nan=0.0)
            a = frames.closest_frame(chunks[c].start + 0.5 * frames.duration)
            total[a: a + per_chunk] += score * mask
            covered[a: a + per_chunk] += mask
            seen[a: a + per_chunk] = np.maximum(seen[a: a + per_chunk], mask)
        average = total if skip_average else total / np.maximum(covered, 1e-12)
        average[seen == 0.0] = 0.0
        return SlidingWindowFeature(average, frames)

    def count(self, segmentations):
        from pyannote.core import SlidingWindowFeature

        summed = SlidingWindowFeature(np.sum(segmentations.data, axis=-1, keepdims=True), segmentations.sliding_window)
        count = self.aggregate(summed, self.frames(), skip_average=False)
        count.data = np.rint(count.data).astype(np.uint8)
        return count

    # -------------------------------------------------------------- 3. embeddings
    def embeddings(self, audio: np.ndarray, segmentations, hook=None) -> np.ndarray:
        """(chunks, 3, dim): pyannote's get_embeddings (``exclude_overlap`` as configured); an embedding
        step with a ``whole(audio, segmentations, hook)`` method makes them all itself."""
        if hasattr(self.embed, "whole"):
            return self.embed.whole(audio, segmentations, hook)
        data = segmentations.data
        num_chunks, num_frames, speakers = data.shape
        if self.exclude_overlap:
            min_frames = math.ceil(num_frames * round(self.min_embed_seconds * SAMPLE_RATE) / CHUNK_SAMPLES)
            clean = data * (1.0 * (np.sum(data, axis=2, keepdims=True) < 2))
        else:
            min_frames = -1
            clean = data
        masks = np.nan_to_num(data, nan=0.0).astype(np.float32)
        clean = np.nan_to_num(clean, nan=0.0).astype(np.float32)
        use_clean = clean.sum(axis=1) > min_frames                          # (chunks, speakers)
        used = np.where(use_clean[:, None, :], clean, masks)                # (chunks, frames, speakers)
        starts = [round(segmentations.sliding_window[c].start * SAMPLE_RATE) for c in range(num_chunks)]
        if hook is not None:
            hook("embeddings", None, completed=0, total=1)
        flat = self.embed(audio, starts, used.transpose(0, 2, 1))          # (chunks * speakers, dim)
        if hook is not None:
            hook("embeddings", None, completed=1, total=1)
        return flat.reshape(num_chunks, speakers, -1)

    # -------------------------------------------------------------- 4. clustering
    def cluster(self, embeddings: np.ndarray, segmentations) -> tuple[np.ndarray, np.ndarray]:
        """pyannote's AgglomerativeClustering (no number of speakers given): (hard clusters (chunks,
        speakers), centroids)."""
        from scipy.cluster.hierarchy import fcluster, linkage
        from scipy.spatial.distance import cdist

        data = segmentations.data
        num_chunks, num_frames, speakers = data.shape
        single = np.sum(data, axis=2, keepdims=True) == 1
        clean_frames = np.sum(data * single, axis=1)
        active = clean_frames >= MIN_ACTIVE_RATIO * num_frames
        valid = ~np.any(np.isnan(embeddings), axis=2)
        chunk_idx, speaker_idx = np.where(active * valid)
        train = embeddings[chunk_idx, speaker_idx]
        n = train.shape[0]
        if n < 2:                                                  # max_clusters < 2 in pyannote
            with np.errstate(invalid="ignore", divide="ignore"):
                centroids = np.mean(train, axis=0, keepdims=True) if n else np.full((1, embeddings.shape[2]), np.nan)
            return np.zeros((num_chunks, speakers), dtype=np.int8), centroids
        p = self.params
        min_cluster_size = min(p.min_cluster_size, max(1, round(0.1 * n)))
        x = train.copy()
        if p.method in ("centroid", "median", "ward"):
            with np.errstate(divide="ignore", invalid="ignore"):
                x /= np.linalg.norm(x, axis=-1, keepdims=True)
            dendrogram = linkage(x, method=p.method, metric="euclidean")
        else:
            dendrogram = linkage(x, method=p.method, metric="cosine")
        clusters = fcluster(dendrogram, p.threshold, criterion="distance") - 1
        unique, counts = np.unique(clusters, return_counts=True)
        large = unique[counts >= min_cluster_size]
        if len(large) == 0:
            # pyannote asks for at least one cluster (min_clusters = 1): it looks for the cut of the
            # dendrogram nearest the threshold that gives one large cluster
            work = np.copy(dendrogram)
            work[:, 2] = np.arange(n - 1)
            for iteration in np.argsort(np.abs(dendrogram[:, 2] - p.threshold)):
                if work[iteration, 3] < min_cluster_size:
                    continue
                clusters = fcluster(work, iteration, criterion="distance") - 1
                unique, counts = np.unique(clusters, return_counts=True)
                large = unique[counts >= min_cluster_size]
                if len(large) == 1:
                    break
        if len(large) == 0:
            clusters[:] = 0
        else:
            small = unique[counts < min_cluster_size]
            if len(small):
                large_c = np.vstack([np.mean(x[clusters == k], axis=0) for k in large])
                small_c = np.vstack([np.mean(x[clusters == k], axis=0) for k in small])
                for s, l in enumerate(np.argmin(cdist(large_c, small_c, metric="cosine"), axis=0)):
                    clusters[clusters == small[s]] = large[l]
                _, clusters = np.unique(clusters, return_inverse=True)
        # every local speaker to its nearest centroid (centroids of the raw, unnormalised embeddings)
        k = int(np.max(clusters)) + 1
        centroids = np.vstack([np.mean(train[clusters == j], axis=0) for j in range(k)])
        distance = cdist(embeddings.reshape(num_chunks * speakers, -1), centroids, metric="cosine")
        soft = 2 - distance.reshape(num_chunks, speakers, k)
        return np.argmax(soft, axis=2), centroids

    # -------------------------------------------------------------- 5. reconstruction
    def reconstruct(self, segmentations, hard: np.ndarray, count):
        from pyannote.core import SlidingWindowFeature

        data = segmentations.data
        num_chunks, num_frames, _ = data.shape
        k_all = int(np.max(hard)) + 1
        clustered = np.full((num_chunks, num_frames, max(k_all, 0)), np.nan)
        for c in range(num_chunks):
            for k in np.unique(hard[c]):
                if k == -2:
                    continue
                clustered[c, :, k] = np.max(data[c][:, hard[c] == k], axis=1)
        activations = self.aggregate(SlidingWindowFeature(clustered, segmentations.sliding_window), count.sliding_window,
                                     skip_average=True)
        _, num_speakers = activations.data.shape
        most = int(np.max(count.data))
        if num_speakers < most:
            activations.data = np.pad(activations.data, ((0, 0), (0, most - num_speakers)))
        extent = activations.extent & count.extent
        activations = activations.crop(extent, return_data=False)
        count = count.crop(extent, return_data=False)
        order = np.argsort(-activations.data, axis=-1)
        binary = np.zeros_like(activations.data)
        n = count.data[:, 0].astype(np.int64)
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(order.shape[1])[None, :].repeat(order.shape[0], 0), axis=1)
        binary[rank < n[:, None]] = 1.0
        return SlidingWindowFeature(binary, activations.sliding_window)

    def annotation(self, discrete):
        """pyannote's Binarize(onset=offset=0.5) of the discrete diarization, labels = cluster numbers."""
        from pyannote.core import Annotation, Segment
        from pyannote.core.utils.generators import string_generator

        data = discrete.data
        num_frames, classes = data.shape
        frames = discrete.sliding_window
        starts = frames.start + np.arange(num_frames) * frames.step      # pyannote's frames[i].middle,
        middles = 0.5 * (starts + (starts + frames.duration))             # the same float operations
        out = Annotation()
        tracks = string_generator()
        for k in range(classes):
            track = next(tracks)
            on = data[:, k] > 0.5
            if not on.any():
                continue
            change = np.flatnonzero(np.diff(on.astype(np.int8))) + 1    # first frame of each new state
            bounds = np.concatenate([[0], change, [num_frames - 1]])
            states = on[np.concatenate([[0], change])]
            for i, state in enumerate(states):
                if state:
                    out[Segment(middles[bounds[i]], middles[bounds[i + 1]]), track] = k
        if self.params.min_duration_off > 0.0:
            out = out.support(collar=self.params.min_duration_off)
        return out

    # -------------------------------------------------------------- the whole
    def __call__(self, audio: np.ndarray, *, hook=None, uri: str = "take",
                 speech: list[tuple[int, int]] | None = None) -> Result:
        from pyannote.core import Annotation

        audio = np.ascontiguousarray(audio, dtype=np.float32)
        call = hook or (lambda *a, **k: None)
        seg = self.segmentations(audio, hook, speech)
        if seg is None:                       # no speech anywhere
            return Result(Annotation(uri=uri), Annotation(uri=uri), np.zeros((0, 192), dtype=np.float32))
        call("segmentation", seg)
        count = self.count(seg)
        call("speaker_counting", count)
        if np.nanmax(count.data) == 0.0:
            return Result(Annotation(uri=uri), Annotation(uri=uri), np.zeros((0, 192), dtype=np.float32))
        emb = self.embeddings(audio, seg, hook)
        call("embeddings", emb)
        hard, centroids = self.cluster(emb, seg)
        count.data = count.data.astype(np.int8)
        inactive = np.nansum(seg.data, axis=1) == 0          # chunks not run (NaN) included
        hard = hard.astype(np.int64)
        hard[inactive] = -2
        discrete = self.reconstruct(seg, hard, count)
        call("discrete_diarization", discrete)
        turns = self.annotation(discrete)
        turns.uri = uri
        count.data = np.minimum(count.data, 1).astype(np.int8)
        exclusive = self.annotation(self.reconstruct(seg, hard, count))
        exclusive.uri = uri
        labels = turns.labels()
        mapping = {label: f"SPEAKER_{i:02d}" for i, label in enumerate(labels)}
        turns = turns.rename_labels(mapping=mapping)
        exclusive = exclusive.rename_labels(mapping=mapping)
        if len(labels) > centroids.shape[0]:
            centroids = np.pad(centroids, ((0, len(labels) - centroids.shape[0]), (0, 0)))
        inverse = {name: label for label, name in mapping.items()}
        centroids = centroids[[inverse[name] for name in turns.labels()]]
        return Result(turns, exclusive, centroids)


class ChunkEmbeddings:
    """CAM++ embeddings of (chunk, local speaker) masked speech, as pyannote gets them through our
    ``CamppPyannoteEmbedding`` (:mod:`indexer.speakers.load`): the chunk's fbank frames where the
    speaker's mask (nearest-neighbour stretched to the fbank frames) is on, cropped to a multiple of
    ``bucket`` frames, mean-normalised, then embedded. The fbank of every chunk is cut from one fbank
    of the whole (zero-padded) file.

    ``fbank(wav, normalize=False)`` -> (frames, 80); ``embedder.embed_features(list)`` -> (N, dim).
    """

    def __init__(self, embedder, fbank: Callable, *, min_seconds: float = 0.25, bucket: int = 50):
        self.embedder = embedder
        self.fbank = fbank
        self.min_frames = int(min_seconds / 0.01)
        self.bucket = bucket

    BLOCK = 32                       # chunks whose features are held at once: memory stays bounded on long takes

    def __call__(self, audio: np.ndarray, starts: list[int], masks: np.ndarray) -> np.ndarray:
        """``masks`` (chunks, speakers, frames) for chunks starting at sample ``starts``."""
        num_chunks, speakers, seg_frames = masks.shape
        end = (max(starts) if starts else 0) + CHUNK_SAMPLES
        per_chunk = 1 + (CHUNK_SAMPLES - 400) // FBANK_HOP
        if all(s % FBANK_HOP == 0 for s in starts):
            whole = self._whole_fbank(audio, end)

            def chunk_fbank(c):
                a = starts[c] // FBANK_HOP
                return whole[a: a + per_chunk]
        else:                                   # a step that is not a multiple of 10 ms
            def chunk_fbank(c):
                wav = np.zeros(CHUNK_SAMPLES, dtype=np.float32)
                part = audio[starts[c]: starts[c] + CHUNK_SAMPLES]
                wav[:len(part)] = part
                return np.asarray(self.fbank(wav, normalize=False))
        out = []
        for first in range(0, num_chunks, self.BLOCK):
            feats = []
            for c in range(first, min(num_chunks, first + self.BLOCK)):
                raw = chunk_fbank(c)
                n = raw.shape[0]
                # torch.nn.functional.interpolate(mode="nearest"): floor(i * (in / out)) in float32
                pick = np.minimum(np.floor(np.arange(n, dtype=np.float32) * np.float32(seg_frames / n)).astype(np.int64),
                                  seg_frames - 1)
                for k in range(speakers):
                    on = masks[c, k][pick] > 0.5
                    sel = raw[on]
                    if sel.shape[0] < self.min_frames:
                        feats.append(raw[:0])
                        continue
                    if sel.shape[0] >= self.bucket:
                        sel = sel[: sel.shape[0] // self.bucket * self.bucket]
                    feats.append(sel - sel.mean(axis=0, keepdims=True))
            out.append(np.asarray(self.embedder.embed_features(feats), dtype=np.float32))
        return np.concatenate(out, axis=0) if out else np.zeros((0, 192), dtype=np.float32)

    def _whole_fbank(self, audio: np.ndarray, end: int) -> np.ndarray:
        """Raw fbank of ``audio`` zero-padded to ``end`` samples, without copying the whole take: the
        frames wholly inside the sound, then the few that reach into the padding."""
        n = len(audio)
        inside = 0 if n < 400 else 1 + (n - 400) // FBANK_HOP          # frames wholly inside the sound
        parts = [np.asarray(self.fbank(audio[: n], normalize=False))] if inside else []
        tail = np.zeros(end - inside * FBANK_HOP, dtype=np.float32)
        rest = audio[inside * FBANK_HOP:]
        tail[:len(rest)] = rest
        if len(tail) >= 400:
            parts.append(np.asarray(self.fbank(tail, normalize=False)))
        return np.concatenate(parts, axis=0)
