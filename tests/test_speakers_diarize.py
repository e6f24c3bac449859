"""Diarization with the real models (segmentation-3.0 + our CAM++), on real and fixture audio.

Slow: each runs pyannote's pipeline on CPU. Skips when the weights (../shared/models or the model
cache) or the media are absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import absent, need

from indexer.store import VoiceTables

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DAILIES_SHARED", ROOT.parent / "shared"))
SAMPLE = SHARED / "eval" / "diarization" / "pyannote_sample"
MANIFEST = ROOT / "fixtures" / "manifest.json"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def diarizer():
    from indexer.models import diarization
    from indexer.speakers.diarize import Diarizer

    try:
        models = diarization.resolve()
    except diarization.ModelMissingError:
        if not (SHARED / "models").is_dir():
            absent("diarization weights absent (run `dailies models fetch`)")
        models = diarization.resolve(str(SHARED / "models"))
    return Diarizer(models, threads=2, channels="each")


def test_sample_der_and_speakers(diarizer):
    need(SAMPLE / "sample.wav")
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
    from indexer.speakers.records import Diarization, _turns_json

    back = Diarization.from_json(json.loads(json.dumps(out.to_json())))
    assert _turns_json(back.exclusive) == _turns_json(out.exclusive)


def test_fixture_shoot_every_delivery_gets_its_characters_voice(diarizer):
    if not MANIFEST.is_file():
        absent("fixtures/manifest.json is absent (scripts/make_fixtures.py makes it)")
    from indexer.align import _covered, _intervals
    from indexer.media import decode, probe
    from indexer.speakers.identity import VoiceRegistry, identify

    manifest = json.loads(MANIFEST.read_text())
    reg = VoiceRegistry(VoiceTables.memory())
    voice_of_character: dict[str, set] = {}
    lav_owner = None
    for take in manifest["takes"]:
        if not take.get("deliveries"):
            continue
        info = probe(str(ROOT / "fixtures" / take["file"]))
        dec = decode(info, keep_channels=True)
        diar = diarizer(dec.audio, channels=dec.channels)
        diar, mapping = identify(diar, reg, take["name"])
        excl = _intervals(diar.exclusive)
        for d in take["deliveries"]:
            cover = {lab: _covered(iv, d["start"], d["end"]) for lab, iv in excl.items()}
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
    lines, diarization, known-voice split and re-read, registry, attribution; every line's voice is its
    character's, and the shots with a character's words are exactly the manifest's."""
    if not MANIFEST.is_file():
        absent("fixtures/manifest.json is absent (scripts/make_fixtures.py makes it)")
    from indexer.align import assign_lines, build_lines, shot_speech
    from indexer.media import decode, probe
    from indexer.records import Shot
    from indexer.speakers.identity import VoiceRegistry, identify
    from indexer.speech import BUNDLED, Transcriber

    manifest = json.loads(MANIFEST.read_text())
    transcriber = Transcriber(BUNDLED, threads=2)
    reg = VoiceRegistry(VoiceTables.memory())
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
        diar, mapping = identify(diar, reg, take["name"])
        lines, info_lines = assign_lines(lines, diar, shots=shots, rate=info.rate)
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
                got = {i for i, secs in shot_speech(shots, info.rate, spans).items() if secs >= 0.15}
                want = {s for d in take["deliveries"] if d["character"] == character for s in d["shots"]}
                shots_found[(take["name"], character)] = got
                assert got == want, (take["name"], character, got, want,
                                      [(round(a, 2), round(b, 2)) for a, b in spans if b > 33])
    assert all(len(v) == 1 and None not in v for v in voice_lines.values()), voice_lines
    assert len({next(iter(v)) for v in voice_lines.values()}) == len(voice_lines)


def test_resegmentation_finds_the_changes_inside_long_turns(diarizer):
    """AMI dev00: segmentation-3.0 runs 13 s of quick replies between two men into one turn; the
    sliding CAM++ re-read of long turns finds the changes (DER and purity both improve)."""
    ami = SHARED / "eval" / "diarization" / "pyannote_debug_ami"
    need(ami / "dev00.wav")
    from pyannote.database.util import load_rttm, load_uem
    from pyannote.metrics.diarization import DiarizationErrorRate, DiarizationPurity

    from indexer.media import load_audio
    from indexer.speakers.refine import REFINE

    audio = load_audio(str(ami / "dev00.wav"))
    ref = load_rttm(str(ami / "debug.development.rttm"))["dev00"]
    uem = load_uem(str(ami / "debug.development.uem"))["dev00"]
    with_reseg = diarizer(audio, uri="dev00")
    saved = REFINE["reseg_min_turn"]
    REFINE["reseg_min_turn"] = float("inf")
    try:
        without = diarizer(audio, uri="dev00")
    finally:
        REFINE["reseg_min_turn"] = saved
    der = {k: DiarizationErrorRate(collar=0.0)(ref, d.turns, uem=uem) for k, d in (("on", with_reseg), ("off", without))}
    purity = {k: DiarizationPurity()(ref, d.exclusive, uem=uem) for k, d in (("on", with_reseg), ("off", without))}
    assert der["on"] < der["off"] - 0.05, der             # measured 35.2 % -> 17.6 %
    assert purity["on"] > purity["off"] + 0.08, purity    # measured 0.71 -> 0.86
    assert len(with_reseg.exclusive) > len(without.exclusive)
    assert not with_reseg.exclusive.get_overlap()


