"""scripts/bench_index.py must not time a run that failed files as a complete one (issue 17)."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import DAILIES, FIXTURES, ROOT


def _bench():
    spec = importlib.util.spec_from_file_location("bench_index", ROOT / "scripts" / "bench_index.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_run_that_exited_1_is_not_timed_as_complete(tmp_path):
    bench = _bench()
    broken = FIXTURES / "broken" / "not_media.mp4"
    run = bench.measured([DAILIES, "index", str(broken), "--index", str(tmp_path / "idx"),
                          "--no-speakers", "--no-visual"])
    assert run["rc"] == 1
    with pytest.raises(SystemExit, match="not that of a complete run.*not_media.mp4"):
        bench.completed(run)
    ok = dict(run, rc=0)
    assert bench.completed(ok) is ok
