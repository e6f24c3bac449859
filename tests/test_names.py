"""Scene / take / camera from the file names cameras and DITs actually write."""

import pytest

from indexer.media import parse_clip_name


@pytest.mark.parametrize("name, scene, take, camera", [
    ("12A_T3_CamA", "12A", "3", "A"),
    ("12A-T3-CamB", "12A", "3", "B"),
    ("SC12A_TK3_A", "12A", "3", "A"),
    ("S012_T03", "012", "3", None),
    ("12A-3-B", "12A", "3", "B"),
    ("12A_3", "12A", "3", None),
    ("Scene12A_Take04_CamC", "12A", "4", "C"),
    ("12A_WT1", "12A", "WT1", None),
    ("12A_T4_CamC_MOS", "12A", "4", "C"),
])
def test_scene_take_camera(name, scene, take, camera):
    got = parse_clip_name(name)
    assert (got["scene"], got["take"], got["camera"]) == (scene, take, camera)


def test_camera_roll_names_give_camera_and_reel_only():
    got = parse_clip_name("A012C003_230101_R1AB")
    assert got == {"scene": None, "take": None, "camera": "A", "reel": "A012"}


def test_unrelated_names_give_nothing():
    assert parse_clip_name("interview_final_v2")["scene"] is None
