"""Shared fixtures: the fixture shoot indexed once per test session, paths to real evaluation media."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
EVAL = Path(os.environ.get("DAILIES_EVAL", ROOT.parent / "shared" / "eval"))
DAILIES = str(Path(sys.executable).parent / "dailies")


def need(path: Path) -> Path:
    """Skip the test, saying why, when real evaluation media is absent."""
    if not path.exists():
        pytest.skip(f"{path} is absent (real evaluation media from ../shared/eval)")
    return path


@pytest.fixture(scope="session")
def manifest() -> dict:
    return json.loads((FIXTURES / "manifest.json").read_text())


@pytest.fixture(scope="session")
def shoot_index(tmp_path_factory) -> Path:
    """The fixture shoot (and the broken files) indexed once with the default models."""
    from indexer.config import IndexSettings
    from indexer.pipeline import Indexer
    from indexer.store import Index

    path = tmp_path_factory.mktemp("shoot") / "index"
    with Index.open_writer(path) as idx:
        summary = Indexer(idx, IndexSettings()).run([FIXTURES / "shoot", FIXTURES / "broken"])
    assert not summary.interrupted
    (path.parent / "summary.json").write_text(json.dumps([r.__dict__ for r in summary.results]))
    return path


@pytest.fixture(scope="session")
def shoot_summary(shoot_index) -> list[dict]:
    return json.loads((shoot_index.parent / "summary.json").read_text())


def run_cli(*args: str, check: bool = False, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([DAILIES, *args], capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"dailies {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def frame_of(seconds: float, rate: Fraction) -> int:
    import math

    return math.floor(seconds * rate + 1e-6)
