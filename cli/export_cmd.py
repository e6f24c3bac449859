"""``dailies export``: string-outs, markers, ALE and transcripts for Avid, Resolve and Premiere.

Mounted by cli/main.py as ``app.add_typer(export_app, name="export")``. Heavy libraries
(OpenTimelineIO, Chroma, the line search) are imported inside the commands.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import List, Optional

import typer

from indexer.errors import DailiesError


class _ExportTyper(typer.Typer):
    """Standalone use (tests, ``python -m``): a DailiesError is one line on stderr, as in ``dailies``."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except DailiesError as exc:
            if os.environ.get("DAILIES_DEBUG"):
                traceback.print_exc()
            print(f"dailies: error: {exc.message}", file=sys.stderr)
            sys.exit(exc.exit_code)


export_app = _ExportTyper(
    help="Export search hits, markers, logs and transcripts for Avid, Resolve and Premiere "
         "(EDL, FCP 7 XML, FCPXML, ALE, OTIO, SRT/VTT/CSV/TXT/JSON).",
    no_args_is_help=True, rich_markup_mode=None, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]})

IndexOpt = typer.Option(None, "--index", "-i", envvar="DAILIES_INDEX", show_envvar=True,
                        help="Index folder [default: ./dailies-index].")
LineOpt = typer.Option(None, "--line", help="Every take that delivered this line (the line search).")
SpeakerOpt = typer.Option(None, "--speaker", help="Every line of this speaker.")
VisualOpt = typer.Option(None, "--visual", help="Shots that look like this description.")
ScriptLineOpt = typer.Option(None, "--script-line", help="The takes that delivered a script line, e.g. 12A/4.")
SceneOpt = typer.Option(None, "--scene", help="Only takes of this scene (e.g. 12A).")
LimitOpt = typer.Option(100, "--limit", "-n", min=1, help="At most this many hits from the search.")
MinMatchOpt = typer.Option(0.5, "--min-match", min=0.0, max=1.0,
                           help="Line search: share of the line that must have been delivered (0-1).")
FormatOpt = typer.Option(None, "--format", "-f", help="Output format when the extension does not say it.")
ForceOpt = typer.Option(False, "--force", help="Overwrite existing files.")
JsonOpt = typer.Option(False, "--json", help="Print what was written as JSON.")


def _open(index: Optional[Path]):
    from indexer.config import index_path
    from indexer.store import Index

    return Index.open(index_path(index))


def _report(outputs, written, as_json: bool, notes: list[str] | None = None) -> None:
    desc = {str(p): d for p, _, d in outputs}
    if as_json:
        print(json.dumps([{"path": str(p), "description": desc[str(p)]} for p in written], indent=2))
    else:
        for p in written:
            print(f"wrote {p}  ({desc[str(p)]})")
    for n in notes or []:
        print(f"note: {n}", file=sys.stderr)


def _write(outputs, force: bool, *, make_folder: bool = False):
    from indexer.export import write_files

    return write_files([(p, t) for p, t, _ in outputs], force=force, make_folder=make_folder)


# ------------------------------------------------------------------------------------------ stringout

