"""The picture step of one take: keyframes embedded during the single decoding pass, tagged per shot,
and stored as the index's ``frames`` collection.

:class:`PictureStep` puts a :class:`indexer.picture.keyframes.KeyframeSink` into the decoding pass; its
keyframes are embedded in batches as they are decided (pictures are dropped once embedded) and tagged
per shot from an editable vocabulary (:func:`indexer.picture.tags.load_vocabulary`). :func:`store_frames`
writes one record per embedded frame to the ``frames`` collection (id ``<take_id>-f<frame:07d>``;
metadata take_id, shot, frame, seconds, tc, tags), through the store.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import ModelError, UsageError
from ..records import Shot
from ..timecode import Clock
from ..models.clip import resolve_clip
from .embedder import DEFAULT_BATCH, META_KEY, ClipEmbedder
from .keyframes import Keyframe, KeyframePolicy, KeyframeSink, shot_of
from .tags import ShotTag, Tagger, load_vocabulary, tag_key

COLLECTION = "frames"
# A keyframe whose 32x18 grey thumbnail differs from the last embedded one's by less than this in every
# block (0..1) shows the same picture (locked-off camera, nothing moving): its vector is reused.
SAME_PICTURE = 0.02


@dataclass
class FrameRecord:
    """One embedded frame, as stored (the lead computes TC from the take's Clock; store_frames does)."""

    take_id: str
    shot: int
    frame: int
    seconds: float
    vector: np.ndarray
    reason: str = ""

    @property
    def id(self) -> str:
        return frame_id(self.take_id, self.frame)


def frame_id(take_id: str, frame: int) -> str:
    return f"{take_id}-f{frame:07d}"


@dataclass
class PictureResult:
    frames: list[FrameRecord]
    tags: dict[int, list[ShotTag]]         # shot index -> tags
    model: dict                            # ClipEmbedder.describe()
    policy: str                            # KeyframePolicy.key()
    vocabulary: str | None                 # Vocabulary.key()
    converted: int = 0                     # pictures converted for the keyframe sink
    embed_seconds: float = 0.0
    reused: int = 0                        # keyframes that showed the same picture as the one before

    def settings(self) -> dict:
        """What to record in the take's ``models`` (catalog) under "clip"."""
        return {**self.model, "keyframes": self.policy, "vocabulary": self.vocabulary, "frames": len(self.frames),
                "same_picture": SAME_PICTURE}


class PictureStep:
    """The picture step of one take, riding the single decoding pass.

    Usage (the detector must come before ``step.sink`` so the sink sees each cut as it is found)::

        step = PictureStep(embedder, info.rate, detector=detector, take_id=take_id)
        decoded = decode(info, sinks=[detector, step.sink])
        shots = detector.finish(decoded.frames)
        result = step.finish(shots, decoded.frames)

    With shots known before the pass (resume, ``--visual-only``) pass ``shots=`` instead of ``detector``.
    """

    def __init__(self, embedder: ClipEmbedder, rate: Fraction, *, take_id: str = "",
                 policy: KeyframePolicy | None = None, detector=None, shots: list[Shot] | None = None,
                 tagger: Tagger | None = None, same_picture: float = SAME_PICTURE):
        self.embedder = embedder
        self.rate = Fraction(rate)
        self.take_id = take_id
        self.policy = policy or KeyframePolicy()
        self.tagger = tagger
        self.same_picture = same_picture
        self._frames: list[tuple[int, str]] = []
        self._vectors: list[np.ndarray] = []
        self._ref: tuple[np.ndarray, np.ndarray] | None = None     # (signature, vector) of the last embedded
        self.reused = 0
        self.embed_seconds = 0.0
        embedder._load()
        self.sink = KeyframeSink(self.rate, frame_size=embedder.frame_size, policy=self.policy, detector=detector,
                                 shots=shots, on_frames=self._embed, batch=embedder.batch_size)

    @staticmethod
    def _signature(image: np.ndarray) -> np.ndarray:
        """A 32 x 18 grey thumbnail (block means, 0..1): what "the same picture" is judged on."""
        h, w = image.shape[:2]
        ys = np.unique(np.linspace(0, h, 19).astype(int))
        xs = np.unique(np.linspace(0, w, 33).astype(int))
        grey = image.mean(axis=2, dtype=np.float32)
        rows = np.add.reduceat(grey, ys[:-1], axis=0) / np.maximum(np.diff(ys), 1)[:, None]
        return (np.add.reduceat(rows, xs[:-1], axis=1) / np.maximum(np.diff(xs), 1)[None, :]) / 255.0

    def _embed(self, keyframes: list[Keyframe]) -> None:
        """Embed a batch of keyframes; a keyframe showing the same picture as the last embedded one
        (locked-off shot, nothing moving) reuses its vector instead of running the model again."""
        if not keyframes:
            return
        t0 = time.perf_counter()
        keyframes = sorted(keyframes, key=lambda k: k.frame)
        ref = self._ref
        plan: list[int] = []               # per keyframe: index into `fresh`, or -1 = the previous reference
        fresh: list[np.ndarray] = []
        ref_sig, ref_src = (ref[0], -1) if ref is not None else (None, None)
        for k in keyframes:
            sig = self._signature(k.image)
            if ref_sig is not None and sig.shape == ref_sig.shape \
                    and float(np.abs(sig - ref_sig).max()) < self.same_picture:
                plan.append(ref_src)
                self.reused += 1
            else:
                plan.append(len(fresh))
                fresh.append(k.image)
                ref_sig, ref_src = sig, len(fresh) - 1
        vecs = self.embedder.embed_images(fresh) if fresh else np.zeros((0, 0), dtype=np.float32)
        rows = [vecs[j] if j >= 0 else ref[1] for j in plan]
        self._ref = (ref_sig, vecs[ref_src] if ref_src is not None and ref_src >= 0 else ref[1])
        self.embed_seconds += time.perf_counter() - t0
        for k in keyframes:
            self._frames.append((k.frame, k.reason))
            k.image = None                 # the picture is no longer needed
        self._vectors.append(np.stack(rows))

    def finish(self, shots: list[Shot], total_frames: int | None = None) -> PictureResult:
        self._embed(self.sink.finish(shots, total_frames))
        firsts = [s.first_frame for s in shots]
        vectors = np.concatenate(self._vectors) if self._vectors else np.zeros((0, 0), dtype=np.float32)
        order = sorted(range(len(self._frames)), key=lambda i: self._frames[i][0])
        records = [FrameRecord(self.take_id, shot_of(firsts, self._frames[i][0]), self._frames[i][0],
                               float(Fraction(self._frames[i][0]) / self.rate), vectors[i], self._frames[i][1])
                   for i in order]
        tags: dict[int, list[ShotTag]] = {}
        if self.tagger is not None and records:
            by_shot: dict[int, list[np.ndarray]] = {}
            for r in records:
                by_shot.setdefault(r.shot, []).append(r.vector)
            keys = sorted(by_shot)
            means = np.stack([np.mean(by_shot[k], axis=0) for k in keys])
            for k, t in zip(keys, self.tagger.tag(means)):
                tags[k] = t
        return PictureResult(records, tags, self.embedder.describe(), self.policy.key(),
                             self.tagger.vocabulary.key() if self.tagger else None,
                             converted=self.sink.converted, embed_seconds=self.embed_seconds, reused=self.reused)


def load_for_indexing(model: str | None = None, pretrained: str | None = None,
                      checkpoint: str | os.PathLike | None = None, *, device: str = "auto",
                      batch_size: int = DEFAULT_BATCH, threads: int = 0,
                      vocabulary: str | os.PathLike | None = None) -> tuple[ClipEmbedder | None, Tagger | None, str | None]:
    """For the start of an index run: (embedder, tagger, None), or (None, None, the one sentence to show
    once) when the weights are absent, so indexing goes on without the picture step. A bad vocabulary
    file or a broken checkpoint still raises."""
    try:
        source = resolve_clip(model, pretrained, checkpoint)
    except ModelError as exc:
        if checkpoint:
            raise
        return None, None, exc.message
    embedder = ClipEmbedder(source, device=device, batch_size=batch_size, threads=threads)
    tagger = Tagger(embedder, load_vocabulary(vocabulary))
    return embedder, tagger, None


def picture_of_take(index, take_id: str, embedder: ClipEmbedder, *, tagger: Tagger | None = None,
                    policy: KeyframePolicy | None = None, progress=None) -> PictureResult:
    """The picture step alone for a take already indexed (``--visual-only``): its shots come from the
    catalog, so only the planned keyframes are converted; no sound is decoded and nothing is redone.
    Stores the frame vectors; returns the result (tags for the catalog, settings for ``models``)."""
    from ..media import decode
    from ..records import MediaInfo

    row = index.take_row(take_id)
    if row is None:
        raise UsageError(f"No take {take_id} in the index {index.path}.")
    info = MediaInfo.from_json(json.loads(row["info"]))
    if not info.has_video:
        return PictureResult([], {}, embedder.describe(), (policy or KeyframePolicy()).key(),
                             tagger.vocabulary.key() if tagger else None)
    shots = index.shots(take_id)
    total = int(row["frames"] or info.frames or 0)
    if not shots and total:
        shots = [Shot(0, 0, total - 1)]
    step = PictureStep(embedder, info.rate, take_id=take_id, policy=policy, shots=shots, tagger=tagger)
    decoded = decode(info, audio=False, sinks=[step.sink], progress=progress)
    result = step.finish(shots, decoded.frames or total or None)
    store_frames(index, take_id, info, result)
    return result



def store_frames(index, take_id: str, info_or_clock, result: PictureResult) -> int:
    """Write one take's frame vectors to the ``frames`` collection (replacing any earlier ones of that
    take; ids are deterministic, so a redo is an upsert). Call before the take's catalog commit.
    ``info_or_clock`` is the take's MediaInfo or its Clock. Returns the number of records."""
    clock: Clock = info_or_clock if isinstance(info_or_clock, Clock) else info_or_clock.clock
    index.check_embedder(COLLECTION, result.model)
    if index.meta(META_KEY) is None:
        index.set_meta(META_KEY, json.dumps({k: v for k, v in result.model.items() if k != "device"}))
    recs = result.frames
    if not recs:
        index.vectors.delete_take(COLLECTION, take_id)
        return 0
    ids, vecs, metas = [], [], []
    for r in recs:
        tags = result.tags.get(r.shot, [])
        meta: dict[str, Any] = {"take_id": take_id, "shot": int(r.shot), "frame": int(r.frame),
                                "seconds": round(float(r.seconds), 4), "tc": clock.tc(r.frame), "reason": r.reason,
                                "tags": ",".join(t.slug for t in tags)}
        for t in tags:
            meta[tag_key(t.slug)] = True
        ids.append(frame_id(take_id, r.frame))
        vecs.append(np.asarray(r.vector, dtype=np.float32))
        metas.append(meta)
    index.vectors.replace_take(COLLECTION, take_id, ids, np.stack(vecs), metas)
    return len(ids)


def delete_frames(index, take_id: str) -> None:
    index.vectors.delete_take(COLLECTION, take_id)


def shot_tag_rows(take_id: str, result: PictureResult) -> list[tuple[str, int, str, str, float]]:
    """Rows for the catalog table ``shot_tags(take_id, shot, grp, label, score)`` (see the report)."""
    return [(take_id, shot, t.group, t.label, round(t.score, 4))
            for shot, tags in sorted(result.tags.items()) for t in tags]
