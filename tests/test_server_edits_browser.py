"""Circling a take and naming voices in a real browser: Playwright driving Debian's Chromium (headless) against
`dailies serve` (with a token) on a copy of the fixture shoot with its screenplay imported, set up as in
tests/test_server_browser.py. What the page changes is read back with the CLI and OpenTimelineIO.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from test_server_browser import ARGS, CHROMIUM, TOKEN, page, pw, serve  # noqa: F401  (the same room and browser; pw, page: its fixtures, page over this module's signed_in)

LINE7 = "We have to follow the data, not the calendar."


@pytest.fixture(scope="module")
def index(scripted_index, tmp_path_factory) -> Path:
    """A copy of its own: these tests write."""
    path = tmp_path_factory.mktemp("edits-browser") / "index"
    shutil.copytree(scripted_index, path)
    return path


@pytest.fixture(scope="module")
def base_url(index):
    yield from serve(index)


@pytest.fixture(scope="module")
def signed_in(pw, base_url, tmp_path_factory):
    ctx = pw.chromium.launch_persistent_context(str(tmp_path_factory.mktemp("chromium-edits")),
                                                executable_path=str(CHROMIUM), headless=True, args=ARGS,
                                                viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    resp = page.goto(f"{base_url}/?token={TOKEN}")
    assert resp.status == 200 and page.url == f"{base_url}/"
    page.close()
    yield ctx
    ctx.close()


def test_circling_a_take_on_its_page_shows_in_search_and_the_ale(page, base_url, index, tmp_path):
    import opentimelineio as otio

    takes = {t["name"]: t for t in page.request.get(f"{base_url}/api/takes").json()}
    t3 = takes["12A_T3_CamB"]
    page.goto(f"{base_url}/take/{t3['take_id']}")
    page.wait_for_function("() => document.getElementById('circle-toggle').textContent === 'Circle'")
    assert page.locator("#circle-state").inner_text() == "not circled"
    page.locator("#circle-note").fill("the keeper")
    page.locator("#circle-toggle").click()
    page.wait_for_function("() => document.getElementById('circle-toggle').textContent === 'Uncircle'")
    assert page.locator("#circle-state").inner_text() == "● circled: the keeper"
    # The search page marks every hit of that take, and only those.
    page.goto(f"{base_url}/")
    page.locator("#q").fill(LINE7)
    page.wait_for_function("q => new URLSearchParams(location.search).get('q') === q", arg=LINE7, timeout=30000)
    hits = page.locator(".hit")
    shown = {}
    for i in range(hits.count()):
        shown.setdefault(hits.nth(i).locator(".clip").inner_text(), []).append(hits.nth(i).locator(".circled").count())
    assert "12A_T3_CamB" in shown and len(shown) >= 3
    assert all(all(shown[n]) if n == "12A_T3_CamB" else not any(shown[n]) for n in shown), shown
    # The ALE says so, read back by OpenTimelineIO's ALE adapter.
    run_cli("export", "ale", "--index", str(index), "-o", str(tmp_path / "day.ale"), check=True)
    circled = {}
    for path in tmp_path.glob("day_*.ale"):
        col = otio.adapters.read_from_file(str(path), adapter_name="ale")
        circled.update({c.name: (c.metadata["ALE"]["Circled"], c.metadata["ALE"]["Comments"]) for c in col})
    assert circled["12A_T3_CamB"] == ("Y", "the keeper")
    assert {n for n, (y, _) in circled.items() if y} == {"12A_T3_CamB"}
    # Uncircled from the page again.
    page.goto(f"{base_url}/take/{t3['take_id']}")
    page.wait_for_function("() => document.getElementById('circle-toggle').textContent === 'Uncircle'")
    page.locator("#circle-toggle").click()
    page.wait_for_function("() => document.getElementById('circle-toggle').textContent === 'Circle'")
    status = json.loads(run_cli("status", "--index", str(index), "--json", check=True).stdout)
    assert not any(t["circled"] for t in status["takes"])


def test_naming_a_voice_on_the_voices_page_changes_the_cli_list(page, base_url, index):
    page.goto(f"{base_url}/")
    page.locator("#nav-voices").click()
    page.wait_for_function("() => document.querySelectorAll('.voice').length >= 2")
    assert page.url == f"{base_url}/voices"
    before = json.loads(run_cli("speakers", "list", "--index", str(index), "--json", check=True).stdout)
    first = page.locator(".voice").first
    vid = first.get_attribute("data-voice-id")
    assert vid == before[0]["voice_id"]
    assert first.locator(".clipline").count() == len(before[0]["clips"]) >= 1
    # Listen: the first clip plays from its line's start.
    clip = before[0]["clips"][0]
    first.locator(".clipline .play").first.click()
    page.wait_for_function("""([s, e]) => { const a = document.getElementById('clip-audio');
        return !a.paused && a.currentTime >= s - 0.05 && a.currentTime <= e + 0.3 }""",
                           arg=[clip["start"], clip["end"]], timeout=20000)
    page.evaluate("document.getElementById('clip-audio').pause()")
    # Name it.
    first.locator(".name-input").fill("ROSALIND")
    first.locator(".name-form button").click()
    page.wait_for_function("vid => { const v = document.querySelector(`.voice[data-voice-id='${vid}'] .vname`);"
                           " return v && v.textContent === 'ROSALIND' }", arg=vid, timeout=15000)
    assert "is now ROSALIND" in page.locator("#message").inner_text()
    after = json.loads(run_cli("speakers", "list", "--index", str(index), "--json", check=True).stdout)
    assert {v["voice_id"]: v["name"] for v in after}[vid] == "ROSALIND"
    # Accept the screenplay's names from the page: the voices become MAYA and LEO.
    page.wait_for_selector("#accept")
    page.locator("#accept").click()
    page.wait_for_function("() => [...document.querySelectorAll('.vname')].map(e => e.textContent).includes('LEO')",
                           timeout=15000)
    names = {v["name"] for v in json.loads(run_cli("speakers", "list", "--index", str(index), "--json",
                                                   check=True).stdout)}
    assert {"MAYA", "LEO"} <= names


def test_merging_and_splitting_on_the_voices_page(page, base_url, index):
    def listed():
        return json.loads(run_cli("speakers", "list", "--index", str(index), "--json", check=True).stdout)

    before = listed()
    assert len(before) == 2
    keep, other = before[0]["voice_id"], before[1]["voice_id"]
    page.goto(f"{base_url}/voices")
    page.wait_for_function("() => document.querySelectorAll('.voice').length === 2")
    first = page.locator(f".voice[data-voice-id='{keep}']")
    first.locator(".merge-other").select_option(other)
    first.locator(".merge-form button").click()
    page.wait_for_function("() => document.querySelectorAll('.voice').length === 1", timeout=15000)
    merged = listed()
    assert [v["voice_id"] for v in merged] == [keep]
    assert len(merged[0]["locals"]) == len(before[0]["locals"]) + len(before[1]["locals"])
    # Split one take's speaker off again: it becomes a voice of its own, holding just that.
    loc = next(loc for loc in before[1]["locals"])
    page.locator(f".voice[data-voice-id='{keep}'] .split[data-take-id='{loc['take_id']}']"
                 f"[data-label='{loc['label']}']").click()
    page.wait_for_function("() => document.querySelectorAll('.voice').length === 2", timeout=15000)
    assert "that speaker is now" in page.locator("#message").inner_text()
    new = [v for v in listed() if v["voice_id"] not in (keep, other)]
    assert len(new) == 1 and [(x["take_id"], x["label"]) for x in new[0]["locals"]] == [(loc["take_id"], loc["label"])]
