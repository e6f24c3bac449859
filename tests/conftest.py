"""Shared fixtures: the fixture shoot indexed once per test session, paths to real evaluation media."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
EVAL = Path(os.environ.get("DAILIES_EVAL", ROOT.parent / "shared" / "eval"))
DAILIES = str(Path(sys.executable).parent / "dailies")
SHARED_MODELS = Path(os.environ.get("DAILIES_SHARED", ROOT.parent / "shared")) / "models"


def _speaker_models_present() -> bool:
    from indexer.models import diarization

    try:
        diarization.resolve(verify=False)
        return True
    except Exception:
        return False


# `make test` fetches the speaker models into the model cache first (`dailies models fetch`); a bare
# `pytest` on a machine that has not, but has ../shared/models, uses those (the same files, checked).
if "DAILIES_MODELS" not in os.environ and not _speaker_models_present() and SHARED_MODELS.is_dir():
    os.environ["DAILIES_MODELS"] = str(SHARED_MODELS)


# CI (.ci/run) sets DAILIES_REQUIRE_EVAL=1: a test that needs ../shared then FAILS when it is absent, so
# missing evaluation data cannot turn the suite silently green. A developer without it still gets a skip.
REQUIRE_EVAL = os.environ.get("DAILIES_REQUIRE_EVAL", "") not in ("", "0")


def need(path: Path, what: str = "real evaluation media from ../shared/eval") -> Path:
    """The shared data (``../shared/eval`` or ``../shared/models``) a test needs. When it is absent the
    test is skipped saying why, or fails under ``DAILIES_REQUIRE_EVAL=1``. Every test calls this (or
    uses ``@pytest.mark.needs(path)``) instead of ``pytest.skip`` for missing shared data."""
    path = Path(path)
    if not path.exists():
        msg = f"{path} is absent ({what})"
        if REQUIRE_EVAL:
            pytest.fail(f"{msg}; DAILIES_REQUIRE_EVAL=1 does not allow skipping it", pytrace=False)
        pytest.skip(msg)
    return path


def absent(msg: str) -> None:
    """Something a test needs that ``make test`` provides (the fetched speaker models, the committed
    fixtures' manifest) is missing: skip saying why, or fail under ``DAILIES_REQUIRE_EVAL=1`` (CI), where
    a skip would turn the suite silently green."""
    if REQUIRE_EVAL:
        pytest.fail(f"{msg}; DAILIES_REQUIRE_EVAL=1 does not allow skipping it", pytrace=False)
    pytest.skip(msg)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "needs(*paths): shared data the test needs; see conftest.need")


def pytest_runtest_setup(item) -> None:
    for mark in item.iter_markers(name="needs"):
        for path in mark.args:
            need(path, **mark.kwargs)


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
    (path.parent / "run_timings.json").write_text(json.dumps(summary.timings))
    return path


@pytest.fixture(scope="session")
def scripted_index(shoot_index, tmp_path_factory) -> Path:
    """A copy of the shoot index with fixtures/scene.fountain imported (every take matched and stored)."""
    import shutil

    from indexer.script import catalog
    from indexer.store import Index

    path = tmp_path_factory.mktemp("scripted") / "index"
    shutil.copytree(shoot_index, path)
    with Index.open_writer(path) as idx:
        catalog.import_script(idx, FIXTURES / "scene.fountain")
    return path


@pytest.fixture(scope="session")
def shoot_summary(shoot_index) -> list[dict]:
    return json.loads((shoot_index.parent / "summary.json").read_text())


def run_cli(*args: str, check: bool = False, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([DAILIES, *args], capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"dailies {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def served(app):
    """Serve an ASGI app with uvicorn on a free localhost port, in a thread: yields the base URL, then stops it."""
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "the review room did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def frame_of(seconds: float, rate: Fraction) -> int:
    import math

    return math.floor(seconds * rate + 1e-6)


# A CLIP of the ViT/transformer family small enough to build in a second, with RANDOM weights: it tests
# the picture path honestly (a still of shot k finds shot k) but says nothing about what pictures mean.
TINY_RANDOM_CLIP = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def make_random_clip_folder(folder: Path, seed: int = 0) -> Path:
    """An open_clip model folder (open_clip_config.json + weights) holding RANDOM weights."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_RANDOM_CLIP)
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_RANDOM_CLIP, "preprocess_cfg": {}}))
    return folder


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    return make_random_clip_folder(tmp_path_factory.mktemp("clip") / "tiny-clip-RANDOM-WEIGHTS")


def as_other_user(cmd: list[str]) -> list[str]:
    """The command run as an unprivileged user: root ignores file permissions, so a permission tested
    as root would test nothing. (Run as a normal user, the permissions hold by themselves.)"""
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    assert setpriv, "running as root, these tests need setpriv (util-linux) to run as another user"
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
