"""The review room in a real browser: Playwright driving Debian's Chromium (headless) against `dailies serve`
on the fixture shoot, with a token, as a cutting room would run it.

Needs /usr/bin/chromium (`make test` installs it with apt when missing) and Playwright from the package index
(a dev dependency). These tests do not skip: without Chromium they fail saying how to get it.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import served
from indexer.server import create_app

CHROMIUM = Path(os.environ.get("DAILIES_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
TOKEN = "browser-test-token"
PRE_ROLL = 1.0


def deliveries(manifest, n: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for take in manifest["takes"]:
        for d in take["deliveries"]:
            if d["script_line"] == n and d["kind"] != "false_start":
                out.setdefault(take["name"], []).append(d)
    return out


def serve(index: Path):
    yield from served(create_app(index, token=TOKEN))


@pytest.fixture(scope="module")
def base_url(shoot_index):
    yield from serve(shoot_index)


@pytest.fixture(scope="module")
def scripted_url(scripted_index):
    """A second review room, over a copy of the shoot with fixtures/scene.fountain imported."""
    yield from serve(scripted_index)


def launch(pw, profile: Path):
    return pw.chromium.launch_persistent_context(str(profile), executable_path=str(CHROMIUM), headless=True,
                                                 args=ARGS, viewport={"width": 1280, "height": 800})


@pytest.fixture(scope="module")
def pw():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is absent: `make test` installs it (as root: apt-get install -y chromium), "
                    "or set DAILIES_CHROMIUM to a Chromium binary.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(pw, tmp_path_factory):
    ctx = launch(pw, tmp_path_factory.mktemp("chromium-profile"))
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def signed_in(chromium, base_url):
    page = chromium.new_page()
    resp = page.goto(f"{base_url}/?token={TOKEN}")
    assert resp.status == 200 and page.url == f"{base_url}/"        # the token moved into a cookie
    page.close()
    return chromium


@pytest.fixture()
def page(signed_in):
    page = signed_in.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    page.close()
    assert not errors, f"JavaScript errors: {errors}"


def type_query(page, base_url, text: str) -> list[str]:
    page.goto(f"{base_url}/")
    page.locator("#q").press_sequentially(text, delay=15)
    # Results come as you type (debounced); the address holds the query whose results are shown.
    page.wait_for_function("q => new URLSearchParams(location.search).get('q') === q", arg=text, timeout=30000)
    return page.locator(".hit .clip").all_inner_texts()


def api_hits(page, base_url, text: str) -> list[dict]:
    r = page.request.get(f"{base_url}/api/search/line", params={"q": text})
    assert r.status == 200
    return r.json()


def test_typing_a_line_lists_every_take_that_delivered_it(page, base_url, manifest):
    for n in (7, 2):
        text = next(s["text"] for s in manifest["script_lines"] if s["n"] == n)
        assert text in (Path(__file__).parents[1] / "fixtures" / "scene.fountain").read_text()
        shown = type_query(page, base_url, text)
        assert set(deliveries(manifest, n)) <= set(shown), (n, shown)
        assert page.locator(".hit").first.locator("img, .nothumb").count() == 1


def test_clicking_a_hit_plays_from_its_start_less_preroll_with_source_tc(page, base_url, manifest):
    text = next(s["text"] for s in manifest["script_lines"] if s["n"] == 6)
    para = [name for name, ds in deliveries(manifest, 6).items() if any(d["kind"] == "paraphrase" for d in ds)]
    assert para == ["12A_T2_CamA"]
    names = type_query(page, base_url, text)
    hit = next(h for h in api_hits(page, base_url, text) if h["name"] == para[0])
    rate = Fraction(hit["rate"])
    page.evaluate("window.__seeks = []; document.getElementById('video')"
                  ".addEventListener('seeked', e => window.__seeks.push(e.target.currentTime))")
    page.locator(".hit").nth(names.index(para[0])).click()
    page.wait_for_function("window.__seeks.length > 0", timeout=15000)
    first_seek = page.evaluate("window.__seeks[0]")
    assert abs(first_seek - (hit["start"] - PRE_ROLL)) <= 1 / rate
    # It plays, through the pre-roll, to the line.
    page.wait_for_function("t => { const v = document.getElementById('video'); return !v.paused && v.currentTime >= t }",
                           arg=hit["start"], timeout=15000)
    # At the line's start the readout shows the hit's TC in (drop-frame: ';').
    page.evaluate("t => { const v = document.getElementById('video'); v.pause(); v.currentTime = t; }", hit["start"])
    page.wait_for_function("tc => document.getElementById('tc').textContent === tc", arg=hit["tc_in"], timeout=5000)
    assert ";" in hit["tc_in"]
    # Next/previous hit keys move through the list.
    page.keyboard.press("n")
    page.wait_for_function("() => document.querySelector('.hit.current') !== null", timeout=5000)


def test_the_hits_shown_download_as_files_for_the_edit(page, base_url, manifest, tmp_path):
    text = next(s["text"] for s in manifest["script_lines"] if s["n"] == 2)
    page.goto(f"{base_url}/")
    assert page.locator("#export").is_hidden()                    # nothing searched yet
    type_query(page, base_url, text)
    page.locator("#f-take").fill("12A_T1_CamA")              # a filter: the download follows it too
    page.wait_for_function("() => new URLSearchParams(location.search).get('take') === '12A_T1_CamA'",
                           timeout=30000)
    links = page.locator("#export a")
    assert page.locator("#export").is_visible() and links.count() == 8
    edl = page.locator('#export a[data-format="edl"]')
    with page.expect_download() as info:
        edl.click()
    download = info.value
    stem = "line-The-comet-won-t-wait-for-office-hours-Leo"
    assert download.suggested_filename == f"{stem}.edl"      # one take, one rate: the EDL itself
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    api = page.request.get(f"{base_url}/api/export/stringout",
                           params={"q": text, "take": "12A_T1_CamA", "format": "edl"})
    assert api.status == 200 and saved.read_bytes() == api.body()
    assert "12A_T1_C" in saved.read_text() and "12A_T2" not in saved.read_text()
    page.locator("#q").fill("")                                   # no query, nothing to export
    page.wait_for_function("() => document.getElementById('export').hidden", timeout=30000)


def test_ticked_hits_alone_download_and_ticking_does_not_play(page, base_url, tmp_path):
    text = "I brought you coffee. Black, no sugar."
    type_query(page, base_url, text)
    picks = page.locator(".hit .pick")
    assert picks.count() >= 3
    picks.nth(0).check()
    picks.nth(2).check()
    assert page.locator("#export-chosen").text_content() == " (2 chosen)"
    assert page.locator("#player").is_hidden()                    # choosing a hit does not play it
    keys = [picks.nth(k).get_attribute("data-key") for k in (0, 2)]
    href = page.locator('#export a[data-format="otio"]').get_attribute("href")
    assert href.count("only=") == 2
    with page.expect_download() as info:
        page.locator('#export a[data-format="otio"]').click()
    saved = tmp_path / "picked.otio"
    info.value.save_as(saved)
    api = page.request.get(f"{base_url}/api/export/stringout?" + "&".join(
        [f"q={quote(text)}", "format=otio", *(f"only={quote(k)}" for k in keys)]))
    assert api.status == 200 and saved.read_bytes() == api.body()
    picks.nth(0).uncheck()
    picks.nth(2).uncheck()
    assert page.locator("#export-chosen").text_content() == ""
    assert "only=" not in page.locator('#export a[data-format="otio"]').get_attribute("href")


def test_the_take_page_downloads_its_transcript(page, base_url, tmp_path):
    takes = {t["name"]: t for t in page.request.get(f"{base_url}/api/takes").json()}
    page.goto(f"{base_url}/take/{takes['12A_T1_CamA']['take_id']}")
    link = page.locator('#export a[data-format="srt"]')
    link.wait_for(state="visible", timeout=30000)
    with page.expect_download() as info:
        link.click()
    assert info.value.suggested_filename == "12A_T1_CamA.srt"
    saved = tmp_path / "t.srt"
    info.value.save_as(saved)
    api = page.request.get(f"{base_url}/api/export/transcript", params={"take": "12A_T1_CamA", "format": "srt"})
    assert api.status == 200 and saved.read_bytes() == api.body() and "-->" in saved.read_text()


def test_the_voices_page_downloads_a_voices_lines_as_markers(page, base_url, tmp_path):
    page.goto(f"{base_url}/voices")
    page.locator(".voice a.dl").first.wait_for(state="visible", timeout=30000)
    voices = page.locator(".voice")
    assert page.locator(".voice a.dl").count() == 4 * voices.count()
    first = voices.first
    vid = first.get_attribute("data-voice-id")
    with page.expect_download() as info:
        first.locator('a.dl:text("CSV")').click()
    assert info.value.suggested_filename == f"speaker-{vid}.csv"
    saved = tmp_path / "v.csv"
    info.value.save_as(saved)
    api = page.request.get(f"{base_url}/api/export/markers", params={"voice": vid, "format": "csv"})
    assert api.status == 200 and saved.read_bytes() == api.body()


def test_drop_frame_take_shows_semicolon_tc_across_its_minute_boundary(page, base_url):
    takes = {t["name"]: t for t in page.request.get(f"{base_url}/api/takes").json()}
    t2 = takes["12A_T2_CamA"]
    assert t2["start_tc"] == "01:00:59;20"
    page.goto(f"{base_url}/take/{t2['take_id']}")
    page.wait_for_function("() => document.getElementById('take-title').textContent === '12A_T2_CamA'")
    rate = Fraction(t2["rate"])
    # Seek once the video knows its duration (a seek before that is the browser's to defer); the waits are
    # generous because a loaded machine (a parallel index run) decodes slowly: the test is of the readout.
    page.wait_for_function("() => document.getElementById('video').readyState >= 1", timeout=30000)
    page.evaluate("t => { const v = document.getElementById('video'); v.pause(); v.currentTime = t; }",
                  float(Fraction(9) / rate) + 1e-4)
    page.wait_for_function("() => document.getElementById('tc').textContent === '01:00:59;29'", timeout=30000)
    page.keyboard.press("ArrowRight")                         # one frame on: ;00 and ;01 do not exist at 1 min
    page.wait_for_function("() => document.getElementById('tc').textContent === '01:01:00;02'", timeout=15000)
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => document.getElementById('tc').textContent === '01:00:59;29'", timeout=15000)
    # The transcript and the shot strip are on the page.
    assert page.locator(".line").count() >= 5 and page.locator(".shot").count() == 3


def test_sound_only_take_plays_as_sound(page, base_url):
    takes = {t["name"]: t for t in page.request.get(f"{base_url}/api/takes").json()}
    wt = takes["12A_WT1"]
    page.goto(f"{base_url}/take/{wt['take_id']}")
    page.wait_for_function("() => document.getElementById('take-title').textContent === '12A_WT1'")
    assert page.locator("#video").is_hidden() and page.locator("#wave").is_visible()
    page.locator("#playpause").click()
    page.wait_for_function("() => { const a = document.getElementById('audio');"
                           " return !a.paused && a.currentTime > 0.5 }", timeout=15000)
    assert page.evaluate("document.getElementById('tc').textContent").startswith("14:05:00")
    # Click a word: it seeks there.
    word = page.locator(".word").nth(3)
    t = float(word.get_attribute("data-t"))
    word.click()
    page.wait_for_function("t => Math.abs(document.getElementById('audio').currentTime - t) < 0.5", arg=t)


def test_a_wrong_token_gets_401_on_a_page_an_api_call_and_media(pw, signed_in, base_url, tmp_path):
    media = signed_in.request.get(f"{base_url}/api/takes").json()[0]["media_url"]
    stranger = launch(pw, tmp_path / "another-browser")           # a browser that never had the token
    try:
        page = stranger.new_page()
        resp = page.goto(f"{base_url}/?token=wrong")
        assert resp.status == 401 and "needs its token" in page.content()
        for url in ("/", "/api/status", media, "/static/player.js"):
            assert stranger.request.get(f"{base_url}{url}", headers={"Authorization": "Bearer wrong"}).status == 401
            assert stranger.request.get(f"{base_url}{url}").status == 401, url
        assert stranger.request.get(f"{base_url}/api/status").json()["error"]
        ok = stranger.request.get(f"{base_url}{media}", headers={"Authorization": f"Bearer {TOKEN}",
                                                                  "Range": "bytes=0-9"})
        assert ok.status == 206
    finally:
        stranger.close()


def test_take_page_plays_a_line_and_loops_it(page, base_url):
    takes = {t["name"]: t for t in page.request.get(f"{base_url}/api/takes").json()}
    t1 = takes["12A_T1_CamA"]
    detail = page.request.get(f"{base_url}/api/takes/{t1['take_id']}").json()
    line = detail["lines"][2]
    page.goto(f"{base_url}/take/{t1['take_id']}")
    page.wait_for_function("() => document.querySelectorAll('.line').length > 2")
    page.locator("#loop").check()
    # Played from the pre-roll through the line's end, then back to its start (not to the pre-roll).
    page.evaluate("""([start, end]) => {
        const v = document.getElementById('video');
        let preroll = false;
        window.__looped = false;
        v.addEventListener('seeked', () => {
          if (Math.abs(v.currentTime - (start - 1)) < 0.05) preroll = true;
          else if (preroll && Math.abs(v.currentTime - start) < 0.05) {
            const r = v.played;
            for (let i = 0; i < r.length; i++) if (r.start(i) <= start && r.end(i) >= end - 0.05) window.__looped = true;
          }
        });
    }""", [line["start"], line["end"]])
    page.locator(".line").nth(2).locator(".tcs").click()
    page.wait_for_function("() => document.querySelector('.line.current') !== null")
    page.wait_for_function("() => window.__looped === true", timeout=20000)


def test_browser_timecode_is_the_indexers_timecode(page, base_url):
    """tc.js (the readout) against indexer.timecode at every rate, across minute and ten-minute boundaries."""
    from indexer.timecode import frames_to_tc

    page.goto(f"{base_url}/")
    cases = []
    for rate, drop in (("24000/1001", False), ("25", False), ("30000/1001", True), ("30000/1001", False),
                       ("60000/1001", True), ("24", False)):
        r = Fraction(rate)
        fps = round(r)
        # The last minute of the day too (29.97 NDF once rolled over 86 s early there: 23:59:00:00).
        for minute in (0, 1, 9, 10, 11, 59, 60 * 23 + 59):
            base = minute * 60 * fps - (minute - minute // 10) * (2 * fps // 30) * drop
            for f in range(max(0, base - 3), base + 3):
                cases.append((rate, drop, f))
    got = page.evaluate("""cases => cases.map(([rate, drop, f]) => TC.toTc(f, TC.parseRate(rate), drop))""", cases)
    want = [frames_to_tc(f, Fraction(rate), drop) for rate, drop, f in cases]
    assert got == want
    # frame_at: the frame whose interval holds t, as the index computes tc_in.
    from indexer.timecode import frame_at

    ts = [0.0, 1.0, 10.0107, 27.275, 46.855, 59.96, 3599.9]
    for rate in ("24000/1001", "25", "30000/1001"):
        js = page.evaluate("([ts, rate]) => ts.map(t => TC.frameAt(t, TC.parseRate(rate)))", [ts, rate])
        assert js == [frame_at(t, Fraction(rate)) for t in ts]


def test_take_page_says_when_no_screenplay_is_imported(page, base_url):
    takes = {t["name"]: t for t in page.request.get(f"{base_url}/api/takes").json()}
    page.goto(f"{base_url}/take/{takes['12A_T1_CamA']['take_id']}")
    page.wait_for_function("() => document.getElementById('take-title').textContent === '12A_T1_CamA'")
    assert "No screenplay is imported" in page.locator("#script").inner_text()
    assert page.locator(".sline").count() == 0


def test_take_page_script_panel_seeks_to_a_delivered_line(page, scripted_url):
    # The same token: the signed-in browser's cookie is per host, not per port.
    page.goto(f"{scripted_url}/?token={TOKEN}")
    takes = {t["name"]: t for t in page.request.get(f"{scripted_url}/api/takes").json()}
    t2 = takes["12A_T2_CamA"]
    sc = page.request.get(f"{scripted_url}/api/takes/{t2['take_id']}").json()["script"]
    page.goto(f"{scripted_url}/take/{t2['take_id']}")
    page.wait_for_function("() => document.querySelectorAll('.sline').length > 0")
    rows = page.locator(".sline")
    assert rows.count() == len(sc["lines"])
    # Line ids, characters, text and status are shown; a missing line is dimmed and does not seek.
    missing = page.locator(".sline.missing")
    assert missing.count() == 1 and "12A/3" in missing.inner_text() and missing.get_attribute("data-start") is None
    assert float(missing.evaluate("el => getComputedStyle(el).opacity")) < 1
    k, line = next((k, ln) for k, ln in enumerate(sc["lines"]) if ln["line_id"] == "12A/7")
    assert line["status"] == "delivered"
    row = rows.nth(k)
    assert all(x in row.inner_text() for x in ("12A/7", line["character"], line["text"], "delivered"))
    page.wait_for_function("() => document.getElementById('video').readyState >= 1", timeout=30000)
    row.locator(".text").click()
    page.wait_for_function("t => Math.abs(document.getElementById('video').currentTime - t) < 0.5",
                           arg=line["start"], timeout=30000)
