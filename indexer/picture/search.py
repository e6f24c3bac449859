"""Searching the picture: the index's frame vectors queried by a text and/or a still.

:func:`search_visual` embeds the query with the model that made the index's frame vectors, finds the
nearest frames and returns the best frame of each shot as a :class:`VisualHit` (a
:class:`indexer.records.Hit` of kind ``visual`` with the shot, the best frame and its timecode).
:func:`rerank_by_visual` fuses a visual query with the hits of another search (one rank fusion:
:mod:`indexer.ranking`); :func:`write_thumbnails` saves each hit's best frame as a JPEG.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import UsageError
from ..ranking import RRF_K, reciprocal_rank_fusion
from ..records import Hit, Shot
from .embedder import ClipEmbedder, embedder_for_index, unit
from .step import COLLECTION
from .tags import tag_key, tag_slug


@dataclass
class VisualQuery:
    text: str | None = None
    image: str | os.PathLike | np.ndarray | None = None     # a still (path) or an RGB array
    take_ids: list[str] | None = None                       # only these takes
    scene: str | None = None
    take: str | None = None
    tags: list[str] = field(default_factory=list)           # every one of these tags (slugs or labels)
    limit: int = 50
    candidates: int = 0                                     # frames fetched (0: automatic)


# A shot found by its picture: a Hit (kind "visual") whose shot span and TC are the shot's, with its
# best frame in shot/frame/frame_tc/frame_seconds and the shot's tags.
VisualHit = Hit


def query_vector(embedder: ClipEmbedder, text: str | None = None,
                 image: str | os.PathLike | np.ndarray | None = None) -> np.ndarray:
    """The unit query vector of a text, a still, or both (their normalised sum)."""
    parts = []
    if text and text.strip():
        parts.append(embedder.embed_texts([text.strip()])[0])
    if image is not None:
        parts.append(embedder.embed_images([image])[0] if isinstance(image, np.ndarray)
                     else embedder.embed_image_file(image))
    if not parts:
        raise UsageError("Give a text or a still to search the picture for, e.g. dailies search visual "
                         "\"night exterior, car headlights\" or --image still.png.")
    return unit(np.sum(parts, axis=0))


def _where(take_ids: list[str] | None, tags: Iterable[str]) -> dict | None:
    conds: list[dict] = []
    if take_ids is not None:
        conds.append({"take_id": {"$in": list(take_ids)}})
    for t in tags:
        conds.append({tag_key(tag_slug(t)): True})
    if not conds:
        return None
    return conds[0] if len(conds) == 1 else {"$and": conds}


def _query_take_ids(index, query: VisualQuery) -> list[str] | None:
    ids = list(query.take_ids) if query.take_ids is not None else None
    if query.scene or query.take:
        from ..search import LineQuery, take_filter

        found = take_filter(index, LineQuery(text="", scene=query.scene, take=query.take))
        ids = sorted(found if ids is None else found & set(ids))
    return ids


def search_visual(index, query: VisualQuery, embedder: ClipEmbedder | None = None) -> list[VisualHit]:
    """Shots whose frames are nearest the query, best first (one hit per shot: its best frame)."""
    total = index.vectors.count(COLLECTION)
    if total == 0:
        raise UsageError(f"The index {index.path} has no picture vectors yet; index with CLIP weights present "
                         "(`dailies models fetch clip:ViT-B-32/laion2b_s34b_b79k` or --clip-checkpoint FILE).")
    embedder = embedder or embedder_for_index(index)
    q = query_vector(embedder, query.text, query.image)
    take_ids = _query_take_ids(index, query)
    if take_ids is not None and not take_ids:
        return []
    wanted = query.candidates or max(200, 12 * query.limit)
    res = index.vectors.nearest(COLLECTION, q, min(wanted, total), where=_where(take_ids, query.tags),
                                include=("metadatas", "distances"))
    best: dict[tuple[str, int], tuple[float, dict]] = {}
    for meta, dist in zip(res["metadatas"][0] if res["metadatas"] else [], res["distances"][0] if res["distances"] else []):
        key = (meta["take_id"], int(meta["shot"]))
        sim = 1.0 - float(dist)
        if key not in best or sim > best[key][0]:
            best[key] = (sim, meta)
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
    return _visual_hits(index, [(k, sim, meta) for k, (sim, meta) in ranked], query.limit)


def _visual_hits(index, ranked: list[tuple[tuple[str, int], float, dict]], limit: int) -> list[VisualHit]:
    take_ids = sorted({k[0] for k, _, _ in ranked})
    rows = index.takes_by_id(take_ids, status="indexed")
    shots_of: dict[str, dict[int, Shot]] = {}
    spoken: dict[str, list] = {}
    hits: list[VisualHit] = []
    for (take_id, shot_idx), sim, meta in ranked:
        row = rows.get(take_id)
        if row is None:                      # not committed (interrupted run) or removed: never shown
            continue
        if take_id not in shots_of:
            shots_of[take_id] = {s.index: s for s in index.shots(take_id)}
        rate, clock = row.rate, row.clock
        shot = shots_of[take_id].get(shot_idx)
        if shot is None:                     # no shot detection: the whole take is one shot
            shot = Shot(shot_idx, 0, max(0, int(row["frames"] or 1) - 1))
        if take_id not in spoken:
            spoken[take_id] = index.lines_of_take(take_id)
        words = " ".join(ln.text for ln in spoken[take_id] if shot_idx in (ln.shots or []))
        frame = int(meta["frame"])
        hits.append(row.hit(
            "visual", shot.start(rate), shot.end(rate), words[:300], sim, shots=[shot_idx], rankers={"visual": sim},
            shot=shot_idx, frame=frame, frame_tc=clock.tc(frame), frame_seconds=float(Fraction(frame) / rate),
            tags=[t for t in str(meta.get("tags") or "").split(",") if t]))
        if len(hits) >= limit:
            break
    return hits


def shot_similarities(index, q: np.ndarray, take_ids: Iterable[str]) -> dict[tuple[str, int], tuple[float, int]]:
    """Exact cosine of the query with every stored frame of these takes, best per shot:
    (take_id, shot) -> (similarity, best frame)."""
    take_ids = sorted(set(take_ids))
    out: dict[tuple[str, int], tuple[float, int]] = {}
    if not take_ids:
        return out
    for i in range(0, len(take_ids), 200):
        got = index.vectors.get(COLLECTION, where={"take_id": {"$in": take_ids[i:i + 200]}},
                                include=("embeddings", "metadatas"))
        embs = got.get("embeddings")
        if embs is None or not len(embs):
            continue
        sims = np.asarray(embs, dtype=np.float32) @ q.astype(np.float32)
        for meta, s in zip(got["metadatas"], sims):
            key = (meta["take_id"], int(meta["shot"]))
            if key not in out or s > out[key][0]:
                out[key] = (float(s), int(meta["frame"]))
    return out


def rerank_by_visual(index, hits: list[Hit], embedder: ClipEmbedder, text: str | None = None,
                     image: str | os.PathLike | np.ndarray | None = None, *, min_similarity: float | None = None,
                     rrf_k: int = RRF_K) -> list[Hit]:
    """Combine a visual query with hits of another search (lines, a speaker's lines): each hit's visual
    score is the best similarity over the shots it spans; the hits' own order and the visual order are
    fused by reciprocal rank (:func:`indexer.ranking.reciprocal_rank_fusion`; ``rankers['visual']`` is
    set). Hits whose shots have no picture vectors come last in the visual order; with
    ``min_similarity`` hits below it are dropped."""
    if not hits:
        return []
    q = query_vector(embedder, text, image)
    sims = shot_similarities(index, q, {h.take_id for h in hits})
    scored = []
    for h in hits:
        vals = [sims[(h.take_id, s)][0] for s in (h.shots or [0]) if (h.take_id, s) in sims]
        v = max(vals) if vals else None
        if min_similarity is not None and (v is None or v < min_similarity):
            continue
        if v is not None:
            h.rankers = {**(h.rankers or {}), "visual": v}
        scored.append((h, v))
    given = [-float(i) for i in range(len(scored))]                 # the other search's order
    visual = [v if v is not None else -9.0 for _, v in scored]
    fused = reciprocal_rank_fusion([given, visual], k=rrf_k)
    return [scored[i][0] for i in sorted(range(len(scored)), key=lambda i: -fused[i])]


def write_thumbnails(hits: Sequence[VisualHit], folder: str | os.PathLike, *, width: int = 480,
                     force: bool = False) -> list[str]:
    """A JPEG of each hit's best frame in ``folder`` (``NAME_TC_shotK.jpg``); returns the paths.

    An existing file is never overwritten silently: without ``force`` the first one found stops the
    call before anything is written."""
    from PIL import Image

    from ..media import extract_frame

    out_dir = Path(folder).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} is a file; give a folder for the thumbnails.")
    targets = []
    for h in hits:
        tc = (h.frame_tc or h.tc_in).replace(":", "-").replace(";", "-")
        targets.append((h, out_dir / f"{h.name}_{tc}_shot{h.shot if h.shot is not None else 0}.jpg"))
    if not force:
        for _, p in targets:
            if p.exists():
                raise UsageError(f"{p} already exists; pass --force to overwrite it.")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for h, p in targets:
        frame = h.frame if h.frame is not None else 0
        image = extract_frame(h.clip, frame, max_width=width)
        Image.fromarray(image).save(p, quality=88)
        paths.append(str(p))
    return paths