@export_app.command("stringout")
def stringout_cmd(
    out: Path = typer.Option(..., "--output", "-o", help="OUT.edl | OUT.xml (FCP 7) | OUT.fcpxml | OUT.otio."),
    line: Optional[str] = LineOpt, speaker: Optional[str] = SpeakerOpt, visual: Optional[str] = VisualOpt,
    script_line: Optional[str] = ScriptLineOpt,
    index: Optional[Path] = IndexOpt, scene: Optional[str] = SceneOpt, limit: int = LimitOpt,
    min_match: float = MinMatchOpt,
    handles: int = typer.Option(12, "--handles", min=0, help="Frames added before and after each hit "
                                                             "(never past the clip's ends)."),
    rate: Optional[str] = typer.Option(None, "--rate", help="Timeline rate, e.g. 23.976, 25, 29.97 "
                                                            "[default: the most common source rate]. "
                                                            "EDLs always run at their sources' rate."),
    order: str = typer.Option("rank", "--order", help="rank (as the search ranked them) or scene (scene/take)."),
    all_hits: bool = typer.Option(False, "--all-hits", help="Keep every hit of a take, not only its best "
                                                            "(the default for --speaker and --visual)."),
    reel_len: int = typer.Option(8, "--reel-len", min=0, help="Longest EDL reel/tape name (8 for CMX 3600; "
                                                               "0 = the whole clip name)."),
    title: Optional[str] = typer.Option(None, "--title", help="Timeline name."),
    fmt: Optional[str] = FormatOpt, force: bool = ForceOpt, as_json: bool = JsonOpt,
) -> None:
    """Cut every hit back to back, with handles, into a timeline: EDL, FCP 7 XML, FCPXML or OTIO.

    EDLs hold one frame rate, so hits from takes at different rates are written as one EDL per rate
    (OUT_23.976.edl, OUT_25.edl, OUT_29.97DF.edl).
    """
    from indexer.export import STRINGOUT_FORMATS, pick_format, stringout_outputs
    from indexer.export.hitsets import nothing_found, search_hits

    fmt_name = pick_format(out, fmt, STRINGOUT_FORMATS, "string-out")
    if order not in ("rank", "scene"):
        raise DailiesError(f"Unknown order '{order}' (use rank or scene).")
    with _open(index) as idx:
        kind, value, hits = search_hits(idx, line=line, speaker=speaker, visual=visual, script_line=script_line,
                                        scene=scene, limit=limit, min_match=min_match)
        if not hits:
            raise nothing_found(kind, value)
        outputs, notes = stringout_outputs(idx, kind, value, hits, fmt_name, out, handles=handles, rate=rate,
                                           order=order, all_hits=all_hits, reel_len=reel_len, title=title)
    written = _write(outputs, force)
    _report(outputs, written, as_json, notes)


# ------------------------------------------------------------------------------------------ markers

@export_app.command("markers")
def markers_cmd(
    out: Path = typer.Option(..., "--output", "-o",
                             help="FILE or FOLDER: .txt (Avid), .edl (Resolve), .xml (Premiere, FCP 7), "
                                  ".csv, .otio. Avid and Resolve files are one per take."),
    take: List[str] = typer.Option([], "--take", "-t", help="Every line of this take (clip name or take id); "
                                                            "repeat for more takes."),
    line: Optional[str] = LineOpt, speaker: Optional[str] = SpeakerOpt, visual: Optional[str] = VisualOpt,
    script_line: Optional[str] = ScriptLineOpt,
    index: Optional[Path] = IndexOpt, scene: Optional[str] = SceneOpt, limit: int = LimitOpt,
    min_match: float = MinMatchOpt,
    circled: bool = typer.Option(False, "--circled", help="A marker on every circled take (\"CIRCLED: note\" "
                                                          "at its first frame); alone, only those."),
    notes: bool = typer.Option(False, "--notes", help="The review notes (`dailies notes`) as markers at their "
                                                      "frames; alone, only those (with --circled: and the circles)."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="avid, resolve, premiere, csv or otio."),
    force: bool = ForceOpt, as_json: bool = JsonOpt,
) -> None:
    """One marker per line ("speaker: text") at the take's source TC, for Avid, Resolve or Premiere.
    A circled take among them also gets a "CIRCLED: note" marker at its first frame, and each review note on
    them a "NOTE (author): text" marker at its frame."""
    from indexer.errors import NothingToExportError, UsageError
    from indexer.export import MARKER_FORMATS, marker_outputs, pick_format
    from indexer.export.hitsets import circle_hits, note_hits, nothing_found, search_hits, take_hits
    from indexer.export.output import is_folder_target

    if fmt is None and is_folder_target(out):
        raise UsageError(f"Writing into the folder {out}: say which markers with --format "
                         f"({', '.join(MARKER_FORMATS)}).")
    fmt_name = pick_format(None if is_folder_target(out) else out, fmt, MARKER_FORMATS, "marker")
    if fmt_name in ("premiere", "csv", "otio") and is_folder_target(out):
        out = out / f"markers{MARKER_FORMATS[fmt_name]}"
    with _open(index) as idx:
        if (circled or notes) and not take and not any((line, speaker, visual, script_line)):
            hits = (circle_hits(idx) if circled else []) + (note_hits(idx) if notes else [])
            if not hits:
                what = " and ".join(w for w, on in (("no take is circled (`dailies circle TAKE`)", circled),
                                                     ("no take has review notes (`dailies notes add`)", notes)) if on)
                raise NothingToExportError(f"Nothing to export: {what}; no file was written.")
        elif take:
            if any((line, speaker, visual, script_line)):
                raise UsageError("Give either --take or one search (--line, --speaker, --visual, --script-line).")
            hits = take_hits(idx, take)
            if not hits:
                raise NothingToExportError(f"Nothing to export: {', '.join(take)} has no transcribed lines; "
                                   "no file was written.")
        else:
            kind, value, hits = search_hits(idx, line=line, speaker=speaker, visual=visual,
                                            script_line=script_line, scene=scene, limit=limit, min_match=min_match)
            if not hits:
                raise nothing_found(kind, value)
        outputs = marker_outputs(idx, hits, fmt_name, out)
    written = _write(outputs, force, make_folder=is_folder_target(out))
    _report(outputs, written, as_json)


