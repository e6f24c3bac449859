"""Review notes at a frame of a take: `dailies notes add|list|delete`, the review room's API and player (Chromium),
and the markers they become for the NLE, on a copy of the fixture shoot; and circling a take from the player.

A note names its frame by the take's own source timecode (drop-frame read as drop-frame) or by seconds; the API,
the CLI's --json and the markers agree on that frame; a note goes in while another process writes the index.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from conftest import run_cli, served
from indexer.server import create_app

TOKEN = "notes-token"


def cli_json(*args: str):
    return json.loads(run_cli(*args, check=True).stdout)


@pytest.fixture()
def index(shoot_index, tmp_path) -> Path:
    """A copy of its own: these tests write."""
    path = tmp_path / "index"
    shutil.copytree(shoot_index, path)
    return path


@pytest.fixture()
def client(index):
    with TestClient(create_app(index, proxies=False), raise_server_exceptions=False) as c:
        yield c


def takes(client) -> dict[str, dict]:
    return {t["name"]: t for t in client.get("/api/takes").json()}


# ------------------------------------------------------------------------------------------ the command

def test_a_note_goes_at_the_frame_its_timecode_names_in_the_takes_own_counting(index):
    status = {t["name"]: t for t in cli_json("status", "--index", str(index), "--json")["takes"]}
    t2 = status["12A_T2_CamA"]                       # 29.97 drop-frame, starts 01:00:59;20
    assert (t2["start_tc"], t2["rate"]) == ("01:00:59;20", "30000/1001")
    # 01:01:00;02 is the 10th frame (;00 and ;01 do not exist at the minute); ':' is read as the take counts
    a = cli_json("notes", "add", "12A_T2_CamA", "01:01:00;02", "boom in frame", "--by", "Script Sup",
                 "--index", str(index), "--json")
    b = cli_json("notes", "add", "12A_T2_CamA", "01:01:00:02", "same frame, typed with colons", "--index", str(index),
                 "--json")
    assert (a["frame"], a["tc"], a["author"], a["text"]) == (10, "01:01:00;02", "Script Sup", "boom in frame")
    assert (b["frame"], b["tc"]) == (10, "01:01:00;02") and b["author"]          # the user's name by default
    # seconds from the first frame: 23.976 fps, 3.5 s is frame 83 (3 s 11 frames)
    c = cli_json("notes", "add", "12A_T1_CamA", "3.5", "  focus \n soft  ", "--index", str(index), "--json")
    assert (c["frame"], c["tc"], c["text"]) == (83, "01:00:03:11", "focus soft")
    assert abs(c["seconds"] - 83 * 1001 / 24000) < 1e-5
    listed = cli_json("notes", "list", "--index", str(index), "--json")
    assert [(n["name"], n["frame"]) for n in listed] == [("12A_T1_CamA", 83), ("12A_T2_CamA", 10),
                                                         ("12A_T2_CamA", 10)]
    assert cli_json("notes", "list", "--take", "12A_T1_CamA", "--index", str(index), "--json") == [c]
    table = run_cli("notes", "list", "--index", str(index), check=True).stdout
    assert "01:01:00;02" in table and "Script Sup" in table and "focus soft" in table
    assert cli_json("status", "--index", str(index), "--json")["review_notes"] == 3
    assert ", 3 review notes" in run_cli("status", "--index", str(index), check=True).stdout
    gone = cli_json("notes", "delete", str(a["note_id"]), "--index", str(index), "--json")
    assert gone == a
    assert [n["note_id"] for n in cli_json("notes", "list", "--index", str(index), "--json")] == \
        [c["note_id"], b["note_id"]]


@pytest.mark.parametrize("args, says", [
    (["12A_T1_CamA", "02:00:00:00", "x"], "is outside 12A_T1_CamA, which runs from 01:00:00:00 to"),
    (["12A_T1_CamA", "soon", "x"], "'soon' is not a time"),
    (["12A_T1_CamA", "01:00:00:30", "x"],
     "'01:00:00:30' is not a timecode at 12A_T1_CamA's rate (23.976 fps, e.g. 01:00:00:00)"),
    (["12A_T1_CamA", "1", "   "], "A note needs its text"),
    (["NO_SUCH_TAKE", "1", "x"], "No take 'NO_SUCH_TAKE'"),
])
def test_a_bad_note_is_one_sentence_and_writes_nothing(index, args, says):
    proc = run_cli("notes", "add", *args, "--index", str(index))
    assert proc.returncode != 0 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert cli_json("notes", "list", "--index", str(index), "--json") == []


def test_deleting_a_note_that_is_not_there_says_so(index):
    proc = run_cli("notes", "delete", "7", "--index", str(index))
    assert proc.returncode != 0 and "No note 7 in the index" in proc.stderr
    proc = run_cli("notes", "delete", "seven", "--index", str(index))
    assert proc.returncode != 0 and "'seven' is not a note number" in proc.stderr


def test_notes_go_in_while_another_process_writes_and_survive_re_indexing(index):
    from indexer.media import probe
    from indexer.store import Index

    with Index.open_writer(index) as w:              # as `dailies index` would hold it
        n = cli_json("notes", "add", "12A_T3_CamB", "2", "she looks at the lens", "--index", str(index), "--json")
        row = w.take_row(n["take_id"])
        w.upsert_take(n["take_id"], row["content_hash"], probe(row.path), status="indexed")   # re-indexed meanwhile
    assert cli_json("notes", "list", "--index", str(index), "--json") == [n]


# ------------------------------------------------------------------------------------------ the API

def test_the_api_adds_lists_and_deletes_as_the_command_does(client, index):
    t2 = takes(client)["12A_T2_CamA"]
    r = client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": 10, "text": "boom", "author": "Ana"})
    assert r.status_code == 200, r.text
    note = r.json()
    assert (note["frame"], note["tc"], note["author"], note["name"]) == (10, "01:01:00;02", "Ana", "12A_T2_CamA")
    r = client.post(f"/api/takes/{t2['take_id']}/notes", json={"at": "01:01:00:05", "text": "again"})
    assert r.status_code == 200 and r.json()["frame"] == 13 and r.json()["author"] is None
    api = client.get("/api/notes").json()
    assert api == cli_json("notes", "list", "--index", str(index), "--json")
    assert client.get("/api/notes", params={"take": "12A_T2_CamA"}).json() == api
    assert client.get("/api/notes", params={"take": "12A_T1_CamA"}).json() == []
    assert client.delete(f"/api/notes/{note['note_id']}").json() == note
    assert [n["frame"] for n in client.get("/api/notes").json()] == [13]
    assert client.delete(f"/api/notes/{note['note_id']}").status_code == 404


@pytest.mark.parametrize("body, says", [
    ({"text": "x"}, "Say where the note goes"),
    ({"frame": 3, "at": "1", "text": "x"}, "Say where the note goes"),
    ({"frame": "3", "text": "x"}, "must be a whole number of frames"),
    ({"frame": True, "text": "x"}, "must be a whole number of frames"),
    ({"frame": 100000, "text": "x"}, "is not a frame of 12A_T2_CamA"),
    ({"frame": -1, "text": "x"}, "is not a frame of 12A_T2_CamA"),
    ({"at": "-2", "text": "x"}, "'-2' is not a time in the take"),
    ({"at": "nan", "text": "x"}, "'nan' is not a time in the take"),
    ({"frame": 3, "text": ""}, "A note needs its text"),
    ({"frame": 3, "text": 5}, "The field 'text' must be text"),
    ({"frame": 3, "text": "x" * 2001}, "keep it under 2000"),
])
def test_a_bad_note_request_is_400_with_one_sentence(client, body, says):
    t2 = takes(client)["12A_T2_CamA"]
    r = client.post(f"/api/takes/{t2['take_id']}/notes", json=body)
    assert r.status_code == 400 and says in r.json()["error"], r.text
    assert client.get("/api/notes").json() == []


def test_notes_need_the_token_and_a_read_only_room_refuses_them(index):
    with TestClient(create_app(index, proxies=False, read_only=True), raise_server_exceptions=False) as c:
        tid = takes(c)["12A_T1_CamA"]["take_id"]
        r = c.post(f"/api/takes/{tid}/notes", json={"frame": 1, "text": "x"})
        assert r.status_code == 403 and "read-only" in r.json()["error"]
        assert c.delete("/api/notes/1").status_code == 403
        assert c.get("/api/notes").json() == []
        assert 'id="noteform" class="noteform" hidden data-read-only="true"' in c.get(f"/take/{tid}").text
    with TestClient(create_app(index, token=TOKEN, proxies=False), raise_server_exceptions=False) as c:
        assert c.post(f"/api/takes/{tid}/notes", json={"frame": 1, "text": "x"}).status_code == 401
        assert c.get("/api/notes").status_code == 401
        ok = c.post(f"/api/takes/{tid}/notes", json={"frame": 1, "text": "x"},
                    headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()["frame"] == 1
        assert c.delete(f"/api/notes/{ok.json()['note_id']}").status_code == 401


# ------------------------------------------------------------------------------------------ to the NLE

def test_notes_become_markers_at_their_frames(client, index, tmp_path):
    import opentimelineio as otio

    t2 = takes(client)["12A_T2_CamA"]
    client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": 10, "text": "boom in frame", "author": "Ana"})
    client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": 700, "text": "focus buzz"})
    # every line's marker of the take, and the notes at their frames
    run_cli("export", "markers", "--take", "12A_T2_CamA", "--index", str(index), "-o", str(tmp_path / "m.otio"),
            check=True)
    tl = otio.adapters.read_from_file(str(tmp_path / "m.otio"))
    clip = tl.find_clips()[0]
    start = clip.source_range.start_time.value
    notes = {m.name: (round(m.marked_range.start_time.value - start), round(m.marked_range.duration.value))
             for m in clip.markers if m.metadata["dailies"]["kind"] == "note"}
    assert notes == {"NOTE (Ana): boom in frame": (10, 1), "NOTE: focus buzz": (700, 1)}
    assert sum(m.metadata["dailies"]["kind"] == "line" for m in clip.markers) >= 5
    # --notes alone: the notes only; the Avid list says where at the take's source TC
    run_cli("export", "markers", "--notes", "--index", str(index), "-f", "avid", "-o", str(tmp_path / "avid"),
            check=True)
    rows = (tmp_path / "avid" / "12A_T2_CamA.txt").read_text().splitlines()
    assert rows[0].split("\t")[4] == "NOTE (Ana): boom in frame" and rows[1].split("\t")[4] == "NOTE: focus buzz"
    expect = cli_json("notes", "list", "--index", str(index), "--json")
    assert [r.split("\t")[1] for r in rows] == [n["tc"] for n in expect]
    # the review room's markers download of that take's lines carries them too
    r = client.get("/api/export/markers", params={"q": "The comet won't wait for office hours", "take": "12A_T2_CamA",
                                                  "format": "csv"})
    assert r.status_code == 200, r.text
    assert "NOTE (Ana): boom in frame" in r.text and "01:01:00;02" in r.text


def test_the_ale_carries_each_takes_review_notes(client, index, tmp_path):
    import opentimelineio as otio

    t2 = takes(client)["12A_T2_CamA"]
    client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": 700, "text": "focus buzz"})
    client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": 10, "text": "boom in frame", "author": "Ana"})
    run_cli("export", "ale", "--index", str(index), "-o", str(tmp_path / "day.ale"), check=True)
    seen = {}
    for path in tmp_path.glob("day*.ale"):
        col = otio.adapters.read_from_file(str(path), adapter_name="ale")     # kept: OTIO frees a temporary's clips
        for clip in col:
            seen[clip.name] = clip.metadata["ALE"]["Review notes"]
    tc700 = next(n["tc"] for n in client.get("/api/notes").json() if n["frame"] == 700)
    assert seen["12A_T2_CamA"] == f"01:01:00;02 boom in frame (Ana); {tc700} focus buzz"     # by frame
    assert all(v == "" for k, v in seen.items() if k != "12A_T2_CamA") and len(seen) == len(takes(client))
    r = client.get("/api/export/ale", params={"take": "12A_T2_CamA"})
    assert r.status_code == 200 and "01:01:00;02 boom in frame (Ana)" in r.text


def test_a_string_outs_clips_carry_the_notes_inside_them(client, index, tmp_path):
    """The editor's string-out of every take of a line: each clip has a one-frame marker at each review note inside
    the cut (handles included), in OTIO, FCP 7 XML and FCPXML; a note elsewhere in the take is not on the clip."""
    import math
    import re as _re

    import opentimelineio as otio

    line = "The comet won't wait for office hours, Leo."
    t2 = takes(client)["12A_T2_CamA"]
    rate = Fraction(t2["rate"])
    hit = next(h for h in client.get("/api/search/line", params={"q": line}).json() if h["name"] == "12A_T2_CamA")
    inside = math.floor(hit["start"] * rate) + 5
    client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": inside, "text": "mic rustle", "author": "Ana"})
    client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": 2, "text": "slate"})          # not in the cut
    for fmt in ("otio", "xml"):
        out = tmp_path / f"cut.{fmt}"
        run_cli("export", "stringout", "--line", line, "--index", str(index), "-o", str(out), check=True)
        tl = otio.adapters.read_from_file(str(out))
        clips = [c for c in tl.find_clips() if c.name == "12A_T2_CamA" and c.markers]
        assert len(clips) == 1, fmt
        clip = clips[0]
        zero = clip.media_reference.available_range.start_time.value
        notes = [(m.name, round(m.marked_range.start_time.value - zero) if fmt == "otio"
                  else round(m.marked_range.start_time.value)) for m in clip.markers if m.name.startswith("NOTE")]
        assert notes == [("NOTE (Ana): mic rustle", inside)], (fmt, notes)
        others = [c for c in tl.find_clips() if c.name != "12A_T2_CamA"]
        assert others and not any(m.name.startswith("NOTE") for c in others for m in c.markers)
    out = tmp_path / "cut.fcpxml"
    run_cli("export", "stringout", "--line", line, "--index", str(index), "-o", str(out), check=True)
    text = out.read_text()
    marks = _re.findall(r'<marker start="([^"]+)" duration="([^"]+)" value="NOTE[^"]*"', text)
    start = Fraction(t2["start_frame"] + inside) / rate
    assert len(marks) == 1 and Fraction(marks[0][0].rstrip("s")) == start, marks
    assert "slate" not in text


def test_notes_alone_with_none_is_nothing_to_export(index, tmp_path):
    proc = run_cli("export", "markers", "--notes", "--index", str(index), "-o", str(tmp_path / "n.csv"))
    assert proc.returncode != 0 and "no take has review notes" in proc.stderr
    assert not (tmp_path / "n.csv").exists()


def test_the_review_rooms_notes_download_is_the_commands_file(client, index, tmp_path):
    t = takes(client)
    client.post(f"/api/takes/{t['12A_T2_CamA']['take_id']}/notes", json={"frame": 10, "text": "boom", "author": "Ana"})
    client.post(f"/api/takes/{t['12A_T1_CamA']['take_id']}/notes", json={"at": "2", "text": "soft"})
    run_cli("export", "markers", "--notes", "--index", str(index), "-o", str(tmp_path / "n.csv"), check=True)
    r = client.get("/api/export/markers", params={"notes": "1", "format": "csv"})
    assert r.status_code == 200 and r.content == (tmp_path / "n.csv").read_bytes()
    assert "review-notes.csv" in r.headers["content-disposition"]
    one = client.get("/api/export/markers", params={"notes": "1", "format": "csv", "take": "12A_T1_CamA"})
    assert "soft" in one.text and "boom" not in one.text
    r = client.get("/api/export/stringout", params={"notes": "1"})
    assert r.status_code == 400 and "export as markers" in r.json()["error"]
    r = client.get("/api/export/markers", params={"notes": "1", "take": "12A_T3_CamB"})
    assert r.status_code == 404 and "no review notes on 12A_T3_CamB" in r.json()["error"]
    r = client.get("/api/export/markers", params={"notes": "1", "q": "coffee"})
    assert r.status_code == 400 and "Say what to export" in r.json()["error"]


# ------------------------------------------------------------------------------------------ the player (Chromium)

@contextmanager
def room(index: Path, tmp_path: Path, **launch):
    """The review room on ``index`` served on localhost and a headless Chromium page: (page, base URL, the page's
    script errors, which must be none when the test ends)."""
    from test_server_browser import ARGS, CHROMIUM

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is absent: `make test` installs it (apt-get install -y chromium).")
    from playwright.sync_api import sync_playwright

    gen = served(create_app(index, proxies=False))
    base = next(gen)
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=str(CHROMIUM),
                                                        headless=True, args=ARGS, **launch)
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page, base, errors
            ctx.close()
            assert not errors, errors
    finally:
        gen.close()


def stored_tc(base, page, frame: int) -> str:
    return next(n["tc"] for n in page.request.get(f"{base}/api/notes").json() if n["frame"] == frame)


def test_a_note_typed_in_the_player_goes_at_the_frame_shown_and_the_notes_page_plays_it(index, tmp_path):
    with room(index, tmp_path, viewport={"width": 1280, "height": 900}) as (page, base, errors):
        t2 = {t["name"]: t for t in page.request.get(f"{base}/api/takes").json()}["12A_T2_CamA"]
        rate = Fraction(t2["rate"])
        page.goto(f"{base}/take/{t2['take_id']}")
        page.wait_for_function("() => document.getElementById('video').readyState >= 1", timeout=30000)
        page.evaluate("t => { const v = document.getElementById('video'); v.pause(); v.currentTime = t; }",
                      float(Fraction(9) / rate) + 1e-4)
        page.wait_for_function("() => document.getElementById('tc').textContent === '01:00:59;29'",
                               timeout=30000)
        page.keyboard.press("ArrowRight")              # one frame on, across the minute: 01:01:00;02
        page.wait_for_function("() => document.getElementById('tc').textContent === '01:01:00;02'",
                               timeout=15000)
        page.fill("#note-author", "Ana")
        page.locator("#video").evaluate("v => v.play()")
        page.wait_for_function("() => !document.getElementById('video').paused")
        page.evaluate("() => document.activeElement.blur()")
        page.keyboard.press("m")                       # M: the note box, and the take pauses
        page.wait_for_function("() => document.activeElement.id === 'note-text' && "
                               "document.getElementById('video').paused")
        page.evaluate("f => { const v = document.getElementById('video'); v.currentTime = f; }",
                      float(Fraction(10) / rate) + 1e-4)          # back to the frame after the minute
        page.wait_for_function("() => document.getElementById('tc').textContent === '01:01:00;02'",
                               timeout=15000)
        page.keyboard.type("boom dips in")
        page.press("#note-text", "Enter")
        page.wait_for_function("() => document.querySelectorAll('#notes li').length === 1", timeout=15000)
        assert page.locator("#notes .ntc").inner_text() == "01:01:00;02"
        assert page.locator("#notes .nby").inner_text() == "Ana"
        # the transcript's line within a second of it says so (✎, the note in its title), no other line
        page.wait_for_function("() => document.querySelectorAll('#transcript .lnote').length === 1")
        assert "01:01:00;02 Ana: boom dips in" in page.locator("#transcript .lnote").get_attribute("title")
        assert page.locator("#note-text").input_value() == ""
        stored = page.request.get(f"{base}/api/notes").json()
        assert [(n["frame"], n["tc"], n["text"], n["author"]) for n in stored] == \
            [(10, "01:01:00;02", "boom dips in", "Ana")]
        # elsewhere in the take, a click on the note's TC goes back to its frame
        page.evaluate("() => { const v = document.getElementById('video'); v.currentTime = 5; }")
        page.wait_for_function("() => document.getElementById('tc').textContent !== '01:01:00;02'")
        page.locator("#notes .ntc").click()
        page.wait_for_function("() => document.getElementById('tc').textContent === '01:01:00;02'",
                               timeout=15000)
        # the page opened again shows it, with the name remembered
        page.reload()
        page.wait_for_function("() => document.querySelectorAll('#notes li').length === 1", timeout=15000)
        assert page.locator("#note-author").input_value() == "Ana"
        # a note someone else adds shows under the player without a reload (read again every 10 s)
        page.request.post(f"{base}/api/takes/{t2['take_id']}/notes", data={"frame": 500, "text": "car horn"})
        page.wait_for_function("() => document.querySelectorAll('#notes li').length === 2", timeout=20000)
        # the notes page lists every note; a click plays its take from a second before the note's frame
        page.goto(f"{base}/notes")
        page.wait_for_function("() => document.querySelectorAll('.noterow').length === 2", timeout=15000)
        assert page.locator(".noterow .tcs").all_inner_texts() == ["01:01:00;02", stored_tc(base, page, 500)]
        page.fill("#f-text", "horn")
        page.wait_for_function("() => document.querySelectorAll('.noterow').length === 1")
        page.evaluate("window.__seeks = []; document.getElementById('video')"
                      ".addEventListener('seeked', e => window.__seeks.push(e.target.currentTime))")
        page.locator(".noterow .text").click()
        page.wait_for_function("window.__seeks.length > 0", timeout=15000)
        assert abs(page.evaluate("window.__seeks[0]") - (float(Fraction(500) / rate) - 1.0)) <= 1 / rate
        assert "current" in page.locator(".noterow").get_attribute("class")
        href = page.locator("#export a[data-format=csv]").get_attribute("href")
        assert "notes=1" in href and "take=" in href
        csv = page.request.get(base + href).text()
        assert "car horn" in csv and "boom dips in" in csv           # every note of the takes listed
        # under the player, the take's notes; × deletes one, and the page's list follows
        page.wait_for_function("() => document.querySelectorAll('#notes li').length === 2", timeout=15000)
        page.fill("#f-text", "")
        page.wait_for_function("() => document.querySelectorAll('.noterow').length === 2")
        page.locator("#notes .ndel").first.click()
        page.wait_for_function("() => document.querySelectorAll('.noterow').length === 1", timeout=15000)
        assert [n["text"] for n in page.request.get(f"{base}/api/notes").json()] == ["car horn"]
        # a search's hit shows the notes within its line (a second either side); the other takes' hits do not
        line = "The director called again. She wants the report by Friday."
        page.goto(f"{base}/?q={quote(line)}")
        page.wait_for_function("() => document.querySelectorAll('.hit').length > 1", timeout=30000)
        page.wait_for_function("() => document.querySelectorAll('.hitnotes:not([hidden])').length === 1",
                               timeout=15000)
        api = page.request.get(f"{base}/api/search/line", params={"q": line}).json()
        at = float(Fraction(500) / rate)
        noted = [h for h in api if h["name"] == "12A_T2_CamA" and h["start"] - 1 <= at <= h["end"] + 1]
        assert len(noted) == 1
        shown = page.locator(".hit:has(.hitnotes:not([hidden]))")
        assert shown.locator(".clip").inner_text() == "12A_T2_CamA"
        assert "car horn" in shown.locator(".hitnotes").inner_text()


def test_the_search_pages_player_circles_the_take_playing(index, tmp_path):
    from test_server_browser import ARGS, CHROMIUM

    from playwright.sync_api import sync_playwright

    line = "We have to follow the data, not the calendar."
    for read_only in (False, True):
        gen = served(create_app(index, proxies=False, read_only=read_only))
        base = next(gen)
        try:
            with sync_playwright() as pw:
                ctx = pw.chromium.launch_persistent_context(str(tmp_path / f"profile{read_only}"),
                                                            executable_path=str(CHROMIUM), headless=True, args=ARGS)
                page = ctx.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"{base}/?q={quote(line)}")
                page.wait_for_function("() => document.querySelectorAll('.hit').length > 1", timeout=30000)
                names = page.locator(".hit .clip").all_inner_texts()
                k = names.index("12A_T1_CamA")
                page.locator(".hit").nth(k).locator(".text").click()
                page.wait_for_function("() => document.getElementById('tc').textContent.indexOf('-') < 0",
                                       timeout=30000)
                if read_only:           # a read-only room offers no circle
                    assert page.locator("#circle-take").is_hidden()
                    ctx.close()
                    assert not errors, errors
                    continue
                button = page.locator("#circle-take")
                assert button.inner_text() == "◯ circle"
                other = next(i for i, n in enumerate(names) if n != "12A_T1_CamA")
                page.locator(".hit").nth(other).locator(".pick").check()
                button.click()
                page.wait_for_function("() => document.getElementById('circle-take').textContent === '● circled'",
                                       timeout=15000)
                circled = {t["name"] for t in page.request.get(f"{base}/api/takes").json() if t["circled"]}
                assert circled == {"12A_T1_CamA"}
                # every hit of that take is marked ●, no other; a ticked hit stays ticked
                page.wait_for_function("() => document.querySelectorAll('.hit .circled').length > 0")
                marked = [page.locator(".hit").nth(i).locator(".circled").count() for i in range(len(names))]
                assert marked == [int(n == "12A_T1_CamA") for n in names]
                assert page.locator(".hit").nth(other).locator(".pick").is_checked()
                button.click()
                page.wait_for_function("() => document.getElementById('circle-take').textContent === '◯ circle'",
                                       timeout=15000)
                assert page.locator(".hit .circled").count() == 0
                assert not any(t["circled"] for t in page.request.get(f"{base}/api/takes").json())
                ctx.close()
                assert not errors, errors
        finally:
            gen.close()


@pytest.mark.slow
def test_marks_go_in_all_through_a_real_index_run(index, tmp_path):
    """While `dailies index --force` re-indexes the shoot in another process (every take upserted, its lines and
    vectors written again), circles and notes written again and again all go in, and all survive the run."""
    import subprocess
    import time

    from conftest import DAILIES, FIXTURES

    run = subprocess.Popen([DAILIES, "index", str(FIXTURES / "shoot"), "--index", str(index), "--force",
                            "--no-visual"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    names = ["12A_T1_CamA", "12A_T2_CamA", "12A_T3_CamB", "12A_WT1"]
    added, k = [], 0
    t0 = time.monotonic()
    try:
        while run.poll() is None and time.monotonic() - t0 < 600:
            name = names[k % len(names)]
            added.append(cli_json("notes", "add", name, "0.5", f"note {k}", "--index", str(index), "--json"))
            done = cli_json("circle", name, "--note", f"circle {k}", "--index", str(index), "--json")
            assert done["circled"] and done["circle_note"] == f"circle {k}"
            k += 1
    finally:
        out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err
    assert k >= 3, f"only {k} rounds while the index ran: the test did not overlap the run"
    assert cli_json("notes", "list", "--index", str(index), "--json") == \
        sorted(added, key=lambda n: (n["name"], n["take_id"], n["frame"], n["note_id"]))
    status = {t["name"]: t for t in cli_json("status", "--index", str(index), "--json")["takes"]}
    last = {names[i % len(names)]: i for i in range(k)}
    assert {n: t["circle_note"] for n, t in status.items() if t["circled"]} == \
        {n: f"circle {i}" for n, i in last.items()}


# ------------------------------------------------------------------------------------------ notes over a stretch

def test_a_note_over_a_stretch_has_both_ends_in_the_takes_own_counting(client, index):
    # 12A_T2_CamA: 29.97 drop-frame from 01:00:59;20; 01:01:00;02 is frame 10, 01:01:01;10 frame 48
    a = cli_json("notes", "add", "12A_T2_CamA", "01:01:00;02", "boom dips in", "--to", "01:01:01:10", "--by", "Ana",
                 "--index", str(index), "--json")
    assert (a["frame"], a["tc"], a["end_frame"], a["tc_end"]) == (10, "01:01:00;02", 48, "01:01:01;10")
    assert a["end_seconds"] == round(49 * 1001 / 30000, 6)            # the end of its last frame
    # given the other way round, the ends are swapped; a stretch of one frame is a note at that frame
    b = cli_json("notes", "add", "12A_T2_CamA", "2", "backwards", "--to", "1", "--index", str(index), "--json")
    assert (b["frame"], b["end_frame"]) == (29, 59)          # 1 s and 2 s fall in frames 29 and 59 at 29.97
    c = cli_json("notes", "add", "12A_T2_CamA", "01:01:00;02", "one frame", "--to", "01:01:00;02",
                 "--index", str(index), "--json")
    assert (c["frame"], c["end_frame"], c["tc_end"], c["end_seconds"]) == (10, None, None, None)
    listed = run_cli("notes", "list", "--index", str(index), check=True).stdout
    assert "01:01:00;02-01:01:01;10" in listed and "boom dips in" in listed
    # the API: the player's frames, or TCs as the command takes them; the same record either way
    t2 = takes(client)["12A_T2_CamA"]
    r = client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": 10, "end_frame": 48, "text": "boom dips in",
                                                              "author": "Ana"})
    assert r.status_code == 200, r.text
    r2 = client.post(f"/api/takes/{t2['take_id']}/notes", json={"at": "01:01:00;02", "to": "01:01:01;10",
                                                               "text": "boom dips in", "author": "Ana"})
    same = ("frame", "tc", "end_frame", "tc_end", "end_seconds", "text", "author")
    assert {k: r.json()[k] for k in same} == {k: r2.json()[k] for k in same} == {k: a[k] for k in same}


@pytest.mark.parametrize("body, says", [
    ({"frame": 10, "end_frame": 10 ** 6, "text": "x"}, "is not a frame of 12A_T2_CamA"),
    ({"frame": 10, "end_frame": "48", "text": "x"}, "'end_frame' must be a whole number"),
    ({"at": "01:01:00;02", "to": "02:00:00;00", "text": "x"}, "is outside 12A_T2_CamA"),
    ({"at": "01:01:00;02", "to": "soon", "text": "x"}, "'soon' is not a time"),
    ({"frame": 10, "end_frame": 48, "to": "01:01:01;10", "text": "x"}, "with 'end_frame' or 'to', one of them"),
])
def test_a_bad_stretch_is_400_with_one_sentence_and_writes_nothing(client, body, says):
    t2 = takes(client)["12A_T2_CamA"]
    r = client.post(f"/api/takes/{t2['take_id']}/notes", json=body)
    assert r.status_code == 400 and says in r.json()["error"], r.text
    assert client.get("/api/notes").json() == []


def test_a_stretch_becomes_a_marker_as_long_as_it_and_a_log_line_with_both_ends(client, index, tmp_path):
    import opentimelineio as otio

    t2 = takes(client)["12A_T2_CamA"]
    client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": 10, "end_frame": 48, "text": "boom dips in",
                                                          "author": "Ana"})
    client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": 700, "text": "focus buzz"})
    run_cli("export", "markers", "--notes", "--index", str(index), "-o", str(tmp_path / "n.otio"), check=True)
    clip = otio.adapters.read_from_file(str(tmp_path / "n.otio")).find_clips()[0]
    start = clip.source_range.start_time.value
    assert {m.name: (round(m.marked_range.start_time.value - start), round(m.marked_range.duration.value))
            for m in clip.markers} == {"NOTE (Ana): boom dips in": (10, 39), "NOTE: focus buzz": (700, 1)}
    run_cli("export", "markers", "--notes", "--index", str(index), "-f", "avid", "-o", str(tmp_path / "avid"),
            check=True)
    rows = [r.split("\t") for r in (tmp_path / "avid" / "12A_T2_CamA.txt").read_text().splitlines()]
    assert [(r[1], r[4], r[5]) for r in rows] == [("01:01:00;02", "NOTE (Ana): boom dips in", "39"),
                                                  (t2_tc(client, 700), "NOTE: focus buzz", "1")]
    run_cli("export", "ale", "--index", str(index), "-o", str(tmp_path / "day.ale"), check=True)
    ale = "".join(p.read_text() for p in tmp_path.glob("day*.ale"))       # one ALE per timecode base
    assert "01:01:00;02-01:01:01;10 boom dips in (Ana)" in ale


def t2_tc(client, frame: int) -> str:
    return next(n["tc"] for n in client.get("/api/notes").json() if n["frame"] == frame)


def test_a_schema_5_index_is_upgraded_and_its_notes_stay_at_one_frame(client, index):
    import sqlite3

    from indexer.store import SCHEMA_VERSION, Index

    t2 = takes(client)["12A_T2_CamA"]
    client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": 10, "text": "boom in frame"})
    client.close()
    with sqlite3.connect(index / "catalog.sqlite") as db:            # as dailies 0.x at schema 5 left it
        db.execute("ALTER TABLE review_notes DROP COLUMN end_frame")
        db.execute("UPDATE meta SET value='5' WHERE key='schema_version'")
    with Index.open(index) as idx:
        assert SCHEMA_VERSION == 6
        assert idx._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "6"
    (n,) = cli_json("notes", "list", "--index", str(index), "--json")
    assert (n["frame"], n["end_frame"], n["text"]) == (10, None, "boom in frame")
    done = cli_json("notes", "add", "12A_T2_CamA", "1", "a stretch", "--to", "2", "--index", str(index), "--json")
    assert (done["frame"], done["end_frame"]) == (29, 59)


def test_i_then_m_in_the_player_notes_the_stretch_between(index, tmp_path):
    """I marks where a stretch starts (shown, and forgotten by a click); M and a note then cover it to the frame
    shown, here across the drop-frame minute: 01:00:59;29 to 01:01:00;05 is frames 9 to 13."""
    with room(index, tmp_path) as (page, base, errors):
        t2 = {t["name"]: t for t in page.request.get(f"{base}/api/takes").json()}["12A_T2_CamA"]
        rate = Fraction(t2["rate"])
        page.goto(f"{base}/take/{t2['take_id']}")
        page.wait_for_function("() => document.getElementById('video').readyState >= 1", timeout=30000)

        def show(frame: int, tc: str) -> None:
            page.evaluate("t => { const v = document.getElementById('video'); v.pause(); v.currentTime = t; }",
                          float(Fraction(frame) / rate) + 1e-4)
            page.wait_for_function(f"() => document.getElementById('tc').textContent === '{tc}'", timeout=15000)

        show(8, "01:00:59;28")
        page.evaluate("() => document.activeElement.blur()")
        page.keyboard.press("i")
        assert page.locator("#note-from").inner_text() == "from 01:00:59;28 ×"
        page.locator("#note-from").click()                  # forgotten
        assert page.locator("#note-from").is_hidden()
        show(9, "01:00:59;29")
        page.keyboard.press("i")                            # marked again, a frame later
        for _ in range(4):
            page.keyboard.press("ArrowRight")
        page.wait_for_function("() => document.getElementById('tc').textContent === '01:01:00;05'",
                               timeout=15000)
        page.keyboard.press("m")
        page.wait_for_function("() => document.activeElement.id === 'note-text'")
        page.keyboard.type("dolly bump")
        page.press("#note-text", "Enter")
        page.wait_for_function("() => document.querySelectorAll('#notes li').length === 1", timeout=15000)
        assert page.locator("#notes .ntc").inner_text() == "01:00:59;29-01:01:00;05"
        assert page.locator("#note-from").is_hidden()       # the next note is at one frame again
        (n,) = page.request.get(f"{base}/api/notes").json()
        assert (n["frame"], n["end_frame"], n["text"]) == (9, 13, "dolly bump")


def test_a_string_outs_clip_carries_the_part_of_a_stretch_inside_its_cut(client, index, tmp_path):
    """A note over a stretch that starts before a clip's cut and ends inside it is marked on the clip from the cut's
    first frame (handles included) to the stretch's last frame: OTIO, FCP 7 XML and FCPXML."""
    import math
    import re as _re

    import opentimelineio as otio

    line = "The comet won't wait for office hours, Leo."
    t2 = takes(client)["12A_T2_CamA"]
    rate = Fraction(t2["rate"])
    hit = next(h for h in client.get("/api/search/line", params={"q": line}).json() if h["name"] == "12A_T2_CamA")
    last = math.floor(hit["start"] * rate) + 10
    client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": 2, "end_frame": last, "text": "plane overhead"})
    for fmt in ("otio", "xml"):
        out = tmp_path / f"cut.{fmt}"
        run_cli("export", "stringout", "--line", line, "--index", str(index), "-o", str(out), check=True)
        clip = next(c for c in otio.adapters.read_from_file(str(out)).find_clips() if c.name == "12A_T2_CamA")
        # OTIO: clip and markers count from the file's start TC; FCP 7 XML read back: the clip at its source TC, the
        # markers from the file's first frame
        zero = clip.media_reference.available_range.start_time.value if fmt == "otio" else 0
        cut_in = round(clip.source_range.start_time.value - (zero if fmt == "otio" else t2["start_frame"]))
        assert 2 < cut_in < last
        (m,) = [m for m in clip.markers if m.name.startswith("NOTE")]
        assert (round(m.marked_range.start_time.value - zero), round(m.marked_range.duration.value)) == \
            (cut_in, last - cut_in + 1), fmt
    out = tmp_path / "cut.fcpxml"
    run_cli("export", "stringout", "--line", line, "--index", str(index), "-o", str(out), check=True)
    (start, duration), = _re.findall(r'<marker start="([^"]+)" duration="([^"]+)" value="NOTE[^"]*"', out.read_text())
    assert Fraction(start.rstrip("s")) == Fraction(t2["start_frame"] + cut_in) / rate
    assert Fraction(duration.rstrip("s")) == Fraction(last - cut_in + 1) / rate


