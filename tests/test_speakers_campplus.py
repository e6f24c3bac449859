"""CAM++ (indexer/speakers/campplus.py): network + fbank front end against a reference from an independent
implementation with the real weights (tests/data/README_campplus.md says how it was made)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DAILIES_SHARED", ROOT.parent / "shared"))
WEIGHTS = SHARED / "models" / "campplus-zh-en-common" / "campplus_cn_en_common.pt"
SAMPLE = SHARED / "eval" / "diarization" / "pyannote_sample" / "sample.wav"
REFERENCE = ROOT / "tests" / "data" / "campplus_reference.json"

needs_weights = pytest.mark.needs(WEIGHTS, what="CAM++ weights from ../shared/models")
needs_sample = pytest.mark.needs(SAMPLE)


def _cos(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def embedder():
    from indexer.speakers.campplus import CamppEmbedder

    return CamppEmbedder(WEIGHTS)


def test_import_does_not_load_torch():
    import subprocess
    import sys

    modules = ["indexer.speakers." + m for m in ("campplus", "diarize", "load", "refine", "channels", "records",
                                                 "identity")] + ["indexer.align", "indexer.models.diarization", "indexer.tracks"]
    code = f"import sys, {', '.join(modules)}; print('torch' in sys.modules, 'pyannote.core' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False False"


def test_fbank_shape_and_mean_normalisation():
    from indexer.speakers.campplus import fbank

    t = np.arange(16000 * 2) / 16000
    feats = fbank(0.1 * np.sin(2 * np.pi * 440 * t).astype(np.float32)).numpy()
    assert feats.shape == (198, 80)        # Kaldi framing: 1 + (32000 - 400) // 160
    assert np.abs(feats.mean(axis=0)).max() < 1e-4
    assert fbank(np.zeros(100, dtype=np.float32)).shape == (1, 80)   # shorter than a window: padded


@needs_weights
def test_state_dict_loads_strictly(embedder):
    import torch

    from indexer.speakers.campplus import EMBED_DIM

    # CamppEmbedder loaded the file with strict=True; the network holds exactly the file's tensors
    state = embedder.model.state_dict()
    assert sum(v.numel() for v in state.values()) > 6_900_000   # CAM++: ~7.2 M parameters (the paper)
    with torch.inference_mode():
        assert embedder.model(torch.randn(2, 150, 80)).shape == (2, EMBED_DIM)


@needs_weights
def test_strict_loading_refuses_a_wrong_state_dict():
    import torch

    from indexer.speakers.campplus import load_state
    from indexer.errors import ModelError

    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    state.pop("xvector.dense.linear.weight")
    with pytest.raises(ModelError):
        load_state(state)


@needs_weights
@needs_sample
def test_embeddings_match_independent_reference(embedder):
    from indexer.media import load_audio

    ref = json.loads(REFERENCE.read_text())
    audio = load_audio(str(SAMPLE))
    ours = []
    for (start, end), expected in zip(ref["windows"], ref["embeddings"]):
        v = embedder.embed(audio[int(round(start * 16000)):int(round(end * 16000))])
        assert v.shape == (192,)
        assert _cos(v, expected) >= 0.99
        ours.append(v)
    # and the vectors mean something: each window is closer to its own speaker's other window
    assert _cos(ours[0], ours[1]) > max(_cos(ours[0], ours[2]), _cos(ours[0], ours[3]))
    assert _cos(ours[2], ours[3]) > max(_cos(ours[2], ours[0]), _cos(ours[2], ours[1]))


@needs_weights
def test_corrupt_weights_are_refused(tmp_path):
    from indexer.speakers.campplus import CamppEmbedder
    from indexer.errors import ModelError

    bad = tmp_path / "campplus_cn_en_common.pt"
    data = bytearray(WEIGHTS.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupt"):
        CamppEmbedder(bad)


@needs_weights
@needs_sample
def test_pooled_frame_features_are_the_network_split_at_its_pooling(embedder):
    """The fast embeddings (indexer.speakers.load.pooled_embeddings) run CAM++'s trunk once per file and
    pool per mask: over a whole utterance of one block that is exactly the network; over a long file
    (several blocks) the frames keep the file's 20 ms grid, and a masked stretch's pooled embedding is
    close to the network's on that stretch alone (the trunk sees a little context across its edges)."""
    import torch

    from indexer.media import load_audio
    from indexer.speakers.load import POOLED_BLOCK, frame_features

    audio = load_audio(str(SAMPLE))
    part = audio[3 * 16000: 12 * 16000]
    y = frame_features(embedder, part)
    with torch.inference_mode():
        pooled = embedder.model.xvector.dense(torch.cat([y.mean(1), y.std(1)])[None])[0].numpy()
    assert _cos(pooled, embedder.embed(part)) > 0.9999
    twice = np.concatenate([audio, audio])                      # 60 s: two blocks
    assert len(twice) / 16000 > POOLED_BLOCK / 100
    whole = frame_features(embedder, twice)
    assert abs(whole.shape[1] - len(twice) / 320) <= 2          # 20 ms per frame
    a, b = 33 * 50, 42 * 50                                     # the same 9 s, in the second block
    w = whole[:, a:b]
    with torch.inference_mode():
        inside = embedder.model.xvector.dense(torch.cat([w.mean(1), w.std(1)])[None])[0].numpy()
    assert _cos(inside, embedder.embed(part)) > 0.9


def test_context_masks_gate_once_per_segment_as_the_reference_gates_every_frame():
    """The context-aware masks compute their gate once per 100-frame segment and spread it over the segment's
    frames (1.2x faster); 3D-Speaker spreads the segment context first and gates every frame. Same numbers,
    on lengths that fill the last segment, leave it short, and stay inside one segment. Random weights: this
    checks the arrangement, and the reference test above the weights."""
    import torch
    import torch.nn.functional as F

    from indexer.speakers.campplus import SEGMENT_FRAMES, _network

    torch.manual_seed(0)
    model = _network()().eval()
    layers = [m for m in model.modules() if type(m).__name__ == "ContextAwareMask"]
    assert len(layers) == 12 + 24 + 16              # one in every dense layer of the three blocks

    def reference(cam, x):                          # speakerlab/models/campplus/layers.py, CAMLayer
        frames = x.shape[-1]
        seg = F.avg_pool1d(x, SEGMENT_FRAMES, SEGMENT_FRAMES, ceil_mode=True)
        shape = seg.shape
        seg = seg.unsqueeze(-1).expand(*shape, SEGMENT_FRAMES).reshape(*shape[:-1], -1)[..., :frames]
        context = x.mean(-1, keepdim=True) + seg
        return cam.linear_local(x) * torch.sigmoid(cam.linear2(F.relu(cam.linear1(context))))

    with torch.inference_mode():
        for cam in (layers[0], layers[-1]):
            for frames in (300, 237, 57):
                x = torch.randn(3, cam.linear1.in_channels, frames)
                ours, theirs = cam(x), reference(cam, x)
                assert ours.shape == theirs.shape
                assert torch.allclose(ours, theirs, rtol=0, atol=1e-6)
