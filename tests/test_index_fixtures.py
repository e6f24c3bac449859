"""The fixture shoot end to end: probe, shots, lines at source TC, line search, errors, incremental runs.

Ground truth is fixtures/manifest.json (written by scripts/make_fixtures.py when it made the media).
"""

from __future__ import annotations

import json
import math
import sys
from fractions import Fraction

import pytest

from conftest import FIXTURES, absent, frame_of, run_cli
from indexer.errors import IndexLockedError, MediaError
from indexer.media import probe
from indexer.search import LineQuery, search_lines
from indexer.store import SCHEMA_VERSION, Index
from indexer.timecode import Clock

TOLERANCE = 3   # frames
QUICK = ("--no-speakers", "--no-visual")    # CLI behaviour tests: the speaker/picture steps are tested elsewhere


def deliveries_of(manifest, line_n):
    """{take name: [deliveries of script line n]} (a false start is not a delivery of the line)."""
    out = {}
    for take in manifest["takes"]:
        for d in take["deliveries"]:
            if d["script_line"] == line_n and d["kind"] != "false_start":
                out.setdefault(take["name"], []).append(d)
    return out


def take(manifest, name):
    return next(t for t in manifest["takes"] if t["name"] == name)


# ---------------------------------------------------------------------------------------- probe

def test_probe_reads_rate_timecode_and_streams(manifest):
    for t in manifest["takes"]:
        info = probe(FIXTURES / t["file"])
        assert info.rate == Fraction(t["rate"]), t["name"]
        assert info.start_tc == t["start_tc"], t["name"]
        assert info.drop_frame == t["drop_frame"], t["name"]
        # a wild track keeps its WT prefix from the file name (its iXML says TAKE 1)
        expected_take = f"WT{t['take']}" if "_WT" in t["name"] else str(t["take"])
        assert (info.scene, info.take) == (t["scene"], expected_take), t["name"]
        if t["kind"] == "audio_only":
            assert not info.has_video and info.tc_source == "bext"
        else:
            assert info.has_video and info.frames == t["frames"] and info.width == t["width"]
            assert info.camera == t["camera"]
        if t["audio"] is None:
            assert not info.has_audio
        else:
            assert sum(a.channels for a in info.audio) == t["audio"]["channels"]


@pytest.mark.parametrize("name, needle", [
    ("empty.mov", "empty (0 bytes)"),
    ("truncated.mov", "truncated"),
    ("not_media.mp4", "not a media file"),
])
def test_broken_files_say_what_is_wrong(name, needle):
    for other in ("truncated.mov", "not_media.mp4"):        # FFmpeg's repeated messages must not go missing
        with pytest.raises(MediaError):
            probe(FIXTURES / "broken" / other)
    with pytest.raises(MediaError) as err:
        probe(FIXTURES / "broken" / name)
    message = str(err.value)
    assert message.startswith(str(FIXTURES / "broken" / name)) and needle in message
    assert "\n" not in message


# ---------------------------------------------------------------------------------------- index

def test_batch_goes_on_past_broken_files(shoot_summary, manifest):
    status = {r["path"].split("/")[-1]: r for r in shoot_summary}
    for t in manifest["takes"]:
        assert status[t["file"].split("/")[-1]]["status"] == "indexed"
    for b in manifest["broken"]:
        r = status[b["file"].split("/")[-1]]
        assert r["status"] == "failed" and b["file"].split("/")[-1] in r["message"]


def test_exact_cut_frames(shoot_index, manifest):
    with Index.open(shoot_index) as idx:
        for t in manifest["takes"]:
            if t["cut_frames"] is None:
                continue
            row = idx.find_takes(t["name"])[0]
            shots = idx.shots(row["take_id"])
            assert [s.first_frame for s in shots[1:]] == t["cut_frames"], t["name"]
            assert [[s.first_frame, s.last_frame] for s in shots] == t["shots"], t["name"]