def test_resegmentation_restores_a_change_it_is_shown_merged(diarizer):
    """The fixture's two voices: join one line of each character into one turn of the first
    speaker; the re-read puts the change back within half a second of where the diarizer had it,
    and leaves the turns around it alone."""
    if not MANIFEST.is_file():
        absent("fixtures/manifest.json is absent (scripts/make_fixtures.py makes it)")
    from pyannote.core import Annotation, Segment

    from indexer.media import load_audio
    from indexer.speakers.records import Diarization, SpeechSegment
    from indexer.speakers.refine import resegment

    audio = load_audio(str(ROOT / "fixtures" / "shoot" / "12A_T1_CamA.mov"))
    diar = diarizer(audio, uri="T1")
    tracks = list(diar.exclusive.itertracks(yield_label=True))
    pairs = [(i, a, b) for i, (a, b) in enumerate(zip(tracks, tracks[1:]))
             if a[2] != b[2] and a[0].duration >= 1.5 and b[0].duration >= 1.5]
    assert pairs, "the take has two speakers in turn"
    i, (s1, _, l1), (s2, _, l2) = pairs[0]
    change = s2.start
    merged = Annotation(uri="T1")
    for k, (seg, _, lab) in enumerate(tracks):
        if k == i:
            merged[Segment(s1.start, s2.end), k] = l1
        elif k != i + 1:
            merged[seg, k] = lab
    turns = diar.turns.copy()
    turns = turns.extrude(Segment(s2.start, s2.end))
    turns[Segment(s2.start, s2.end), "m"] = l1
    segs = [SpeechSegment(g.start, g.end, l1 if (g.start >= s2.start - 1e-6 and g.end <= s2.end + 1e-6) else g.label,
                            g.embedding) for g in diar.segments]
    broken = Diarization(turns.support(), merged.support(), diar.speakers, diar.duration, segments=segs)
    fixed = resegment(broken, audio, diarizer.embedder)
    found = [seg for seg, _, lab in fixed.exclusive.itertracks(yield_label=True)
             if lab == l2 and seg.start >= s1.start and seg.end <= s2.end + 0.01]
    assert found, "the second speaker's line is found again"
    assert abs(found[0].start - change) <= 0.5, (found[0], change)
    assert fixed.exclusive.label_duration(l2) >= 0.8 * diar.exclusive.label_duration(l2)
    outside = Segment(0, max(0.0, s1.start - 0.01))
    assert fixed.exclusive.crop(outside) == broken.exclusive.crop(outside)


