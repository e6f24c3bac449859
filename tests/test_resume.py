"""Interrupted runs: kill -9 and Ctrl-C lose nothing finished, redo no finished step, duplicate nothing."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import DAILIES, FIXTURES, run_cli
from indexer.store import Index

pytestmark = pytest.mark.slow


def _indexed(path) -> int:
    try:
        with sqlite3.connect(f"file:{path / 'catalog.sqlite'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM takes WHERE status='indexed'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _steps(path) -> dict:
    with sqlite3.connect(f"file:{path / 'catalog.sqlite'}?mode=ro", uri=True) as db:
        return {(r[0], r[1]): r[2] for r in db.execute(
            "SELECT steps.take_id, step, created_at FROM steps JOIN takes USING(take_id) WHERE status != 'indexed'")}


def _start(idx):
    return subprocess.Popen([DAILIES, "index", str(FIXTURES / "shoot"), "--index", str(idx)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_first_take(proc, idx, timeout=300):
    deadline = time.monotonic() + timeout
    while _indexed(idx) < 1:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no take finished in time"
        time.sleep(0.1)


def _check_complete(idx, manifest, shoot_index):
    with Index.open(idx) as got, Index.open(shoot_index) as ref:
        takes = got.takes()
        assert sorted(t["name"] for t in takes) == sorted(t["name"] for t in manifest["takes"])
        assert all(t["status"] == "indexed" for t in takes)
        ids = [r[0] for r in got._db.execute("SELECT line_id FROM lines")]
        assert len(ids) == len(set(ids)), "duplicate lines"
        assert got.vectors.count("lines") == len(ids), "Chroma and the catalog disagree"
        ref_counts = {t["name"]: t["n_lines"] for t in ref.takes(status="indexed")}
        assert {t["name"]: t["n_lines"] for t in takes} == {n: ref_counts[n] for n in ref_counts
                                                           if n in {t["name"] for t in takes}}
        for t in takes:
            assert len(got.lines_of_take(t["take_id"])) == t["n_lines"]


def test_kill_9_mid_run_then_rerun_completes(tmp_path, manifest, shoot_index):
    idx = tmp_path / "idx"
    proc = _start(idx)
    _wait_for_first_take(proc, idx)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = _indexed(idx)
    assert 1 <= finished < len(manifest["takes"]), "kill came too late to test anything"
    saved_steps = _steps(idx)           # steps of takes that were in progress when killed

    rerun = run_cli("index", str(FIXTURES / "shoot"), "--index", str(idx), "--json")
    assert rerun.returncode == 0, rerun.stderr
    statuses = [f["status"] for f in json.loads(rerun.stdout)["files"]]
    assert statuses.count("unchanged") == finished
    assert statuses.count("indexed") == len(manifest["takes"]) - finished
    # a step an interrupted take had finished was not redone
    with sqlite3.connect(idx / "catalog.sqlite") as db:
        for (take_id, step), created in saved_steps.items():
            row = db.execute("SELECT created_at FROM steps WHERE take_id=? AND step=?", (take_id, step)).fetchone()
            assert row is not None and row[0] == created, (take_id, step)
    _check_complete(idx, manifest, shoot_index)


def test_ctrl_c_stops_cleanly_and_rerun_completes(tmp_path, manifest, shoot_index):
    idx = tmp_path / "idx"
    proc = _start(idx)
    _wait_for_first_take(proc, idx)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Interrupted" in err and "Traceback" not in err
    rerun = run_cli("index", str(FIXTURES / "shoot"), "--index", str(idx))
    assert rerun.returncode == 0, rerun.stderr
    _check_complete(idx, manifest, shoot_index)


def test_kill_9_of_a_cluster_driver_then_rerun_completes(tmp_path, manifest, shoot_index):
    """The driver of `dailies index --cluster` killed mid-run resumes like a local run: finished takes kept,
    nothing duplicated."""
    from indexer.config import default_threads

    idx = tmp_path / "idx"
    # the reference index (shoot_index) was made with every core's threads: so is this run, for its lines to be
    # the same (a worker's default is its one CPU, and on some CPUs the models' words move with the threads)
    cmd = [DAILIES, "index", str(FIXTURES / "shoot"), "--index", str(idx), "--cluster", "auto", "--workers", "1",
           "--threads", str(default_threads())]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_first_take(proc, idx)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = _indexed(idx)
    assert 1 <= finished < len(manifest["takes"]), "kill came too late to test anything"
    rerun = subprocess.run(cmd + ["--json"], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    statuses = [f["status"] for f in json.loads(rerun.stdout)["files"]]
    assert statuses.count("unchanged") == finished
    assert statuses.count("indexed") == len(manifest["takes"]) - finished
    _check_complete(idx, manifest, shoot_index)


def test_ctrl_c_of_a_jobs_run_stops_at_once_and_rerun_completes(tmp_path, manifest, shoot_index):
    """Ctrl-C of `dailies index --jobs 2` does not wait for the takes its workers are computing: it stops
    them, saves what is finished, and says so; the rerun does the rest."""
    idx = tmp_path / "idx"
    cmd = [DAILIES, "index", str(FIXTURES / "shoot"), "--index", str(idx), "--jobs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_first_take(proc, idx)
    proc.send_signal(signal.SIGINT)
    t = time.monotonic()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert time.monotonic() - t < 30
    assert "Interrupted" in err and "Traceback" not in err and "Warning" not in err, err
    rerun = run_cli("index", str(FIXTURES / "shoot"), "--index", str(idx), "--jobs", "2")
    assert rerun.returncode == 0, rerun.stderr
    _check_complete(idx, manifest, shoot_index)