def test_lines_at_source_timecode_within_three_frames(shoot_index, manifest):
    """Every delivery in the manifest is covered by indexed lines whose TC in/out are within 3 frames,
    at 23.976 NDF, 29.97 DF across a dropped minute, 25 fps and on the BWF wild track."""
    with Index.open(shoot_index) as idx:
        for t in manifest["takes"]:
            if not t["deliveries"]:
                continue
            row = idx.find_takes(t["name"])[0]
            lines = idx.lines_of_take(row["take_id"])
            rate = Fraction(t["rate"])
            clock = Clock.from_start_tc(t["start_tc"], rate)
            for d in t["deliveries"]:
                covering = [ln for ln in lines if ln.end > d["start"] + 0.1 and ln.start < d["end"] - 0.1]
                assert covering, (t["name"], d)
                start, end = covering[0].start, covering[-1].end
                assert abs(frame_of(start, rate) - frame_of(d["start"], rate)) <= TOLERANCE, (t["name"], d, start)
                assert abs(math.ceil(end * rate) - math.ceil(d["end"] * rate)) <= TOLERANCE, (t["name"], d, end)
                # the TC string is the file's own: start TC + frame, drop-frame where the file says so
                assert clock.tc_in(start)[:-2] in (clock.tc(frame_of(d["start"], rate) + k)[:-2] for k in range(-3, 4))
                # each line knows the shots it spans
                assert set(d["shots"] or []) <= {s for ln in covering for s in ln.shots}, (t["name"], d)


def test_every_take_of_every_line_is_found_with_the_scripts_wording(shoot_index, manifest):
    with Index.open(shoot_index) as idx:
        for sl in manifest["script_lines"]:
            hits = search_lines(idx, LineQuery(text=sl["text"]))
            expected = deliveries_of(manifest, sl["n"])
            got: dict[str, list] = {}
            for h in hits:
                got.setdefault(h.name, []).append(h)
            # every delivering take found, as many times as it delivered the line (a restart counts twice);
            # no take that skipped the line, and never the picture-only take
            assert {k: len(v) for k, v in got.items()} == {k: len(v) for k, v in expected.items()}, sl["text"]
            for name, ds in expected.items():
                rate = Fraction(take(manifest, name)["rate"])
                for d, h in zip(sorted(ds, key=lambda d: d["start"]), sorted(got[name], key=lambda h: h.start)):
                    assert abs(frame_of(h.start, rate) - frame_of(d["start"], rate)) <= TOLERANCE, (sl["text"], name)
                    assert abs(math.ceil(h.end * rate) - math.ceil(d["end"] * rate)) <= TOLERANCE, (sl["text"], name)


def test_paraphrase_adlib_and_skip(shoot_index, manifest):
    with Index.open(shoot_index) as idx:
        para = search_lines(idx, LineQuery(text="Then she can have it when the sky cooperates.", take="12A_T2_CamA"))
        assert len(para) == 1 and "whenever" in para[0].text and "decides" in para[0].diff
        adlib = search_lines(idx, LineQuery(text="You're still here? It's almost three in the morning.",
                                            take="12A_T2_CamA"))
        assert len(adlib) == 1 and "{+seriously,+}" in adlib[0].diff.lower()
        skipped = search_lines(idx, LineQuery(text="I brought you coffee. Black, no sugar.", scene="12A"))
        assert "12A_T2_CamA" not in {h.name for h in skipped}


def test_hits_are_grouped_by_take_best_first(shoot_index):
    with Index.open(shoot_index) as idx:
        hits = search_lines(idx, LineQuery(text="You're still here? It's almost three in the morning."))
    names = [h.name for h in hits]
    # a take's hits are together (T3 has the line twice: first pass and restart)
    assert names.count("12A_T3_CamB") == 2
    first = names.index("12A_T3_CamB")
    assert names[first + 1] == "12A_T3_CamB"
    best = {}
    for h in hits:
        best.setdefault(h.take_id, h.score)
    assert list(best.values()) == sorted(best.values(), reverse=True)


def test_filters(shoot_index):
    with Index.open(shoot_index) as idx:
        line = "We have to follow the data, not the calendar."
        assert {h.name for h in search_lines(idx, LineQuery(text=line, take="3"))} == {"12A_T3_CamB"}
        assert {h.name for h in search_lines(idx, LineQuery(text=line, scene="99"))} == set()
        assert len(search_lines(idx, LineQuery(text=line, limit=2))) == 2