# ------------------------------------------------------------------------------------------ editing a note

def test_a_notes_text_is_edited_by_the_command_and_the_api_alike(client, index):
    t2 = takes(client)["12A_T2_CamA"]
    note = client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": 10, "end_frame": 48, "text": "boom dip",
                                                                  "author": "Ana"}).json()
    assert note["edited_at"] is None
    done = cli_json("notes", "edit", str(note["note_id"]), "boom  dips in", "--index", str(index), "--json")
    kept = ("note_id", "frame", "tc", "end_frame", "tc_end", "author", "created_at")
    assert {k: done[k] for k in kept} == {k: note[k] for k in kept}          # only the text changes
    assert done["text"] == "boom dips in" and done["edited_at"]
    r = client.patch(f"/api/notes/{note['note_id']}", json={"text": "boom dips in on her line"})
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "boom dips in on her line"
    assert client.get("/api/notes").json() == [r.json()] == cli_json("notes", "list", "--index", str(index), "--json")
    # the markers carry the text as it now is
    run_cli("export", "markers", "--notes", "--index", str(index), "-f", "csv", "-o", str(index / "n.csv"), check=True)
    assert "NOTE (Ana): boom dips in on her line" in (index / "n.csv").read_text()


@pytest.mark.parametrize("path, body, says, status", [
    ("/api/notes/1", {"text": "  "}, "A note needs its text, e.g. `dailies notes edit 1", 400),
    ("/api/notes/1", {"text": 5}, "Give the note's new text", 400),
    ("/api/notes/1", {}, "Give the note's new text", 400),
    ("/api/notes/1", {"text": "x" * 2001}, "keep it under 2000", 400),
    ("/api/notes/99", {"text": "x"}, "No note 99 in the index", 404),
    ("/api/notes/one", {"text": "x"}, "'one' is not a note number", 400),
])
def test_a_bad_edit_is_one_sentence_and_changes_nothing(client, path, body, says, status):
    t2 = takes(client)["12A_T2_CamA"]
    before = client.post(f"/api/takes/{t2['take_id']}/notes", json={"frame": 10, "text": "boom"}).json()
    r = client.patch(path, json=body)
    assert r.status_code == status and says in r.json()["error"], r.text
    assert client.get("/api/notes").json() == [before]


