"""A new vector store for an index whose store is damaged (`dailies rebuild-vectors`): the catalog holds
everything a line vector is made from, so the store is derived data and can be made again. Kept apart from
:mod:`indexer.pipeline` (no media, speech or picture code is needed, nor imported)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .store import Index


@dataclass
class VectorRebuild:
    """What :func:`rebuild_vectors` did."""

    set_aside: Path | None          # where the old vector store went (None: there was none)
    takes: int                      # indexed takes whose line vectors were made again
    lines: int
    picture_takes: list[str]        # takes that had picture vectors: `dailies index --visual-only` remakes them


def rebuild_vectors(index: Index, progress: Callable[[int, int], None] | None = None) -> VectorRebuild:
    """A new vector store for an index whose store is damaged (Chroma crashes reading it, e.g. after a run
    was killed while it wrote): the old one is moved aside unread, and every indexed take's line vectors are
    embedded again from the catalog's text (the vectors indexing made: the same text, the same model). The
    picture's vectors come from CLIP on the frames, not from the catalog: they are forgotten, and the takes
    that had them are returned. Interrupted, it is run again (each run starts from a new store); until it has
    finished, the index says so (``Index.vectors_rebuild_started``)."""
    from . import embed

    picture = [t.path for t in index.takes(status="indexed") if t.n_frames]
    moved = index.set_aside_vectors()
    index.check_embedder("lines", embed.describe())
    takes = index.takes(status="indexed")
    n = 0
    for k, take in enumerate(takes, 1):
        rows = index.lines_of_take(take.take_id)
        if rows:
            index.put_line_vectors(take, rows, embed.embed([ln.text for ln in rows]))
            n += len(rows)
        if progress is not None:
            progress(k, len(takes))
    index.vectors_rebuild_finished()
    return VectorRebuild(moved, len(takes), n, picture)
