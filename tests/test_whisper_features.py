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


SAMPLED = r"""
import json, sys
from indexer.media import load_audio
from indexer.speech import Transcriber
model = Transcriber(threads=1)._load()
segments, _ = model.transcribe(load_audio(sys.argv[1]), language="en", temperature=1.0, beam_size=1, best_of=1,
                               vad_filter=False, condition_on_previous_text=False)
print(json.dumps(" ".join(s.text for s in segments)))
"""


def test_a_fresh_transcriber_samples_the_same_words_every_time():
    """faster-whisper decodes a window again by sampling when its text fails a check; CTranslate2 seeds its sampling
    from std::random_device unless a seed is set, and the same take gave other words from run to run. The
    transcriber sets the seed: two fresh processes decoding JFK's speech by sampling alone (temperature 1, the
    fallback's own call) give the same words (without the seed they differ nearly every time)."""
    import subprocess
    import sys

    path = EVAL / "speech" / "fw_jfk.flac"
    runs = [subprocess.run([sys.executable, "-c", SAMPLED, str(path)], capture_output=True, text=True, timeout=300)
            for _ in range(3)]
    assert all(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    words = {r.stdout for r in runs}
    assert len(words) == 1, words
    assert "country" in next(iter(words))
