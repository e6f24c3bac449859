"""Rich progress for `dailies index`: one bar for the batch, one for the current file's step (stderr)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

_STATUS_STYLE = {"indexed": "green", "unchanged": "dim", "moved": "cyan", "duplicate": "dim", "failed": "red"}


class IndexProgress:
    """A pipeline Reporter drawing rich progress bars; one printed line per finished file."""

    def __init__(self, console: Console, quiet: bool = False):
        self.console = console
        self.quiet = quiet
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=True, disable=quiet,
        )
        self.files_task = None
        self.step_task = None
        self.current = ""

    def __enter__(self) -> "IndexProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def run_started(self, total: int) -> None:
        self.files_task = self.progress.add_task("files", total=total)
        self.step_task = self.progress.add_task("", total=None)

    def file_started(self, number: int, path: str) -> None:
        self.current = Path(path).name
        self.progress.update(self.step_task, description=f"{self.current}: starting", completed=0, total=None)

    def step(self, name: str, done: float | None = None, total: float | None = None,
             file: str | None = None) -> None:
        desc = f"{Path(file).name if file else self.current}: {name}"
        if done is not None and total:
            self.progress.update(self.step_task, description=desc, completed=int(done), total=int(max(total, 1)))
        else:
            self.progress.update(self.step_task, description=desc, total=None)

    def file_finished(self, result) -> None:
        self.progress.advance(self.files_task)
        style = _STATUS_STYLE.get(result.status, "")
        if result.status == "failed":
            # one line per bad file: the sentence already names the file
            self.console.print(f"[red]✗[/] {result.message}", markup=True, highlight=False, soft_wrap=True)
        elif not self.quiet:
            extra = f"{_n(result.lines, 'line')}, {_n(result.shots, 'shot')}" if result.status in ("indexed", "unchanged", "moved") else ""
            if result.message:
                extra = f"{extra}; {result.message}" if extra else result.message
            self.console.print(f"[{style}]✓ {result.status:<9}[/] {result.path}  [dim]{extra}"
                               f"{f' ({result.seconds:.1f} s)' if result.status == 'indexed' else ''}[/]",
                               highlight=False, soft_wrap=True)

    def warning(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[yellow]![/] {message}", highlight=False, soft_wrap=True)


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
