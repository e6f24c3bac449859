"""What a user changes in an index by hand: circled takes and the voices' names, merges and splits.

One function per change, each taking the index opened by its one writer (:meth:`Index.open_writer`), or
for circled takes by :func:`marks` (beside a running writer), and returning JSON-ready data: `dailies circle`
and `dailies speakers ...` call them, and so do the review room's POST endpoints, so the page and the command
cannot drift apart. Errors are :class:`~indexer.errors.DailiesError` sentences.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import UsageError

MAX_NOTE = 2000


@contextmanager
def writer(path: str | Path) -> Iterator:
    """The existing index at ``path`` opened for writing (never creating one), closed at the end. Raises
    IndexMissingError when there is none and IndexLockedError at once when another process writes it."""
    from .store import Index

    Index.open(path).close()            # IndexMissingError with its advice when there is none
    idx = Index.open_writer(path)
    try:
        yield idx
    finally:
        idx.close()


@contextmanager
def marks(path: str | Path) -> Iterator:
    """The existing index at ``path`` opened to change review marks (circled takes), beside the one writer:
    circling works while `dailies index` runs (see :meth:`Index.open_for_marks`). Closed at the end."""
    from .store import Index

    idx = Index.open_for_marks(path)
    try:
        yield idx
    finally:
        idx.close()


# ------------------------------------------------------------------ circled takes

def circle_json(take) -> dict:
    """What `dailies circle --json` prints about a take (and the review room answers)."""
    return {"take_id": take.take_id, "name": take.name, "scene": take.scene, "take": take.take,
            "camera": take.camera, "circled": take.circled, "circle_note": take.circle_note,
            "circled_at": take.get("circled_at")}


def circle(idx, ref: str, *, on: bool = True, note: str | None = None) -> dict:
    """Circle (print) the take ``ref`` (clip name, take id or its prefix, path) with a note (None keeps the
    note it has, "" clears it), or take its circle off."""
    if note is not None:
        note = " ".join(note.split())          # one line: it goes into ALE cells and marker names
        if len(note) > MAX_NOTE:
            raise UsageError(f"The circle note is {len(note)} characters; keep it under {MAX_NOTE}.")
    if not on and note:
        raise UsageError("A take taken off the circled list has no note; give --note only when circling.")
    take = idx.take(ref)
    return circle_json(idx.set_circle(take.take_id, on, note))


# ------------------------------------------------------------------ voices (the `speakers` commands)

def _registry(idx):
    from .speakers.identity import VoiceRegistry

    return VoiceRegistry(idx.voice_tables())


def name_voice(idx, voice: str, name: str) -> dict:
    """Name a voice (id or current name); the name survives re-indexing."""
    if not voice or not name:
        raise UsageError("Say which voice and what name, e.g. `dailies speakers name V003 MAYA`, "
                         "or use --from-script.")
    vid = _registry(idx).name(voice, name)
    return {"voice_id": vid, "name": name.strip()}


def merge_voices(idx, keep: str, other: str) -> dict:
    """Merge ``other`` into ``keep`` (the same person); ``shared``: takes where both speak (suspect)."""
    if not keep or not other:
        raise UsageError("Say which two voices to merge (the one to keep first).")
    reg = _registry(idx)
    shared = reg.shared_takes(keep, other)
    kept = reg.merge(keep, other)
    v = reg.voice(kept)
    return {"voice_id": kept, "merged": other, "name": v.name if v else None, "shared_takes": shared}


def split_voice(idx, voice: str, take: str, label: str | None = None, name: str | None = None) -> dict:
    """Move a take's local speaker out of ``voice`` into a new voice (kept apart on re-indexing)."""
    if not voice or not take:
        raise UsageError("Say which voice and which take to split off.")
    row = idx.take(take)
    reg = _registry(idx)
    new = reg.split(voice, row.take_id, label)
    if name:
        reg.name(new, name)
    return {"voice_id": new, "name": name.strip() if name else None, "take_id": row.take_id, "clip": row.name}


def names_from_script(idx, *, apply: bool, tracks: bool = False) -> dict:
    """The names the screenplay's cues propose for voices (`speakers name --from-script`), or with
    ``tracks`` the iso tracks' names (`--from-tracks`), applied when ``apply``: one name per character (a
    second voice of a character is left for a merge)."""
    from .script.naming import propose_from_tracks, propose_names

    proposals = propose_from_tracks(idx) if tracks else propose_names(idx)
    applied = []
    if apply and proposals:
        reg = _registry(idx)
        given: set[str] = set()
        for p in proposals:
            if p.character.lower() in given:
                continue
            reg.name(p.voice_id, p.character)
            given.add(p.character.lower())
            applied.append(p.voice_id)
    return {"applied": apply, "named": applied, "proposals": [p.to_json() for p in proposals]}
