"""``--diarization-model FOLDER``: a user's own pyannote pipeline folder (a ``config.yaml`` that names
local checkpoints), loaded offline.

No open pyannote speaker-embedding weights can be had here, so the folder is built in the test: the
real segmentation-3.0 checkpoint, a **random-weight** x-vector (pyannote's XVectorMFCC, seed 0) and a
random PLDA. It tests the plumbing (loading, the pipeline's output, the catalog, the voice registry),
not diarization quality: with random embeddings every speaker of a take is one voice.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, absent, run_cli

pytestmark = pytest.mark.slow


def make_pipeline_folder(folder: Path, segmentation: str, *, embedding_name: str = "random-xvector.bin") -> Path:
    """A pyannote 4 SpeakerDiarization folder: real segmentation, random-weight x-vector, random PLDA."""
    import pytorch_lightning as pl
    import torch
    import yaml
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import XVectorMFCC

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = XVectorMFCC(sample_rate=16000, num_channels=1)
    model.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=3.0)
    checkpoint = {"pytorch-lightning_version": pl.__version__, "state_dict": model.state_dict(),
                  "hparams_name": "kwargs", "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(checkpoint)          # pyannote's own metadata (architecture, specifications)
    torch.save(checkpoint, folder / "random-xvector.bin")
    rng = np.random.default_rng(0)
    dim, k = model.dimension, 16
    (folder / "plda").mkdir(exist_ok=True)
    np.savez(folder / "plda" / "xvec_transform.npz", mean1=np.zeros(dim), mean2=np.zeros(k),
             lda=rng.standard_normal((dim, k)) / np.sqrt(dim))
    np.savez(folder / "plda" / "plda.npz", mu=np.zeros(k), tr=np.eye(k), psi=np.ones(k))
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "pipeline": {"name": "pyannote.audio.pipelines.SpeakerDiarization",
                     "params": {"segmentation": segmentation, "embedding": str(folder / embedding_name),
                                "plda": str(folder / "plda"), "clustering": "AgglomerativeClustering",
                                "embedding_exclude_overlap": True}},
        "params": {"segmentation": {"min_duration_off": 0.0},
                   "clustering": {"method": "centroid", "min_cluster_size": 12, "threshold": 0.7}}}))
    return folder


@pytest.fixture(scope="module")
def segmentation() -> str:
    from indexer.models import diarization

    try:
        return diarization.resolve(verify=False).segmentation
    except Exception as exc:  # noqa: BLE001
        absent(f"segmentation-3.0 is absent ({exc})")


def test_a_local_pipeline_folder_diarizes_offline_and_keeps_its_voices_apart(tmp_path, segmentation):
    folder = make_pipeline_folder(tmp_path / "my-pipeline", segmentation)
    index = tmp_path / "index"
    t1, t2 = FIXTURES / "shoot" / "12A_T1_CamA.mov", FIXTURES / "shoot" / "12A_T2_CamA.mov"
    run_cli("index", str(t1), "--index", str(index), "--diarization-model", str(folder), "--no-visual",
            "--threads", "2", check=True)
    status = json.loads(run_cli("status", "--index", str(index), "--json", check=True).stdout)
    (take,) = status["takes"]
    assert take["models"]["diarization"]["kind"] == "pipeline"
    assert take["models"]["diarization"]["pipeline"] == str(folder)
    lines = json.loads(run_cli("lines", "12A_T1_CamA", "--index", str(index), "--json", check=True).stdout)["lines"]
    assert lines and all(line.get("voice_id") for line in lines), "the folder's pipeline gave no speakers"
    pipeline_voices = {line["voice_id"] for line in lines}

    # The next take with the default models: its voices never match voices made by another model.
    run_cli("index", str(t2), "--index", str(index), "--no-visual", "--threads", "2", check=True)
    lines2 = json.loads(run_cli("lines", "12A_T2_CamA", "--index", str(index), "--json", check=True).stdout)["lines"]
    default_voices = {line["voice_id"] for line in lines2 if line.get("voice_id")}
    assert default_voices and not default_voices & pipeline_voices


def test_a_pipeline_folder_that_cannot_load_stops_the_run_in_one_sentence(tmp_path, segmentation):
    folder = make_pipeline_folder(tmp_path / "broken", segmentation, embedding_name="missing.bin")
    index = tmp_path / "index"
    proc = run_cli("index", str(FIXTURES / "shoot" / "12A_T1_CamA.mov"), str(FIXTURES / "shoot" / "12A_T2_CamA.mov"),
                   "--index", str(index), "--diarization-model", str(folder), "--no-visual")
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert errors[-1].startswith("dailies: error: Cannot load the diarization pipeline")
    assert "missing.bin, named in its config.yaml, does not exist" in errors[-1]
    assert "Traceback" not in proc.stderr
    status = json.loads(run_cli("status", "--index", str(index), "--json", check=True).stdout)
    assert status["takes"] == [], "a take was indexed without the speakers the user asked for"
