"""Takes as Ray tasks: a pool of long-lived worker actors for :meth:`indexer.pipeline.Indexer.run_on`.

Each worker is a Ray actor holding one worker-side :class:`indexer.pipeline.Indexer` (no index): it loads
Whisper, the speaker models and CLIP once and runs :meth:`Indexer.compute` on the takes it is given,
returning each take's records (shots, words, lines, the diarization with its speaker embeddings, frame
vectors). It never touches the index: the driver (``dailies index --cluster``) stays its one writer.

Faults: a worker whose process dies mid-take loses that take only; Ray restarts the actor (bounded,
``MAX_RESTARTS``) and the take is submitted again (``MAX_ATTEMPTS`` in all), then reported as failed in one
sentence. Paths: workers open media under the driver's path, or under the worker's mount of the same
storage by ``--path-map DRIVER_PREFIX=WORKER_PREFIX`` (longest prefix first).

``ray`` is the optional extra ``dailies[cluster]``, imported only here and only when a cluster run starts.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field

from .config import IndexSettings
from .errors import DailiesError, UsageError

MAX_ATTEMPTS = 3          # a take is tried this many times in all when workers die under it
MAX_RESTARTS = 4          # a worker process is restarted this many times, then the pool goes on without it
PER_WORKER = 2            # takes handed to one worker at once: one running, one waiting (no idle gap)
START_TIMEOUT = 300.0     # seconds for every worker to start and load its models, else the run stops saying so


@dataclass
class ClusterSettings:
    address: str                           # auto (a local Ray instance), ray://HOST:PORT or HOST:PORT
    workers: int | None = None             # default: as many as the cluster's CPUs (or GPUs) allow
    cpus: float = 1.0                      # per worker
    gpus: float = 0.0                      # per worker (a fraction shares one GPU)
    path_map: list[tuple[str, str]] = field(default_factory=list)
    window: int | None = None              # takes submitted or finished and not yet committed (default 4 per worker)


def parse_path_map(specs: list[str]) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        driver, sep, worker = spec.partition("=")
        if not sep or not driver or not worker:
            raise UsageError(f"--path-map {spec!r}: write DRIVER_PREFIX=WORKER_PREFIX, e.g. "
                             "/Volumes/SHOOT=/mnt/shoot.")
        out.append((driver.rstrip("/") or "/", worker.rstrip("/") or "/"))
    return sorted(out, key=lambda m: -len(m[0]))


def map_path(path: str, path_map: list[tuple[str, str]]) -> str:
    """The worker's name for a driver's path (the longest matching prefix, whole path components only)."""
    for driver, worker in path_map:
        if path == driver or path.startswith(driver.rstrip("/") + "/"):
            return worker + path[len(driver):]
    return path


def _ray(local: bool = False):
    """Ray, imported. ``local``: for a Ray instance of this process's own (``--cluster auto``), whose workers
    run this very interpreter. Ray would otherwise, when the driver was started by ``uv run``, start each
    worker with that command line in a copy of the current folder, where a relative path to uv (``.tools/bin/uv
    run ...``) names nothing: the workers died at start and the run waited for them for ever."""
    if local and "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")    # read once, when Ray is imported
    try:
        import ray
    except ImportError:
        raise UsageError("--cluster needs Ray: install the extra, `pip install 'dailies[cluster]'` "
                         "(or `uv sync --extra cluster`).") from None
    return ray


class _TakeWorker:
    """The body of a worker actor (made a Ray actor class by :class:`RayPool`)."""

    def __init__(self, settings: IndexSettings, path_map: list[tuple[str, str]]):
        from .pipeline import Indexer

        self.path_map = path_map
        self.indexer = Indexer(None, settings)
        self.error: str | None = None
        try:
            self.indexer.load_models()
            self.indexer.transcriber()._load()         # the weights now, once, not in the first take
            if self.indexer.diarizer is not None:
                self.indexer.diarizer.load()
        except DailiesError as exc:          # said by ready(): the driver stops the run in one sentence
            self.error = exc.message

    def ready(self) -> dict:
        import socket

        return {"pid": os.getpid(), "host": socket.gethostname(), "error": self.error,
                "models": None if self.error else self.indexer.describe_models()}

    def compute(self, prepared):
        """One take's records, or the one sentence saying why it failed."""
        from .pipeline import failure_message

        path = prepared.path
        source = map_path(path, self.path_map)
        if not os.path.exists(source):
            import socket

            where = f" (as {source})" if source != path else ""
            return (f"{path}: not found on worker {socket.gethostname()}{where}; the workers must see the media "
                    "(shared storage; --path-map DRIVER_PREFIX=WORKER_PREFIX when their mounts differ).")
        prepared.info.path = source
        try:
            out = self.indexer.compute(prepared)
        except Exception as exc:  # one bad file never stops a batch
            return failure_message(path, exc).replace(source, path)
        out.info.path = path
        out.warnings = [w.replace(source, path) for w in out.warnings]
        return out


