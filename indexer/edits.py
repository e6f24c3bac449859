"""What a user changes in an index by hand: circled takes, review notes, and the voices' names, merges and
splits.

One function per change, each taking the index opened by its one writer (:meth:`Index.open_writer`), or for
review marks (circled takes, review notes) by :func:`marks` (beside a running writer), and returning JSON-ready
data: `dailies circle`, `dailies notes` and `dailies speakers ...` call them, and so do the review room's POST
endpoints, so the page and the command cannot drift apart. Errors are :class:`~indexer.errors.DailiesError`
sentences.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import DailiesError, NotFoundError, UsageError

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
    """The existing index at ``path`` opened to change review marks (circled takes, review notes), beside the
    one writer: they are written while `dailies index` runs (see :meth:`Index.open_for_marks`). Closed at the
    end."""
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


# ------------------------------------------------------------------ review notes

MAX_AUTHOR = 80


def _frames_of(take) -> int | None:
    """The take's frames at its rate (a sound take's from its duration); None when not known."""
    from .timecode import frame_after

    return take.frames or (frame_after(take.duration, take.rate) if take.duration else None)


def note_frame(take, at: str) -> int:
    """The frame (from the take's first) that ``at`` names: a source timecode of the take (``01:00:26:09``;
    ``;`` or ``:`` either way) or seconds from its first frame (``12.5``). Outside the take is an error."""
    import math

    from .timecode import frame_at, rate_label

    text = (at or "").strip()
    try:
        secs = float(text)
    except ValueError:
        secs = None
    if secs is not None:
        if not math.isfinite(secs) or secs < 0:
            raise UsageError(f"'{at}' is not a time in the take: give its source timecode (e.g. "
                             f"{take.clock.tc(0)}) or seconds from its first frame.")
        frame = frame_at(secs, take.rate)
    elif ":" in text or ";" in text:
        try:
            frame = take.clock.frame_of(text)
        except DailiesError:
            raise UsageError(f"'{at}' is not a timecode at {take.name}'s rate ("
                             f"{rate_label(take.rate, take.clock.drop_frame)} fps, e.g. {take.clock.tc(0)}).") from None
    else:
        raise UsageError(f"'{at}' is not a time: give the take's source timecode (e.g. {take.clock.tc(0)}) "
                         "or seconds from its first frame.")
    total = _frames_of(take)
    if total and frame >= total:
        raise UsageError(f"{at} is outside {take.name}, which runs from {take.clock.tc(0)} to "
                         f"{take.clock.tc(total - 1)}.")
    return frame


def add_note(idx, ref: str, at: str | None = None, text: str = "", *, frame: int | None = None,
             author: str | None = None, to: str | None = None, end_frame: int | None = None) -> dict:
    """A review note on the take ``ref`` at ``at`` (its source TC or seconds, see :func:`note_frame`) or at
    ``frame`` (from its first frame: the review room sends the player's frame), by ``author``. With ``to`` (a TC
    or seconds, as ``at``) or ``end_frame``, the note covers the take from there to that frame, both included;
    given the other way round, the two ends are swapped."""
    text = _note_text(text)
    author = " ".join((author or "").split()) or None
    if author and len(author) > MAX_AUTHOR:
        raise UsageError(f"The author's name is {len(author)} characters; keep it under {MAX_AUTHOR}.")
    take = idx.take(ref)
    frame = note_frame(take, at or "") if frame is None else _frame_of(take, frame)
    if to is not None and str(to).strip():
        end_frame = note_frame(take, str(to))
    elif end_frame is not None:
        end_frame = _frame_of(take, end_frame)
    if end_frame is not None:
        frame, end_frame = min(frame, end_frame), max(frame, end_frame)
        if end_frame == frame:
            end_frame = None                    # a stretch of one frame is a note at that frame
    from .views import note_json

    return note_json(idx.add_note(take.take_id, frame, text, author, end_frame), take)


def _frame_of(take, frame) -> int:
    """``frame`` (from the take's first frame, as the review room sends it), checked to be one of the take's."""
    total = _frames_of(take)
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0 or (total and frame >= total):
        raise UsageError(f"Frame {frame} is not a frame of {take.name}" + (f" (0 to {total - 1})." if total else "."))
    return frame


def _note_text(text: str | None, example: str = "add 12A_T1_CamA 01:00:26:09") -> str:
    text = " ".join((text or "").split())       # one line: it goes into marker names and CSV cells
    if not text:
        raise UsageError(f"A note needs its text, e.g. `dailies notes {example} \"boom in frame\"`.")
    if len(text) > MAX_NOTE:
        raise UsageError(f"The note is {len(text)} characters; keep it under {MAX_NOTE}.")
    return text


def _note_row(idx, note_id):
    try:
        nid = int(note_id)
    except (TypeError, ValueError):
        raise UsageError(f"'{note_id}' is not a note number; `dailies notes list` shows them.") from None
    row = idx.note_row(nid)
    if row is None:
        raise NotFoundError(f"No note {nid} in the index; `dailies notes list` shows them.")
    return nid, row


def edit_note(idx, note_id, text: str) -> dict:
    """Change the text of the review note ``note_id`` (a typo, a better word); its frames, author and time stay,
    and it says when it was edited. Returns it as it is now."""
    from .views import note_json

    text = _note_text(text, f"edit {note_id}")
    nid, row = _note_row(idx, note_id)
    take = idx.take_row(row["take_id"])
    if take is None:
        raise NotFoundError(f"Note {nid} is on a take no longer in the index; delete it with `dailies notes delete "
                            f"{nid}`.")
    idx.edit_note(nid, text)
    return note_json(idx.note_row(nid), take)


def delete_note(idx, note_id) -> dict:
    """Delete the review note ``note_id``; returns it as it was."""
    from .views import note_json

    nid, row = _note_row(idx, note_id)
    take = idx.take_row(row["take_id"])
    out = note_json(row, take) if take is not None else {"note_id": nid, "take_id": row["take_id"],
                                                           "text": row["text"]}
    idx.delete_note(nid)
    return out


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
