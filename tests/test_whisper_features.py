"""A long take's Whisper features in blocks (indexer/whisper_features.py): the same numbers as faster-whisper's
whole-take computation, on real speech, and the transcriber uses them."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EVAL

from indexer import whisper_features
from indexer.speech import BUNDLED, Transcriber

DIAR = EVAL / "diarization"
PIECES = [DIAR / "pyannote_sample" / "sample.wav"] + [DIAR / "pyannote_debug_ami" / f"{n}.wav" for n in ("dev00", "tst00")]


@pytest.mark.needs(*PIECES)
@pytest.mark.parametrize("block", [1000, 1024, 4096])     # 1000: 9,001 frames would leave a one-frame block
def test_block_features_equal_faster_whispers_whole_take_features(monkeypatch, block):
    from faster_whisper.feature_extractor import FeatureExtractor

    from indexer.media import load_audio

    audio = np.concatenate([load_audio(str(p)) for p in PIECES])            # 90 s of real speech
    monkeypatch.setattr(whisper_features, "BLOCK_FRAMES", block)           # many blocks and a short last one
    ours = whisper_features.BlockFeatures(FeatureExtractor(feature_size=80))
    theirs = FeatureExtractor(feature_size=80)
    got, want = ours(audio, chunk_length=30), theirs(audio, chunk_length=30)
    assert len(audio) > 2 * block * 160 and want.shape[1] % block != 0     # the block path ran, with a tail
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)
    assert ours.nb_max_frames == theirs.nb_max_frames == 3000               # chunk_length applied as theirs does
    short = audio[:16000 * 20]                                               # short audio: faster-whisper's own path
    assert np.array_equal(ours(short), theirs(short))


def test_the_transcriber_computes_features_in_blocks():
    t = Transcriber(BUNDLED)
    t.transcribe(np.zeros(16000, dtype=np.float32))
    assert isinstance(t._load().feature_extractor, whisper_features.BlockFeatures)
