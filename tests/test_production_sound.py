"""Production sound (issue 19): channel roles from iXML track names or the signals, isos transcribed where
their owner speaks (overlapped lines recovered), bleed removed, voices named from track names.

The fixture is fixtures/sound/12A_T5_POLY.wav (scripts/make_fixtures.py --only sound): MIX, BOOM, a lav
for LEO and one for MAYA, the two talking over each other on script lines 3+4 and 5+6; its manifest
(fixtures/sound/manifest.json) holds the truth. Tests that index run faster-whisper tiny.en and the
speaker models for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import EVAL, FIXTURES, absent, need

SOUND = FIXTURES / "sound"
POLY = SOUND / "12A_T5_POLY.wav"
STEREO = EVAL / "speech" / "fw_stereo_diarization.wav"
# fw_stereo_diarization.wav, one speaker per channel (../shared/eval/speech/SOURCE_faster-whisper.md)
STEREO_LINES = ["He began a confused complaint against the wizard who had vanished behind the curtain on the left.",
                "The horizon seems extremely distant."]


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((SOUND / "manifest.json").read_text())["takes"][0]


def _decoded(path: Path):
    from indexer.media import decode, probe

    info = probe(path)
    return info, decode(info, audio=True, keep_channels=True)


def _roles(path: Path, spec="auto", names=True) -> list[str]:
    from indexer.tracks import channel_roles

    info, dec = _decoded(path)
    count = dec.channels.shape[0] if dec.channels is not None else 1
    return [r.label() for r in channel_roles(spec, info.track_names if names else None, dec.channels, count,
                                             dec.channel_rms_db)]


# ------------------------------------------------------------------------------ roles (no models)

def test_the_bwf_states_its_tracks_and_start_timecode(truth):
    from indexer.media import probe

    info = probe(POLY)
    assert info.track_names == [c["name"] for c in truth["channels"]]
    assert info.start_tc == truth["start_tc"] and info.tc_source == "bext"
    assert sum(a.channels for a in info.audio) == truth["audio"]["channels"]


@pytest.mark.parametrize("name, role, owner", [
    ("MIX", "mix", None), ("Mix L", "mix", None), ("BOOM", "boom", None), ("BM1", "boom", None),
    ("LAV 1", "iso", None), ("RM2", "iso", None), ("LEO", "iso", "LEO"), ("Maya", "iso", "MAYA"),
    ("LAV 2 MAYA", "iso", "MAYA"), ("TRK 3", None, None), ("", None, None)])
def test_a_track_name_states_its_role_and_owner(name, role, owner):
    from indexer.tracks import role_from_name

    assert role_from_name(name) == (role, owner)


def test_roles_come_from_the_track_list(truth):
    from indexer.tracks import channel_roles

    info, dec = _decoded(POLY)
    roles = channel_roles("auto", info.track_names, dec.channels, 4, dec.channel_rms_db)
    assert [{k: v for k, v in r.to_json().items() if k != "source"} for r in roles] == truth["channels"]
    assert {r.source for r in roles} == {"ixml"}


def test_roles_come_from_the_signals_without_track_names():
    # a mix and a boom hear every voice; a lav drops to bleed while the other actor speaks
    assert _roles(POLY, names=False) == ["1 mix", "2 mix", "3 iso", "4 iso"]


def test_a_mono_take_a_boom_with_one_lav_and_mix_spec_stay_mix():
    assert _roles(FIXTURES / "shoot" / "12A_WT1.wav") == ["1 boom"]          # mono, iXML track BOOM
    assert _roles(FIXTURES / "shoot" / "12A_T1_CamA.mov") == ["1 mix", "2 mix"]   # boom + one lav: as before
    assert _roles(POLY, spec="mix") == ["1 mix", "2 boom", "3 mix LEO", "4 mix MAYA"]   # names kept, no isos
    assert _roles(POLY, spec=[2]) == ["1 mix", "2 boom", "3 iso LEO", "4 mix MAYA"]


def test_one_voice_per_channel_is_two_isos():
    assert _roles(need(STEREO)) == ["1 iso", "2 iso"]


def test_the_default_channels_setting_is_auto():
    from indexer.config import IndexSettings
    from indexer.errors import UsageError
    from indexer.speakers.channels import parse_channels

    assert IndexSettings().channels == "auto" and parse_channels(None) == "auto"
    with pytest.raises(UsageError, match="auto, mix, each"):
        parse_channels("lavs")


def test_a_bad_channels_flag_stops_the_run_in_one_sentence(tmp_path):
    from conftest import run_cli

    out = run_cli("index", str(POLY), "--index", str(tmp_path / "index"), "--no-speakers", "--no-visual",
                  "--channels", "lavs")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == \
        "dailies: error: --channels 'lavs': use auto, mix, each, or channel numbers like 1,2."


def _frames(a: float, b: float) -> slice:
    return slice(int(a / 0.01), int(b / 0.01))


def test_each_iso_is_open_where_its_owner_speaks_and_closed_on_bleed(truth):
    from indexer.tracks import iso_activity

    _, dec = _decoded(POLY)
    active = iso_activity(dec.channels, [2, 3])
    for d in truth["deliveries"]:
        own = active[d["channel"] - 1]
        assert own[_frames(d["start"], d["end"])].mean() > 0.95, d["text"]
    # where one actor speaks alone, the other's lav (bleed only) is not transcribed
    for d in truth["deliveries"]:
        others = [o for o in truth["deliveries"] if o["character"] != d["character"]]
        alone = np.ones(len(active[2]), bool)
        alone[: int(d["start"] / 0.01) + 30] = False       # past the other's hang-over
        alone[int(d["end"] / 0.01) - 30:] = False
        for o in others:
            alone[_frames(o["start"] - 0.4, o["end"] + 0.4)] = False
        other = [c for c in (2, 3) if c != d["channel"] - 1][0]
        if alone.sum() > 20:
            assert active[other][alone].mean() < 0.1, d["text"]


def test_bleed_keeps_the_copy_on_the_owners_channel(truth):
    from indexer.records import Word
    from indexer.speakers.channels import channel_levels
    from indexer.tracks import drop_bleed

    _, dec = _decoded(POLY)
    levels = channel_levels(dec.channels)
    leo = next(d for d in truth["deliveries"] if d["character"] == "LEO")
    maya = next(d for d in truth["deliveries"] if d["character"] == "MAYA")
    t = leo["start"] + 0.2                   # LEO alone: his word, heard on both lavs and on the mix
    copies = [Word(t, t + 0.3, "coffee,", 0.9, 3), Word(t + 0.01, t + 0.31, "Coffee", 0.8, 2),
              Word(t, t + 0.3, "coffee", 0.9, None)]
    assert [(w.text, w.channel) for w in drop_bleed(copies, levels)] == [("Coffee", 2)]
    u = maya["end"] - 0.4                    # MAYA alone at the end of her first line
    kept = drop_bleed([Word(u, u + 0.3, "charts", 0.9, 2), Word(u, u + 0.3, "charts.", 0.9, 3),
                       Word(u, u + 0.3, "chart", 0.9, None)], levels)
    assert [(w.text, w.channel) for w in kept] == [("charts.", 3)]
    # two different words at once (overlapped speech) are both kept
    both = [Word(t, t + 0.3, "brought", 0.9, 2), Word(t, t + 0.3, "remembered", 0.9, 3)]
    assert drop_bleed(both, levels) == both


# ------------------------------------------------------------------------------ indexing (models)

def _index(path: Path, tmp: Path, *paths, **settings) -> Path:
    from indexer.config import IndexSettings
    from indexer.pipeline import Indexer
    from indexer.store import Index

    with Index.open_writer(path) as idx:
        summary = Indexer(idx, IndexSettings(visual=False, **settings)).run(list(paths))
    assert [r.status for r in summary.results] == ["indexed"] * len(paths), [r.message for r in summary.results]
    return path


def _speaker_models():
    from conftest import _speaker_models_present

    if not _speaker_models_present():
        absent("the speaker models are not fetched (`dailies models fetch`)")


@pytest.fixture(scope="module")
def poly_index(tmp_path_factory) -> Path:
    _speaker_models()
    return _index(tmp_path_factory.mktemp("poly") / "index", None, POLY)


@pytest.mark.slow
def test_every_overlapped_line_is_found_once_on_its_owners_channel_and_voice(poly_index, truth):
    from indexer import views
    from indexer.script.naming import propose_from_tracks
    from indexer.store import Index

    with Index.open(poly_index) as idx:
        take = views.status(idx)["takes"][0]
        assert [c["role"] for c in take["channels"]] == ["mix", "boom", "iso", "iso"]
        lines = views.take_lines(idx, take["take_id"])["lines"]
        names = {p.character: p.voice_id for p in propose_from_tracks(idx)}
        assert set(names) == {"LEO", "MAYA"} and names["LEO"] != names["MAYA"]
        for d in truth["deliveries"]:
            hits = [h for h in views.line_hits(idx, d["text"]) if h.take_id == take["take_id"]]
            assert hits, d["text"]
            h = hits[0]
            assert h.start < d["end"] and h.end > d["start"], (d["text"], h.text)
            assert h.channel == d["channel"] and h.voice_id == names[d["character"]], (d["text"], h)
            # no copy of the line from the other actor's lav (bleed)
            heard = [ln for ln in lines if ln["start"] < d["end"] and ln["end"] > d["start"]
                     and ln["channel"] != d["channel"]]
            assert all(ln["channel"] is not None and ln["voice_id"] != names[d["character"]] for ln in heard)
            own = [ln for ln in lines if ln["channel"] == d["channel"] and ln["start"] < d["end"]
                   and ln["end"] > d["start"]]
            assert len(own) == 1, own
        assert len(lines) == len(truth["deliveries"])


@pytest.mark.slow
def test_the_script_match_uses_the_recovered_lines(poly_index, tmp_path, truth):
    import shutil

    from indexer import views
    from indexer.script import catalog
    from indexer.store import Index

    path = tmp_path / "index"
    shutil.copytree(poly_index, path)
    with Index.open_writer(path) as idx:
        catalog.import_script(idx, FIXTURES / "scene.fountain")
    with Index.open(path) as idx:
        got = views.take_script(idx, "12A_T5_POLY")
    status = {e["line_id"]: e["status"] for e in got["lines"]}
    for d in truth["deliveries"]:
        assert status[f"12A/{d['script_line']}"] not in ("missing", None), (d, status)
    # Exports use the recovered lines: the string-out of an overlapped script line cuts the iso take at its
    # delivery (the mix alone garbled it).
    from fractions import Fraction

    import opentimelineio as otio

    from conftest import run_cli
    from indexer.timecode import tc_to_frames

    rate, start_tc = Fraction(truth["rate"]), truth["start_tc"]
    for d in truth["deliveries"]:
        out = tmp_path / f"line{d['script_line']}.otio"
        run_cli("export", "stringout", "--script-line", f"12A/{d['script_line']}", "-o", str(out), "--force",
                "--index", str(path), check=True)
        clips = [c for c in otio.adapters.read_from_file(str(out)).find_clips() if c.name == "12A_T5_POLY"]
        assert len(clips) == 1, d
        said = tc_to_frames(start_tc, rate) + d["start"] * float(rate)
        r = clips[0].source_range
        assert r.start_time.value <= said < r.end_time_exclusive().value, (d, r)


@pytest.mark.slow
def test_both_channels_sentences_are_found(tmp_path):
    _speaker_models()
    from indexer import views
    from indexer.store import Index

    path = _index(tmp_path / "index", None, need(STEREO))
    with Index.open(path) as idx:
        chans = set()
        for text in STEREO_LINES:
            hits = views.line_hits(idx, text)
            assert hits and hits[0].match >= 0.6, (text, [h.text for h in hits])
            chans.add(hits[0].channel)
        assert chans == {1, 2}


@pytest.mark.slow
def test_mono_and_stereo_mix_takes_index_as_before(tmp_path):
    """auto (the default) against the old behaviour (--channels mix): the same lines, times and speakers."""
    _speaker_models()
    from indexer import views
    from indexer.store import Index

    takes = [FIXTURES / "shoot" / "12A_T1_CamA.mov", FIXTURES / "shoot" / "12A_WT1.wav"]
    out = {}
    for spec in ("mix", "auto"):
        path = _index(tmp_path / spec, None, *takes, channels=spec)
        with Index.open(path) as idx:
            out[spec] = {t.stem: [(ln["start"], ln["end"], ln["text"], ln["speaker"], ln["channel"])
                                  for ln in views.take_lines(idx, t.stem)["lines"]] for t in takes}
            roles = {t.stem: [c["role"] for c in views.take_lines(idx, t.stem)["channels"]] for t in takes}
            assert "iso" not in sum(roles.values(), [])
    assert out["auto"] == out["mix"] and all(out["mix"].values())


@pytest.mark.slow
def test_the_review_room_shows_each_channel_and_the_iso_a_line_came_from(poly_index, truth, tmp_path):
    """The take page's API carries the channel roles, and the page names the iso each line was heard on."""
    from starlette.testclient import TestClient

    from indexer.server import create_app
    from test_server_browser import TOKEN, launch, serve

    with TestClient(create_app(poly_index, proxies=False)) as c:
        take = c.get("/api/takes").json()[0]
        detail = c.get(f"/api/takes/{take['take_id']}").json()
    assert [(ch["channel"], ch["role"], ch["owner"]) for ch in detail["channels"]] == \
        [(1, "mix", None), (2, "boom", None), (3, "iso", "LEO"), (4, "iso", "MAYA")]
    assert {ln["channel"] for ln in detail["lines"]} == {d["channel"] for d in truth["deliveries"]}

    from contextlib import contextmanager

    from playwright.sync_api import sync_playwright

    with contextmanager(serve)(poly_index) as base, sync_playwright() as p:
        ctx = launch(p, tmp_path / "profile")
        try:
            page = ctx.new_page()
            page.goto(f"{base}/take/{take['take_id']}?token={TOKEN}")
            page.wait_for_selector("#transcript .line", timeout=30000)
            assert "sound: 1 mix, 2 boom, 3 iso LEO, 4 iso MAYA" in page.inner_text("#take-meta")
            shown = [t.strip() for t in page.locator("#transcript .line .chan").all_inner_texts()]
            assert shown == [f"ch {ln['channel']}" for ln in detail["lines"] if ln["channel"]]
        finally:
            ctx.close()


