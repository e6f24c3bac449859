"""The picture step inside `dailies index` and the visual searches, end to end through the CLI.

CLIP here is a tiny open_clip model with RANDOM weights (tests/conftest.py): near-identical pixels give
near-identical vectors whatever the weights, so "a still of shot k finds shot k" tests the real path
(one decoding pass -> keyframes -> CLIP -> Chroma -> query) honestly; text queries mean nothing with it.
"""

from __future__ import annotations

import json

import pytest

from conftest import FIXTURES, make_random_clip_folder, run_cli

pytest.importorskip("open_clip")


@pytest.fixture(scope="module")
def visual_index(tmp_path_factory, tiny_clip):
    path = tmp_path_factory.mktemp("visual") / "index"
    proc = run_cli("index", str(FIXTURES / "shoot"), "--index", str(path), "--clip-checkpoint", str(tiny_clip),
                   "--no-speakers")
    assert proc.returncode == 0, proc.stderr
    return path


def _still(tmp_path, clip, frame):
    from PIL import Image

    from indexer.media import extract_frame

    p = tmp_path / f"still_{frame}.png"
    Image.fromarray(extract_frame(str(clip), frame)).save(p)
    return p


def test_a_still_finds_its_own_shot_first(visual_index, manifest):
    from fractions import Fraction

    from indexer.media import extract_frame
    from indexer.picture.embedder import embedder_for_index
    from indexer.picture.search import VisualQuery, search_visual
    from indexer.store import Index
    from indexer.timecode import Clock

    with Index.open(visual_index) as idx:
        emb = embedder_for_index(idx)
        for take in manifest["takes"]:
            clock = Clock.from_start_tc(take["start_tc"], Fraction(take["rate"]))
            for k, (first, last) in enumerate(take["shots"] or []):
                still = extract_frame(str(FIXTURES / take["file"]), (first + last) // 2)
                best = search_visual(idx, VisualQuery(image=still, limit=3), emb)[0]
                assert (best.name, best.shot, best.kind) == (take["name"], k, "visual")
                # the shot's TC in/out are the shot's own frames at the take's own timecode
                assert (best.tc_in, best.tc_out) == (clock.tc(first), clock.tc(last + 1))
                assert first <= best.frame <= last and best.frame_tc == clock.tc(best.frame)


def test_status_shots_and_thumbnails(visual_index, tmp_path):
    status = json.loads(run_cli("status", "--index", str(visual_index), "--json", check=True).stdout)
    assert status["frames"] > 0
    t1 = next(t for t in status["takes"] if t["name"] == "12A_T1_CamA")
    assert "RANDOM" in t1["models"]["clip"]["name"] and t1["n_frames"] >= 4
    shots = json.loads(run_cli("shots", "12A_T1_CamA", "--index", str(visual_index), "--json", check=True).stdout)
    assert all(s["tags"] for s in shots["shots"])          # zero-shot tags per shot
    still = _still(tmp_path, FIXTURES / "shoot" / "12A_T2_CamA.mov", 500)
    run_cli("search", "visual", "--image", str(still), "--index", str(visual_index), "--limit", "2",
            "--thumbs", str(tmp_path / "thumbs"), check=True)
    assert len(list((tmp_path / "thumbs").glob("*.jpg"))) == 2


def test_line_search_ranked_by_picture(visual_index, tmp_path):
    still = _still(tmp_path, FIXTURES / "shoot" / "12A_T3_CamB.mp4", 1100)     # T3, shot 3
    out = run_cli("search", "line", "We have to follow the data, not the calendar.", "--visual-image", str(still),
                  "--index", str(visual_index), "--json", check=True)
    hits = json.loads(out.stdout)
    assert hits[0]["name"] == "12A_T3_CamB" and "visual" in hits[0]["rankers"]
    assert {h["name"] for h in hits} == {"12A_T1_CamA", "12A_T2_CamA", "12A_T3_CamB", "12A_WT1"}


def test_picture_added_later_without_redoing_speech(tmp_path, tiny_clip):
    idx = tmp_path / "idx"
    mov = str(FIXTURES / "shoot" / "12A_T2_CamA.mov")
    run_cli("index", mov, "--index", str(idx), "--no-visual", "--no-speakers", check=True)
    with_lines = json.loads(run_cli("lines", "12A_T2_CamA", "--index", str(idx), "--json", check=True).stdout)
    empty = run_cli("search", "visual", "--image", str(_still(tmp_path, mov, 10)), "--index", str(idx))
    assert empty.returncode == 2 and "no picture vectors yet" in empty.stderr
    out = run_cli("index", mov, "--index", str(idx), "--visual-only", "--clip-checkpoint", str(tiny_clip), "--json",
                  check=True)
    assert json.loads(out.stdout)["files"][0]["status"] == "indexed"
    assert json.loads(run_cli("lines", "12A_T2_CamA", "--index", str(idx), "--json", check=True).stdout) == with_lines
    hit = json.loads(run_cli("search", "visual", "--image", str(_still(tmp_path, mov, 10)), "--index", str(idx),
                             "--json", check=True).stdout)[0]
    assert hit["shot"] == 0
    # vectors of another model are refused, with what to do
    other = make_random_clip_folder(tmp_path / "other-RANDOM-WEIGHTS", seed=1)
    mixed = run_cli("index", str(FIXTURES / "shoot" / "12A_T4_CamC_MOS.mov"), "--index", str(idx),
                    "--clip-checkpoint", str(other), "--no-speakers")
    assert mixed.returncode == 2 and "frames vectors were made with" in mixed.stderr
    assert "--visual-only --force" in mixed.stderr
    # ... and re-embedded on request
    redo = run_cli("index", mov, "--index", str(idx), "--visual-only", "--force", "--clip-checkpoint", str(other))
    assert redo.returncode == 0 and "Dropped every picture vector" in redo.stderr
    status = json.loads(run_cli("status", "--index", str(idx), "--json", check=True).stdout)
    assert "other-RANDOM-WEIGHTS" in status["takes"][0]["models"]["clip"]["name"]


def test_without_clip_weights_indexing_goes_on_and_says_so_once(tmp_path):
    env = {"DAILIES_MODELS": str(tmp_path / "no-models"), "HF_HOME": str(tmp_path / "no-hf"), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    proc = run_cli("index", str(FIXTURES / "shoot" / "12A_T4_CamC_MOS.mov"), str(FIXTURES / "shoot" / "12A_T2_CamA.mov"),
                   "--index", str(tmp_path / "idx"), env=env)
    assert proc.returncode == 0, proc.stderr
    said = [ln for ln in proc.stderr.splitlines() if "No picture" in ln]
    assert len(said) == 1 and "dailies models fetch clip" in said[0] and "--clip-checkpoint" in said[0]
    assert len(said[0]) <= 80                  # one line on an 80-column terminal (it took three)
    status = json.loads(run_cli("status", "--index", str(tmp_path / "idx"), "--json", env=env, check=True).stdout)
    assert all("skipped" in t["models"]["clip"] for t in status["takes"])
