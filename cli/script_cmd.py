"""``dailies script``: import screenplays, match takes to script lines, lined-script coverage.

Mounted by ``cli/main.py`` with ``app.add_typer(script_app, name="script")``. Heavy work lives in
``indexer.script``; this module only parses options and prints (rich tables for people, ``--json``
for machines, progress on stderr).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from cli.options import IndexOpt, JsonOpt
from indexer.errors import DailiesError

script_app = typer.Typer(help="Screenplays: import Fountain/Final Draft, match takes to script lines, "
                              "lined-script coverage.", no_args_is_help=True, rich_markup_mode=None,
                         add_completion=False, pretty_exceptions_enable=False,
                         context_settings={"help_option_names": ["-h", "--help"]})

ScriptOpt = typer.Option(None, "--script", "-s", help="Which imported script (its name) [default: the last imported].")
VersionOpt = typer.Option(None, "--version", help="Which import of the script [default: the latest].")
FORMATS = ("table", "csv", "json", "html")


def _console(stderr: bool = False):
    from cli.console import console

    return console(stderr)


class _Progress:
    """Progress on stderr for import and matching (silent with --json or when stderr is not a terminal)."""

    def __init__(self, quiet: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
                                 MofNCompleteColumn(), console=_console(stderr=True), transient=True, disable=quiet)
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        self.task = self.progress.add_task("script", total=None)
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def __call__(self, step: str, done: int, total: int) -> None:
        self.progress.update(self.task, description=step, completed=done, total=total or None)


# ------------------------------------------------------------------------------------------ import

@script_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="Screenplay: .fountain / .spmd / .txt (Fountain) or .fdx (Final Draft)."),
    index: Optional[Path] = IndexOpt,
    name: Optional[str] = typer.Option(None, "--name", help="Name of the script in the index [default: its title "
                                                              "or file name]; importing under a known name adds a version."),
    renumber: bool = typer.Option(False, "--renumber", help="Number lines by position again instead of keeping the "
                                                             "ids of the previous version."),
    no_match: bool = typer.Option(False, "--no-match", help="Only import; do not match the indexed takes now."),
    as_json: bool = JsonOpt,
) -> None:
    """Import (or re-import) a screenplay, then match every indexed take against it."""
    from indexer.config import index_path
    from indexer.script.catalog import import_script
    from indexer.script.pages import eighths_label
    from indexer.store import Index

    with Index.open_writer(index_path(index)) as idx, _Progress(quiet=as_json) as progress:
        res = import_script(idx, file, name=name, renumber=renumber, match=not no_match, progress=progress)
    s = res.script
    summary = {
        "script": res.name, "version": res.version, "unchanged": res.unchanged, "format": s.format,
        "title": s.title, "pages": s.pages, "pages_source": s.pages_source, "scenes": len(s.scenes),
        "dialogue_lines": len(s.lines), "characters": s.characters, "changes": res.changes,
        "warnings": s.warnings,
        "takes_matched": len(res.matched),
        "deliveries": sum(len(m.deliveries) for m in res.matched),
        "takes_without_scene": [m.name for m in res.matched if m.scene is None and not m.no_dialogue],
    }
    if as_json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    err = _console(stderr=True)
    for w in s.warnings:
        err.print(f"[yellow]warning[/]: {w}", markup=True)
    out = _console()
    verb = "already imported (unchanged)" if res.unchanged else "imported"
    out.print(f"[bold]{res.name}[/] version {res.version} {verb}: {s.format}, {len(s.scenes)} scenes, "
              f"{len(s.lines)} dialogue lines, {len(s.characters)} speaking characters, "
              f"{s.pages} pages ({'as stated in the file' if s.pages_source == 'stored' else 'paginated'}).")
    if res.version > 1 and not res.unchanged:
        c = res.changes
        out.print(f"Against version {res.version - 1}: {c['same']} lines unchanged (ids kept), {c['changed']} changed "
                  f"(ids kept), {c['new']} new, {c['removed']} removed.")
    if res.matched:
        with_scene = [m for m in res.matched if m.scene]
        out.print(f"Matched {len(res.matched)} takes: {sum(len(m.deliveries) for m in res.matched)} deliveries in "
                  f"{len(with_scene)} takes with a scene" +
                  (f"; no scene found for {', '.join(summary['takes_without_scene'])}"
                   if summary["takes_without_scene"] else "") + ".")
    if s.scenes and not as_json:
        from rich.table import Table

        t = Table(title="Scenes", show_lines=False)
        for c in ("scene", "heading", "pages", "length", "lines"):
            t.add_column(c)
        shown = s.scenes if len(s.scenes) <= 40 else s.scenes[:40]
        for sc in shown:
            n = sum(1 for ln in s.lines if ln.scene == sc.index)
            pages = "" if sc.page_start is None else (str(sc.page_start) if sc.page_end in (None, sc.page_start)
                                                      else f"{sc.page_start}-{sc.page_end}")
            t.add_row(sc.label, sc.heading, pages, eighths_label(sc.eighths), str(n))
        if len(s.scenes) > 40:
            t.caption = f"... and {len(s.scenes) - 40} more scenes (dailies script coverage lists all)"
        out.print(t)


# ------------------------------------------------------------------------------------------ match

@script_app.command("match")
def match_cmd(
    takes: List[str] = typer.Argument(None, help="Takes to match (clip name or take id) [default: all indexed]."),
    index: Optional[Path] = IndexOpt, script: Optional[str] = ScriptOpt, as_json: bool = JsonOpt,
) -> None:
    """Match indexed takes against the script again (e.g. takes indexed after the import)."""
    from indexer.config import index_path
    from indexer.script.catalog import match_takes, resolve_version
    from indexer.store import Index

    with Index.open_writer(index_path(index)) as idx, _Progress(quiet=as_json) as progress:
        v = resolve_version(idx, script)
        ids = None
        if takes:
            ids = [idx.take(t)["take_id"] for t in takes]
        res = match_takes(idx, v["version_id"], ids, progress=progress)
    if as_json:
        print(json.dumps([m.to_json() for m in res], indent=2, ensure_ascii=False))
        return
    _console().print(f"Matched {len(res)} takes: {sum(len(m.deliveries) for m in res)} deliveries.")


# ------------------------------------------------------------------------------------------ queries

def _load(index, script, version):
    from indexer.config import index_path
    from indexer.script.catalog import all_matches, name_of_script, resolve_version, script_of
    from indexer.store import Index

    idx = Index.open(index_path(index))
    try:
        v = resolve_version(idx, script, version)
        s = script_of(idx, v)
        name = name_of_script(idx, v)
        matches = all_matches(idx, v, s)
        takes = {r["take_id"]: dict(r) for r in idx.takes()}
    finally:
        idx.close()
    return name, v, s, matches, takes


def _note_unstored(matches) -> None:
    _note_unstored_names([m.name for m in matches if not m.stored])


def _note_unstored_names(fresh: list[str]) -> None:
    if fresh:
        _console(stderr=True).print(
            f"[dim]{len(fresh)} take(s) indexed since the last match were matched now, not stored: "
            "run `dailies script match` to store them.[/]", markup=True)


@script_app.command("line")
def line_cmd(
    line_id: str = typer.Argument(..., help="Script line id: scene number as written / position, e.g. 12A/4."),
    index: Optional[Path] = IndexOpt, script: Optional[str] = ScriptOpt, version: Optional[int] = VersionOpt,
    limit: int = typer.Option(100, "--limit", "-n", min=1, help="At most this many deliveries."),
    as_json: bool = JsonOpt,
) -> None:
    """Every take that delivers a script line, best first (full deliveries, then partial ones)."""
    from indexer.script.catalog import line_deliveries

    name, v, s, matches, _ = _load(index, script, version)
    ln = s.line(line_id)
    if ln is None:
        near = [x.line_id for x in s.lines if x.line_id.split("/")[0].upper() == line_id.split("/")[0].strip().upper()]
        hint = f" (scene {line_id.split('/')[0]} has {near[0]} to {near[-1]})" if near else \
            " (ids are SCENE/N, e.g. 12A/4; `dailies script coverage` lists them)"
        raise DailiesError(f"No line {line_id} in script '{name}'{hint}.")
    dels = line_deliveries(matches, ln.line_id)[:limit]
    _note_unstored(matches)
    if as_json:
        print(json.dumps([d.to_json() for d in dels], indent=2, ensure_ascii=False))
        return
    from rich import box
    from rich.table import Table

    from cli.render import diff_legend, diff_text, plain_output

    out = _console()
    markers = plain_output(out)
    out.print(f"[bold]{ln.line_id}[/]  {ln.character}: {ln.text}")
    if not dels:
        out.print("No take delivers this line.")
        return
    t = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False,
              caption=diff_legend(True, markers))
    for c, kw in (("clip", {"overflow": "fold", "ratio": 1}), ("TC in", {"no_wrap": True}), ("TC out", {"no_wrap": True}),
                  ("score", {"justify": "right"}), ("status", {}), ("delivered", {"ratio": 3, "overflow": "fold"})):
        t.add_column(c, **kw)
    for d in dels:
        status = d.status + (f" #{d.attempt}" if d.attempt > 1 else "")
        t.add_row(d.name, d.tc_in, d.tc_out, f"{d.score:.2f}", status, diff_text(d.diff, d.delivered, markers))
    out.print(t)


@script_app.command("take")
def take_cmd(
    take: str = typer.Argument(..., help="The take: clip name (file name without extension), take id, or path."),
    index: Optional[Path] = IndexOpt, script: Optional[str] = ScriptOpt, version: Optional[int] = VersionOpt,
    as_json: bool = JsonOpt,
) -> None:
    """A take's deliveries in script order, with deviations and the lines it skipped."""
    from indexer import views
    from indexer.config import index_path
    from indexer.script.catalog import resolve_version
    from indexer.store import Index

    with Index.open(index_path(index)) as idx:
        resolve_version(idx, script, version)            # no screenplay, or no such script: one sentence
        row = idx.take(take)
        if row["status"] != "indexed":
            raise DailiesError(f"The take {row['name']} is not indexed yet (status {row['status']}).")
        ts = views.take_script(idx, take, script=script, version=version)
    entries = ts["lines"]
    _note_unstored_names([] if ts["stored"] else [ts["name"]])
    if as_json:
        print(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    from rich import box
    from rich.table import Table

    from cli.render import diff_legend, diff_text, plain_output

    out = _console()
    markers = plain_output(out)
    how = {"name": "from its name", "dialogue": "found from its dialogue"}.get(ts["scene_source"] or "", "")
    if ts["scene"] is None:
        out.print(f"{row['name']}: no scene of '{ts['script']}' found for this take"
                  + (" (nothing was said in it)." if ts["no_dialogue"] else " (its dialogue matches no scene)."))
        return
    skipped = [e["line_id"] for e in entries if e["status"] == "missing"]
    out.print(f"[bold]{row['name']}[/]  scene {ts['scene']} ({how}), {len(entries) - len(skipped)} deliveries"
              + (f", skipped: {', '.join(skipped)}" if skipped else "")
              + (" — no dialogue recorded (MOS)" if ts["no_dialogue"] else ""))
    t = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False, caption=diff_legend(True, markers))
    for c, kw in (("line", {"no_wrap": True}), ("character", {"no_wrap": True}), ("TC in", {"no_wrap": True}),
                  ("TC out", {"no_wrap": True}), ("score", {"justify": "right"}), ("status", {}),
                  ("delivered", {"ratio": 3, "overflow": "fold"})):
        t.add_column(c, **kw)
    for e in entries:
        status = e["status"] + (f" #{e['attempt']}" if e["attempt"] > 1 else "")
        style = "red" if e["status"] == "missing" else None
        t.add_row(e["line_id"], e["character"], e["tc_in"] or "—", e["tc_out"] or "—",
                  f"{e['score']:.2f}" if e["status"] != "missing" else "—", status,
                  diff_text(e["diff"], e["delivered"], markers), style=style)
    out.print(t)


