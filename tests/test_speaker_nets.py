"""The speaker networks without torch (indexer/speakers/nets.py): the numpy Kaldi fbank against
torchaudio's, segmentation-3.0 and CAM++ by ONNX Runtime against the same networks in torch, on real
speech from ../shared/eval, and the cache of ONNX exports.

The exports (torch and pyannote.audio imported, ~20 s) are made once per session; the tests that need
them are marked slow.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import EVAL, absent

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = EVAL / "diarization" / "pyannote_sample" / "sample.wav"
AMI = EVAL / "diarization" / "pyannote_debug_ami" / "dev00.wav"
AMI_TEST = EVAL / "diarization" / "pyannote_debug_ami" / "tst00.wav"
needs_audio = pytest.mark.needs(SAMPLE, AMI, AMI_TEST)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def audio() -> dict[str, np.ndarray]:
    from indexer.media import load_audio

    return {p.stem: load_audio(str(p)) for p in (SAMPLE, AMI, AMI_TEST)}


@pytest.fixture(scope="session")
def models():
    from indexer.models import diarization

    try:
        return diarization.resolve(verify=False)
    except Exception as exc:  # noqa: BLE001
        absent(f"speaker models absent ({exc})")


@pytest.fixture(scope="session")
def exported(models, tmp_path_factory):
    """Both ONNX exports, made once into a folder of this session."""
    from indexer.speakers import nets

    cache = tmp_path_factory.mktemp("onnx-cache")
    seg, campp = nets.onnx_paths(models, cache_dir=cache)
    return cache, seg, campp


# ------------------------------------------------------------------------------------------------ fbank

def test_importing_nets_loads_neither_torch_nor_onnxruntime():
    code = ("import sys, indexer.speakers.nets; "
            "print(sorted(m for m in ('torch', 'pyannote.audio', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


@needs_audio
def test_fbank_equals_torchaudio_kaldi_on_real_speech(audio):
    from indexer.speakers import campplus, nets

    for name, wav in audio.items():
        for normalize in (True, False):
            ref = campplus.fbank(wav, normalize=normalize).numpy()
            ours = nets.fbank(wav, normalize=normalize)
            assert ours.dtype == np.float32 and ours.shape == ref.shape == (1 + (len(wav) - 400) // 160, 80)
            assert np.abs(ours - ref).max() <= 1e-3, name
        # short stretches: one frame, a frame and a bit, the padding of what is shorter than a frame
        for n in (100, 399, 400, 560, 4000, 16000 + 37):
            ref, ours = campplus.fbank(wav[:n]).numpy(), nets.fbank(wav[:n])
            assert ours.shape == ref.shape and np.abs(ours - ref).max() <= 1e-3, (name, n)
    # and it is speech, not a constant: the features vary over time and across bands
    assert nets.fbank(audio["sample"]).std(axis=0).min() > 0.2


# ------------------------------------------------------------------------------------------------ cache

def test_export_cache_skips_a_read_only_model_folder(tmp_path, monkeypatch):
    from indexer.errors import ModelError
    from indexer.speakers import nets

    shared = tmp_path / "shared-models"
    shared.mkdir()
    shared.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    user = tmp_path / "xdg"
    monkeypatch.setenv("DAILIES_MODELS", str(shared))
    monkeypatch.setenv("XDG_CACHE_HOME", str(user))
    try:
        assert nets.cache_dirs() == [shared / "onnx", user / "dailies" / "onnx"]
        # even for root, who may write anywhere: a folder made read-only is not written
        assert nets._writable_dir(None) == user / "dailies" / "onnx"
        assert not (shared / "onnx").exists()
        # a writable model cache keeps them itself
        monkeypatch.setenv("DAILIES_MODELS", str(tmp_path / "cache"))
        assert nets._writable_dir(None) == tmp_path / "cache" / "onnx"
        # nowhere to write: one sentence
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        monkeypatch.setenv("DAILIES_MODELS", str(shared))
        monkeypatch.setenv("XDG_CACHE_HOME", str(locked))
        with pytest.raises(ModelError, match="cannot be written") as err:
            nets._writable_dir(None)
        assert "\n" not in err.value.message
    finally:
        shared.chmod(0o755)


# ------------------------------------------------------------------------------------------------ networks

@pytest.mark.slow
@needs_audio
def test_onnx_segmentation_equals_torch(audio, models, exported):
    import torch

    from indexer.speakers import nets

    _, seg_path, _ = exported
    ort_seg = nets.OnnxSegmentation(seg_path, threads=2)
    torch_seg = nets.load_segmentation_torch(models.segmentation)
    chunks = np.stack([wav[s: s + 160000] for wav in audio.values() for s in (0, 77777, 140000)])[:, None]
    with torch.inference_mode():
        ref = torch_seg(torch.from_numpy(chunks)).numpy()
    ours = np.concatenate([ort_seg(chunks[:4]), ort_seg(chunks[4:])])     # the batch axis is free
    assert ours.shape == ref.shape and ours.shape[-1] == 7 and ours.shape[1] > 500
    assert np.abs(ours - ref).max() <= 1e-3
    assert (ours.argmax(-1) == ref.argmax(-1)).mean() >= 0.999
    # log-probabilities of real speech: they sum to one, and more than one class wins somewhere
    assert np.allclose(np.exp(ours).sum(-1), 1.0, atol=1e-4)
    assert len(np.unique(ours.argmax(-1))) >= 3


@pytest.mark.slow
@needs_audio
def test_onnx_campp_equals_torch(audio, models, exported):
    from indexer.speakers import campplus, nets

    _, _, campp_path = exported
    ort_campp = nets.OnnxCampp(campp_path, models.embedding, threads=2)
    torch_campp = campplus.CamppEmbedder(models.embedding)
    assert ort_campp.describe() == torch_campp.describe()
    assert (nets.OnnxCampp(campp_path, Path(models.embedding).parent, verify=False).describe()
            == campplus.CamppEmbedder(Path(models.embedding).parent, verify=False).describe())
    wav = audio["tst00"]
    pieces = [wav[a: a + n] for a, n in ((0, 560), (16000, 4000), (32000, 16000), (50000, 16000), (5000, 51234),
                                          (0, 160000))]
    feats = [nets.fbank(p) for p in pieces] + [np.zeros((0, 80), np.float32)]
    for bucket in (0, 50):
        ref = torch_campp.embed_features(feats, bucket=bucket)
        ours = ort_campp.embed_features(feats, bucket=bucket, max_batch_frames=150)
        assert ours.shape == (len(feats), 192)
        assert np.isnan(ours[-1]).all() and np.isnan(ref[-1]).all()          # nothing: a NaN row
        assert _cos(ours[:-1], ref[:-1]).min() >= 0.9999
    # torch tensors are taken too (the pipeline passes torch fbank), and embed() is fbank + network
    assert _cos(ort_campp.embed(pieces[4]), torch_campp.embed(pieces[4]))[0] >= 0.9999
    # different stretches give different voices' embeddings, not a constant
    assert _cos(ours[2], ours[5])[0] < 0.999


@pytest.mark.slow
@needs_audio
def test_running_the_cached_exports_imports_neither_torch_nor_pyannote(models, exported):
    from indexer.speakers import nets

    cache, seg, campp = exported
    assert nets.onnx_paths(models, cache_dir=cache) == (seg, campp)          # found, not exported again
    code = f"""
