"""What each read-only command returns as data: the CLI's ``--json`` prints it, the review room's API
serves it (one code path, so the two never drift apart).

Each function takes an open :class:`~indexer.store.Index` and returns hits (``Hit``) or plain dicts;
``hits_json`` turns hits into the list ``--json`` prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from .records import Hit


def hits_json(hits: Iterable[Hit]) -> list[dict]:
    return [h.to_json() for h in hits]


def line_hits(idx, text: str, *, scene: str | None = None, take: str | None = None, speaker: str | None = None,
              limit: int = 50, min_match: float = 0.5, span: int = 2, semantic: bool = True,
              visual: str | None = None, visual_image=None, clip_checkpoint: str | None = None) -> list[Hit]:
    """`dailies search line`: every take where a line was delivered, optionally re-ranked by picture."""
    from .search import LineQuery, search_lines

    hits = search_lines(idx, LineQuery(text=text, scene=scene, take=take, speaker=speaker, limit=limit,
                                       min_match=min_match, span=span, semantic=semantic))
    if visual or visual_image is not None:
        from .picture.embedder import embedder_for_index
        from .picture.search import rerank_by_visual

        hits = rerank_by_visual(idx, hits, embedder_for_index(idx, checkpoint=clip_checkpoint), visual, visual_image)
    return hits


def speaker_shot_hits(idx, speaker: str, *, scene: str | None = None, take: str | None = None, limit: int = 1000,
                      visual: str | None = None, visual_image=None, clip_checkpoint: str | None = None) -> list[Hit]:
    """`dailies search shots`: every shot in which a voice speaks, optionally re-ranked by picture."""
    from .search import search_speaker_shots

    hits = search_speaker_shots(idx, speaker, scene=scene, take=take, limit=limit)
    if visual or visual_image is not None:
        from .picture.embedder import embedder_for_index
        from .picture.search import rerank_by_visual

        hits = rerank_by_visual(idx, hits, embedder_for_index(idx, checkpoint=clip_checkpoint), visual, visual_image)
    return hits


def visual_hits(idx, text: str | None = None, image=None, *, tags: Iterable[str] = (), scene: str | None = None,
                take: str | None = None, limit: int = 20, clip_checkpoint: str | None = None) -> list[Hit]:
    """`dailies search visual`: shots whose picture matches a description or a still (CLIP)."""
    from .picture.embedder import embedder_for_index
    from .picture.search import VisualQuery, search_visual

    emb = embedder_for_index(idx, checkpoint=clip_checkpoint)
    return search_visual(idx, VisualQuery(text=text, image=image, scene=scene, take=take, tags=list(tags),
                                          limit=limit), emb)


def status(idx, target: str | Path | None = None) -> dict:
    """`dailies status --json`: meta, counts, every take (with its models and notes) and the failed files."""
    takes = [dict(r) for r in idx.takes()]
    files = [dict(r) for r in idx.files()]
    stats = idx.stats()
    meta = {k: idx.meta(k) for k in ("schema_version", "created_at", "created_by", "index_uid")}
    from .speakers.identity import open_registry

    reg = open_registry(idx, readonly=True)
    stats["voices"] = len(reg.summaries()) if reg is not None else 0
    for t in takes:
        t["models"] = json.loads(t["models"]) if t.get("models") else None
        t["notes"] = json.loads(t["notes"]) if t.get("notes") else []
        t["circled"] = bool(t.get("circled"))
        t.pop("info", None)
        t["channels"] = idx.take_channels(t["take_id"])
    failed = [f for f in files if f["status"] == "failed"]
    return {"index": str(target if target is not None else idx.path), **meta, **stats, "takes": takes,
            "failed": failed}


def note_json(row, take) -> dict:
    """A review note as `dailies notes list --json` prints it (and the review room answers): the take, the frame
    (from its first frame), its source TC and seconds, the text, who wrote it and when; a note that covers a
    stretch has its last frame in ``end_frame`` (its TC in ``tc_end``, its end in ``end_seconds``: the end of
    that frame), a note at one frame ``null`` in all three; ``edited_at`` says when its text was last changed."""
    frame = int(row["frame"])
    end = row["end_frame"]
    return {"note_id": row["note_id"], "take_id": take.take_id, "name": take.name, "scene": take.scene,
            "take": take.take, "camera": take.camera, "frame": frame, "tc": take.clock.tc(frame),
            "seconds": round(take.clock.seconds(frame), 6), "end_frame": end,
            "tc_end": take.clock.tc(end) if end is not None else None,
            "end_seconds": round(take.clock.seconds(end + 1), 6) if end is not None else None,
            "text": row["text"], "author": row["author"], "created_at": row["created_at"],
            "edited_at": row["edited_at"]}


def notes(idx, take: str | None = None) -> list[dict]:
    """`dailies notes list [--take TAKE] --json`: the review notes of one take (by frame), or of every take (by
    clip name, then frame)."""
    if take is not None:
        t = idx.take(take)
        return [note_json(r, t) for r in idx.note_rows(t.take_id)]
    out = [n for ns in notes_by_take(idx).values() for n in ns]
    return sorted(out, key=lambda n: (n["name"], n["take_id"], n["frame"], n["note_id"]))


def notes_by_take(idx, take_ids: Iterable[str] | None = None) -> dict[str, list[dict]]:
    """The review notes of every take (or of ``take_ids``) as :func:`note_json` gives them, by take id, each take's
    by frame: for the exports, the lined script's log and the notes list."""
    rows = idx.note_rows()
    if take_ids is not None:
        wanted = set(take_ids)
        rows = [r for r in rows if r["take_id"] in wanted]
    takes = idx.takes_by_id({r["take_id"] for r in rows})
    out: dict[str, list[dict]] = {}
    for r in rows:
        if r["take_id"] in takes:
            out.setdefault(r["take_id"], []).append(note_json(r, takes[r["take_id"]]))
    return out