@script_app.command("coverage")
def coverage_cmd(
    index: Optional[Path] = IndexOpt, script: Optional[str] = ScriptOpt, version: Optional[int] = VersionOpt,
    scene: Optional[str] = typer.Option(None, "--scene", help="Only this scene (number as written, e.g. 12A)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or html."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report to this file "
                                                                       "(csv/json/html) instead of stdout."),
    as_json: bool = JsonOpt,
) -> None:
    """The lined-script matrix (script lines x takes: delivered, partial, missing) and a summary per scene."""
    from indexer.script import report

    if as_json:
        fmt = "json"
    if fmt not in FORMATS:
        raise DailiesError(f"Unknown format '{fmt}' (use one of: {', '.join(FORMATS)}).")
    from indexer import views
    from indexer.config import index_path
    from indexer.store import Index

    with Index.open(index_path(index)) as idx:
        cov, fresh = views.coverage(idx, script, version, scene)
    _note_unstored_names(fresh)
    if fmt != "table":
        text = {"csv": report.to_csv, "json": report.to_json, "html": report.to_html}[fmt](cov)
        if output:
            output.write_text(text, encoding="utf-8")
            _console(stderr=True).print(f"Wrote {output}")
        else:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    _print_table(cov)


@script_app.command("lined")
def lined_cmd(
    output: Path = typer.Option(..., "--output", "-o", help="The HTML file to write (print it, or save it as PDF)."),
    index: Optional[Path] = IndexOpt, script: Optional[str] = ScriptOpt, version: Optional[int] = VersionOpt,
) -> None:
    """The lined script as print-ready HTML: every script page (US Letter) with a line per take down the
    dialogue it covers (solid: delivered; * deviates; dotted: partly said; dashed: not said), the same
    pages as the review room's /script/print."""
    from indexer import views
    from indexer.config import index_path
    from indexer.server.lined import print_html
    from indexer.store import Index

    with Index.open(index_path(index)) as idx:
        data = views.lined_script(idx, script, version)
    try:
        output.write_text(print_html(data), encoding="utf-8")
    except OSError as exc:
        raise DailiesError(f"Cannot write the lined script to {output} ({exc.strerror}).") from None
    _console(stderr=True).print(f"Wrote {output}: {_n(len(data['pages']), 'page')}, "
                                      f"{_n(len(data['takes']), 'take')} lined.")


