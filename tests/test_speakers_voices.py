"""Voice registry (indexer/speakers/identity.py): matching, stable ids, names, merges and splits.

Embeddings here are synthetic unit vectors (one direction per person plus noise): these tests are
about the registry's bookkeeping, not about a model.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from indexer.errors import UsageError
from indexer.store import VoiceTables
from indexer.speakers.identity import LocalIn, VoiceRegistry

RNG = np.random.default_rng(7)
PEOPLE = {name: v / np.linalg.norm(v) for name, v in
          ((n, RNG.normal(size=192)) for n in ("maya", "leo", "ann", "bob"))}


def voice(name: str, noise: float = 0.35) -> np.ndarray:
    v = PEOPLE[name] + noise * RNG.normal(size=192) / np.sqrt(192)
    return (v / np.linalg.norm(v)).astype(np.float32)


def take(**people: float) -> list[LocalIn]:
    """Local speakers SPEAKER_00.. for the given people with their seconds of speech."""
    return [LocalIn(f"SPEAKER_{k:02d}", voice(name), secs) for k, (name, secs) in enumerate(people.items())]


@pytest.fixture
def reg():
    return VoiceRegistry(VoiceTables.memory())


def test_new_voices_get_sequential_ids_main_speaker_first(reg):
    m = reg.register_take("t1", take(leo=3.0, maya=9.0))
    assert m == {"SPEAKER_01": "V001", "SPEAKER_00": "V002"}


def test_same_person_in_another_take_gets_the_same_voice(reg):
    m1 = reg.register_take("t1", take(maya=8.0, leo=5.0))
    m2 = reg.register_take("t2", take(leo=4.0, maya=6.0, ann=3.0))
    assert m2["SPEAKER_00"] == m1["SPEAKER_01"]          # leo
    assert m2["SPEAKER_01"] == m1["SPEAKER_00"]          # maya
    assert m2["SPEAKER_02"] not in m1.values()          # ann is new
    assert len(reg.summaries()) == 3


def test_two_locals_of_one_take_never_share_a_voice(reg):
    reg.register_take("t1", take(maya=8.0))
    m = reg.register_take("t2", [LocalIn("A", voice("maya"), 5.0), LocalIn("B", voice("maya"), 4.0)])
    assert m["A"] != m["B"]


def test_reindexing_keeps_ids_even_when_labels_swap(reg):
    m1 = reg.register_take("t1", take(maya=8.0, leo=5.0))
    reg.register_take("t2", take(ann=6.0))
    swapped = [LocalIn("SPEAKER_00", voice("leo"), 5.0), LocalIn("SPEAKER_01", voice("maya"), 8.0)]
    m2 = reg.register_take("t1", swapped)
    assert m2 == {"SPEAKER_00": m1["SPEAKER_01"], "SPEAKER_01": m1["SPEAKER_00"]}
    assert sorted(s.voice_id for s in reg.summaries()) == ["V001", "V002", "V003"]


def test_names_merges_and_splits_survive_reindexing(reg):
    m1 = reg.register_take("t1", take(maya=8.0, leo=5.0))
    # the second take's maya is too far from the first (say, a different microphone): a new voice
    far_vec = voice("maya", noise=3.0)
    far = [LocalIn("SPEAKER_00", far_vec, 6.0)]
    reg.threshold = 0.9
    m2 = reg.register_take("t2", far)
    reg.threshold = VoiceRegistry(VoiceTables.memory()).threshold
    maya, leo, maya2 = m1["SPEAKER_00"], m1["SPEAKER_01"], m2["SPEAKER_00"]
    assert maya2 not in (maya, leo)
    reg.name(maya, "MAYA")
    reg.name(leo, "Leo")
    assert reg.merge("MAYA", maya2) == maya
    assert reg.find("maya") == [maya]
    assert reg.find(maya2) == [maya]                      # the merged id still resolves
    assert reg.voice_of("t2", "SPEAKER_00").display == "MAYA"
    # split leo's local out of t1 into a new voice, then re-index everything
    new = reg.split("Leo", "t1")
    assert new not in (maya, leo, maya2)
    reg.register_take("t1", [LocalIn("SPEAKER_00", voice("maya"), 8.0), LocalIn("SPEAKER_01", voice("leo"), 5.0)])
    reg.register_take("t2", [LocalIn("SPEAKER_00", far_vec, 6.0)])     # same audio, same models
    assert reg.voice_of("t1", "SPEAKER_00").display == "MAYA"
    assert reg.voice_of("t2", "SPEAKER_00").display == "MAYA"
    assert reg.voice_of("t1", "SPEAKER_01").voice_id == new        # the split stays split
    assert {(t, lab) for t, lab in reg.locals_of(reg.find("MAYA"))} == {("t1", "SPEAKER_00"), ("t2", "SPEAKER_00")}


def test_a_voice_with_little_speech_and_no_match_gets_no_voice(reg):
    m = reg.register_take("t1", [LocalIn("SPEAKER_00", voice("maya"), 0.4), LocalIn("SPEAKER_01", None, 5.0)])
    assert m == {"SPEAKER_00": None, "SPEAKER_01": None}
    assert reg.summaries() == []


def test_ids_are_never_reused(reg):
    reg.register_take("t1", take(maya=8.0))
    reg.register_take("t2", take(leo=8.0))
    reg.merge("V001", "V002")
    reg.register_take("t3", take(ann=8.0))
    assert reg.find("V003") == ["V003"]


def test_errors_are_one_sentence_for_the_user(reg):
    reg.register_take("t1", take(maya=8.0, leo=5.0))
    with pytest.raises(UsageError, match="No voice called 'NOBODY'"):
        reg.name("NOBODY", "X")
    with pytest.raises(UsageError, match="already the same voice"):
        reg.merge("V001", "v1")
    with pytest.raises(UsageError, match="looks like a voice id"):
        reg.name("V001", "V7")
    with pytest.raises(UsageError, match="does not speak in take"):
        reg.split("V001", "t9")


def test_summaries_and_mapping(reg):
    reg.register_take("t1", take(maya=8.0, leo=5.0))
    reg.register_take("t2", take(maya=2.0))
    s = {x.voice_id: x for x in reg.summaries()}
    assert s["V001"].takes == 2 and s["V001"].seconds == pytest.approx(10.0)
    assert s["V001"].locals[0] == ("t1", "SPEAKER_00", 8.0)
    assert reg.mapping()[("t2", "SPEAKER_00")].voice_id == "V001"
    assert set(reg.mapping(["t2"])) == {("t2", "SPEAKER_00")}


def test_registry_lives_in_voice_tables_of_the_catalog(tmp_path):
    VoiceRegistry(VoiceTables.standalone(tmp_path / "catalog.sqlite")).register_take("t1", take(maya=8.0))
    with sqlite3.connect(tmp_path / "catalog.sqlite") as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names and all(n.startswith("voice_") for n in names)
    again = VoiceRegistry(VoiceTables.standalone(tmp_path / "catalog.sqlite"))
    assert again.voice_of("t1", "SPEAKER_00").voice_id == "V001"


def test_embeddings_of_different_models_never_mix(reg):
    reg.register_take("t1", take(maya=8.0))
    other = [LocalIn("SPEAKER_00", np.resize(voice("maya"), 256) / np.linalg.norm(np.resize(voice("maya"), 256)), 8.0)]
    m = reg.register_take("t2", other, model="pipeline:pyannote/speaker-diarization-3.1")
    assert m["SPEAKER_00"] != "V001"
    assert reg.register_take("t3", take(maya=5.0))["SPEAKER_00"] == "V001"


def test_a_local_read_as_a_known_voice_is_filed_there_unless_the_user_pinned_it(reg):
    m1 = reg.register_take("t1", take(maya=8.0, leo=5.0))
    maya_id, leo_id = m1["SPEAKER_00"], m1["SPEAKER_01"]
    mix = np.random.default_rng(11).normal(size=192)
    mix = (mix / np.linalg.norm(mix)).astype(np.float32)          # like no one's voice
    # a local that matches nobody as a whole, read as LEO by its windows (identity.reread): filed as LEO
    m = reg.register_take("t2", [LocalIn("SPEAKER_00", voice("maya"), 6.0), LocalIn("SPEAKER_03", mix, 3.0, voice=leo_id)])
    assert m["SPEAKER_00"] == maya_id and m["SPEAKER_03"] == leo_id
    # the user moves it to a voice of its own: re-filing the same take keeps the user's choice
    new = reg.split(leo_id, "t2", "SPEAKER_03")
    again = reg.register_take("t2", [LocalIn("SPEAKER_00", voice("maya"), 6.0),
                                     LocalIn("SPEAKER_03", mix, 3.0, voice=leo_id)])
    assert again["SPEAKER_03"] == new and new not in (leo_id, maya_id)
    assert again["SPEAKER_00"] == maya_id


def test_window_profiles_are_the_mean_of_a_voices_windows_in_the_other_takes(reg):
    """centroids(windows=True): each voice by the mean of its locals' speech windows (a long take
    counted as at most WINDOW_CAP windows), the take being read left out; a voice whose locals have
    no windows keeps its embedding centroid."""
    from indexer.speakers.identity import WINDOW_CAP

    maya_w, leo_w = voice("maya"), voice("leo")
    reg.register_take("t1", [LocalIn("SPEAKER_00", voice("maya"), 8.0, window_sum=3 * maya_w, window_count=3),
                             LocalIn("SPEAKER_01", voice("leo"), 5.0)])
    ids, plain = reg.centroids()
    ids_w, prof = reg.centroids(windows=True)
    assert ids == ids_w == ["V001", "V002"]
    assert np.allclose(prof[0], maya_w, atol=1e-5) and not np.allclose(prof[0], plain[0], atol=1e-3)
    assert np.allclose(prof[1], plain[1])                               # LEO: no windows, its centroid
    # a long take weighs no more than WINDOW_CAP windows against a short one's 3
    n = 10 * WINDOW_CAP
    reg.register_take("t2", [LocalIn("SPEAKER_00", voice("maya"), 600.0, window_sum=n * leo_w, window_count=n)])
    _, prof = reg.centroids(windows=True)
    mixed = 3 * maya_w + WINDOW_CAP * leo_w
    assert np.allclose(prof[0], mixed / np.linalg.norm(mixed), atol=1e-5)
    # the take being read is left out of its own references
    _, prof = reg.centroids(exclude_take="t2", windows=True)
    assert np.allclose(prof[0], maya_w, atol=1e-5)


def test_an_index_made_before_window_profiles_gains_the_columns(tmp_path):
    from indexer.store import Index

    with Index.open_writer(tmp_path / "idx") as idx:
        VoiceRegistry(idx.voice_tables()).register_take("t1", take(maya=8.0))
    with sqlite3.connect(tmp_path / "idx" / "catalog.sqlite") as db:      # the tables as an older dailies made them
        db.execute("ALTER TABLE voice_locals DROP COLUMN window_sum")
        db.execute("ALTER TABLE voice_locals DROP COLUMN window_count")
        db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    idx = Index.open_writer(tmp_path / "idx")                             # the schema migration adds them
    again = VoiceRegistry(idx.voice_tables())
    ids, prof = again.centroids(windows=True)                 # falls back to the embedding centroid
    assert ids == ["V001"] and np.allclose(prof, again.centroids()[1])
    assert again.register_take("t2", take(maya=6.0))["SPEAKER_00"] == "V001"


def test_the_kept_sums_always_equal_a_fresh_reading_of_the_catalog(reg):
    """centroids() keeps each voice's sums between calls (the end-of-run pass over T takes would
    otherwise read the whole registry T times); after filing, re-filing, merging, splitting and
    removing takes, and writes through another registry on the same catalog, it gives what a
    registry reading the catalog afresh gives."""
    rng = np.random.default_rng(3)
    names = list(PEOPLE)

    def local(label: str, who: str, secs: float, windows: bool = True) -> LocalIn:
        e = voice(who)
        n = int(rng.integers(1, 300)) if windows else 0
        return LocalIn(label, e, secs, window_sum=(n * voice(who)) if n else None, window_count=n)

    def check():
        fresh = VoiceRegistry(reg.tables)
        for take_id in (None, "t1", "t3", "t9"):
            for windows in (False, True):
                got, want = reg.centroids(exclude_take=take_id, windows=windows), \
                    fresh.centroids(exclude_take=take_id, windows=windows)
                assert got[0] == want[0] and np.allclose(got[1], want[1], atol=1e-5), (take_id, windows)

    for t in range(8):
        people = rng.choice(names, size=2, replace=False)
        reg.register_take(f"t{t}", [local(f"SPEAKER_{k:02d}", p, float(rng.uniform(2, 90)), windows=t % 3 != 0)
                                    for k, p in enumerate(people)])
        check()
    reg.register_take("t3", [local("SPEAKER_00", "ann", 12.0)])          # re-filed with other speakers
    check()
    a, b = (s.voice_id for s in reg.summaries()[:2])
    VoiceRegistry(reg.tables).merge(a, b)                                     # another registry, same catalog
    check()
    reg.split(a, "t1")
    check()
    reg.remove_take("t5")
    check()


def test_a_second_voice_cannot_take_a_name_already_given(reg):
    m = reg.register_take("t1", take(maya=8.0, leo=5.0))
    maya, leo = m["SPEAKER_00"], m["SPEAKER_01"]
    reg.name(maya, "SHEILA")
    with pytest.raises(UsageError, match=f"{maya} is already called sheila.*dailies speakers merge {maya} {leo}"):
        reg.name(leo, "sheila")
    assert reg.find("SHEILA") == [maya]
    reg.name(maya, "Sheila")                      # the same voice may be renamed (here: its spelling)
    reg.merge(maya, leo)
    reg.name(leo, "SHEILA")                       # once merged they are one voice: no conflict
    assert reg.find("SHEILA") == [maya]


def test_a_new_take_moves_only_the_voices_it_is_a_real_share_of(reg):
    """The end-of-run pass reads again only the takes whose voices the run's takes moved: a voice known
    from many takes is not moved by one more (the pass over one new take does not grow with the index),
    a voice known from two takes is."""
    def with_windows(**people: float) -> list[LocalIn]:
        out = []
        for k, (name, secs) in enumerate(people.items()):
            v = voice(name)
            out.append(LocalIn(f"SPEAKER_{k:02d}", v, secs, None, None, v * 10, 10))
        return out

    for i in range(30):
        reg.register_take(f"old{i:02d}", with_windows(maya=8.0))
    reg.register_take("leo1", with_windows(leo=6.0))
    reg.register_take("leo2", with_windows(leo=5.0))
    reg.register_take("new", with_windows(maya=7.0, leo=4.0))
    moved = reg.moved_by({"new"})
    assert moved == {"leo1", "leo2"}                       # leo's profile: a third is the new take's
    assert reg.moved_by({"new"}, share=0.02) >= {"old00", "old29", "leo1"}
    assert reg.moved_by(set()) == set()
    assert reg.filed_takes() >= {"new", "old00"}
