"""DAILIES_REQUIRE_EVAL=1 (set by .ci/run) turns a missing ../shared into failures, never a green skip."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

# One test of each kind: a ``need(path)`` call in the body (fails), a ``@pytest.mark.needs(path)`` marker (errors at setup).
TESTS = ["tests/test_script_parse.py::test_big_fish_paginates_near_its_printed_length",
         "tests/test_speakers_campplus.py::test_embeddings_match_independent_reference"]


def _pytest(tmp_path, require: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAILIES_EVAL": str(tmp_path / "no-eval"), "DAILIES_SHARED": str(tmp_path / "no-shared")}
    env.pop("DAILIES_REQUIRE_EVAL", None)
    if require is not None:
        env["DAILIES_REQUIRE_EVAL"] = require
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs", *TESTS],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_missing_shared_data_fails_under_the_ci_flag(tmp_path):
    proc = _pytest(tmp_path, "1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed, 1 error" in proc.stdout, proc.stdout
    # Each missing file is named with the flag that refused to skip it (the short summary may repeat a
    # message or cut it at the terminal's width, so look for each one rather than count them).
    for missing in ("no-eval/script/fountain/Big-Fish.fountain", "no-shared/eval/diarization/pyannote_sample/sample.wav"):
        assert f"{missing} is absent (real evaluation media from ../shared/eval); DAILIES_REQUIRE_EVAL=1 does not allow skipping it" in proc.stdout, proc.stdout


def test_missing_shared_data_skips_with_its_reason_otherwise(tmp_path):
    proc = _pytest(tmp_path, None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 skipped" in proc.stdout and "no-eval" in proc.stdout and "no-shared" in proc.stdout, proc.stdout
