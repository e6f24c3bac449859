"""Cluster indexing (`dailies index --cluster`): throughput with 1 and 2 local Ray workers on the same files,
and the driver's memory with 200 takes queued.

    python scripts/bench_cluster.py [--copies 3] [--takes 200] [--skip-throughput] [--skip-memory]

Throughput: the fixture shoot, ``--copies`` times (each copy made distinct by 16 trailing bytes, so it is a
take of its own), indexed into a fresh index by a local Ray instance with 1 worker, then with 2 workers (1 CPU
each, models loaded before the clock starts). Printed: media seconds per wall second of each run, per worker,
and the ratio of the two runs (measured in one run of this script). On a machine with fewer free cores than
workers the ratio says so: it is a measurement of this machine, not of Ray.

Driver memory: ``--takes`` distinct copies of one fixture take, submitted through the real driver
(:meth:`Indexer.run_on`: hash, probe, commit into SQLite and Chroma) to a pool that answers every take with
the records a worker computed for that take (pickled and unpickled, as Ray delivers them). Once with the
driver's bound (4 per worker, 2 workers: 8 takes held at most), once with the bound lifted (every take
finished before the first is committed, as a driver without backpressure would hold them). Printed: each
run's peak RSS growth and the pickled size of one take's records per media second, from which the
README's paper model takes the memory of long takes.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIXTURES = ROOT / "fixtures"


def distinct_copies(files: list[Path], copies: int, folder: Path) -> list[Path]:
    out = []
    for c in range(copies):
        for f in files:
            dst = folder / f"{f.stem}_c{c:03d}{f.suffix}"
            shutil.copyfile(f, dst)
            with open(dst, "ab") as fh:
                fh.write(os.urandom(16))
            out.append(dst)
    return out


def throughput(files: list[Path], workers: int, settings) -> dict:
    import ray

    from indexer.cluster import ClusterSettings, RayPool
    from indexer.pipeline import Indexer
    from indexer.store import Index

    folder = Path(tempfile.mkdtemp(prefix=f"bench-cluster-{workers}-"))
    try:
        with Index.open_writer(folder / "index") as idx:
            indexer = Indexer(idx, settings)
            indexer.check_models()
            pool = RayPool(ClusterSettings("auto", workers=workers), settings, driver_models=indexer.describe_models())
            pool.start()            # Ray, the workers and their models: not timed (a fixed cost per run)
            try:
                t = time.monotonic()
                summary = indexer.run_on(pool, files)
                wall = time.monotonic() - t
            finally:
                pool.close()
                if ray.is_initialized():
                    ray.shutdown()
        indexed = [r for r in summary.results if r.status == "indexed"]
        media = sum(r.media_seconds for r in indexed)
        assert len(indexed) == len(files), [r.message for r in summary.results if r.status != "indexed"]
        return {"workers": workers, "takes": len(indexed), "media_s": media, "wall_s": wall,
                "rate": media / wall, "per_worker": media / wall / workers}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _ReplayPool:
    """Answers each take with a worker's records of the template take (as Ray would deliver them)."""

    def __init__(self, template: bytes, capacity: int, hold_all: int | None = None):
        self.template, self.capacity, self.hold_all = template, capacity, hold_all
        self.out: list = []
        self.retried = 0

    def submit(self, key, p) -> None:
        rec = pickle.loads(self.template)
        for name in ("path", "st", "digest", "take_id", "t_start"):
            setattr(rec, name, getattr(p, name))
        rec.info.path, rec.info.size, rec.info.mtime_ns = p.info.path, p.info.size, p.info.mtime_ns
        self.out.append((key, rec))

    def wait(self, timeout: float):
        if self.hold_all and len(self.out) < self.hold_all:
            return []
        done, self.out = self.out, []
        return done


