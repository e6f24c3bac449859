"""`dailies notes ...`: the team's review notes at a frame of a take (add, list, edit, delete).

Mounted by cli/main.py as ``app.add_typer(notes_app, name="notes")``. A note is a review mark, like a circle:
written beside the index's one writer, so a note goes in while `dailies index` runs. The review room's player
writes the same notes (:mod:`indexer.edits`), and `dailies export markers` carries them to the NLE.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Optional

import typer

from cli.options import IndexOpt, JsonOpt

notes_app = typer.Typer(help="Review notes at a frame of a take: what the team saw or heard (add, list, edit, "
                             "delete).",
                        rich_markup_mode=None, no_args_is_help=True)


def _console(stderr: bool = False):
    from cli.console import console

    return console(stderr)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no user name known (a container without one): the note has no author
        return None


@notes_app.command("add")
def add_cmd(take: str = typer.Argument(..., help="Clip name, take id or path."),
            at: str = typer.Argument(..., help="Where: the take's source timecode (01:00:26:09, ';' or ':' "
                                               "either way) or seconds from its first frame (12.5)."),
            text: str = typer.Argument(..., help="The note, e.g. \"boom in frame\"."),
            by: Optional[str] = typer.Option(None, "--by", help="Who wrote it [default: your user name]."),
            to: Optional[str] = typer.Option(None, "--to", help="A note over a stretch of the take: its last frame, "
                                                                "as AT (timecode or seconds)."),
            index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """A note at a frame of a take, or over a stretch with --to (works while `dailies index` runs)."""
    from indexer.config import index_path
    from indexer.edits import add_note, marks

    with marks(index_path(index)) as idx:
        done = add_note(idx, take, at, text, author=by if by is not None else _user(), to=to)
    if as_json:
        print(json.dumps(done, indent=2, ensure_ascii=False))
        return
    from indexer.views import note_when

    _console(stderr=True).print(f"Note {done['note_id']} on {done['name']} at {note_when(done)}: {done['text']}",
                                markup=False)


@notes_app.command("list")
def list_cmd(take: Optional[str] = typer.Option(None, "--take", "-t", help="Only this take's notes."),
             index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """The review notes, by take and frame, with their source TC."""
    from indexer.config import index_path
    from indexer.store import Index
    from indexer.views import notes

    with Index.open(index_path(index)) as idx:
        rows = notes(idx, take)
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    out = _console()
    if not rows:
        out.print("No review notes" + (f" on {take}" if take else "") + "; add one with "
                  "`dailies notes add TAKE TC \"text\"` or from the review room's player.", markup=False)
        return
    from rich import box
    from rich.table import Table

    from indexer.views import note_when

    t = Table(title="Review notes", box=box.SIMPLE_HEAD)
    for c, j in (("#", "right"), ("clip", "left"), ("sc/tk", "left"), ("TC", "left"), ("by", "left"),
                 ("note", "left")):
        t.add_column(c, justify=j, overflow="fold")
    for n in rows:
        sctk = "/".join(x for x in (n["scene"] or "", n["take"] or "") if x) or "—"
        t.add_row(str(n["note_id"]), n["name"], sctk, note_when(n), n["author"] or "—", n["text"])
    out.print(t)


@notes_app.command("edit")
def edit_cmd(note_id: str = typer.Argument(..., help="The note's number (`dailies notes list`)."),
             text: str = typer.Argument(..., help="Its new text."),
             index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """Change a review note's text (its frames, author and time stay)."""
    from indexer.config import index_path
    from indexer.edits import edit_note, marks
    from indexer.views import note_when

    with marks(index_path(index)) as idx:
        done = edit_note(idx, note_id, text)
    if as_json:
        print(json.dumps(done, indent=2, ensure_ascii=False))
        return
    _console(stderr=True).print(f"Note {done['note_id']} on {done['name']} at {note_when(done)}: {done['text']}",
                                markup=False)


@notes_app.command("delete")
def delete_cmd(note_id: str = typer.Argument(..., help="The note's number (`dailies notes list`)."),
               index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """Delete a review note."""
    from indexer.config import index_path
    from indexer.edits import delete_note, marks

    with marks(index_path(index)) as idx:
        done = delete_note(idx, note_id)
    if as_json:
        print(json.dumps(done, indent=2, ensure_ascii=False))
        return
    _console(stderr=True).print(f"Note {done['note_id']} deleted" + (f" ({done['name']} {done['tc']})."
                                                                      if "tc" in done else "."), markup=False)