def _quiet_driver(ray) -> None:
    """Ray's driver prints its raylet's error messages ("A worker died or was killed ...") to stdout from a
    thread of its own, whatever ``log_to_driver`` says: that would break ``dailies index --json`` (stdout is
    the JSON) and the rule that only the CLI prints. The pool says what happened itself (a retry, a take
    that failed), so those messages go to the debug log instead."""
    worker = getattr(getattr(ray, "_private", None), "worker", None)
    show = getattr(worker, "print_to_stdstream", None)
    if show is None or getattr(show, "_dailies", False):
        return
    log = logging.getLogger(__name__)

    def quiet(data, ignore_prefix=False):
        if data.get("pid") == "raylet":
            log.debug("ray: %s", " ".join(data.get("lines", [])))
            return None
        return show(data, ignore_prefix)

    quiet._dailies = True
    worker.print_to_stdstream = quiet


def _same_models(a: dict, b: dict) -> str | None:
    """What differs between the driver's models and a worker's (devices may differ), or None."""
    def ident(d):
        return None if d is None else {k: v for k, v in d.items() if k not in ("device", "compute_type", "threads",
                                                                               "pyannote.audio", "path")}

    for kind in ("whisper", "diarization", "clip"):
        if ident(a.get(kind)) != ident(b.get(kind)):
            return kind
    return None