def note_label(n: dict) -> str:
    """A note as a marker names it: ``NOTE (author): text``."""
    return "NOTE" + (f" ({n['author']})" if n["author"] else "") + f": {n['text']}"


def note_frames(n: dict) -> tuple[int, int]:
    """A note's first and last frame (the same for a note at one frame)."""
    return n["frame"], n["end_frame"] if n["end_frame"] is not None else n["frame"]


def note_when(n: dict) -> str:
    """Where a note is: its TC, or ``TC-TC`` for a stretch (first and last frame)."""
    return n["tc"] + (f"-{n['tc_end']}" if n.get("tc_end") else "")


def note_line(n: dict) -> str:
    """A note in a log (the ALE, the editor's log): ``TC text (author)``, ``TC-TC text (author)`` for a stretch."""
    return f"{note_when(n)} {n['text']}" + (f" ({n['author']})" if n["author"] else "")


def take_shots(idx, ref: str) -> dict:
    """`dailies shots TAKE --json`: the shots of a take with source TC in/out and tags."""
    row = idx.take(ref)
    shots = idx.shots(row["take_id"])
    tags = idx.shot_tags(row["take_id"])
    rate, clock = row.rate, row.clock
    data = [{"shot": s.index, "first_frame": s.first_frame, "last_frame": s.last_frame,
             "start": round(s.start(rate), 3), "end": round(s.end(rate), 3),
             "tc_in": clock.tc(s.first_frame), "tc_out": clock.tc(s.last_frame + 1),
             "tags": tags.get(s.index, [])} for s in shots]
    return {"clip": row["path"], "take_id": row["take_id"], "rate": row["rate"],
            "channels": idx.take_channels(row["take_id"]), "shots": data}


