"""Rich progress for `dailies index`: one bar for the batch, one for the current file's step (stderr); for a
cluster run (`--cluster`) or `--jobs N`, one line for the whole run: takes done, hours of media, rate, ETA."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

_STATUS_STYLE = {"indexed": "green", "unchanged": "dim", "moved": "cyan", "duplicate": "dim", "failed": "red"}


class IndexProgress:
    """A pipeline Reporter drawing rich progress bars; one printed line per finished file."""

    def __init__(self, console: Console, quiet: bool = False, cluster: bool = False, jobs: int = 1):
        self.console = console
        self.quiet = quiet
        # worker processes (a cluster, or --jobs N here) report no steps: one line for the whole run
        self.cluster = ClusterTally() if cluster else ClusterTally("jobs", jobs) if jobs > 1 else None
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
        if self.cluster is not None:
            self.progress.update(self.step_task, description=f"{self.current}: hashing, probing",
                                 completed=0, total=None)
            return
        self.progress.update(self.step_task, description=f"{self.current}: starting", completed=0, total=None)

    def step(self, name: str, done: float | None = None, total: float | None = None,
             file: str | None = None) -> None:
        if self.cluster is not None and self.cluster.waiting:
            return                      # the cluster line stands while takes are out on the workers
        desc = f"{Path(file).name if file else self.current}: {name}"
        if done is not None and total:
            self.progress.update(self.step_task, description=desc, completed=int(done), total=int(max(total, 1)))
        else:
            self.progress.update(self.step_task, description=desc, total=None)

    def submitted(self, path: str, media_seconds: float) -> None:
        if self.cluster is not None:
            self.cluster.submitted(path, media_seconds)
            self._cluster_line()

    def cluster_event(self, kind: str, **kw) -> None:
        """What the pool of workers says (indexer.cluster.RayPool): started, worker died, retry."""
        if kind == "started":
            self.cluster.workers = kw["workers"]
            hosts = kw["hosts"]
            self.warning_always(f"Cluster: {kw['workers']} worker(s) on {len(hosts)} machine(s) "
                                f"({', '.join(hosts[:4])}{' ...' if len(hosts) > 4 else ''}).")
        elif kind == "retry":
            self.warning(f"{kw['path']}: its worker died; trying again (attempt {kw['attempt']}).")
        self._cluster_line()

    def _cluster_line(self) -> None:
        if self.cluster is not None and self.step_task is not None:
            self.progress.update(self.step_task, description=self.cluster.line(), total=None)

    def file_finished(self, result) -> None:
        if self.cluster is not None:
            self.cluster.finished(result)
            self._cluster_line()
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

    def warning_always(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[dim]{message}[/]", highlight=False, soft_wrap=True)


class ClusterTally:
    """Takes done, hours of media, rate and ETA of a cluster run (what its progress line says)."""

    def __init__(self, label: str = "cluster", workers: int = 0):
        self.t0 = time.monotonic()
        self.label = label           # "cluster", or "jobs" for worker processes on this machine
        self.workers = workers
        self.out = 0                 # takes submitted and not yet finished
        self.done = 0                # takes finished (indexed or failed) that went to a worker
        self.media_queued = 0.0      # seconds of media submitted
        self.media_done = 0.0        # seconds of media of the takes indexed
        self._out: dict[str, float] = {}

    @property
    def waiting(self) -> bool:
        return self.out > 0

    def submitted(self, path: str, media_seconds: float) -> None:
        self.out += 1
        self._out[path] = media_seconds or 0.0
        self.media_queued += media_seconds or 0.0

    def finished(self, result) -> None:
        if result.path in self._out:
            media = self._out.pop(result.path)
            self.out -= 1
            self.done += 1
            if result.status == "indexed":
                self.media_done += media
            else:                          # a failed take is no longer to do
                self.media_queued -= media

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.t0, 1e-6)
        rate = self.media_done / elapsed             # seconds of media per second
        left = max(self.media_queued - self.media_done, 0.0)
        eta = f"ETA {_hms(left / rate)}" if rate > 0 and left > 0 else "ETA --"
        return (f"{self.label}: {self.workers} worker(s) · {self.done} take(s) done, {self.out} out · "
                f"{self.media_done / 3600:.2f}/{self.media_queued / 3600:.2f} h of media · "
                f"{rate:.1f}× real time · {eta} (for the takes submitted so far)")


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
