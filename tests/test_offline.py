"""Offline: indexing and searching a take open no network connection.

Studio footage, and what is known of it, never leave the building. pyannote.audio 4 sends a usage
report to otel.pyannote.ai by default on every model load and every file it diarizes; dailies turns
that off (``indexer/__init__.py``). The real CLI runs in a child process whose sockets refuse any
host but this machine and record what was asked for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import FIXTURES, ROOT, absent

GUARD = r"""
import json, os, socket, sys

asked = []
LOCAL = {"localhost", "127.0.0.1", "::1", "", None}
real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

def getaddrinfo(host, *a, **k):
    if host not in LOCAL:
        asked.append(str(host))
        raise socket.gaierror("network refused by the test")
    return real_getaddrinfo(host, *a, **k)

def connect(self, address, *a, **k):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOCAL:
        asked.append(str(address[0]))
        raise OSError("network refused by the test")
    return real_connect(self, address, *a, **k)

socket.getaddrinfo, socket.socket.connect = getaddrinfo, connect
out, sys.argv = sys.argv[1], ["dailies", *sys.argv[2:]]
code = 0
try:
    from cli.main import app
    app()
except SystemExit as exc:
    code = exc.code or 0
finally:
    # usage reports are sent from a background thread: flush it so that none is missed
    metrics = sys.modules.get("pyannote.audio.telemetry.metrics")
    if metrics is not None:
        metrics.provider.force_flush()
    with open(out, "w") as f:
        json.dump({"asked": asked, "code": code}, f)
"""


def _guarded(tmp_path, name: str, *args: str, env: dict | None = None) -> dict:
    script = tmp_path / "guard.py"
    script.write_text(GUARD)
    out = tmp_path / f"{name}.json"
    proc = subprocess.run([sys.executable, str(script), str(out), *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)
    got = json.loads(out.read_text())
    got["stdout"], got["stderr"] = proc.stdout, proc.stderr
    return got


def test_indexing_and_searching_a_take_opens_no_network_connection(tmp_path):
    from indexer.models import diarization

    try:
        diarization.resolve(verify=False)
    except Exception as exc:  # noqa: BLE001
        absent(f"the speaker models are absent ({exc}); without them pyannote is never loaded")
    env = {k: v for k, v in os.environ.items() if k not in ("PYANNOTE_METRICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY")}
    index = tmp_path / "index"
    got = _guarded(tmp_path, "index", "index", str(FIXTURES / "shoot" / "12A_T1_CamA.mov"), "--index", str(index),
                   "--threads", "2", "--json", env=env)
    assert got["code"] == 0, got["stderr"][-2000:]
    assert got["asked"] == [], f"indexing asked the network for {sorted(set(got['asked']))}"
    # pyannote did run: the take's lines have speakers
    lines = _guarded(tmp_path, "search", "search", "speaker", "V001", "--index", str(index), "--json", env=env)
    assert lines["code"] == 0, lines["stderr"][-2000:]
    assert json.loads(lines["stdout"]), "no line was attributed to V001: the diarizer did not run"
    assert lines["asked"] == [], f"searching asked the network for {sorted(set(lines['asked']))}"
    found = _guarded(tmp_path, "line", "search", "line", "we have to follow our passions", "--index", str(index),
                     "--json", env=env)
    assert found["code"] == 0, found["stderr"][-2000:]
    assert found["asked"] == [], f"searching asked the network for {sorted(set(found['asked']))}"