def _rss_mb() -> float:
    """This process's resident memory now (not the peak: the models loaded before the run set that)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _PeakRss:
    """The highest resident memory seen while the block runs (sampled every 20 ms)."""

    def __enter__(self):
        import threading

        self.peak, self._stop = _rss_mb(), False

        def sample():
            while not self._stop:
                self.peak = max(self.peak, _rss_mb())
                time.sleep(0.02)
        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join()


def driver_memory(n_takes: int, settings, *, bounded: bool) -> dict:
    """Run in a child process per mode (peak RSS is per process)."""
    from indexer.pipeline import Indexer
    from indexer.store import Index

    folder = Path(tempfile.mkdtemp(prefix="bench-cluster-mem-"))
    try:
        take = FIXTURES / "shoot" / "12A_T1_CamA.mov"
        with Index.open_writer(folder / "template") as idx:
            indexer = Indexer(idx, settings)
            indexer.check_models()
            p = indexer._prepare(str(take))
            template = pickle.dumps(indexer.compute(p))
        files = distinct_copies([take], n_takes, Path(tempfile.mkdtemp(dir=folder)))
        with Index.open_writer(folder / "index") as idx:
            indexer = Indexer(idx, settings)
            indexer.check_models()
            indexer._commit(indexer.compute(indexer._prepare(str(files.pop()))))    # warm: the store's first write
            n_takes -= 1
            before = _rss_mb()
            pool = _ReplayPool(template, capacity=8 if bounded else n_takes + 1,
                               hold_all=None if bounded else n_takes)
            with _PeakRss() as rss:
                summary = indexer.run_on(pool, files)
            peak = rss.peak
        assert summary.count("indexed") == n_takes, [r.message for r in summary.results if r.status != "indexed"]
        return {"bounded": bounded, "takes": n_takes, "held_at_most": pool.capacity if bounded else n_takes,
                "driver_s_per_take": summary.seconds / n_takes,
                "rss_growth_mb": peak - before, "record_bytes": len(template),
                "record_bytes_per_media_s": len(template) / pickle.loads(template).info.duration}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=3, help="copies of the fixture shoot for the throughput runs")
    ap.add_argument("--takes", type=int, default=200, help="takes queued for the driver memory runs")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-child", choices=["bounded", "unbounded"], help=argparse.SUPPRESS)
    args = ap.parse_args()

    shared = ROOT.parent / "shared" / "models"
    if "DAILIES_MODELS" not in os.environ and shared.is_dir():
        os.environ["DAILIES_MODELS"] = str(shared)
    from indexer.config import IndexSettings

    settings = IndexSettings(threads=1)      # one CPU per worker, the same for the driver's template take

    if args.memory_child:
        import json

        print(json.dumps(driver_memory(args.takes, settings, bounded=args.memory_child == "bounded")))
        return

    if not args.skip_throughput:
        work = Path(tempfile.mkdtemp(prefix="bench-cluster-media-"))
        try:
            shoot = sorted(p for p in (FIXTURES / "shoot").iterdir() if p.is_file())
            files = distinct_copies(shoot, args.copies, work)
            runs = [throughput(files, w, settings) for w in (1, 2)]
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"throughput: {len(files)} takes, {runs[0]['media_s'] / 60:.1f} min of media, models loaded first")
        for r in runs:
            print(f"  {r['workers']} worker(s): {r['wall_s']:.1f} s wall, {r['rate']:.2f} media s per s "
                  f"({r['per_worker']:.2f} per worker)")
        print(f"  ratio 2 workers / 1 worker: {runs[1]['rate'] / runs[0]['rate']:.2f} "
              f"(on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")

    if not args.skip_memory:
        import json
        import subprocess

        out = {}
        for mode in ("bounded", "unbounded"):
            proc = subprocess.run([sys.executable, __file__, "--memory-child", mode, "--takes", str(args.takes)],
                                  capture_output=True, text=True, check=True)
            out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        b, u = out["bounded"], out["unbounded"]
        print(f"driver memory, {b['takes']} takes queued after one warm-up take (one take's records: {b['record_bytes'] / 1e3:.0f} kB, "
              f"{b['record_bytes_per_media_s'] / 1e3:.1f} kB per media second):")
        print(f"  bounded (at most {b['held_at_most']} takes held): peak RSS +{b['rss_growth_mb']:.0f} MB; the driver's "
              f"own work (hash, probe, voices, text vectors, commit): {b['driver_s_per_take']:.2f} s per take")
        print(f"  unbounded (all {u['held_at_most']} held before committing): peak RSS +{u['rss_growth_mb']:.0f} MB")


if __name__ == "__main__":
    main()