def take_lines(idx, ref: str) -> dict:
    """`dailies lines TAKE --json`: the transcript of a take, line by line, with source TC, shots, words."""
    from .search import speaker_of, voice_names

    row = idx.take(ref)
    lines = idx.lines_of_take(row["take_id"])
    voices = voice_names(idx, [row["take_id"]])
    clock = row.clock
    who = {ln.line_id: speaker_of(ln, voices) for ln in lines}
    data = [{"line": ln.idx, "line_id": ln.line_id, "start": round(ln.start, 3), "end": round(ln.end, 3),
             "tc_in": clock.tc_in(ln.start), "tc_out": clock.tc_out(ln.end), "text": ln.text, "shots": ln.shots,
             "speaker": who[ln.line_id][0], "voice_id": who[ln.line_id][1],
             "local_speaker": ln.speaker, "speaker_confidence": ln.speaker_confidence, "overlap": ln.overlap,
             "channel": ln.channel,
             "words": [{"start": w.start, "end": w.end, "text": w.text, "probability": w.probability}
                       for w in ln.words]} for ln in lines]
    return {"clip": row["path"], "take_id": row["take_id"], "rate": row["rate"],
            "channels": idx.take_channels(row["take_id"]), "lines": data}


def take_script(idx, ref: str, *, script: str | None = None, version: int | None = None) -> dict | None:
    """A take's script lines (`dailies script take TAKE --json` prints its ``lines``): the scene the take was
    matched to and how (``name``: from the clip name, ``dialogue``: found from what is said), then every
    line of that scene in script order, one entry per delivery (a line said twice, or restarted, has two)
    with take-relative ``start``/``end`` and source ``tc_in``/``tc_out``, and one entry with status
    ``missing`` (times null) per line never said. Read from the stored matches (a take indexed since the
    last match is matched now, in memory: ``stored`` false). None when no screenplay is imported."""
    from .script.catalog import has_scripts, name_of_script, resolve_version, script_of, take_match

    if not has_scripts(idx):
        return None
    row = idx.take(ref)
    v = resolve_version(idx, script, version)
    out = {"script": name_of_script(idx, v), "version": v["version"], "take_id": row["take_id"],
           "name": row["name"], "scene": None, "scene_source": None, "no_dialogue": False, "stored": True,
           "lines": []}
    if row["status"] != "indexed":
        return out
    s = script_of(idx, v)
    tm = take_match(idx, v, row, s)
    order = {ln.line_id: i for i, ln in enumerate(s.lines)}
    by_id = {ln.line_id: ln for ln in s.lines}
    entries = [d.to_json() for d in tm.deliveries]
    for lid in tm.missing:
        ln = by_id[lid]
        entries.append({"line_id": lid, "character": ln.character, "clip": row["path"], "take_id": row["take_id"],
                        "name": row["name"], "scene": tm.scene, "take": row["take"], "camera": row["camera"],
                        "start": None, "end": None, "tc_in": None, "tc_out": None, "rate": row["rate"],
                        "score": 0.0, "coverage": 0.0, "status": "missing", "attempt": 0, "delivered": "",
                        "diff": "[-" + ln.text + "-]", "text": ln.text, "page": ln.page})
    entries.sort(key=lambda e: (order.get(e["line_id"], 1 << 30), e["attempt"], e["start"] or 0.0))
    out.update(scene=tm.scene, scene_source=tm.scene_source, no_dialogue=tm.no_dialogue, stored=tm.stored,
               lines=entries)
    return out


def _script_takes(idx) -> dict[str, dict]:
    """Every take's catalog facts by id, with ``circled`` (False until takes can be circled) and its review notes
    (``review_notes``, as :func:`notes_by_take` gives them, with ``line``: ``TC text (author)``)."""
    notes = notes_by_take(idx)
    out = {}
    for r in idx.takes():
        d = dict(r)
        d["circled"] = bool(d.get("circled", getattr(r, "circled", False)) or False)
        d.setdefault("circle_note", getattr(r, "circle_note", None))
        d["review_notes"] = [{**n, "line": note_line(n)} for n in notes.get(r["take_id"], [])]
        out[r["take_id"]] = d
    return out


def script_versions(idx) -> list[dict]:
    """`dailies script list --json`: every imported version of every screenplay."""
    from .script.catalog import scripts

    return scripts(idx)


