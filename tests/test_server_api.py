"""The review room's JSON API and media (`dailies serve`), with Starlette's test client on the fixture shoot.

The API must return exactly what the CLI's --json prints (one code path), serve media by take id only with
range requests, check the token on every request, and answer errors with one sentence, never a traceback.
"""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import FIXTURES, run_cli, served
from indexer.server import HEAP, create_app

LINE7 = "We have to follow the data, not the calendar."
TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def client(shoot_index):
    with TestClient(create_app(shoot_index, proxies=False), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def takes(client) -> dict[str, dict]:
    r = client.get("/api/takes")
    assert r.status_code == 200
    return {t["name"]: t for t in r.json()}


def cli_json(*args: str):
    return json.loads(run_cli(*args, check=True).stdout)


def without_media_url(hits: list[dict]) -> list[dict]:
    for h in hits:
        assert h["media_url"] == f"/media/{h['take_id']}"
    return [{k: v for k, v in h.items() if k != "media_url"} for h in hits]


def test_search_line_is_exactly_the_cli_json(client, shoot_index):
    api = client.get("/api/search/line", params={"q": LINE7})
    assert api.status_code == 200
    cli = cli_json("search", "line", LINE7, "--index", str(shoot_index), "--json")
    assert len(cli) >= 4
    assert without_media_url(api.json()) == cli


def test_search_line_filters_are_the_cli_filters(client, shoot_index):
    api = client.get("/api/search/line", params={"q": LINE7, "scene": "12A", "take": "12A_T2_CamA", "limit": "3",
                                                 "min_match": "0.6", "semantic": "0"})
    cli = cli_json("search", "line", LINE7, "--scene", "12A", "--take", "12A_T2_CamA", "--limit", "3",
                   "--min-match", "0.6", "--no-semantic", "--index", str(shoot_index), "--json")
    assert cli and {h["name"] for h in cli} == {"12A_T2_CamA"}
    assert without_media_url(api.json()) == cli


def test_status_and_takes_mirror_the_cli(client, shoot_index, takes, manifest):
    cli = cli_json("status", "--index", str(shoot_index), "--json")
    assert client.get("/api/status").json() == cli
    assert {t["name"] for t in manifest["takes"]} <= set(takes)
    assert takes["12A_WT1"]["media_kind"] == "audio" and takes["12A_T1_CamA"]["media_kind"] == "video"
    t2 = takes["12A_T2_CamA"]
    assert (t2["start_tc"], t2["drop_frame"], t2["rate"]) == ("01:00:59;20", True, "30000/1001")
    # H.264/AAC originals and a WAV are served as they are: no proxy.
    assert not any(t["proxy"] for t in takes.values())


def test_take_detail_is_the_cli_lines_and_shots(client, shoot_index, takes):
    tid = takes["12A_T1_CamA"]["take_id"]
    r = client.get(f"/api/takes/{tid}")
    assert r.status_code == 200
    body = r.json()
    assert body["lines"] == cli_json("lines", tid, "--index", str(shoot_index), "--json")["lines"]
    assert body["shots"] == cli_json("shots", tid, "--index", str(shoot_index), "--json")["shots"]
    assert len(body["shots"]) == 4 and body["media_url"] == f"/media/{tid}"


def test_take_detail_has_no_script_without_a_screenplay(client, takes):
    body = client.get(f"/api/takes/{takes['12A_T1_CamA']['take_id']}").json()
    assert "script" in body and body["script"] is None


def test_take_detail_has_its_script_lines_when_a_screenplay_is_imported(scripted_index, manifest):
    from indexer.timecode import Clock, tc_to_frames

    with TestClient(create_app(scripted_index, proxies=False), raise_server_exceptions=False) as c:
        takes = {t["name"]: t for t in c.get("/api/takes").json()}
        truth = next(t for t in manifest["takes"] if t["name"] == "12A_T2_CamA")        # drop-frame, skips 12A/3
        r = c.get(f"/api/takes/{takes['12A_T2_CamA']['take_id']}")
        assert r.status_code == 200
        sc = r.json()["script"]
    assert (sc["scene"], sc["scene_source"], sc["stored"]) == ("12A", "name", True)
    # Exactly what `dailies script take TAKE --json` prints (one code path).
    assert sc["lines"] == cli_json("script", "take", sc["take_id"], "--index", str(scripted_index), "--json")
    by_id = {}
    for ln in sc["lines"]:
        by_id.setdefault(ln["line_id"], []).append(ln)
    # Every line of the scene is there, in script order.
    assert list(by_id) == [s["id"] for s in manifest["script_lines"]]
    seven = next(s for s in manifest["script_lines"] if s["id"] == "12A/7")
    (got,) = by_id["12A/7"]
    want = next(d for d in truth["deliveries"] if d["script_line"] == 7)
    assert (got["status"], got["character"], got["text"]) == ("delivered", seven["character"], seven["text"])
    rate = Fraction(truth["rate"])
    clock = Clock.from_start_tc(truth["start_tc"], rate)
    assert ";" in got["tc_in"] and got["page"] is not None
    assert abs(tc_to_frames(got["tc_in"], rate) - tc_to_frames(clock.tc_in(want["start"]), rate)) <= 3
    assert abs(tc_to_frames(got["tc_out"], rate) - tc_to_frames(clock.tc_out(want["end"]), rate)) <= 3
    assert abs(got["start"] - want["start"]) < 0.25 and abs(got["end"] - want["end"]) < 0.25
    (skipped,) = by_id["12A/3"]
    assert skipped["status"] == "missing" and skipped["start"] is None and skipped["tc_in"] is None


def test_media_by_take_id_with_range_requests(client, takes):
    t = takes["12A_T3_CamB"]
    data = (FIXTURES / "shoot" / "12A_T3_CamB.mp4").read_bytes()
    whole = client.get(t["media_url"])
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "video/mp4"
    part = client.get(t["media_url"], headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    assert part.content == data[1000:2000]
    wav = client.get(takes["12A_WT1"]["media_url"], headers={"Range": "bytes=0-3"})
    assert wav.status_code == 206 and wav.content == b"RIFF" and wav.headers["content-type"] == "audio/wav"


@pytest.mark.parametrize("url", ["/media/..%2F..%2F..%2Fetc%2Fpasswd", "/media/%2Fetc%2Fpasswd",
                                 "/media/nosuchtake", "/media/fixtures/shoot/12A_T1_CamA.mov"])
def test_media_never_from_a_path_in_the_request(client, url):
    r = client.get(url)
    assert r.status_code == 404
    assert b"root:" not in r.content and b"ftyp" not in r.content[:16]


def test_thumbnail_is_a_jpeg_of_the_frame(client, takes):
    r = client.get(f"{takes['12A_T1_CamA']['media_url']}/thumb", params={"t": "12.5"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"


def test_errors_are_one_sentence_never_a_traceback(client, takes):
    cases = [
        ("/api/search/line", 400, "Give some words"),
        ("/api/search/line?q=hello&limit=lots", 400, "limit"),
        ("/api/takes/nosuchtake", 404, "No take nosuchtake"),
        ("/api/search/speaker?name=NOBODY_AT_ALL", 400, ""),
    ]
    for url, status, needle in cases:
        r = client.get(url)
        assert r.status_code == status, url
        msg = r.json()["error"]
        assert needle in msg and "Traceback" not in msg and "\n" not in msg
    page = client.get("/no/such/page")
    assert page.status_code == 404 and "Traceback" not in page.text
    thumb = client.get(f"{takes['12A_WT1']['media_url']}/thumb")          # a sound file has no picture
    assert thumb.status_code == 400 and "no picture" in thumb.text and "Traceback" not in thumb.text


def test_visual_search_says_plainly_when_there_are_no_picture_vectors(client, shoot_index):
    status = client.get("/api/status").json()
    r = client.get("/api/search/visual", params={"q": "a purple sun over a field"})
    if status["frames"]:
        assert r.status_code == 200 and isinstance(r.json(), list)
    else:
        assert r.status_code == 400 and "CLIP" in r.json()["error"]


def test_pages_render(client, takes):
    home = client.get("/")
    assert home.status_code == 200 and 'id="q"' in home.text and "/static/search.js" in home.text
    page = client.get(f"/take/{takes['12A_T2_CamA']['take_id']}")
    assert page.status_code == 200 and "/static/take.js" in page.text
    for asset in ("app.css", "tc.js", "player.js", "search.js", "take.js"):
        assert client.get(f"/static/{asset}").status_code == 200
    # Every asset ships in the package: nothing from another origin.
    assert "http://" not in home.text and "https://" not in home.text


def test_token_is_checked_on_pages_api_media_and_assets(shoot_index, takes):
    media = takes["12A_T1_CamA"]["media_url"]
    with TestClient(create_app(shoot_index, token=TOKEN, proxies=False), raise_server_exceptions=False) as c:
        for url in ("/", "/api/status", media, "/static/player.js", f"/take/{takes['12A_T1_CamA']['take_id']}"):
            assert c.get(url).status_code == 401, url
            assert c.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401, url
            assert c.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code in (200, 206), url
        assert c.get("/?token=wrong", follow_redirects=False).status_code == 401
        assert "error" in c.get("/api/status").json()
        # Opening /?token=TOKEN once sets a cookie; after that the browser needs nothing more.
        first = c.get(f"/?token={TOKEN}&q=coffee", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/?q=coffee"
        assert "dailies_token" in first.headers["set-cookie"] and "HttpOnly" in first.headers["set-cookie"]
        assert c.get("/api/status").status_code == 200
        assert c.get(media, headers={"Range": "bytes=0-9"}).status_code == 206


def test_new_takes_appear_without_restart_and_missing_media_is_said(tmp_path):
    from indexer.config import IndexSettings
    from indexer.pipeline import Indexer
    from indexer.store import Index

    src = tmp_path / "media" / "12A_T4_CamC_MOS.mov"
    src.parent.mkdir()
    shutil.copy(FIXTURES / "shoot" / src.name, src)
    index = tmp_path / "index"
    Index.open_writer(index).close()
    with TestClient(create_app(index, proxies=False, refresh=0), raise_server_exceptions=False) as c:
        assert c.get("/api/takes").json() == []
        # The first search freezes the long-lived heap (kept out of full collections) ...
        HEAP.thaw()
        assert c.get("/api/search/line", params={"q": LINE7}).json() == []
        assert gc.get_freeze_count() > 0
        # `dailies index` writes while the server reads; the take appears without a restart.
        with Index.open_writer(index) as idx:
            Indexer(idx, IndexSettings(speakers=False, visual=False)).run([src])
        takes = c.get("/api/takes").json()
        assert [t["name"] for t in takes] == ["12A_T4_CamC_MOS"]
        # ... and reopening the index after the write thaws it, so the dropped clients can be collected.
        assert gc.get_freeze_count() == 0
        tid = takes[0]["take_id"]
        assert c.get(f"/media/{tid}", headers={"Range": "bytes=0-9"}).status_code == 206
        # The media moves away: the take still answers, and says its media is missing.
        src.rename(tmp_path / "elsewhere.mov")
        detail = c.get(f"/api/takes/{tid}").json()
        assert detail["media_missing"] is True and len(detail["shots"]) == 3
        r = c.get(f"/media/{tid}")
        assert r.status_code == 404 and "missing" in r.text and "Traceback" not in r.text


def test_serve_on_the_lan_generates_a_token_and_checks_it(tmp_path):
    import re
    import socket
    import subprocess
    import time

    import httpx

    from conftest import DAILIES
    from indexer.store import Index

    index = tmp_path / "index"
    Index.open_writer(index).close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([DAILIES, "serve", "--index", str(index), "--host", "0.0.0.0", "--port", str(port)],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        m = re.search(r"\?token=(\S+)", line)
        assert m, line
        token = m.group(1)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                r = httpx.get(f"{base}/api/status")
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert r.status_code == 401
        assert httpx.get(f"{base}/api/status", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_without_an_index_is_one_sentence(tmp_path):
    proc = run_cli("serve", "--index", str(tmp_path / "nothing-here"))
    assert proc.returncode != 0
    assert "No dailies index" in proc.stderr and "Traceback" not in proc.stderr


def test_read_only_writes_nothing_into_the_index(shoot_index, takes):
    tid = takes["12A_T3_CamB"]["take_id"]
    before = sorted(p.relative_to(shoot_index) for p in shoot_index.rglob("*") if "chroma" not in p.parts)
    with TestClient(create_app(shoot_index, read_only=True), raise_server_exceptions=False) as c:
        r = c.get(f"/media/{tid}/thumb", params={"t": "33.3", "w": "97"})
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
    after = sorted(p.relative_to(shoot_index) for p in shoot_index.rglob("*") if "chroma" not in p.parts)
    assert [p for p in after if p not in before and not p.name.startswith("catalog.sqlite")] == []


def test_picture_search_by_a_dropped_still(client, takes):
    still = client.get(f"{takes['12A_T1_CamA']['media_url']}/thumb", params={"t": "5"}).content
    status = client.get("/api/status").json()
    r = client.post("/api/search/visual", content=still, headers={"Content-Type": "image/jpeg"})
    if status["frames"]:
        assert r.status_code == 200 and r.json()[0]["name"] == "12A_T1_CamA"
    else:
        assert r.status_code == 400 and "CLIP" in r.json()["error"]
    bad = client.post("/api/search/visual", content=b"not an image")
    assert bad.status_code == 400 and "could not be read" in bad.json()["error"]


@pytest.mark.slow
def test_vectors_the_writer_adds_reach_a_running_server(tmp_path):
    """An embedded vector client that has answered a query keeps its vectors in memory; the server must
    see what `dailies index` (another process) adds while it runs, for semantic candidates too."""
    import wave

    import numpy as np

    from conftest import DAILIES
    from indexer import embed
    from indexer.config import IndexSettings
    from indexer.pipeline import Indexer
    from indexer.store import Index

    a, b = tmp_path / "12A_WT1.wav", tmp_path / "12A_WT2.wav"
    shutil.copy(FIXTURES / "shoot" / a.name, a)
    with wave.open(str(a)) as w:                     # the same speech, other bytes: another take
        params, pcm = w.getparams(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    with wave.open(str(b), "wb") as w:
        w.setparams(params)
        w.writeframes((pcm * 0.7).astype("<i2").tobytes())
    index = tmp_path / "index"
    with Index.open_writer(index) as idx:
        Indexer(idx, IndexSettings(speakers=False, visual=False)).run([a])
    app = create_app(index, proxies=False, refresh=0)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert {h["name"] for h in c.get("/api/search/line", params={"q": LINE7}).json()} == {"12A_WT1"}
        subprocess.run([DAILIES, "index", str(b), "--index", str(index), "--no-speakers", "--no-visual"],
                       check=True, capture_output=True)
        assert {h["name"] for h in c.get("/api/search/line", params={"q": LINE7}).json()} == {"12A_WT1", "12A_WT2"}
        q = embed.embed([LINE7])[0].tolist()
        with app.state.pool.reader() as idx:
            found = idx.vectors.nearest("lines", q, 2)["ids"][0]
        takes = {t["take_id"]: t["name"] for t in c.get("/api/takes").json()}
        assert {takes[i.rsplit("-", 1)[0]] for i in found} == {"12A_WT1", "12A_WT2"}


def test_serve_with_workers_answers_many_first_searches_at_once(shoot_index):
    """`dailies serve --workers 2`: two server processes, each meeting its first searches from many threads at
    once (embedded Chroma and the text embedding are opened by the first of them), all answered as the CLI
    answers, the token checked by every process."""
    import socket
    import threading
    import time

    import httpx

    from conftest import DAILIES

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([DAILIES, "serve", "--index", str(shoot_index), "--port", str(port), "--workers", "2",
                             "--read-only", "--token", "tok"], stderr=subprocess.PIPE, text=True)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": "Bearer tok"}
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/api/status", headers=auth).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        children = [p for p in Path("/proc").iterdir() if p.name.isdigit()
                    and _ppid(p) == proc.pid]
        assert len(children) >= 2, "expected two server processes"
        want = json.loads(run_cli("search", "line", LINE7, "--index", str(shoot_index), "--json", check=True).stdout)
        got: list = []

        def ask():
            with httpx.Client(base_url=base, headers=auth, timeout=120) as c:
                for _ in range(3):
                    r = c.get("/api/search/line", params={"q": LINE7})
                    got.append((r.status_code, r.json()))

        threads = [threading.Thread(target=ask) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(got) == 36 and {code for code, _ in got} == {200}, [g for g in got if g[0] != 200][:2]
        for _, hits in got:
            assert [{k: v for k, v in h.items() if k != "media_url"} for h in hits] == want
        assert all(httpx.get(f"{base}/api/status").status_code == 401 for _ in range(6))
    finally:
        proc.terminate()
        proc.wait(20)


def _ppid(proc_dir: Path) -> int | None:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_a_warm_server_keeps_the_commonest_words_shares_and_answers_the_same(shoot_index, client):
    """`dailies serve` reads the commonest words' full-text shares on a thread at start (issue 15): they are
    kept for every reader of the index, and searches answer exactly as a server that did not warm up."""
    from indexer.store import Index
    from indexer.store.fulltext import _PhraseScores

    _PhraseScores._by_path.clear()
    with Index.open(shoot_index) as idx:
        common = idx.common_words(3)
        assert idx._bm25._entries == 0
    app = create_app(shoot_index, proxies=False, warm=True)
    assert app.state.pool.warmed.wait(60)
    with Index.open(shoot_index) as idx:
        kept = idx._bm25._shares
        assert all(f'norm:"{w}"' in kept for w in common) and idx._bm25._entries > 100
    with TestClient(app, raise_server_exceptions=False) as warm:
        for q in (LINE7, "the comet", "you remembered"):
            assert warm.get("/api/search/line", params={"q": q}).json() == \
                client.get("/api/search/line", params={"q": q}).json()


def test_line_searches_take_turns_and_one_whose_page_went_away_is_not_run(shoot_index, monkeypatch):
    """A server runs at most ``searches`` line searches at once (a search is CPU work under the GIL: more at once
    only finish later); the others wait, first come first served. A search whose browser went away while it
    waited (the search page asks for the newer line as the user types on) is not run."""
    import socket
    import threading
    import time

    import httpx

    from indexer import views

    real, lock, hold = views.line_hits, threading.Lock(), threading.Event()
    ran: list[str] = []
    running, most = [0], [0]

    def counted(idx, text, **kw):              # the real search, counted; the first one holds its turn a while
        with lock:
            ran.append(text)
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            if len(ran) == 1:
                assert hold.wait(30)
            return real(idx, text, **kw)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(views, "line_hits", counted)
    server = served(create_app(shoot_index, proxies=False, searches=1))
    base = next(server)
    port = int(base.rsplit(":", 1)[1])
    got: dict[str, httpx.Response] = {}

    def ask(q: str):
        got[q] = httpx.get(base + "/api/search/line", params={"q": q}, timeout=60)

    try:
        first = threading.Thread(target=ask, args=("We have to follow the data",))
        first.start()
        while not ran:
            time.sleep(0.02)
        gone = socket.create_connection(("127.0.0.1", port))      # a page that asks, then goes away
        gone.sendall(b"GET /api/search/line?q=the+comet HTTP/1.1\r\nHost: localhost\r\n\r\n")
        time.sleep(0.3)
        gone.close()
        second = threading.Thread(target=ask, args=(LINE7,))
        second.start()
        time.sleep(0.5)
        assert ran == ["We have to follow the data"]                 # the others wait their turn
        hold.set()
        first.join(60)
        second.join(60)
    finally:
        hold.set()
        server.close()                                               # stops the server
    assert ran == ["We have to follow the data", LINE7] and most[0] == 1
    assert got[LINE7].status_code == 200 and len(got[LINE7].json()) >= 4
    assert got["We have to follow the data"].status_code == 200