def test_editing_needs_the_token_and_a_read_only_room_refuses_it(index):
    done = cli_json("notes", "add", "12A_T1_CamA", "1", "boom", "--index", str(index), "--json")
    with TestClient(create_app(index, proxies=False, read_only=True), raise_server_exceptions=False) as c:
        r = c.patch(f"/api/notes/{done['note_id']}", json={"text": "x"})
        assert r.status_code == 403 and "read-only" in r.json()["error"]
    with TestClient(create_app(index, token=TOKEN, proxies=False), raise_server_exceptions=False) as c:
        assert c.patch(f"/api/notes/{done['note_id']}", json={"text": "x"}).status_code == 401
        ok = c.patch(f"/api/notes/{done['note_id']}", json={"text": "boom in"},
                     headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()["text"] == "boom in"
    proc = run_cli("notes", "edit", str(done["note_id"]), "", "--index", str(index))
    assert proc.returncode != 0 and "A note needs its text" in proc.stderr and "Traceback" not in proc.stderr


def test_a_click_on_a_notes_text_in_the_player_edits_it(index, tmp_path):
    """Click the text, change it, Enter: the list and the index say the new text. Esc drops a change. Another
    note arriving meanwhile does not take the edit away (the list is not redrawn under the hands)."""
    first = cli_json("notes", "add", "12A_T2_CamA", "01:01:00;02", "boom dip", "--by", "Ana", "--index", str(index),
                     "--json")
    with room(index, tmp_path) as (page, base, errors):
        page.goto(f"{base}/take/{first['take_id']}")
        page.wait_for_function("() => document.querySelectorAll('#notes li').length === 1", timeout=30000)
        page.locator("#notes .ntext").click()
        page.locator("#notes .nedit").fill("boom dips in, drop")
        page.keyboard.press("Escape")                       # dropped
        page.wait_for_function("() => { const e = document.querySelector('#notes .ntext'); "
                               "return e && e.textContent === 'boom dip'; }")
        page.locator("#notes .ntext").click()
        page.locator("#notes .nedit").fill("boom dips in on her line")
        # a colleague's note meanwhile: the next refresh must not wipe the edit in progress
        cli_json("notes", "add", "12A_T2_CamA", "2", "focus buzz", "--index", str(index), "--json")
        page.wait_for_timeout(11000)                        # one 10 s refresh has passed
        assert page.locator("#notes .nedit").input_value() == "boom dips in on her line"
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.querySelectorAll('#notes li').length === 2", timeout=15000)
        assert page.locator("#notes .ntext").first.inner_text() == "boom dips in on her line"
        stored = {n["note_id"]: n for n in page.request.get(f"{base}/api/notes").json()}
        assert stored[first["note_id"]]["text"] == "boom dips in on her line"
        assert stored[first["note_id"]]["edited_at"]
