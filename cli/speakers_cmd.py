"""`dailies speakers ...`: the production's voices (list, name, merge, split).

Mounted by cli/main.py as ``app.add_typer(speakers_app, name="speakers")``; errors are DailiesError
sentences, printed on one line by the root app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from cli.options import IndexOpt, JsonOpt


speakers_app = typer.Typer(help="The production's voices: who speaks, across every take (list, name, merge, split).",
                           rich_markup_mode=None, no_args_is_help=True)



def _console(stderr: bool = False):
    from cli.console import console

    return console(stderr)


def _writer(index: Optional[Path]):
    """The index opened for writing, refusing to create one that does not exist."""
    from indexer.config import index_path
    from indexer.edits import writer

    return writer(index_path(index))


@speakers_app.command("list")
def list_cmd(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """Every voice in the index: id, name, takes, minutes of speech and an example line."""
    from indexer.config import index_path
    from indexer.store import Index
    from indexer.views import voices

    with Index.open(index_path(index)) as idx:
        rows = voices(idx)
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
    from indexer.edits import name_voice

    if from_script or from_tracks:
        _name_from_script(index, yes, as_json, tracks=from_tracks)
        return
    with _writer(index) as idx:
        done = name_voice(idx, voice or "", name or "")
    if as_json:
        print(json.dumps(done, indent=2, ensure_ascii=False))
        return
    _console(stderr=True).print(f"{done['voice_id']} is now {done['name']}.")


def _name_from_script(index: Optional[Path], yes: bool, as_json: bool, *, tracks: bool = False) -> None:
    from indexer.config import index_path
    from indexer.edits import names_from_script
    from indexer.store import Index

    source, flag = ("track names", "--from-tracks") if tracks else ("the script", "--from-script")
    if yes:
        with _writer(index) as idx:
            result = names_from_script(idx, apply=True, tracks=tracks)
    else:
        with Index.open(index_path(index)) as idx:
            result = names_from_script(idx, apply=False, tracks=tracks)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    proposals = result["proposals"]
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
        t.add_row(p["voice_id"], p["current"] or "—", p["character"], f"{p['share']:.0%}", str(p["deliveries"]),
                  str(p["takes"]))
    out.print(t)
    chars = [p["character"] for p in proposals]
    for c in sorted({c for c in chars if chars.count(c) > 1}):
        ids = [p["voice_id"] for p in proposals if p["character"] == c]
        out.print(f"[yellow]{' and '.join(ids)} both deliver {c}: if they are one actor, "
                  f"`dailies speakers merge {ids[0]} {ids[1]}`.[/]")
    if not yes:
        out.print(f"Apply with `dailies speakers name {flag} --yes`.")


@speakers_app.command("merge")
def merge_cmd(keep: str = typer.Argument(..., help="The voice to keep (id or name)."),
              other: str = typer.Argument(..., help="The voice merged into it (its id keeps resolving)."),
              index: Optional[Path] = IndexOpt) -> None:
    """Merge two voices that are the same person (e.g. `dailies speakers merge V004 V007`)."""
    from indexer.edits import merge_voices

    err = _console(stderr=True)
    with _writer(index) as idx:
        done = merge_voices(idx, keep, other)
    if done["shared_takes"]:
        err.print(f"[yellow]Note[/]: the two voices speak in {done['shared_takes']} take(s) together, where "
                  "diarization told them apart; `dailies speakers split` undoes a wrong merge take by take.")
    err.print(f"{other} merged into {done['voice_id']}" + (f" ({done['name']})." if done["name"] else "."))


@speakers_app.command("split")
def split_cmd(voice: str = typer.Argument(..., help="The voice (id or name) that wrongly includes a take's speaker."),
              take: str = typer.Argument(..., help="The take (clip name, take id or path)."),
              label: Optional[str] = typer.Option(None, "--label", help="The take's local speaker (e.g. SPEAKER_01), "
                                                                       "when the voice has several there."),
              name: Optional[str] = typer.Option(None, "--name", help="Name the new voice at once."),
              index: Optional[Path] = IndexOpt) -> None:
    """Move a take's local speaker out of a voice into a new voice (kept apart on re-indexing)."""
    from indexer.edits import split_voice

    with _writer(index) as idx:
        done = split_voice(idx, voice, take, label, name)
    _console(stderr=True).print(f"{done['clip']}: that speaker is now {done['voice_id']}"
                                + (f" ({done['name']})." if done["name"] else "."))