class RayPool:
    """Worker actors on a Ray cluster, handed takes by :meth:`indexer.pipeline.Indexer.run_on`."""

    def __init__(self, cluster: ClusterSettings, settings: IndexSettings, *, driver_models: dict | None = None,
                 on_event=None):
        self.cluster = cluster
        self.settings = settings
        self.driver_models = driver_models
        self.on_event = on_event or (lambda kind, **kw: None)
        self.retried = 0
        self.workers: list = []
        self.info: list[dict] = []
        self._dead: set[int] = set()
        self._deaths: dict[int, int] = {}
        self._restarting: dict[int, float] = {}  # worker -> when it was last asked whether it is back
        self._probes: dict = {}              # ref of a ready() call -> worker
        self._out: dict = {}                 # ref -> (key, prepared, worker number, attempt)
        self._queue: list = []               # (key, prepared, attempt) waiting for a free worker
        self._started_ray = False

    # ------------------------------------------------------------ start and stop
    def start(self) -> "RayPool":
        c = self.cluster
        ray = _ray(local=c.address == "auto")
        quiet = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                     configure_logging=True)
        if not ray.is_initialized():
            try:
                if c.address == "auto":
                    cpus = os.cpu_count() or 1
                    if c.workers:
                        cpus = max(1, int(c.workers * c.cpus + 0.999))
                    ray.init(num_cpus=cpus, object_store_memory=256 << 20, **quiet)
                else:
                    quiet.pop("include_dashboard")
                    ray.init(address=c.address, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UsageError(f"Could not reach the Ray cluster at {c.address} ({exc}).") from None
            self._started_ray = True
        _quiet_driver(ray)
        res = ray.cluster_resources()
        n = c.workers
        if not n:
            n = int(res.get("CPU", 1) // max(c.cpus, 0.001)) if c.cpus else 1
            if c.gpus:
                n = min(n, int(res.get("GPU", 0) // c.gpus))
            n = max(1, n)
        if c.gpus and res.get("GPU", 0) < c.gpus:
            raise UsageError(f"--worker-gpus {c.gpus}: the Ray cluster at {c.address} has no GPU.")
        settings = self.settings
        # Ray gives an actor OMP_NUM_THREADS = its CPUs (1 by default); the models' OpenMP and BLAS code then
        # rounds differently from a local run's on some CPUs (word times moved by 20 ms on an AVX2-only EPYC):
        # a worker runs them with the run's thread count, as a local run and a --jobs worker do.
        actor = ray.remote(_TakeWorker).options(
            num_cpus=c.cpus, num_gpus=c.gpus, max_restarts=MAX_RESTARTS, max_task_retries=0,
            runtime_env={"env_vars": {"OMP_NUM_THREADS": str(settings.threads)}})
        self.workers = [actor.remote(settings, c.path_map) for _ in range(n)]
        ready = [w.ready.remote() for w in self.workers]
        started, _ = ray.wait(ready, num_returns=len(ready), timeout=START_TIMEOUT)
        if len(started) < len(ready):
            for w in self.workers:
                ray.kill(w)
            raise DailiesError(f"{len(ready) - len(started)} of the {n} Ray workers did not start within "
                               f"{START_TIMEOUT:.0f} s; Ray's logs on the cluster's nodes say why "
                               "(/tmp/ray/session_latest/logs: raylet.out, worker-*.err).")
        self.info = ray.get(ready)
        for i, info in enumerate(self.info):
            if info["error"]:
                raise DailiesError(f"Worker {i + 1} on {info['host']} cannot index: {info['error']}")
            if self.driver_models is not None:
                differs = _same_models(self.driver_models, info["models"])
                if differs:
                    raise DailiesError(f"Worker {i + 1} on {info['host']} has another {differs} model than this "
                                       "machine; install the same dailies and models on every node.")
        self.on_event("started", workers=n, hosts=sorted({i["host"] for i in self.info}))
        return self

    def close(self) -> None:
        ray = _ray()
        for w in self.workers:
            try:
                ray.kill(w)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.workers = []
        if self._started_ray and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> "RayPool":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ the pool's side of run_on
    @property
    def capacity(self) -> int:
        live = max(1, len(self.workers) - len(self._dead))
        return self.cluster.window or max(4, 4 * live)

    def pids(self, timeout: float = 300) -> list[int]:
        """The workers' process ids as they are now (a restarted worker has a new one; waits for restarts)."""
        ray = _ray()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.info = ray.get([w.ready.remote() for w in self.workers])
                return [i["pid"] for i in self.info]
            except ray.exceptions.ActorUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def submit(self, key, prepared) -> None:
        self._queue.append((key, prepared, 1))
        self._dispatch()

    def _load(self) -> dict[int, int]:
        """Takes out per worker that can take one (not dead, not restarting)."""
        load = {i: 0 for i in range(len(self.workers)) if i not in self._dead and i not in self._restarting}
        for _, _, w, _ in self._out.values():
            if w in load:
                load[w] += 1
        return load

    def _dispatch(self) -> None:
        while self._queue:
            load = self._load()
            if not load:
                return
            w = min(load, key=lambda i: (load[i], i))
            if load[w] >= PER_WORKER:
                return
            key, prepared, attempt = self._queue.pop(0)
            ref = self.workers[w].compute.remote(prepared)
            self._out[ref] = (key, prepared, w, attempt)

    def wait(self, timeout: float) -> list[tuple]:
        """Finished takes: (key, the take's records or the sentence saying why it failed)."""
        ray = _ray()
        done_out: list[tuple] = []
        self._probe()
        refs = list(self._out) + list(self._probes)
        if not refs:
            if self._queue and len(self._dead) == len(self.workers):
                done_out = [(key, f"{p.path}: not indexed: every worker of the cluster has died.")
                            for key, p, _ in self._queue]
                self._queue = []
            else:
                time.sleep(min(timeout, 0.5))
            return done_out
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:       # everything else finished meanwhile too
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in ready:
            if ref in self._probes:
                self._probed(ref)
                continue
            key, prepared, w, attempt = self._out.pop(ref)
            try:
                done_out.append((key, ray.get(ref)))
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                    ray.exceptions.ObjectLostError) as exc:
                self._died(w, exc)
                if attempt < MAX_ATTEMPTS:
                    self.retried += 1
                    self.on_event("retry", path=prepared.path, attempt=attempt + 1)
                    self._queue.insert(0, (key, prepared, attempt + 1))
                else:
                    done_out.append((key, f"{prepared.path}: not indexed: the worker process indexing it died "
                                          f"{MAX_ATTEMPTS} times (out of memory?)."))
            except ray.exceptions.RayTaskError as exc:      # not expected: compute() returns its failures
                done_out.append((key, f"{prepared.path}: unexpected error on a worker ({exc.cause!r})."))
        self._dispatch()
        return done_out

    def _died(self, w: int, exc) -> None:
        """A worker's process died under a take: Ray restarts it (up to MAX_RESTARTS times); it gets no
        takes until it answers again (a task sent to a restarting actor fails at once)."""
        if w in self._dead or w in self._restarting:
            return                                  # the same death, seen by its other take
        self._deaths[w] = self._deaths.get(w, 0) + 1
        if self._deaths[w] > MAX_RESTARTS:
            self._dead.add(w)
        else:
            self._restarting[w] = 0.0
        self.on_event("worker died", worker=w + 1)

    def _probe(self) -> None:
        """Ask each restarting worker whether it is back (at most once a second each)."""
        now = time.monotonic()
        for w, last in list(self._restarting.items()):
            if w not in self._probes.values() and now - last >= 1.0:
                self._restarting[w] = now
                self._probes[self.workers[w].ready.remote()] = w

    def _probed(self, ref) -> None:
        ray = _ray()
        w = self._probes.pop(ref)
        try:
            info = ray.get(ref)
        except ray.exceptions.ActorUnavailableError:
            return                                   # still restarting: asked again in a second
        except ray.exceptions.RayActorError:
            self._restarting.pop(w, None)            # out of restarts
            self._dead.add(w)
            return
        self._restarting.pop(w, None)
        self.info[w] = info
        self.on_event("worker back", worker=w + 1)


# ------------------------------------------------------------------------------------------------
# --jobs N: the same split on this machine's cores (worker processes, no Ray)
# ------------------------------------------------------------------------------------------------

_LOCAL: "_TakeWorker | None" = None


def _local_init(settings: IndexSettings) -> None:
    global _LOCAL
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)       # Ctrl-C is the driver's: it stops the run
    _LOCAL = _TakeWorker(settings, [])


def _local_ready() -> dict:
    return _LOCAL.ready()


def _local_compute(prepared):
    return _LOCAL.compute(prepared)


def default_jobs() -> int:
    """Files at once on this machine: one per 4 cores (a take's transcription and speaker step use 2-4
    threads well), at least 1, and no more than the free memory allows at 3 GiB per worker: a worker's peak on
    an hour-long take is about 2.5 GiB (2.55 GiB measured for a 1 h 48 kHz stereo take, `--jobs 1`), on short
    takes about 0.7 GiB."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError, AttributeError):
        avail = 16.0
    return max(1, min(cores // 4, int(avail // 3)))


class ProcessPool:
    """``dailies index --jobs N``: N worker processes on this machine, each loading the models once, behind
    the interface :meth:`indexer.pipeline.Indexer.run_on` drives (``capacity``, ``submit``, ``wait``). A worker
    that dies under a take (killed, out of memory) loses that take only: the pool starts afresh and the take
    is submitted again, at most ``MAX_ATTEMPTS`` times in all."""

    def __init__(self, jobs: int, settings: IndexSettings, *, driver_models: dict | None = None):
        self.jobs = max(1, jobs)
        self.settings = settings
        self.driver_models = driver_models
        self.retried = 0
        self._executor = None
        self._out: dict = {}                     # future -> (key, prepared, attempt)

    def start(self) -> "ProcessPool":
        import multiprocessing
        import sys
        from concurrent.futures import ProcessPoolExecutor

        # Workers stopped by Ctrl-C (close) leave the pool's semaphores to multiprocessing's resource
        # tracker, which cleans them up and says so on stderr: not the user's concern. The tracker is a
        # child process and takes its warning filters from sys.warnoptions.
        quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
        if quiet not in sys.warnoptions:
            sys.warnoptions.append(quiet)

        self._executor = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_local_init, initargs=(self.settings,))
        infos = [f.result() for f in [self._executor.submit(_local_ready) for _ in range(self.jobs)]]
        for info in infos:
            if info["error"]:
                raise DailiesError(f"A worker could not load its models: {info['error']}")
            if self.driver_models is not None:
                differ = _same_models(self.driver_models, info["models"])
                if differ:
                    raise DailiesError(f"A worker's models differ from this process's: {differ}.")
        return self

    def close(self) -> None:
        if self._executor is not None:
            if self._out:        # takes the driver no longer waits for (Ctrl-C): stop their workers now
                for proc in list((getattr(self._executor, "_processes", None) or {}).values()):
                    proc.terminate()
                self._out.clear()
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> "ProcessPool":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def capacity(self) -> int:
        return 2 * self.jobs

    def pids(self) -> list[int]:
        """The worker processes' ids (tests kill one)."""
        return sorted(getattr(self._executor, "_processes", {}) or {})

    def submit(self, key, prepared, attempt: int = 1) -> None:
        self._out[self._executor.submit(_local_compute, prepared)] = (key, prepared, attempt)

    def wait(self, timeout: float) -> list[tuple]:
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as wait_futures
        from concurrent.futures.process import BrokenProcessPool

        if not self._out:
            time.sleep(min(timeout, 0.5))
            return []
        done, _ = wait_futures(list(self._out), timeout=timeout, return_when=FIRST_COMPLETED)
        out, again = [], []
        for fut in done:
            key, prepared, attempt = self._out.pop(fut)
            try:
                out.append((key, fut.result()))
            except BrokenProcessPool:
                if attempt < MAX_ATTEMPTS:
                    again.append((key, prepared, attempt + 1))
                else:
                    out.append((key, f"{prepared.path}: not indexed: the worker process indexing it died "
                                     f"{MAX_ATTEMPTS} times (out of memory?)."))
            except Exception as exc:  # noqa: BLE001 - compute() returns its failures; anything else is one take's
                out.append((key, f"{prepared.path}: unexpected error in a worker ({type(exc).__name__}: {exc})."))
        if again:      # a dead worker breaks the whole pool: start afresh and send every unfinished take again
            pending = [v for v in self._out.values()]
            self._out.clear()
            self.close()
            self.start()
            for key, prepared, attempt in again:
                self.retried += 1
                self.submit(key, prepared, attempt)
            for key, prepared, attempt in pending:
                self.submit(key, prepared, attempt)
        return out
