"""indexer.speakers.engine is pyannote's SpeakerDiarization pipeline without pyannote.audio: with the same
networks (torch, here) it must give the very turns pyannote.audio gives, on real speech.

Slow: pyannote's pipeline runs on the CPU beside ours.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import need

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DAILIES_SHARED", ROOT.parent / "shared"))
FILES = [SHARED / "eval" / "diarization" / "pyannote_sample" / "sample.wav",          # 2 speakers, overlap
         SHARED / "eval" / "diarization" / "pyannote_debug_ami" / "tst00.wav",       # 4 AMI speakers
         SHARED / "eval" / "diarization" / "pyannote_debug_ami" / "trn01.wav",       # no speaker found
         SHARED / "eval" / "speech" / "fw_stereo_diarization.wav",                   # 5 s, shorter than a chunk
         ROOT / "fixtures" / "shoot" / "12A_T2_CamA.mov"]                            # the fixture shoot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def both():
    import torch

    from indexer.models import diarization
    from indexer.speakers.campplus import CamppEmbedder
    from indexer.speakers.engine import ChunkEmbeddings, Engine
    from indexer.speakers.load import DEFAULT_PARAMS, EMBED_BUCKET, EMBED_MIN_SECONDS, _torch_segmentation, build_pipeline

    torch.set_num_threads(2)
    try:
        models = diarization.resolve()
    except diarization.ModelMissingError:
        models = diarization.resolve(str(SHARED / "models"))
    pipe = build_pipeline(models, device="cpu")
    embedder = CamppEmbedder(models.embedding)
    engine = Engine(_torch_segmentation(models, "cpu"),
                    ChunkEmbeddings(embedder, embedder.fbank, min_seconds=EMBED_MIN_SECONDS, bucket=EMBED_BUCKET),
                    params=DEFAULT_PARAMS, step=0.1, exclude_overlap=True, min_embed_seconds=EMBED_MIN_SECONDS)
    return pipe, engine


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_engine_gives_pyannotes_turns(both, path):
    import torch

    from indexer.media import load_audio

    need(path)
    pipe, engine = both
    audio = load_audio(str(path))
    theirs = pipe({"waveform": torch.from_numpy(audio)[None], "sample_rate": 16000, "uri": "t"})
    ours = engine(audio, uri="t")

    def rows(ann):
        return [(round(s.start, 6), round(s.end, 6), label) for s, _, label in ann.itertracks(yield_label=True)]

    assert rows(ours.turns) == rows(theirs.speaker_diarization)
    assert rows(ours.exclusive) == rows(theirs.exclusive_speaker_diarization)
    assert ours.centroids.shape == theirs.speaker_embeddings.shape
    if ours.centroids.size:
        np.testing.assert_allclose(ours.centroids, theirs.speaker_embeddings, atol=1e-4)
    if path.name == "sample.wav":
        assert len(ours.turns.labels()) == 2 and ours.turns.get_overlap()     # the test has teeth: overlap, 2 voices