def _print_table(cov) -> None:
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from cli.render import diff_legend, diff_text, plain_output

    out = _console()
    markers = plain_output(out)
    summ = Table(title=f"{cov.title or cov.script} (version {cov.version}) — coverage by scene", box=box.SIMPLE_HEAD)
    # short headers that wrap only between words: the summary reads at 80 columns
    for c, kw in (("scene", {}), ("pages", {}), ("length", {}), ("covered", {}), ("lines", {"justify": "right"}),
                  ("said", {"justify": "right"}), ("partial only", {"overflow": "fold", "min_width": 7}),
                  ("never said", {"overflow": "fold", "min_width": 5}), ("takes", {"justify": "right"})):
        summ.add_column(c, no_wrap="overflow" not in kw, **kw)
    for s in cov.scenes:
        pages = "" if s.page_start is None else (str(s.page_start) if s.page_end in (None, s.page_start)
                                                 else f"{s.page_start}-{s.page_end}")
        summ.add_row(s.scene, pages, s.length, s.covered, str(s.lines), str(s.delivered), ", ".join(s.partial_only),
                     ", ".join(s.never), str(len(s.takes)))
    out.print(summ)
    mark = {"delivered": "[green]✓[/]", "partial": "[yellow]½[/]", "missing": "[red]✗[/]"}
    legend = "✓ delivered · ½ partial · ✗ missing · ×n said n times · * deviates from the script"
    for s in cov.scenes:
        cols = [c for c in cov.columns if c.scene == s.scene]
        rows = [r for r in cov.rows if r.scene == s.scene]
        if not rows or not cols:
            continue

        def cell_of(r, c) -> str:
            cell = r.cells.get(c.take_id)
            if cell is None:
                return ""
            return (mark[cell.status] + (f"×{cell.deliveries}" if cell.deliveries > 1 else "")
                    + ("*" if cell.diff else ""))

        labels = [_take_label(c) + (" MOS" if c.no_dialogue else "") for c in cols]
        # a take column is as wide as its label's longest word or its widest cell ("✓×2*"), never split
        widths = [max([4] + [len(w) for w in lab.split()]
                      + [len(Text.from_markup(cell_of(r, c)).plain) for r in rows]) for lab, c in zip(labels, cols)]
        fixed = 3 + max(len(r.line_id) for r in rows) + min(12, max(len(r.character) for r in rows)) + 3 * 2
        matrix = fixed + sum(w + 2 for w in widths) + 24 <= out.width        # 24: a readable start of the text
        t = Table(title=f"Scene {s.scene} — {s.heading}", box=box.SIMPLE_HEAD, expand=True, pad_edge=False,
                  caption=legend)
        t.add_column("pg", justify="right", no_wrap=True)
        t.add_column("line", no_wrap=True)
        t.add_column("character", no_wrap=True, overflow="ellipsis", max_width=12)
        if matrix:
            # Lined-script columns are setups/takes ("T3 B"); the text is cut to what the terminal holds.
            t.add_column("text", no_wrap=True, overflow="ellipsis", ratio=1)
            for lab, w in zip(labels, widths):
                t.add_column(lab, justify="center", width=w)
            for r in rows:
                t.add_row(str(r.page or ""), r.line_id, r.character, r.text, *[cell_of(r, c) for c in cols])
        else:
            # Too many takes for the width: each line's takes are stacked under its text.
            t.add_column("text · takes", ratio=1)
            from rich.columns import Columns

            for r in rows:
                said = [Text.from_markup(f"{lab} {cell_of(r, c)}") for lab, c in zip(labels, cols) if cell_of(r, c)]
                cell = Text(r.text, no_wrap=True, overflow="ellipsis")
                t.add_row(str(r.page or ""), r.line_id, r.character, Group(cell, Columns(said, padding=(0, 2))
                                                                           if said else Text("—")))
        out.print(t)
        # the key, each "T1 A = 12A_T1_CamA" in one piece
        from rich.columns import Columns

        out.print(Columns([Text(f"{_take_label(c)} = {c.name}", style="dim") for c in cols], padding=(0, 3)))
        devs = [(r, c, r.cells[c.take_id]) for r in rows for c in cols
                if c.take_id in r.cells and r.cells[c.take_id].diff]
        if devs:
            d = Table(title="Deviations (*)", box=box.SIMPLE_HEAD, expand=True, pad_edge=False, show_header=True,
                      caption=diff_legend(True, markers))
            d.add_column("line", no_wrap=True)
            d.add_column("take", no_wrap=True, overflow="ellipsis", max_width=24)
            d.add_column("as delivered", ratio=3, overflow="fold")
            for r, c, cell in devs:
                d.add_row(r.line_id, c.name, diff_text(cell.diff, "", markers))
            out.print(d)
    if cov.unassigned:
        out.print(f"[dim]No scene found for: {', '.join(cov.unassigned)}[/]")


def _take_label(c) -> str:
    """A lined-script column heading: take and camera ("T3 B"), the wild track as named ("WT1")."""
    if not c.take:
        return c.name
    take = f"T{c.take}" if c.take[0].isdigit() else c.take
    return take + (f" {c.camera}" if c.camera else "")


@script_app.command("list")
def list_cmd(index: Optional[Path] = IndexOpt, as_json: bool = JsonOpt) -> None:
    """The scripts imported into the index, every version."""
    from indexer.config import index_path
    from indexer.script.catalog import scripts
    from indexer.store import Index

    with Index.open(index_path(index)) as idx:
        rows = scripts(idx)
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    t = Table(title="Imported scripts")
    for c in ("name", "version", "format", "scenes", "lines", "pages", "imported", "file"):
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(r["name"], str(r["version"]), r["format"], str(r["n_scenes"]), str(r["n_lines"]),
                  str(r["pages"] or ""), r["imported_at"], r["path"])
    _console().print(t)


def main() -> None:  # pragma: no cover - standalone use before the lead mounts it
    try:
        script_app()
    except DailiesError as exc:
        print(f"dailies: error: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