@pytest.mark.slow
def test_the_player_plays_one_channel_alone_where_it_was(poly_index, truth, tmp_path):
    """Each channel of the poly WAV plays alone (an actor's iso under an overlap): /media/ID?channel=N is that
    channel, from the take's first sample, and the player's "listen" choice keeps the position."""
    import av
    from starlette.testclient import TestClient

    from indexer.media import decode, probe
    from indexer.server import create_app

    info = probe(POLY)
    original = decode(info, audio=True, keep_channels=True).channels          # (4, samples) at 16 kHz
    with TestClient(create_app(poly_index, proxies=False)) as c:
        take = c.get("/api/takes").json()[0]
        assert take["sound_channels"] == 4 and take["media_kind"] == "audio"
        for ch in (3, 4):
            r = c.get(f"/media/{take['take_id']}", params={"channel": str(ch)})
            assert r.status_code == 200 and r.headers["content-type"] == "audio/mp4"
            path = tmp_path / f"ch{ch}.m4a"
            path.write_bytes(r.content)
            with av.open(str(path)) as m:
                assert m.streams.audio[0].codec_context.channels == 1
            alone = decode(probe(path), audio=True).audio
            n = min(len(alone), original.shape[1])
            assert abs(len(alone) - original.shape[1]) < 0.05 * 16000            # the same length, within 50 ms
            corr = [np.corrcoef(alone[:n], original[k, :n])[0, 1] for k in range(4)]
            assert corr[ch - 1] > 0.98 and max(c for k, c in enumerate(corr) if k >= 2 and k != ch - 1) < 0.5, corr
            ranged = c.get(f"/media/{take['take_id']}", params={"channel": str(ch)}, headers={"Range": "bytes=0-99"})
            assert ranged.status_code == 206 and len(ranged.content) == 100
        for bad, says in (("9", "has no sound channel 9 (1 to 4)"), ("x", "has no sound channel x"),
                          ("0", "has no sound channel 0")):
            r = c.get(f"/media/{take['take_id']}", params={"channel": bad})
            assert r.status_code == 400 and says in r.text, r.text

    from contextlib import contextmanager

    from playwright.sync_api import sync_playwright

    from test_server_browser import TOKEN, launch, serve

    with contextmanager(serve)(poly_index) as base, sync_playwright() as p:
        ctx = launch(p, tmp_path / "profile")
        try:
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/take/{take['take_id']}?token={TOKEN}")
            page.wait_for_selector("#transcript .line", timeout=30000)
            assert page.locator("#listen option").all_inner_texts() == \
                ["all channels", "1 MIX", "2 BOOM", "3 LEO (iso)", "4 MAYA (iso)"]
            page.wait_for_function("() => document.getElementById('audio').readyState >= 1", timeout=30000)
            page.evaluate("() => { const a = document.getElementById('audio'); a.currentTime = 2.0; }")
            page.wait_for_function("() => Math.abs(document.getElementById('audio').currentTime - 2.0) < 0.01")
            page.select_option("#listen", "3")
            page.wait_for_function("() => document.getElementById('audio').src.endsWith('channel=3') && "
                                   "document.getElementById('audio').readyState >= 1", timeout=30000)
            page.wait_for_function("() => Math.abs(document.getElementById('audio').currentTime - 2.0) < 0.01",
                                   timeout=15000)
            assert page.inner_text("#tc") == "14:12:31:23"      # 2 s in: frame 47 at 23.976 (47.95 frames)
            page.keyboard.press("k")                                          # plays LEO's lav from there
            page.wait_for_function("() => document.getElementById('audio').currentTime > 2.3", timeout=15000)
            page.select_option("#listen", "")                                 # back to every channel
            page.wait_for_function("() => !document.getElementById('audio').src.includes('channel=')",
                                   timeout=15000)
            assert not errors, errors
        finally:
            ctx.close()


def test_one_channel_alone_is_refused_for_a_take_with_picture(shoot_index):
    from starlette.testclient import TestClient

    from indexer.server import create_app

    with TestClient(create_app(shoot_index, proxies=False)) as c:
        take = next(t for t in c.get("/api/takes").json() if t["media_kind"] == "video")
        r = c.get(f"/media/{take['take_id']}", params={"channel": "1"})
        assert r.status_code == 400 and "for sound takes only" in r.text
