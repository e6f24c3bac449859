"""`dailies index --cluster`: takes as Ray tasks on 2 local worker processes, the driver the one writer.

* The fixture shoot indexed on the cluster, its vectors in a real Chroma server (`chroma run`), gives the same
  index as the local run (``shoot_index``): takes, shots, lines with their words, speakers and voices, and the
  same search results, answered from the server.
* A worker process killed (SIGKILL) in the middle of a take: the take is indexed anyway (submitted again to
  the restarted worker), every take exactly once, the picture vectors with it.
* The driver holds at most ``capacity`` takes (backpressure), and a take whose worker keeps dying is reported
  as failed in one sentence (a fake pool: no Ray needed).

Needs Ray (`dailies[cluster]`, which `make test` installs): absent, these tests fail, they do not skip.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import FIXTURES
from indexer import views
from indexer.config import IndexSettings
from indexer.pipeline import Indexer, NullReporter
from indexer.store import Index

QUERIES = ["We have to follow the data, not the calendar.", "Then she can have it when the sky cooperates.",
           "You're still here? It's almost three in the morning.", "the comet won't wait for office hours"]
CHROMA = str(Path(sys.executable).parent / "chroma")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _snapshot(path: Path) -> dict:
    """What a user sees of an index: takes, shots, lines (words, speakers, voices), voices, searches."""
    with Index.open(path) as idx:
        takes = {}
        for t in idx.takes():
            row = {k: t[k] for k in ("take_id", "name", "status", "n_lines", "n_shots", "n_frames", "duration")}
            if t["status"] == "indexed":
                row["shots"] = views.take_shots(idx, t["take_id"])["shots"]
                row["lines"] = views.take_lines(idx, t["take_id"])["lines"]
            takes[t["name"]] = row
        voices = [{k: v[k] for k in ("voice_id", "name", "takes")} for v in views.voices(idx)]
        searches = {q: [{k: h[k] for k in ("take_id", "start", "end", "tc_in", "text", "speaker", "voice_id", "score")}
                        for h in views.hits_json(views.line_hits(idx, q))] for q in QUERIES}
        server = idx.chroma_url and (idx.chroma_url, idx.vectors.count("lines"))
    return {"takes": takes, "voices": voices, "searches": searches, "server": server}


def assert_same_index(ours: dict, theirs: dict) -> None:
    """Two snapshots say the same: every text, timecode, label, id, count and number equal; the first
    differences are listed when they do not. (A Ray worker once ran its
    models with Ray's OMP_NUM_THREADS=1, and on an AVX2-only CPU word times moved by 20 ms: see RayPool.start.)"""
    diffs: list = []

    def walk(a, b, where: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
            for k in a:
                walk(a[k], b[k], f"{where}/{k}")
        elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{where}[{i}]")
        elif a != b:
            diffs.append((where, a, b))

    for part in ("takes", "voices", "searches"):
        walk(ours[part], theirs[part], part)
    assert not diffs, diffs[:20]
    assert len(ours["voices"]) >= 2 and all(ours["searches"].values())


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    from indexer.cluster import ClusterSettings

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 << 20, log_to_driver=False,
             logging_level="ERROR")
    yield ClusterSettings("auto", workers=2)
    ray.shutdown()


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    port = _free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen([CHROMA, "run", "--path", str(folder), "--port", str(port), "--host", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, "chroma run exited"
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.slow
def test_cluster_run_equals_local_run_vectors_in_chroma_server(ray_cluster, chroma_server, shoot_index, tmp_path):
    from indexer.cluster import RayPool

    path = tmp_path / "cluster-index"
    settings = IndexSettings()              # as shoot_index (conftest): the same models and threads
    with Index.open_writer(path, chroma_url=chroma_server) as idx:
        indexer = Indexer(idx, settings)
        indexer.check_models()
        with RayPool(ray_cluster, settings, driver_models=indexer.describe_models()) as pool:
            assert len(pool.workers) == 2 and len({i["pid"] for i in pool.info}) == 2
            summary = indexer.run_on(pool, [FIXTURES / "shoot", FIXTURES / "broken"])
    assert not summary.interrupted and summary.retried == 0
    local = json.loads((shoot_index.parent / "summary.json").read_text())
    assert sorted((r.path, r.status) for r in summary.results) == sorted((r["path"], r["status"]) for r in local)

    # read without --chroma-url: the index remembers its server, and searches are answered from it
    ours, theirs = _snapshot(path), _snapshot(shoot_index)
    assert ours["server"] == (chroma_server, sum(t["n_lines"] for t in ours["takes"].values()))
    assert ours["server"][1] > 0 and theirs["server"] is None
    assert_same_index(ours, theirs)
    # the vectors are in the server, not in the index folder: without the server the semantic ranker has nothing
    assert not (path / "chroma").exists()


class _KillOnce(NullReporter):
    """Kills a worker's process (SIGKILL; by default the first Ray worker's) one second after the first take
    went out: mid-take (decoding and transcribing a take of the shoot takes longer than that)."""

    def __init__(self, pid_of=lambda pool: pool.info[0]["pid"]):
        self.pool = None
        self.pid_of = pid_of
        self.killed: int | None = None

    def submitted(self, path: str, media_seconds: float) -> None:
        if self.killed is None and self.pool is not None:
            pid = self.pid_of(self.pool)
            self.killed = pid

            def kill():
                time.sleep(1)
                os.kill(pid, signal.SIGKILL)
            threading.Thread(target=kill, daemon=True).start()


@pytest.mark.slow
def test_worker_killed_mid_take_every_take_indexed_once(ray_cluster, tiny_clip, tmp_path):
    from indexer.cluster import RayPool

    files = [FIXTURES / "shoot" / n for n in ("12A_T1_CamA.mov", "12A_T4_CamC_MOS.mov", "12A_WT1.wav")]
    path = tmp_path / "index"
    settings = IndexSettings(clip_checkpoint=str(tiny_clip), speakers=False)
    reporter = _KillOnce()
    with Index.open_writer(path) as idx:
        indexer = Indexer(idx, settings, reporter)
        indexer.check_models()
        with RayPool(ray_cluster, settings, driver_models=indexer.describe_models()) as pool:
            reporter.pool = pool
            summary = indexer.run_on(pool, files)
            assert reporter.killed not in pool.pids()          # the worker was restarted: a new process
    assert summary.retried >= 1
    assert [r.status for r in summary.results] == ["indexed"] * 3, [r.message for r in summary.results]
    with Index.open(path) as idx:
        takes = idx.takes()
        assert len(takes) == 3 and all(t["status"] == "indexed" for t in takes)
        for t in takes:
            lines = idx.lines_of_take(t["take_id"])
            assert len(lines) == t["n_lines"] == len({ln.line_id for ln in lines})
            assert len(idx.vectors.get("frames", where={"take_id": t["take_id"]})["ids"]) == t["n_frames"]
        assert sum(t["n_frames"] for t in takes) > 0 and sum(t["n_lines"] for t in takes) > 0


# ------------------------------------------------------------------------------ the driver's side, no Ray

class _FakePool:
    """Computes takes in this process, late and out of order; records how many the driver held at once."""

    def __init__(self, indexer: Indexer, capacity: int, die: str | None = None):
        self.indexer, self.capacity, self.die = indexer, capacity, die
        self.out: list = []
        self.most = 0
        self.retried = 0

    def submit(self, key, prepared) -> None:
        self.out.append((key, prepared))
        self.most = max(self.most, len(self.out))

    def wait(self, timeout: float):
        if not self.out:
            return []
        key, p = self.out.pop()                        # the last submitted first: out of order
        if p.path.endswith(self.die):
            return [(key, f"{p.path}: not indexed: the worker process indexing it died 3 times (out of memory?).")]
        return [(key, self.indexer.compute(p))]


def test_driver_is_bounded_commits_in_order_and_reports_dead_takes(tmp_path):
    # a take whose worker keeps dying, a file that fails on the driver, a picture-only take (no models to load)
    files = [FIXTURES / "shoot" / "12A_T2_CamA.mov", FIXTURES / "broken" / "empty.mov",
             FIXTURES / "shoot" / "12A_T4_CamC_MOS.mov", FIXTURES / "shoot" / "12A_T3_CamB.mp4"]
    settings = IndexSettings(speakers=False, visual=False)
    with Index.open_writer(tmp_path / "index") as idx:
        indexer = Indexer(idx, settings)
        indexer.check_models(speech=True)
        pool = _FakePool(indexer, capacity=2, die=("12A_T2_CamA.mov", "12A_T3_CamB.mp4"))
        summary = indexer.run_on(pool, files)
    assert pool.most == 2
    assert [Path(r.path).name for r in summary.results] == [f.name for f in files]       # file order
    assert [r.status for r in summary.results] == ["failed", "failed", "indexed", "failed"]
    assert "died 3 times" in summary.results[0].message and "empty" in summary.results[1].message
    assert summary.exit_code == 1
    with Index.open(tmp_path / "index") as idx:
        assert sorted(t["status"] for t in idx.takes()) == ["failed", "failed", "indexed"]


# ------------------------------------------------------------------------------ --jobs: the same split, local

@pytest.mark.slow
def test_jobs_run_equals_local_run(shoot_index, tmp_path):
    """`dailies index --jobs 2`: two worker processes on this machine give the local run's index."""
    from indexer.cluster import ProcessPool

    path = tmp_path / "jobs-index"
    settings = IndexSettings()              # as shoot_index (conftest): the same models and threads
    with Index.open_writer(path) as idx:
        indexer = Indexer(idx, settings)
        indexer.check_models()
        with ProcessPool(2, settings, driver_models=indexer.describe_models()) as pool:
            assert len(pool.pids()) == 2
            summary = indexer.run_on(pool, [FIXTURES / "shoot", FIXTURES / "broken"])
    assert not summary.interrupted and summary.retried == 0
    local = json.loads((shoot_index.parent / "summary.json").read_text())
    assert sorted((r.path, r.status) for r in summary.results) == sorted((r["path"], r["status"]) for r in local)
    ours, theirs = _snapshot(path), _snapshot(shoot_index)
    assert_same_index(ours, theirs)


@pytest.mark.slow
def test_jobs_worker_killed_mid_take_every_take_indexed_once(tmp_path):
    from indexer.cluster import ProcessPool

    files = [FIXTURES / "shoot" / n for n in ("12A_T1_CamA.mov", "12A_T4_CamC_MOS.mov", "12A_WT1.wav")]
    settings = IndexSettings(speakers=False, visual=False)
    reporter = _KillOnce(lambda pool: pool.pids()[0])
    with Index.open_writer(tmp_path / "index") as idx:
        indexer = Indexer(idx, settings, reporter)
        indexer.check_models()
        with ProcessPool(2, settings, driver_models=indexer.describe_models()) as pool:
            reporter.pool = pool
            summary = indexer.run_on(pool, files)
            assert reporter.killed not in pool.pids()
    assert summary.retried >= 1
    assert [r.status for r in summary.results] == ["indexed"] * 3, [r.message for r in summary.results]
    with Index.open(tmp_path / "index") as idx:
        takes = idx.takes()
        assert len(takes) == 3 and all(t["status"] == "indexed" for t in takes)
        for t in takes:
            lines = idx.lines_of_take(t["take_id"])
            assert len(lines) == t["n_lines"] == len({ln.line_id for ln in lines})


def test_workers_that_do_not_start_stop_the_run_in_one_sentence(ray_cluster, monkeypatch):
    """Workers not ready in time (here a start-up time no worker can meet) end the run with a sentence, and the
    pool's actors are stopped, instead of a run that waits for ever."""
    import ray

    from indexer import cluster
    from indexer.errors import DailiesError

    monkeypatch.setattr(cluster, "START_TIMEOUT", 0.01)
    pool = cluster.RayPool(cluster.ClusterSettings("auto", workers=1), IndexSettings())
    with pytest.raises(DailiesError, match=r"1 of the 1 Ray workers did not start within 0 s; Ray's logs"):
        pool.start()
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < 2:     # the actor's CPU is given back
        assert time.monotonic() < deadline, "the worker that did not start was not stopped"
        time.sleep(0.2)


def test_auto_cluster_started_by_uv_run_with_a_relative_path(tmp_path):
    """`.tools/bin/uv run dailies index --cluster auto` (uv named by a relative path, as `make` installs it): the
    workers run this interpreter. Before, Ray started them with that command line in a copy of the folder, where
    the path named nothing: they died at start and the run waited for ever."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    uv = os.environ.get("UV") or shutil.which("uv") or str(root / ".tools" / "bin" / "uv")
    assert Path(uv).is_file(), "uv, which `make test` uses, is not found"
    relative = os.path.relpath(uv, root)
    assert "/" in relative
    take = tmp_path / "shoot"
    take.mkdir()
    shutil.copy(FIXTURES / "shoot" / "12A_T4_CamC_MOS.mov", take)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "RAY_ENABLE_UV_RUN_RUNTIME_ENV")}
    done = subprocess.run([relative, "run", "--frozen", "--extra", "cluster", "--no-sync", "dailies", "index",
                           str(take), "--index", str(tmp_path / "idx"), "--cluster", "auto", "--workers", "1",
                           "--no-speakers", "--json"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [f["status"] for f in json.loads(done.stdout)["files"]] == ["indexed"]