# ------------------------------------------------------------------------------------------ ale

@export_app.command("ale")
def ale_cmd(
    out: Path = typer.Option(..., "--output", "-o", help="OUT.ale (one per rate when takes differ: "
                                                         "OUT_23.976.ale, OUT_29.97DF.ale ...)."),
    take: List[str] = typer.Option([], "--take", "-t", help="Only these takes (default: every indexed take)."),
    index: Optional[Path] = IndexOpt,
    words: int = typer.Option(12, "--dialogue-words", min=1, help="Words of dialogue in the Dialogue column."),
    reel_len: int = typer.Option(8, "--reel-len", min=0, help="Longest Tape name (0 = the whole clip name)."),
    fmt: Optional[str] = FormatOpt, force: bool = ForceOpt, as_json: bool = JsonOpt,
) -> None:
    """An Avid Log Exchange of the indexed takes: Name, Tape, Start, End, FPS, Scene, Take, Camera,
    Speakers, Dialogue, Script lines."""
    from indexer.export import ALE_FORMATS, ale_outputs, pick_format

    pick_format(out, fmt, ALE_FORMATS, "log")
    with _open(index) as idx:
        outputs = ale_outputs(idx, out, take or None, dialogue_words=words, reel_len=reel_len)
    written = _write(outputs, force)
    _report(outputs, written, as_json)


# ------------------------------------------------------------------------------------------ transcript

@export_app.command("transcript")
def transcript_cmd(
    take: str = typer.Argument(..., help="Clip name, take id or path."),
    out: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write ('-' for stdout) "
                                                                    "[default: CLIPNAME.FORMAT here]."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="srt, vtt, csv, txt or json "
                                                                   "[default: from -o, else srt]."),
    index: Optional[Path] = IndexOpt, force: bool = ForceOpt, as_json: bool = JsonOpt,
) -> None:
    """A take's transcript with speaker labels: SRT/VTT (times from the file's start), CSV/TXT/JSON (with TC)."""
    from indexer.export import TRANSCRIPT_EXT, pick_format, transcript_outputs

    if fmt is None and (out is None or str(out) == "-"):
        fmt = "srt"
    fmt_name = pick_format(out if out is not None and str(out) != "-" else None, fmt, TRANSCRIPT_EXT, "transcript")
    with _open(index) as idx:
        outputs = transcript_outputs(idx, take, fmt_name, out)
    target = outputs[0][0]
    if str(target) == "-":
        sys.stdout.write(outputs[0][1])
        return
    written = _write(outputs, force)
    _report(outputs, written, as_json)


if __name__ == "__main__":  # pragma: no cover
    export_app()