def lined_script(idx, script: str | None = None, version: int | None = None) -> dict:
    """The lined script (the review room's /script and /api/script, `dailies script lined`): the version's
    printed pages and every take matched to a scene with the state of each of its lines
    (:mod:`indexer.script.lined`)."""
    from .script import lined
    from .script.catalog import all_matches, name_of_script, resolve_version, script_of

    v = resolve_version(idx, script, version)
    s = script_of(idx, v)
    data = lined.build(s, name_of_script(idx, v), v["version"], all_matches(idx, v, s), _script_takes(idx))
    data["versions"] = [{"name": r["name"], "version": r["version"]} for r in script_versions(idx)]
    return data


def coverage(idx, script: str | None = None, version: int | None = None, scene: str | None = None):
    """`dailies script coverage`: the lines x takes matrix and the summary per scene (a
    :class:`~indexer.script.report.Coverage`; ``unstored``: takes matched now, not read from the index)."""
    from .errors import DailiesError
    from .script import report
    from .script.catalog import all_matches, name_of_script, resolve_version, script_of

    v = resolve_version(idx, script, version)
    s = script_of(idx, v)
    name = name_of_script(idx, v)
    if scene and s.scene_by_label(scene) is None:
        raise DailiesError(f"No scene {scene} in script '{name}' (scenes: "
                           f"{', '.join(x.label for x in s.scenes[:12])}{' ...' if len(s.scenes) > 12 else ''}).")
    matches = all_matches(idx, v, s)
    cov = report.build(s, name, v["version"], matches, scene=scene, takes=_script_takes(idx))
    return cov, [m.name for m in matches if not m.stored]
CLIPS_PER_VOICE = 3


def voices(idx, clips: int = CLIPS_PER_VOICE) -> list[dict]:
    """`dailies speakers list --json`: one dict per voice: id, name, takes, seconds, minutes, its local
    speakers (a take's SPEAKER_00 ...), an example line and ``clips``: up to ``clips`` of its longest clean
    lines to listen to (most words; none overlapped by another speaker), each with take-relative
    ``start``/``end`` and source ``tc_in``/``tc_out``, longest first."""
    from .speakers.identity import open_registry

    reg = open_registry(idx, readonly=True)
    if reg is None:
        return []
    takes = {r.take_id: r for r in idx.takes(status="indexed")}   # a pending take shows no voices
    lines_of: dict[str, list] = {}                                   # a take's lines, read once

    def size(c) -> tuple:                                            # most words, then longest
        return (len(c[1].text.split()), c[1].end - c[1].start)

    rows = []
    for v in reg.summaries(take_ids=list(takes)):
        candidates = []                              # (take, line)
        for take_id, label, _ in v.locals:           # longest local first
            if take_id not in lines_of:
                lines_of[take_id] = idx.lines_of_take(take_id)
            candidates.extend((takes[take_id], ln) for ln in lines_of[take_id]
                              if ln.speaker == label or ln.voice_id == v.voice_id)
        example = None
        if candidates:                               # the longest line of its longest local's take (as before)
            t, ln = max((c for c in candidates if c[0].take_id == candidates[0][0].take_id), key=size)
            example = {"take_id": t.take_id, "clip": t.name, "text": ln.text, "tc_in": t.clock.tc_in(ln.start),
                       "tc_out": t.clock.tc_out(ln.end), "line_id": ln.line_id}
        clean = sorted((c for c in candidates if not c[1].overlap),
                       key=lambda c: (-size(c)[0], -size(c)[1], c[1].line_id))
        rows.append({"voice_id": v.voice_id, "name": v.name, "takes": v.takes, "seconds": round(v.seconds, 2),
                     "minutes": round(v.seconds / 60, 2), "example": example,
                     "clips": [{"take_id": t.take_id, "clip": t.name, "line_id": ln.line_id, "text": ln.text,
                                "start": round(ln.start, 3), "end": round(ln.end, 3),
                                "tc_in": t.clock.tc_in(ln.start), "tc_out": t.clock.tc_out(ln.end)}
                               for t, ln in clean[:clips]],
                     "locals": [{"take_id": t, "clip": takes[t].name, "label": lab, "seconds": round(s, 2)}
                                for t, lab, s in v.locals]})
    return rows

