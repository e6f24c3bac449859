"""`dailies speakers ...`: the production's voices (list, name, merge, split).

Mounted by cli/main.py as ``app.add_typer(speakers_app, name="speakers")``; errors are DailiesError
sentences, printed on one line by the root app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from indexer.errors import DailiesError

speakers_app = typer.Typer(help="The production's voices: who speaks, across every take (list, name, merge, split).",
                           rich_markup_mode=None, no_args_is_help=True)

IndexOpt = typer.Option(None, "--index", "-i", envvar="DAILIES_INDEX", show_envvar=True,
                        help="Index folder [default: ./dailies-index].")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON to stdout.")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _writer(index: Optional[Path]):
    """The index opened for writing, refusing to create one that does not exist."""
    from indexer.config import index_path
    from indexer.store import Index

    target = index_path(index)
    Index.open(target).close()          # IndexMissingError with its advice when there is none
    return Index.open_writer(target)


def voice_rows(idx) -> list[dict]:
    """One dict per voice: id, name, takes, seconds, minutes, its local speakers and an example line."""
    from indexer.speakers.identity import open_registry

    reg = open_registry(idx, readonly=True)
    if reg is None:
        return []
    takes = {r["take_id"]: r for r in idx.takes(status="indexed")}   # a pending take shows no voices
    rows = []
    for v in reg.summaries(take_ids=list(takes)):
        example = None
        for take_id, label, _ in v.locals:          # longest local first
            t = takes[take_id]
            lines = [ln for ln in idx.lines_of_take(take_id) if ln.speaker == label or ln.voice_id == v.voice_id]
            if lines:
                ln = max(lines, key=lambda x: (len(x.words), x.end - x.start))
                clock = t.clock
                example = {"take_id": take_id, "clip": t["name"], "text": ln.text, "tc_in": clock.tc_in(ln.start),
                           "tc_out": clock.tc_out(ln.end), "line_id": ln.line_id}
                break
        rows.append({"voice_id": v.voice_id, "name": v.name, "takes": v.takes, "seconds": round(v.seconds, 2),
                     "minutes": round(v.seconds / 60, 2), "example": example,
                     "locals": [{"take_id": t, "clip": takes[t]["name"], "label": lab, "seconds": round(s, 2)}
                                for t, lab, s in v.locals]})
    return rows


@speakers_app.command("list")
def list_cmd(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """Every voice in the index: id, name, takes, minutes of speech and an example line."""
    from indexer.config import index_path
    from indexer.store import Index

    with Index.open(index_path(index)) as idx:
        rows = voice_rows(idx)
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    out = _console()
    if not rows:
        out.print("No voices yet: index takes with the diarization models present "
                  "(`dailies models list` shows them).")
        return
    from rich.table import Table

    t = Table(title="Voices")
    for c, j in (("voice", "left"), ("name", "left"), ("takes", "right"), ("minutes", "right"), ("example", "left")):
        t.add_column(c, justify=j, overflow="fold")
    for r in rows:
        ex = r["example"]
        t.add_row(r["voice_id"], r["name"] or "—", str(r["takes"]), f"{r['minutes']:.1f}",
                  f"{ex['clip']} {ex['tc_in']}  “{ex['text']}”" if ex else "—")
    out.print(t)
    out.print("[dim]Name a voice with `dailies speakers name V001 MAYA`.[/]")


@speakers_app.command("name")
def name_cmd(voice: Optional[str] = typer.Argument(None, help="Voice id (V003) or its current name."),
             name: Optional[str] = typer.Argument(None, help="The name to show, e.g. the character (MAYA)."),
             from_script: bool = typer.Option(False, "--from-script",
                                              help="Propose names from the imported screenplay: the voice that "
                                                   "delivers a character's lines is that character."),
             from_tracks: bool = typer.Option(False, "--from-tracks",
                                              help="Propose names from production sound: the voice heard on an "
                                                   "iso track named LEO (iXML track list) is LEO."),
             yes: bool = typer.Option(False, "--yes", "-y", help="With --from-script/--from-tracks: apply the "
                                                                  "proposal."),
             index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """Name a voice (the name survives re-indexing and is what `--speaker` searches use)."""
    from indexer.speakers.identity import VoiceRegistry

    if from_script or from_tracks:
        _name_from_script(index, yes, as_json, tracks=from_tracks)
        return
    if not voice or not name:
        raise DailiesError("Say which voice and what name, e.g. `dailies speakers name V003 MAYA`, "
                           "or use --from-script.")
    with _writer(index) as idx:
        vid = VoiceRegistry(idx.voice_tables()).name(voice, name)
    _console(stderr=True).print(f"{vid} is now {name.strip()}.")


def _name_from_script(index: Optional[Path], yes: bool, as_json: bool, *, tracks: bool = False) -> None:
    from indexer.config import index_path
    from indexer.script.naming import propose_from_tracks, propose_names
    from indexer.store import Index
    from indexer.speakers.identity import VoiceRegistry

    source, flag = ("track names", "--from-tracks") if tracks else ("the script", "--from-script")
    with Index.open(index_path(index)) as idx:
        proposals = propose_from_tracks(idx) if tracks else propose_names(idx)
    if yes and proposals:
        with _writer(index) as idx:
            reg = VoiceRegistry(idx.voice_tables())
            given: set[str] = set()
            for p in proposals:                   # one name, one voice: a second voice of a character is
                if p.character.lower() in given:  # left for `speakers merge` (said below)
                    continue
                reg.name(p.voice_id, p.character)
                given.add(p.character.lower())
    if as_json:
        print(json.dumps({"applied": yes, "proposals": [p.to_json() for p in proposals]}, indent=2))
        return
    out = _console()
    if not proposals:
        out.print(f"No voice delivers one character's lines clearly enough to be named from {source}.")
        return
    from rich import box
    from rich.table import Table

    t = Table(title=f"Names from {source}" + (" (applied)" if yes else ""), box=box.SIMPLE_HEAD)
    for c in ("voice", "now", "proposed", "share", "deliveries", "takes"):
        t.add_column(c)
    for p in proposals:
        t.add_row(p.voice_id, p.current or "—", p.character, f"{p.share:.0%}", str(p.deliveries), str(p.takes))
    out.print(t)
    chars = [p.character for p in proposals]
    for c in sorted({c for c in chars if chars.count(c) > 1}):
        ids = [p.voice_id for p in proposals if p.character == c]
        out.print(f"[yellow]{' and '.join(ids)} both deliver {c}: if they are one actor, "
                  f"`dailies speakers merge {ids[0]} {ids[1]}`.[/]")
    if not yes:
        out.print(f"Apply with `dailies speakers name {flag} --yes`.")


@speakers_app.command("merge")
def merge_cmd(keep: str = typer.Argument(..., help="The voice to keep (id or name)."),
              other: str = typer.Argument(..., help="The voice merged into it (its id keeps resolving)."),
              index: Optional[Path] = IndexOpt) -> None:
    """Merge two voices that are the same person (e.g. `dailies speakers merge V004 V007`)."""
    from indexer.speakers.identity import VoiceRegistry

    err = _console(stderr=True)
    with _writer(index) as idx:
        reg = VoiceRegistry(idx.voice_tables())
        shared = reg.shared_takes(keep, other)
        kept = reg.merge(keep, other)
        v = reg.voice(kept)
    if shared:
        err.print(f"[yellow]Note[/]: the two voices speak in {shared} take(s) together, where diarization told "
                  "them apart; `dailies speakers split` undoes a wrong merge take by take.")
    err.print(f"{other} merged into {kept}" + (f" ({v.name})." if v and v.name else "."))


@speakers_app.command("split")
def split_cmd(voice: str = typer.Argument(..., help="The voice (id or name) that wrongly includes a take's speaker."),
              take: str = typer.Argument(..., help="The take (clip name, take id or path)."),
              label: Optional[str] = typer.Option(None, "--label", help="The take's local speaker (e.g. SPEAKER_01), "
                                                                       "when the voice has several there."),
              name: Optional[str] = typer.Option(None, "--name", help="Name the new voice at once."),
              index: Optional[Path] = IndexOpt) -> None:
    """Move a take's local speaker out of a voice into a new voice (kept apart on re-indexing)."""
    from indexer.speakers.identity import VoiceRegistry

    with _writer(index) as idx:
        row = idx.take(take)
        reg = VoiceRegistry(idx.voice_tables())
        new = reg.split(voice, row["take_id"], label)
        if name:
            reg.name(new, name)
    _console(stderr=True).print(f"{row['name']}: that speaker is now {new}" + (f" ({name})." if name else "."))
