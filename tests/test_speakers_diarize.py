"""Diarization with the real models (segmentation-3.0 + our CAM++), on real and fixture audio.

Slow: each runs pyannote's pipeline on CPU. Skips when the weights (../shared/models or the model
cache) or the media are absent.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DAILIES_SHARED", ROOT.parent / "shared"))
SAMPLE = SHARED / "eval" / "diarization" / "pyannote_sample"
MANIFEST = ROOT / "fixtures" / "manifest.json"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def diarizer():
    from indexer import modelfetch
    from indexer.diarize import Diarizer

    try:
        models = modelfetch.resolve()
    except modelfetch.ModelMissingError:
        if not (SHARED / "models").is_dir():
            pytest.skip("diarization weights absent (run `dailies models fetch`)")
        models = modelfetch.resolve(str(SHARED / "models"))
    return Diarizer(models, threads=2, channels="each")


def test_sample_der_and_speakers(diarizer):
    if not (SAMPLE / "sample.wav").is_file():
        pytest.skip(f"{SAMPLE} is absent (real evaluation media from ../shared/eval)")
    from pyannote.core import Segment, Timeline
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate

    from indexer.media import load_audio

    out = diarizer(load_audio(str(SAMPLE / "sample.wav")))
    ref = load_rttm(str(SAMPLE / "sample.rttm"))["sample"]
    der = DiarizationErrorRate(collar=0.0)(ref, out.turns, uem=Timeline([Segment(0, 30)]))
    assert der < 0.08                      # 5.2 % measured; pyannote's pipeline with these models: 5.6 %
    assert len(out.labels) == 2
    assert all(s.embedding is not None and abs(float((s.embedding ** 2).sum()) - 1) < 1e-4 for s in out.speakers)
    assert not out.exclusive.get_overlap()
    # the cached form gives back the same turns
    from indexer.diarize import Diarization, _turns_json

    back = Diarization.from_json(json.loads(json.dumps(out.to_json())))
    assert _turns_json(back.exclusive) == _turns_json(out.exclusive)


def test_fixture_shoot_every_delivery_gets_its_characters_voice(diarizer):
    if not MANIFEST.is_file():
        pytest.skip("fixtures/manifest.json is absent (scripts/make_fixtures.py makes it)")
    from indexer import diarize as D
    from indexer.media import decode, probe
    from indexer.voices import LocalIn, VoiceRegistry

    manifest = json.loads(MANIFEST.read_text())
    reg = VoiceRegistry(sqlite3.connect(":memory:"))
    voice_of_character: dict[str, set] = {}
    lav_owner = None
    for take in manifest["takes"]:
        if not take.get("deliveries"):
            continue
        info = probe(str(ROOT / "fixtures" / take["file"]))
        dec = decode(info, keep_channels=True)
        diar = diarizer(dec.audio, channels=dec.channels)
        ids, cents = reg.centroids(exclude_take=take["name"])
        diar = D.split_by_known_voices(diar, cents, reg.threshold)
        mapping = reg.register_take(take["name"], [LocalIn(s.label, s.embedding, s.seconds) for s in diar.speakers])
        excl = D._intervals(diar.exclusive)
        for d in take["deliveries"]:
            cover = {lab: D._covered(iv, d["start"], d["end"]) for lab, iv in excl.items()}
            label = max(cover, key=cover.get)
            assert cover[label] >= 0.8 * (d["end"] - d["start"]), (take["name"], d["text"])
            voice_of_character.setdefault(d["character"], set()).add(mapping[label])
        roles = take.get("audio", {}).get("channel_roles", [])
        if "lav MAYA" in roles:
            owner = diar.channel_owner.get(roles.index("lav MAYA"))
            lav_owner = mapping.get(owner)
    assert all(len(v) == 1 for v in voice_of_character.values()), voice_of_character
    assert len({next(iter(v)) for v in voice_of_character.values()}) == len(voice_of_character)
    if lav_owner is not None:
        assert lav_owner == next(iter(voice_of_character["MAYA"]))


def test_fixture_lines_and_shots_by_speaker(diarizer):
    """The whole speakers path on the fixture shoot, as the indexer runs it: words (faster-whisper),
    lines, diarization, known-voice split, registry, attribution; every line's voice is its
    character's, and the shots with a character's words are exactly the manifest's."""
    if not MANIFEST.is_file():
        pytest.skip("fixtures/manifest.json is absent (scripts/make_fixtures.py makes it)")
    from indexer import diarize as D
    from indexer.align import build_lines
    from indexer.media import decode, probe
    from indexer.records import Shot
    from indexer.speech import BUNDLED, Transcriber
    from indexer.voices import LocalIn, VoiceRegistry

    manifest = json.loads(MANIFEST.read_text())
    transcriber = Transcriber(BUNDLED, threads=2)
    reg = VoiceRegistry(sqlite3.connect(":memory:"))
    voice_lines: dict[str, set] = {}
    shots_found: dict[tuple[str, str], set] = {}
    for take in manifest["takes"]:
        if not take.get("deliveries"):
            continue
        info = probe(str(ROOT / "fixtures" / take["file"]))
        dec = decode(info, keep_channels=True)
        words, _ = transcriber.transcribe(dec.audio)
        shots = [Shot(i, a, b) for i, (a, b) in enumerate(take.get("shots") or [])]
        lines = build_lines(words, shots, info.rate, dec.audio)
        diar = diarizer(dec.audio, channels=dec.channels)
        diar = D.split_by_known_voices(diar, reg.centroids(exclude_take=take["name"])[1], reg.threshold)
        mapping = reg.register_take(take["name"], [LocalIn(s.label, s.embedding, s.seconds) for s in diar.speakers])
        lines, info_lines = D.assign_lines(lines, diar, shots=shots, rate=info.rate)
        for ln, li in zip(lines, info_lines):
            mid = (ln.start + ln.end) / 2
            d = min(take["deliveries"], key=lambda d: 0 if d["start"] <= mid <= d["end"] else
                    min(abs(mid - d["start"]), abs(mid - d["end"])))
            voice_lines.setdefault(d["character"], set()).add(mapping.get(ln.speaker))
            assert li.confidence is not None and li.confidence > 0.3, (take["name"], ln.text)
        if shots:
            for character in {d["character"] for d in take["deliveries"]}:
                vid = next(iter(voice_lines[character]))
                spans = [(w.start, w.end) for ln in lines if mapping.get(ln.speaker) == vid for w in ln.words]
                got = {i for i, secs in D.shot_speech(shots, info.rate, spans).items() if secs >= 0.15}
                want = {s for d in take["deliveries"] if d["character"] == character for s in d["shots"]}
                shots_found[(take["name"], character)] = got
                assert got == want, (take["name"], character, got, want,
                                      [(round(a, 2), round(b, 2)) for a, b in spans if b > 33])
    assert all(len(v) == 1 and None not in v for v in voice_lines.values()), voice_lines
    assert len({next(iter(v)) for v in voice_lines.values()}) == len(voice_lines)
