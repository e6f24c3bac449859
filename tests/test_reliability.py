"""Reliability under abuse (issue 20), on the fixture shoot plus real recordings from ../shared/eval.

* kill -9 at 20 points of an index run, each followed by a resume: the index then holds exactly the
  lines and answers exactly the searches of an uninterrupted run, with no duplicate ids. The points are
  drawn from a seeded RNG over the uninterrupted run's measured duration (deterministic for a machine's
  speed); one in four runs with speakers, the rest with ``--no-speakers`` to keep the time down.
* Many readers while a writer indexes: 8 concurrent ``dailies search line`` processes, again and again
  during an index run, all answer (exit 0, valid JSON), and the final index equals a quiet run's.

Everything is compared through the CLI's JSON (``status``, ``lines``, ``search line``), the interface users
and the review room rely on, asked of the CLI's own typer app in this process (the index runs themselves are
processes of their own, killed and resumed). ``DAILIES_KILL_POINTS`` runs fewer points (a quick local check).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import DAILIES, EVAL, FIXTURES, need

# Each test may first make the two quiet runs (module fixture): more than pyproject's 900 s on a small machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

POINTS = int(os.environ.get("DAILIES_KILL_POINTS", "20"))
SEED = 20
QUERIES = ["We have to follow the data, not the calendar.", "the comet won't wait for office hours",
           "I'm originally from Chicago also", "This is Diane in New Jersey"]
# Fields that say when something was done, not what: they differ between any two runs.
VOLATILE = {"indexed_at", "created_at", "updated_at", "index", "index_uid", "mtime_ns", "seconds", "index_seconds",
            "timings"}


def _media() -> list[str]:
    return [str(FIXTURES / "shoot"),
            str(need(EVAL / "diarization" / "pyannote_sample" / "sample.wav")),
            str(need(EVAL / "diarization" / "lhotse_ami_ES2011a" / "ES2011a.Headset-0-40s-46s.wav"))]


def _index_args(idx: Path, speakers: bool) -> list[str]:
    return [DAILIES, "index", *_media(), "--index", str(idx), "--json"] + ([] if speakers else ["--no-speakers"])


def _cli_json(*args: str):
    """The CLI's JSON answer, from the same typer app `dailies` runs, in this process: a snapshot asks a
    dozen questions, and a process of its own for each paid the CLI's start-up (2-3 s) every time, about
    25 s of each kill point's 55-130 s."""
    from typer.testing import CliRunner

    from cli.main import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"dailies {' '.join(args)} -> {result.exit_code}: {result.output}{result.exception!r}"
    return json.loads(result.stdout)


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def snapshot(idx: Path) -> dict:
    """What a user can see of an index: takes, every line of every take, and the hits of a few searches."""
    status = _cli_json("status", "--index", str(idx), "--json")
    takes = sorted(status["takes"], key=lambda t: t["name"])
    lines = {t["name"]: _cli_json("lines", t["take_id"], "--index", str(idx), "--json")["lines"]
             for t in takes if t["status"] == "indexed"}
    ids = [ln["line_id"] for take in lines.values() for ln in take]
    assert len(ids) == len(set(ids)), f"duplicate line ids in {idx}"
    hits = {q: _cli_json("search", "line", q, "--index", str(idx), "--json") for q in QUERIES}
    counts = {k: v for k, v in status.items() if isinstance(v, int) and k not in VOLATILE}
    return _strip({"takes": takes, "failed": status["failed"], "counts": counts, "lines": lines, "hits": hits})


def _diff(a, b, path: str = "") -> str:
    """Where two snapshots first differ, down to the field (a take's voice, a line's end), with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _diff(a.get(key), b.get(key), f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for k, (x, y) in enumerate(zip(a, b)):
            if x != y:
                name = x.get("name") or x.get("line_id") if isinstance(x, dict) else None
                return _diff(x, y, f"{path}[{k}{' ' + str(name) if name else ''}]")
    return f"{path or 'snapshot'}: resumed {json.dumps(a)[:300]} != uninterrupted {json.dumps(b)[:300]}"


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory):
    """The uninterrupted run with or without speakers (made once, when first needed): its snapshot and how
    long it took."""
    cache: dict[bool, dict] = {}

    def get(speakers: bool) -> dict:
        if speakers not in cache:
            idx = tmp_path_factory.mktemp("quiet") / "idx"
            t0 = time.monotonic()
            proc = subprocess.run(_index_args(idx, speakers), capture_output=True, text=True, timeout=1800)
            took = time.monotonic() - t0
            assert proc.returncode == 0, proc.stderr
            cache[speakers] = {"snapshot": snapshot(idx), "seconds": took}
            assert cache[speakers]["snapshot"]["lines"], "the quiet run indexed no lines"
        return cache[speakers]

    return get


def _kill_points() -> list[tuple[int, bool, float]]:
    """(point, with speakers, fraction of the quiet run's duration) drawn from a seeded RNG."""
    rng = random.Random(SEED)
    return [(i, i % 4 == 0, rng.uniform(0.03, 0.97)) for i in range(POINTS)]


@pytest.mark.parametrize("point,speakers,fraction", _kill_points(),
                         ids=[f"{i}-{'speakers' if s else 'no-speakers'}-{f:.2f}" for i, s, f in _kill_points()])
def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path, quiet_run, point, speakers, fraction):
    idx = tmp_path / "idx"
    ref = quiet_run(speakers)
    # A run on a less busy machine may end before its point: then the same point at half the time (an
    # earlier point of the same run), at most three times; a run that always ends first tests nothing.
    for attempt in range(3):
        shutil.rmtree(idx, ignore_errors=True)
        wait = fraction / 2 ** attempt * ref["seconds"]
        proc = subprocess.Popen(_index_args(idx, speakers), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
    else:
        pytest.fail(f"the run always ended before its kill point ({fraction:.2f} of {ref['seconds']:.0f} s, "
                    "then half and a quarter of that)")
    resume = subprocess.run(_index_args(idx, speakers), capture_output=True, text=True, timeout=1800)
    assert resume.returncode == 0, resume.stderr
    got = snapshot(idx)
    assert got == ref["snapshot"], _diff(got, ref["snapshot"])


def test_eight_readers_while_a_writer_indexes(tmp_path, quiet_run):
    idx = tmp_path / "idx"
    writer = subprocess.Popen(_index_args(idx, False), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while subprocess.run([DAILIES, "status", "--index", str(idx), "--json"], capture_output=True).returncode:
        # readers need an index to exist (its first moments, while the writer creates it, are not tested)
        assert writer.poll() is None and time.monotonic() < deadline, "the writer never created the index"
        time.sleep(0.2)

    def search(i: int):
        q = QUERIES[i % len(QUERIES)]
        proc = subprocess.run([DAILIES, "search", "line", q, "--index", str(idx), "--json"],
                              capture_output=True, text=True, timeout=300)
        return q, proc.returncode, proc.stdout, proc.stderr

    answers = []
    with ThreadPoolExecutor(8) as pool:
        while writer.poll() is None:                         # waves of 8 concurrent readers until it is done
            answers += list(pool.map(search, range(8)))
    _, err = writer.communicate()
    assert writer.returncode == 0, err
    assert len(answers) >= 8
    for q, rc, out, err in answers:
        assert rc == 0, f"search {q!r} during indexing -> {rc}: {err}"
        assert isinstance(json.loads(out), list)
    got = snapshot(idx)
    ref = quiet_run(False)["snapshot"]
    assert got == ref, _diff(got, ref)