import sys, numpy as np
from indexer.media import load_audio
from indexer.speakers import nets
wav = load_audio({str(SAMPLE)!r})
seg = nets.OnnxSegmentation({str(seg)!r}, threads=1)
campp = nets.OnnxCampp({str(campp)!r}, {models.embedding!r}, threads=1, verify=False)
logp = seg(wav[None, None, :160000])
emb = campp.embed_features([nets.fbank(wav[:48000]), nets.fbank(wav[48000:96000])])
assert logp.shape[-1] == 7 and emb.shape == (2, 192) and np.isfinite(emb).all()
print(sorted(m for m in ("torch", "pyannote.audio", "torchaudio", "lightning") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
@needs_audio
def test_the_int8_campp_is_made_from_the_shipped_ranges_and_embeds_as_the_float_one(audio, models, exported,
                                                                                   tmp_path, monkeypatch):
    from indexer.errors import ModelError
    from indexer.speakers import nets

    cache, _, campp = exported
    path = nets.int8_campp_path(models, cache_dir=cache)
    assert path.parent == cache and path.name.startswith(campp.stem + "-int8")
    convs, quantised = nets.conv_counts(path)
    assert convs == quantised > 200                                      # every convolution reads int8
    assert nets.conv_counts(campp) == (convs, 0)
    assert path.stat().st_size < campp.stat().st_size / 3
    made = path.stat().st_mtime_ns
    assert nets.int8_campp_path(models, cache_dir=cache) == path and path.stat().st_mtime_ns == made   # found again
    int8 = nets.load_int8_campp(models, threads=2, cache_dir=cache)
    flt = nets.OnnxCampp(campp, models.embedding, threads=2, verify=False)
    assert (int8.precision, flt.precision) == ("int8", "float32") and int8.describe() == flt.describe()
    # real speech the ranges were not measured on (they come from AMI train): 1-9 s stretches of three files
    pieces = [audio[name][a: a + n] for name in ("sample", "dev00", "tst00")
              for a, n in ((0, 16000), (40000, 48000), (200000, 144000), (400000, 80000))]
    feats = [nets.fbank(p) for p in pieces]
    ours, ref = int8.embed_features(feats, bucket=50), flt.embed_features(feats, bucket=50)
    cos = _cos(ours, ref)
    long = np.array([len(p) >= 48000 for p in pieces])
    # measured: 0.967-0.994 (mean 0.988) on the >= 3 s stretches, 0.92-0.99 on the 1 s ones; int8 everywhere (all
    # ops, not only the convolutions) gave 0.66
    assert cos[long].min() >= 0.95 and cos[long].mean() >= 0.98 and cos.min() >= 0.90, cos
    # it still tells voices apart: each stretch is nearer its own float embedding than any other stretch's
    sims = (ours / np.linalg.norm(ours, axis=1, keepdims=True)) @ (ref / np.linalg.norm(ref, axis=1, keepdims=True)).T
    assert (sims.argmax(axis=1) == np.arange(len(pieces))).all()
    # ranges that do not fit the export (half of its tensors missing): one sentence, no file left behind
    import json

    bad = json.loads(nets.INT8_RANGES.read_text())
    for name in sorted(bad["data"])[::2]:
        del bad["data"][name]
    (tmp_path / "ranges.json").write_text(json.dumps(bad))
    monkeypatch.setattr(nets, "INT8_RANGES", tmp_path / "ranges.json")
    with pytest.raises(ModelError, match="making the int8 CAM\\+\\+ from it failed") as err:
        nets.int8_campp_path(models, cache_dir=cache)
    assert "\n" not in err.value.message and campp.name in err.value.message
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp") or p.name == nets._names(models)[2]]


@pytest.mark.slow
def test_a_corrupt_export_is_made_again_once(models, exported, tmp_path, monkeypatch):
    from indexer.errors import ModelError
    from indexer.speakers import nets

    _, seg, campp = exported
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(seg, cache / seg.name)
    (cache / campp.name).write_bytes(campp.read_bytes()[:5000])             # truncated
    s, c = nets.load_nets(models, threads=1, cache_dir=cache)
    assert c.session.get_inputs()[0].name == "feats" and (cache / campp.name).stat().st_size == campp.stat().st_size
    # an export that still does not load: one sentence, no traceback
    (cache / campp.name).write_bytes(b"not onnx")
    monkeypatch.setattr(nets, "export_campp", lambda src, out: Path(out).write_bytes(b"still not onnx"))
    with pytest.raises(ModelError, match="cannot load the ONNX CAM\\+\\+ model") as err:
        nets.load_nets(models, threads=1, cache_dir=cache)
    assert "\n" not in err.value.message and campp.name in err.value.message
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]       # no temporary files left


@pytest.mark.slow
def test_models_fetch_makes_the_exports(models, tmp_path, monkeypatch):
    """`dailies models fetch` exports the networks after fetching, into the model cache's onnx/, and removes
    the exports of the same weights an earlier version of dailies made (nothing else)."""
    from indexer.models import diarization, fetch

    base = tmp_path / "cache"
    for mf in diarization.WEIGHTS:
        (base / mf.relpath).parent.mkdir(parents=True, exist_ok=True)
        src = Path(models.segmentation if mf is diarization.SEGMENTATION else models.embedding
                   if mf is diarization.EMBEDDING else Path(models.segmentation).parent / "config.yaml")
        shutil.copy(src, base / mf.relpath)
    for mf in diarization.LICENCES:
        (base / mf.relpath).parent.mkdir(parents=True, exist_ok=True)
        (base / mf.relpath).write_text("licence")
    monkeypatch.setenv("DAILIES_MODELS", str(base))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))          # no exports from the user's cache
    (base / "onnx").mkdir()
    old = ["campplus-92f29b94e694-v1.onnx", "segmentation-3.0-da85c29829d4-v0.onnx",
           "campplus-92f29b94e694-v2-int8v0-deadbeef.onnx"]
    others = ["campplus-000000000000-v1.onnx", "mine.onnx"]               # other weights', the user's own
    for name in old + others:
        (base / "onnx" / name).write_bytes(b"x" * 1000)
    lines = fetch([])                                                      # all present: nothing downloaded
    assert any("already present" in line for line in lines)
    assert "removed 3 made by an earlier version" in lines[-1]
    assert all((base / "onnx" / n).is_file() for n in others)
    made = sorted(p.name for p in (base / "onnx").iterdir() if p.name not in others)
    assert len(made) == 3 and made[1] == "campplus-92f29b94e694-v2.onnx"
    assert made[0].startswith("campplus-92f29b94e694-v2-int8v1-")                # the int8 CAM++, made from it
    assert made[2].startswith("segmentation-3.0-da85c29829d4")
    assert all(str(base / "onnx" / m) in lines[-1] for m in made)
    assert all(stat.S_IMODE((base / "onnx" / m).stat().st_mode) & stat.S_IROTH for m in made)   # readable by all
    from indexer.models import list_models

    listed = {r["path"]: r for r in list_models() if "(ONNX" in r["name"]}              # `dailies models list`
    assert sorted(listed) == [str(base / "onnx" / m) for m in made]
    assert all(r["status"] == "present" and len(r["sha256"]) == 64 for r in listed.values())
