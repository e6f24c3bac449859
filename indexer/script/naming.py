"""Names for voices from the screenplay: the voice that delivers MAYA's lines in most takes is MAYA.

Each delivery matched to a script line knows its character (the cue) and the transcript's local speaker
of the take; the voice registry maps that local speaker to a production-wide voice. A voice is proposed
the character it delivers most (by seconds of dialogue), when that character has a clear majority.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DailiesError
from ..store import Index

MAJORITY = 0.6          # share of a voice's matched dialogue that must belong to one character


@dataclass
class NameProposal:
    voice_id: str
    current: str | None           # the name it has now
    character: str                # the proposed name
    share: float                  # of the voice's matched dialogue (seconds) that is this character's
    deliveries: int               # deliveries of this character by the voice
    takes: int

    def to_json(self) -> dict:
        return {"voice_id": self.voice_id, "current": self.current, "character": self.character,
                "share": round(self.share, 3), "deliveries": self.deliveries, "takes": self.takes}


def propose_names(index: Index) -> list[NameProposal]:
    from .catalog import all_matches, has_scripts, resolve_version

    if not has_scripts(index):
        raise DailiesError("No screenplay is imported in this index; import one with `dailies script import FILE`.")
    voices = _voices(index)
    heard = []
    for tm in all_matches(index, resolve_version(index)):
        for d in tm.deliveries:
            voice = voices.get((d.take_id, d.speaker)) if d.speaker else None
            if voice is None or not d.character or d.status == "false_start":
                continue
            heard.append((voice.voice_id, _cue_name(d.character), d.end - d.start, d.take_id))
    return _proposals(heard, {v.voice_id: v.name for v in voices.values()})


def _voices(index: Index) -> dict:
    """(take id, local speaker) -> voice, or one sentence when the index has no speakers."""
    from ..speakers.identity import open_registry

    reg = open_registry(index, readonly=True)
    if reg is None:
        raise DailiesError("This index has no speakers yet (index with the speaker models present: "
                           "`dailies models fetch`, then `dailies index --force FOLDER`).")
    return reg.mapping()


def _proposals(heard, names: dict[str, str | None]) -> list[NameProposal]:
    """From (voice id, name, seconds, take id) of each line heard: the name a voice speaks under for a clear
    majority (``MAJORITY``) of its seconds, with its share, deliveries and takes."""
    seconds: dict[str, dict[str, float]] = {}
    counts: dict[tuple[str, str], int] = {}
    takes: dict[tuple[str, str], set[str]] = {}
    for vid, name, secs, take_id in heard:
        per = seconds.setdefault(vid, {})
        per[name] = per.get(name, 0.0) + max(0.0, secs)
        counts[(vid, name)] = counts.get((vid, name), 0) + 1
        takes.setdefault((vid, name), set()).add(take_id)
    out = []
    for vid, per in sorted(seconds.items()):
        total = sum(per.values())
        name, secs = max(per.items(), key=lambda kv: kv[1])
        if total > 0 and secs / total >= MAJORITY:
            out.append(NameProposal(vid, names.get(vid), name, secs / total, counts[(vid, name)],
                                    len(takes[(vid, name)])))
    return out


def _cue_name(cue: str) -> str:
    """MAYA (V.O.) / MAYA (CONT'D) -> MAYA."""
    return cue.split("(")[0].strip().upper()


def propose_from_tracks(index: Index) -> list[NameProposal]:
    """Names for voices from production sound: an iso track named after a character or actor (iXML
    ``TRACK_LIST``: LEO, "LAV 2 MAYA") names the voice whose lines were heard on it (by seconds of lines,
    with the same clear majority as the script's proposals)."""
    voices = _voices(index)
    heard = []
    for t in index.takes():
        owners = {c["channel"]: c["owner"] for c in index.take_channels(t["take_id"]) if c["owner"]}
        if not owners:
            continue
        for ln in index.lines_of_take(t["take_id"]):
            owner = owners.get(ln.channel)
            voice = voices.get((t["take_id"], ln.speaker)) if ln.speaker else None
            if owner is not None and voice is not None:
                heard.append((voice.voice_id, owner, ln.end - ln.start, t["take_id"]))
    return _proposals(heard, {v.voice_id: v.name for v in voices.values()})