def test_search_line_json_fields(shoot_index):
    proc = run_cli("search", "line", "The comet won't wait for office hours, Leo.", "--index", str(shoot_index),
                   "--json", check=True)
    hits = json.loads(proc.stdout)
    assert len(hits) == 4
    for h in hits:
        for key in ("clip", "take_id", "scene", "take", "start", "end", "tc_in", "tc_out", "rate", "text",
                    "score", "shots"):
            assert key in h
    t2 = next(h for h in hits if h["clip"].endswith("12A_T2_CamA.mov"))
    assert t2["rate"] == "30000/1001" and ";" in t2["tc_in"] and t2["scene"] == "12A" and t2["take"] == "2"
    assert t2["shots"] == [0, 1]          # this delivery spans the cut at frame 269


def test_search_does_not_load_whisper(shoot_index):
    code = ("import sys; from indexer.store import Index; from indexer.search import search_lines, LineQuery;"
            f"idx = Index.open({str(shoot_index)!r}); search_lines(idx, LineQuery(text='follow the data'));"
            "print('faster_whisper' in sys.modules, 'ctranslate2' in sys.modules, 'torch' in sys.modules)")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]


# ---------------------------------------------------------------------------------------- CLI, errors

def test_index_cli_reports_each_bad_file_on_one_line_and_exits_1(tmp_path):
    proc = run_cli("index", str(FIXTURES / "broken"), str(FIXTURES / "shoot" / "12A_T4_CamC_MOS.mov"),
                   "--index", str(tmp_path / "idx"), *QUICK)
    assert proc.returncode == 1
    bad = [ln for ln in proc.stderr.splitlines() if ln.startswith("✗")]
    assert len(bad) == 3 and all("fixtures/broken/" in ln for ln in bad)
    reasons = {ln.split(":")[0].rsplit("/", 1)[-1]: ln for ln in bad}
    assert "empty (0 bytes)" in reasons["empty.mov"]
    assert "not a media file" in reasons["not_media.mp4"]        # a text file, though FFmpeg tries it as MP4
    assert "truncated" in reasons["truncated.mov"]
    assert "Traceback" not in proc.stderr
    status = json.loads(run_cli("status", "--index", str(tmp_path / "idx"), "--json", check=True).stdout)
    assert status["indexed"] == 1 and len(status["failed"]) == 3


