"""The speaker step does not run the segmentation on 10 s chunks far from any speech: faster-whisper's voice activity
detector, which already ran for the transcription, says where speech is (indexer.speech.speech_regions,
indexer.speakers.engine.chunks_to_run). Where there is speech nothing may change."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import EVAL, need
from hypothesis import given, settings
from hypothesis import strategies as st

SAMPLE = EVAL / "diarization" / "pyannote_sample" / "sample.wav"


def _with_a_long_silence() -> np.ndarray:
    """sample.wav (two real speakers, 30 s), 40 s of low room tone, sample.wav again."""
    from indexer.media import load_audio

    speech = load_audio(str(need(SAMPLE)))
    tone = (np.random.default_rng(5).standard_normal(40 * 16000) * 0.002).astype(np.float32)     # about -54 dBFS
    return np.concatenate([speech, tone, speech])


@settings(max_examples=300, deadline=None)
@given(total=st.integers(1, 400), step=st.sampled_from([1600, 16000, 40000]),
       regions=st.lists(st.tuples(st.integers(0, 4_000_000), st.integers(1, 400_000)), max_size=6))
def test_a_chunk_is_run_exactly_when_speech_comes_near_it(total, step, regions):
    from indexer.speakers.engine import CHUNK_SAMPLES, SPEECH_MARGIN, chunks_to_run

    speech = [(a, a + n) for a, n in regions]
    run = chunks_to_run(total, step, speech)
    for c in range(total):
        lo, hi = c * step, c * step + CHUNK_SAMPLES
        near = any(lo < b + SPEECH_MARGIN and hi > a - SPEECH_MARGIN for a, b in speech)
        assert run[c] == near, (c, lo, hi, speech)
    assert chunks_to_run(total, step, None).all()


@pytest.fixture(scope="module")
def diarizer():
    from indexer.models import diarization
    from indexer.speakers.diarize import Diarizer

    d = Diarizer(diarization.resolve(None), threads=2)
    d.load()
    return d


def test_a_take_with_a_long_silence_skips_its_chunks_and_keeps_its_turns(diarizer):
    from indexer.speech import speech_regions

    audio = _with_a_long_silence()
    regions = speech_regions(audio)
    assert regions and all(b <= 32 * 16000 or a >= 70 * 16000 for a, b in regions), regions     # none in the tone
    every = diarizer(audio, uri="t")
    assert diarizer.last_skipped == 0
    skipping = diarizer(audio, uri="t", speech=regions)
    # the silence is 40 s: chunks starting more than 3 s after the speech and ending 3 s before it are not run
    assert diarizer.last_skipped >= 15
    assert list(skipping.turns.itertracks(yield_label=True)) == list(every.turns.itertracks(yield_label=True))
    assert list(skipping.exclusive.itertracks(yield_label=True)) == \
        list(every.exclusive.itertracks(yield_label=True))
    assert len(skipping.turns.labels()) >= 2            # both voices, as every chunk run finds them
    # no speech anywhere: no chunk to run, no speaker
    nothing = diarizer(audio, uri="t", speech=[])
    assert not nothing.turns and not nothing.speakers


def test_channels_picked_for_the_speakers_are_heard_for_speech_again(diarizer):
    """--channels 1,2 diarizes those channels' mix, not the take's: the regions heard in the take's mix are not theirs."""
    from indexer.models import diarization
    from indexer.speakers.diarize import Diarizer

    audio = _with_a_long_silence()
    channels = np.stack([audio, np.zeros_like(audio)])
    picked = Diarizer(diarization.resolve(None), threads=2, channels="1")
    picked._pipeline, picked._embedder = diarizer.pipeline, diarizer.embedder       # the same loaded models
    # the take's mix said "no speech" (as a mix whose other channels drown a quiet iso could): channel 1 has it
    got = picked(audio * 0.0, channels=channels, speech=[], uri="t")
    assert got.turns and picked.last_skipped >= 15


def test_quiet_speech_the_detector_hardly_hears_keeps_its_turns(diarizer):
    """AMI trn07 (tuning data): most of its speech is too quiet for the detector at the transcription's threshold. A
    careless skip (the transcription's regions, chunks not run counted as silence, no margin) lost 2.2 s of its
    turns; the speaker step's regions, margin and missing chunks keep them all."""
    from indexer.media import load_audio
    from indexer.speech import speech_regions

    audio = load_audio(str(need(EVAL / "diarization" / "pyannote_debug_ami" / "trn07.wav")))
    every = diarizer(audio, uri="t")
    skipping = diarizer(audio, uri="t", speech=speech_regions(audio))
    assert every.turns
    assert list(skipping.turns.itertracks(yield_label=True)) == list(every.turns.itertracks(yield_label=True))


def test_the_transcription_leaves_the_speaker_steps_regions_and_its_own_words():
    import faster_whisper.transcribe as fwt
    import faster_whisper.vad as fwvad
    from faster_whisper.vad import VadOptions

    from indexer.speech import SPEAKER_VAD_THRESHOLD, Transcriber, speech_regions

    audio = _with_a_long_silence()
    words, info = Transcriber().transcribe(audio)
    assert words
    # the regions the detector's run inside the transcription leaves are those it finds run alone
    assert info["speech"] == speech_regions(audio)
    assert getattr(fwt.get_speech_timestamps, "dailies_capture", False)
    # ... and faster-whisper's own regions (what it transcribes) are untouched by keeping them
    own = fwt.get_speech_timestamps(audio, VadOptions())
    assert own == fwvad.get_speech_timestamps(audio, VadOptions())
    # the speaker step's threshold is lower: its regions hold the transcription's
    assert SPEAKER_VAD_THRESHOLD < VadOptions().threshold
    for c in own:
        assert any(a <= c["start"] and c["end"] <= b for a, b in info["speech"]), (c, info["speech"])


def test_an_indexed_take_keeps_its_speech_regions_for_a_resumed_run(shoot_index):
    from indexer.store import Index

    with Index.open(shoot_index) as idx:
        takes = [t for t in idx.takes(status="indexed") if t["has_audio"] and t["n_lines"]]
        assert takes
        for t in takes:
            steps = idx.steps_of(t["take_id"], ("asr",))
            info = steps["asr"][1]["info"]
            regions = info["speech"]
            assert regions and all(0 <= a < b <= round(t["duration"] * 16000) + 512 for a, b in regions), regions
            models = json.loads(t["models"])
            assert models["diarization"]["silent_chunks"] == "skipped"