def test_the_other_takes_voices_correct_a_take_that_mixes_two_people(diarizer):
    """AMI dev01 (30 s, the two men of dev00): its own diarization runs both men into each of its two
    local speakers. Read against the voices dev00 gave the registry, nearly all of its speech lands
    on the right man's voice; filed the old way (local speakers matched whole) it does not."""
    ami = SHARED / "eval" / "diarization" / "pyannote_debug_ami"
    need(ami / "dev01.wav")
    from pyannote.database.util import load_rttm

    from indexer.media import load_audio
    from indexer.speakers.identity import LocalIn, VoiceRegistry, identify
    from indexer.speakers.refine import split_by_known_voices

    refs = load_rttm(str(ami / "debug.development.rttm"))
    diars = {uri: diarizer(load_audio(str(ami / f"{uri}.wav")), uri=uri) for uri in ("dev00", "dev01")}
    assert diars["dev01"].windows is not None and len(diars["dev01"].windows.start) > 20

    def right_share(reread: bool) -> float:
        reg = VoiceRegistry(VoiceTables.memory())
        d0, m0 = identify(diars["dev00"], reg, "dev00")
        if reread:
            d1, m1 = identify(diars["dev01"], reg, "dev01")
        else:
            d1 = split_by_known_voices(diars["dev01"], reg.centroids(exclude_take="dev01")[1], reg.threshold)
            m1 = reg.register_take("dev01", [LocalIn(s.label, s.embedding, s.seconds) for s in d1.speakers])
        # each voice stands for the man it holds most of in dev00
        person = {}
        for lab in d0.exclusive.labels():
            cover = {p: d0.exclusive.label_timeline(lab).crop(refs["dev00"].label_timeline(p)).duration()
                     for p in refs["dev00"].labels()}
            person[m0[lab]] = max(cover, key=cover.get)
        ref = refs["dev01"]
        single = ref.get_timeline().support().extrude(ref.get_overlap())
        right = total = 0.0
        for seg_r, _, p in ref.crop(single).itertracks(yield_label=True):
            for seg_h, _, lab in d1.exclusive.crop(seg_r).itertracks(yield_label=True):
                secs = (seg_r & seg_h).duration
                total += secs
                right += secs if person.get(m1.get(lab)) == p else 0.0
        return right / total

    with_reread, without = right_share(True), right_share(False)
    print(f"dev01 on the right voice: {with_reread:.3f} re-read, {without:.3f} without")
    assert with_reread >= 0.90, (with_reread, without)      # measured 0.97
    assert without <= 0.70, (with_reread, without)          # measured 0.51


@pytest.mark.parametrize("mode", ["pooled", "pooled-all"])
def test_the_pooled_embeddings_option_diarizes_the_sample(diarizer, mode):
    """DAILIES_SPEAKER_EMBEDDINGS=pooled / pooled-all (CAM++ once per file, pooled per chunk's local
    speaker, and per segment and window): the faster option still finds sample.wav's two speakers."""
    need(SAMPLE / "sample.wav")
    from pyannote.core import Segment, Timeline
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate

    from indexer.media import load_audio
    from indexer.speakers.diarize import Diarizer

    fast = Diarizer(diarizer.models, threads=2, embeddings=mode)
    default = Diarizer(diarizer.models, threads=2)
    assert default.embeddings == "chunks" and default.segmentation_step == 0.1
    assert fast.segmentation_step == 0.25 and fast.key() != default.key()       # the resume cache tells them apart
    out = fast(load_audio(str(SAMPLE / "sample.wav")))
    ref = load_rttm(str(SAMPLE / "sample.rttm"))["sample"]
    assert DiarizationErrorRate(collar=0.0)(ref, out.turns, uem=Timeline([Segment(0, 30)])) < 0.08   # 5.5 % measured
    assert len(out.labels) == 2
    assert all(s.embedding is not None for s in out.speakers)
    assert len(out.windows.emb) > 20 and abs(float((out.windows.emb[0] ** 2).sum()) - 1) < 1e-4


def test_the_engine_clusters_with_the_int8_campp_and_the_voices_stay_float(diarizer):
    """On the CPU the engine's chunk embeddings (clustering only) run the int8 CAM++ (load.CAMPP_INT8); the
    refinement's segments and windows, which the voice registry reads, run the float one. The take records which,
    and the resume key does not change with it (every index made before keeps its stored diarizations)."""
    need(SAMPLE / "sample.wav")
    from pyannote.core import Segment, Timeline
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate

    from indexer.media import load_audio
    from indexer.speakers.diarize import Diarizer

    as_float = Diarizer(diarizer.models, threads=2, channels="each", int8=False)
    assert diarizer.describe()["compute_type"] == "int8 chunk embeddings"     # before loading: what will run
    assert as_float.describe()["compute_type"] == "float32"
    assert as_float.key() == diarizer.key()
    wav = load_audio(str(SAMPLE / "sample.wav"))
    ours, theirs = diarizer(wav), as_float(wav)
    assert diarizer.pipeline.embed.embedder.precision == "int8"             # what ran
    assert diarizer.embedder.precision == as_float.embedder.precision == "float32"
    assert as_float.pipeline.embed.embedder is as_float.embedder
    assert diarizer.describe()["compute_type"] == "int8 chunk embeddings"
    ref = load_rttm(str(SAMPLE / "sample.rttm"))["sample"]
    uem = Timeline([Segment(0, 30)])
    assert DiarizationErrorRate(collar=0.0)(ref, ours.turns, uem=uem) < 0.08              # 5.21 % both, measured
    # the same speakers, turn for turn, as the float CAM++ finds
    assert DiarizationErrorRate(collar=0.0)(theirs.turns, ours.turns, uem=uem) < 0.01
    assert len(ours.labels) == len(theirs.labels) == 2