def test_clear_errors_without_traceback(tmp_path):
    missing = run_cli("search", "line", "hello", "--index", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "No dailies index at" in missing.stderr and "Traceback" not in missing.stderr
    model = run_cli("index", str(FIXTURES / "shoot"), "--index", str(tmp_path / "i2"), "--whisper-model", "huge-v9")
    assert model.returncode == 2 and "Unknown Whisper model 'huge-v9'" in model.stderr
    assert len(model.stderr.strip().splitlines()) == 1
    cache = run_cli("index", str(FIXTURES / "shoot"), "--index", str(tmp_path / "i3"), "--whisper-model", "small.en",
                    env={"DAILIES_MODELS": str(tmp_path / "empty-cache"), "PATH": "/usr/bin:/bin"})
    assert cache.returncode == 2 and "dailies models fetch whisper:small.en" in cache.stderr


def test_one_writer_at_a_time(tmp_path):
    with Index.open_writer(tmp_path / "idx"):
        with pytest.raises(IndexLockedError) as err:
            Index.open_writer(tmp_path / "idx")
        assert "being written by another dailies process" in str(err.value)
        with Index.open(tmp_path / "idx"):      # readers are welcome
            pass
        proc = run_cli("index", str(FIXTURES / "shoot" / "12A_WT1.wav"), "--index", str(tmp_path / "idx"), *QUICK)
        assert proc.returncode == 2 and "being written by another dailies process" in proc.stderr


def test_reindexing_skips_unchanged_and_force_upserts(tmp_path):
    idx_path = tmp_path / "idx"
    wav = str(FIXTURES / "shoot" / "12A_WT1.wav")
    run_cli("index", wav, "--index", str(idx_path), *QUICK, check=True)
    again = run_cli("index", wav, "--index", str(idx_path), "--json", *QUICK, check=True)
    assert [f["status"] for f in json.loads(again.stdout)["files"]] == ["unchanged"]
    with Index.open(idx_path) as idx:
        before = [(ln.line_id, ln.text) for r in idx.takes() for ln in idx.lines_of_take(r["take_id"])]
    forced = run_cli("index", wav, "--index", str(idx_path), "--force", "--json", *QUICK, check=True)
    assert [f["status"] for f in json.loads(forced.stdout)["files"]] == ["indexed"]
    with Index.open(idx_path) as idx:
        after = [(ln.line_id, ln.text) for r in idx.takes() for ln in idx.lines_of_take(r["take_id"])]
        assert after == before                                   # same deterministic ids, no duplicates
        assert idx.vectors.count("lines") == len(after)     # Chroma agrees with the catalog


def test_a_copied_or_moved_file_is_recognised(tmp_path):
    import shutil

    src = tmp_path / "card" / "12A_WT1.wav"
    src.parent.mkdir()
    shutil.copy(FIXTURES / "shoot" / "12A_WT1.wav", src)
    idx_path = str(tmp_path / "idx")
    run_cli("index", str(src), "--index", idx_path, *QUICK, check=True)
    copy = tmp_path / "backup" / "12A_WT1.wav"
    copy.parent.mkdir()
    shutil.copy(src, copy)
    res = json.loads(run_cli("index", str(copy), "--index", idx_path, "--json", *QUICK, check=True).stdout)
    assert res["files"][0]["status"] == "duplicate"
    src.unlink()
    moved = tmp_path / "moved.wav"
    shutil.move(copy, moved)
    res = json.loads(run_cli("index", str(moved), "--index", idx_path, "--json", *QUICK, check=True).stdout)
    assert res["files"][0]["status"] == "moved"
    hits = json.loads(run_cli("search", "line", "follow the data", "--index", idx_path, "--json", check=True).stdout)
    assert hits and hits[0]["clip"] == str(moved)


def test_status_records_models(shoot_index):
    status = json.loads(run_cli("status", "--index", str(shoot_index), "--json", check=True).stdout)
    t1 = next(t for t in status["takes"] if t["name"] == "12A_T1_CamA")
    assert t1["status"] == "indexed"
    assert t1["models"]["whisper"]["name"] == "tiny.en" and len(t1["models"]["whisper"]["sha256"]) == 64
    assert t1["models"]["text_embedding"]["dim"] == 256
    assert t1["models"]["shots"]["detector"] == "adaptive"
    assert status["schema_version"] == str(SCHEMA_VERSION)


def test_takes_record_the_profile_of_their_steps(shoot_index):
    """Each take records its steps' seconds (the bench's per-step profile): the speaker step's parts
    add up to no more than the step. The models load once, beside the first take (on the sound thread, before
    it reaches that take): the run's own costs, not a take's."""
    _need_speakers(shoot_index)
    with Index.open(shoot_index) as idx:
        timings = [json.loads(r["models"])["timings"] for r in idx.takes(status="indexed")]
    said = [t for t in timings if "speakers" in t]
    assert said
    for t in said:
        parts = {k: v for k, v in t.items() if k.startswith("speakers: ") and not k.endswith("model load")}
        assert {"speakers: segmentation", "speakers: embeddings", "speakers: clustering", "speakers: refine",
                "speakers: resegment", "speakers: windows"} <= set(parts), t
        assert all(v >= 0 for v in t.values())
        assert sum(parts.values()) <= t["speakers"] + 0.01, t
    assert not any(k.endswith("model load") for t in timings for k in t)
    run = json.loads((shoot_index.parent / "run_timings.json").read_text())
    assert run["speech: model load"] > 0 and run["speakers: model load"] > 0


# ---------------------------------------------------------------------------------------- speakers

def _voice_of_deliveries(shoot_index, manifest):
    """{character: set of voice ids} over every delivery's covering lines, every take."""
    from indexer.search import voice_names

    found: dict[str, set] = {}
    with Index.open(shoot_index) as idx:
        for t in manifest["takes"]:
            if not t["deliveries"]:
                continue
            row = idx.find_takes(t["name"])[0]
            lines = idx.lines_of_take(row["take_id"])
            voices = voice_names(idx, [row["take_id"]])
            for d in t["deliveries"]:
                covering = [ln for ln in lines if ln.end > d["start"] + 0.1 and ln.start < d["end"] - 0.1]
                assert covering, (t["name"], d)
                ids = {voices[(ln.take_id, ln.speaker)].voice_id for ln in covering
                       if (ln.take_id, ln.speaker) in voices}
                assert len(ids) == 1, (t["name"], d["text"], ids)     # one delivery, one voice
                found.setdefault(d["character"], set()).update(ids)
    return found


def _need_speakers(shoot_index):
    with Index.open(shoot_index) as idx:
        row = idx.find_takes("12A_T1_CamA")[0]
        if "skipped" in json.loads(row["models"]).get("diarization", {"skipped": "absent"}):
            absent("speaker models absent (`dailies models fetch`)")


def test_every_lines_speaker_is_right_in_every_take(shoot_index, manifest):
    _need_speakers(shoot_index)
    found = _voice_of_deliveries(shoot_index, manifest)
    assert set(found) == {"MAYA", "LEO"}
    assert len(found["MAYA"]) == 1 and len(found["LEO"]) == 1 and found["MAYA"] != found["LEO"]


def test_shots_by_speaker_are_exactly_where_the_character_speaks(shoot_index, manifest, tmp_path):
    _need_speakers(shoot_index)
    found = _voice_of_deliveries(shoot_index, manifest)
    import shutil

    idx_copy = tmp_path / "idx"
    shutil.copytree(shoot_index, idx_copy)
    maya = next(iter(found["MAYA"]))
    run_cli("speakers", "name", maya, "MAYA", "--index", str(idx_copy), check=True)
    hits = json.loads(run_cli("search", "shots", "--speaker", "MAYA", "--index", str(idx_copy), "--json",
                              check=True).stdout)
    got = {(h["clip"].rsplit("/", 1)[-1].rsplit(".", 1)[0], h["shot"]) for h in hits}
    expected = {(t["name"], s) for t in manifest["takes"] for d in t["deliveries"]
                if d["character"] == "MAYA" and d["shots"] for s in d["shots"]}
    assert got == expected
    assert all(h["speaker"] == "MAYA" and 0 < h["score"] <= 1 for h in hits)
    # every line she says, and a line search restricted to her
    lines = json.loads(run_cli("search", "speaker", "MAYA", "--index", str(idx_copy), "--json", check=True).stdout)
    assert len(lines) >= sum(1 for t in manifest["takes"] for d in t["deliveries"] if d["character"] == "MAYA")
    leo_line = "We have to follow the data, not the calendar."
    assert json.loads(run_cli("search", "line", leo_line, "--speaker", "MAYA", "--index", str(idx_copy), "--json",
                              check=True).stdout) == []
    hit = json.loads(run_cli("search", "line", "Then she can have it when the sky cooperates.", "--speaker", "MAYA",
                             "--index", str(idx_copy), "--json", check=True).stdout)[0]
    assert hit["speaker"] == "MAYA" and hit["voice_id"] == maya and hit["speaker_confidence"] > 0.5


def test_voices_named_from_the_script(shoot_index, manifest, tmp_path):
    _need_speakers(shoot_index)
    import shutil

    found = _voice_of_deliveries(shoot_index, manifest)
    idx_copy = tmp_path / "idx"
    shutil.copytree(shoot_index, idx_copy)
    run_cli("script", "import", str(FIXTURES / "scene.fountain"), "--index", str(idx_copy), check=True)
    shown = json.loads(run_cli("speakers", "name", "--from-script", "--index", str(idx_copy), "--json",
                               check=True).stdout)
    assert shown["applied"] is False
    assert {p["voice_id"]: p["character"] for p in shown["proposals"]} == {
        next(iter(found["MAYA"])): "MAYA", next(iter(found["LEO"])): "LEO"}
    run_cli("speakers", "name", "--from-script", "--yes", "--index", str(idx_copy), check=True)
    hits = json.loads(run_cli("search", "speaker", "LEO", "--index", str(idx_copy), "--json", check=True).stdout)
    assert hits and all(h["voice_id"] in found["LEO"] for h in hits)


def test_asking_for_a_gpu_that_is_not_there_is_one_sentence(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = run_cli("index", str(FIXTURES / "shoot" / "12A_T1_CamA.mov"), "--index", str(tmp_path / "idx"),
                  "--device", "cuda", "--no-visual")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--device cuda" in out.stderr and "no CUDA device" in out.stderr and "--device cpu" in out.stderr
