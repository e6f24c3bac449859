"""Circled takes and the voices page's changes through the review room's API (Starlette's test client) on a
copy of the fixture shoot with its screenplay imported: each change is the same function as the command
(`dailies circle`, `dailies speakers ...`), so the API and the CLI's --json agree before and after it, a
read-only room refuses it, circling goes on while another process writes the index, and a voice's change
then is refused at once.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import run_cli
from indexer.server import create_app

LINE7 = "We have to follow the data, not the calendar."
TOKEN = "edits-token"


def cli_json(*args: str):
    return json.loads(run_cli(*args, check=True).stdout)


@pytest.fixture()
def index(scripted_index, tmp_path) -> Path:
    """A copy of its own: these tests write."""
    path = tmp_path / "index"
    shutil.copytree(scripted_index, path)
    return path


@pytest.fixture()
def client(index):
    with TestClient(create_app(index, proxies=False), raise_server_exceptions=False) as c:
        yield c


def by_name(client) -> dict[str, dict]:
    return {t["name"]: t for t in client.get("/api/takes").json()}


def no_media(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "media_url"} for r in rows]


def voices_without_media(rows: list[dict]) -> list[dict]:
    out = []
    for v in rows:
        for c in v["clips"]:
            assert c["media_url"] == f"/media/{c['take_id']}"
        out.append({**v, "clips": no_media(v["clips"])})
    return out


# ------------------------------------------------------------------------------------------ circled takes

def test_circling_a_take_shows_in_takes_search_and_the_cli(client, index):
    takes = by_name(client)
    assert not any(t["circled"] for t in takes.values())
    t3 = takes["12A_T3_CamB"]
    r = client.post(f"/api/takes/{t3['take_id']}/circle", json={"circled": True, "note": "  best  \n performance "})
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["take_id"], done["circled"], done["circle_note"]) == (t3["take_id"], True, "best performance")
    takes = by_name(client)
    assert [n for n, t in takes.items() if t["circled"]] == ["12A_T3_CamB"]
    assert takes["12A_T3_CamB"]["circle_note"] == "best performance"
    assert client.get(f"/api/takes/{t3['take_id']}").json()["circled"] is True
    # Search hits carry it: every hit of T3, none of another take; the CLI's --json is the same list.
    hits = client.get("/api/search/line", params={"q": LINE7}).json()
    assert {h["name"] for h in hits if h["circled"]} == {"12A_T3_CamB"}
    assert all(h["circled"] == (h["name"] == "12A_T3_CamB") for h in hits)
    assert no_media(hits) == cli_json("search", "line", LINE7, "--index", str(index), "--json")
    status = cli_json("status", "--index", str(index), "--json")
    assert {t["name"]: t["circled"] for t in status["takes"]} == {n: t["circled"] for n, t in takes.items()}
    # The CLI table marks it.
    table = run_cli("search", "line", LINE7, "--index", str(index), check=True).stdout
    assert "●" in next(ln for ln in table.splitlines() if "12A_T3_CamB" in ln)
    # The lined script marks it (◯ after the take line's label).
    lined = {t["name"]: t for t in client.get("/api/script").json()["takes"]}
    assert {n for n, t in lined.items() if t["circled"]} == {"12A_T3_CamB"}
    assert "12A-3" in client.get("/script").text and " ◯" in client.get("/script").text
    # `dailies circle --off` takes it off; the API sees it at once.
    off = cli_json("circle", "12A_T3_CamB", "--off", "--index", str(index), "--json")
    assert (off["circled"], off["circle_note"]) == (False, None)
    assert not by_name(client)["12A_T3_CamB"]["circled"]
    assert not any(h["circled"] for h in client.get("/api/search/line", params={"q": LINE7}).json())


def test_circled_takes_are_in_the_ale_and_the_markers(client, index, tmp_path):
    import opentimelineio as otio

    takes = by_name(client)
    t1 = takes["12A_T1_CamA"]
    cli_json("circle", "12A_T1_CamA", "--note", "print it; focus soft at the end", "--index", str(index), "--json")
    run_cli("export", "ale", "--index", str(index), "-o", str(tmp_path / "shoot.ale"), check=True)
    seen = {}
    for path in tmp_path.glob("shoot_*.ale"):
        col = otio.adapters.read_from_file(str(path), adapter_name="ale")
        for clip in col:
            seen[clip.name] = dict(clip.metadata["ALE"])
    assert set(seen) == set(takes)
    assert (seen["12A_T1_CamA"]["Circled"], seen["12A_T1_CamA"]["Comments"]) == ("Y", "print it; focus soft at the end")
    assert all(seen[n]["Circled"] == "" for n in seen if n != "12A_T1_CamA")
    # Markers: the circled take among those exported gets "CIRCLED: note" at its first frame.
    run_cli("export", "markers", "--take", "12A_T1_CamA", "--take", "12A_T2_CamA", "--index", str(index),
            "-o", str(tmp_path / "m.otio"), check=True)
    col = otio.adapters.read_from_file(str(tmp_path / "m.otio"))
    names = {tl.name: [m.name for c in tl.find_clips() for m in c.markers] for tl in col}
    assert names["12A_T1_CamA"][0] == "CIRCLED: print it; focus soft at the end"
    assert not any(n.startswith("CIRCLED") for n in names["12A_T2_CamA"]) and len(names["12A_T2_CamA"]) > 3
    clip = col[[tl.name for tl in col].index("12A_T1_CamA")].find_clips()[0]
    first = clip.markers[0].marked_range.start_time
    assert round(first.value) == clip.source_range.start_time.value           # at the take's first frame
    # A string-out of a script line's deliveries says which are circled too.
    run_cli("export", "stringout", "--script-line", "12A/4", "--index", str(index), "-o", str(tmp_path / "s.otio"),
            check=True)
    cut = {c.name: c.metadata["dailies"]["circled"] for c in otio.adapters.read_from_file(str(tmp_path / "s.otio"))
           .find_clips()}
    assert cut.get("12A_T1_CamA") is True and len(cut) >= 2 and sum(cut.values()) == 1, cut
    # --circled alone: only the circled takes' markers.
    out = run_cli("export", "markers", "--circled", "--index", str(index), "-o", str(tmp_path / "c.csv"), check=True)
    rows = (tmp_path / "c.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("CIRCLED: print it") and "12A_T1_CamA" in rows[1], out.stdout
    assert t1["take_id"]


def test_circle_errors_are_one_sentence(client, index):
    r = client.post("/api/takes/nosuchtake/circle", json={"circled": True})
    assert r.status_code == 404 and "No take" in r.json()["error"]
    tid = by_name(client)["12A_T1_CamA"]["take_id"]
    for body, needle in (({"circled": "yes"}, "true or false"), ({"note": 5}, "must be text")):
        r = client.post(f"/api/takes/{tid}/circle", json=body)
        assert r.status_code == 400 and needle in r.json()["error"] and "\n" not in r.json()["error"]
    r = client.post(f"/api/takes/{tid}/circle", content=b"{not json")
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    assert client.get(f"/api/takes/{tid}/circle").status_code == 405
    proc = run_cli("circle", "nosuchtake", "--index", str(index))
    assert proc.returncode != 0 and "No take 'nosuchtake'" in proc.stderr and "Traceback" not in proc.stderr


def test_writes_are_refused_read_only_and_need_the_token(index):
    tid = None
    with TestClient(create_app(index, read_only=True, proxies=False), raise_server_exceptions=False) as c:
        tid = by_name(c)["12A_T1_CamA"]["take_id"]
        for url, body in ((f"/api/takes/{tid}/circle", {"circled": True}), ("/api/voices/name",
                                                                           {"voice": "V001", "name": "NOPE"}),
                          ("/api/voices/accept-proposals", {})):
            r = c.post(url, json=body)
            assert r.status_code == 403 and "read-only" in r.json()["error"], url
        assert not by_name(c)["12A_T1_CamA"]["circled"]
        assert "NOPE" not in {v["name"] for v in c.get("/api/voices").json()}
    with TestClient(create_app(index, token=TOKEN, proxies=False), raise_server_exceptions=False) as c:
        assert c.post(f"/api/takes/{tid}/circle", json={"circled": True}).status_code == 401
        assert c.post("/api/voices/name", json={"voice": "V001", "name": "NOPE"}).status_code == 401
        ok = c.post(f"/api/takes/{tid}/circle", json={"circled": True},
                    headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()["circled"] is True


def test_circling_goes_on_while_another_process_writes_and_voices_wait(client, index):
    """A script supervisor circles takes while `dailies index` writes the next card: a circle is a review mark,
    written beside the one writer, and the writer's own upsert of that take (a re-index) leaves it alone. A voice's
    change needs the writer: it is refused at once, with a sentence, while the index is written."""
    from indexer.media import probe
    from indexer.store import Index

    takes = by_name(client)
    tid = takes["12A_T1_CamA"]["take_id"]
    with Index.open_writer(index) as w:            # as `dailies index` would hold it
        t0 = time.monotonic()
        r = client.post(f"/api/takes/{tid}/circle", json={"circled": True, "note": "print"})
        assert r.status_code == 200, r.text
        assert (r.json()["circled"], r.json()["circle_note"]) == (True, "print") and time.monotonic() - t0 < 5
        # the command too, in another process, while this one holds the writer
        done = cli_json("circle", "12A_T2_CamA", "--note", "alt", "--index", str(index), "--json")
        assert (done["name"], done["circled"]) == ("12A_T2_CamA", True)
        row = w.take_row(tid)                       # the writer re-indexes the circled take meanwhile
        w.upsert_take(tid, row["content_hash"], probe(row.path), status="indexed")
        assert w.take_row(tid).circled and w.take_row(tid).circle_note == "print"
        seen = by_name(client)                      # reading goes on meanwhile, and sees both circles
        assert {n: t["circle_note"] for n, t in seen.items() if t["circled"]} == {"12A_T1_CamA": "print",
                                                                                   "12A_T2_CamA": "alt"}
        r = client.post("/api/voices/name", json={"voice": "V001", "name": "ANYONE"})
        assert r.status_code == 409 and "being written by another process" in r.json()["error"]
        assert "try again" in r.json()["error"]
        off = client.post(f"/api/takes/{tid}/circle", json={"circled": False})
        assert off.status_code == 200 and off.json()["circled"] is False
    status = cli_json("status", "--index", str(index), "--json")
    assert {t["name"] for t in status["takes"] if t["circled"]} == {"12A_T2_CamA"}
    assert client.post("/api/voices/name", json={"voice": "V001", "name": "ANYONE"}).status_code == 200


# ------------------------------------------------------------------------------------------ voices

def test_voices_are_the_cli_list_with_clips_to_listen_to(client, index):
    api = client.get("/api/voices").json()
    cli = cli_json("speakers", "list", "--index", str(index), "--json")
    assert voices_without_media(api) == cli
    assert len(cli) >= 2
    for v in api:
        assert 1 <= len(v["clips"]) <= 3 and v["minutes"] > 0 and v["takes"] >= 1
        words = [len(c["text"].split()) for c in v["clips"]]
        assert words == sorted(words, reverse=True)
        for c in v["clips"]:
            assert 0 <= c["start"] < c["end"] and c["take_id"] in {loc["take_id"] for loc in v["locals"]}
            # the clip is a clean line of this voice: the take's transcript gives it to this voice, no overlap
            line = next(ln for ln in client.get(f"/api/takes/{c['take_id']}").json()["lines"]
                        if ln["line_id"] == c["line_id"])
            assert line["voice_id"] == v["voice_id"] and not line["overlap"] and line["text"] == c["text"]
            assert (line["tc_in"], line["tc_out"]) == (c["tc_in"], c["tc_out"])
    c = api[0]["clips"][0]
    part = client.get(c["media_url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    page = client.get("/voices")
    assert page.status_code == 200 and "/static/voices.js" in page.text and 'href="/voices"' in page.text
    assert client.get("/static/voices.js").status_code == 200


def test_naming_a_voice_shows_at_once_in_search_and_the_cli(client, index):
    voices = client.get("/api/voices").json()
    first = voices[0]["voice_id"]
    hits = client.get("/api/search/line", params={"q": LINE7}).json()      # the reader pool has answered
    r = client.post("/api/voices/name", json={"voice": first, "name": "NADIA"})
    assert r.status_code == 200 and r.json() == {"voice_id": first, "name": "NADIA"}
    listed = {v["voice_id"]: v["name"] for v in cli_json("speakers", "list", "--index", str(index), "--json")}
    assert listed[first] == "NADIA"
    again = client.get("/api/search/line", params={"q": LINE7}).json()
    said = {(h["take_id"], h["start"]): h for h in again}
    renamed = [h for h in hits if h["voice_id"] == first]
    assert renamed and all(said[(h["take_id"], h["start"])]["speaker"] == "NADIA" for h in renamed)
    assert client.get("/api/search/speaker", params={"name": "nadia"}).json()
    # A name another voice has is refused in one sentence (the same check as the CLI's).
    r = client.post("/api/voices/name", json={"voice": voices[1]["voice_id"], "name": "NADIA"})
    assert r.status_code == 400 and "already called NADIA" in r.json()["error"]
    r = client.post("/api/voices/name", json={"voice": first})
    assert r.status_code == 400 and "name" in r.json()["error"]


def test_merge_and_split_from_the_api(client, index):
    voices = client.get("/api/voices").json()
    a, b = voices[0]["voice_id"], voices[1]["voice_id"]
    b_locals = [(loc["take_id"], loc["label"]) for loc in voices[1]["locals"]]
    r = client.post("/api/voices/merge", json={"keep": a, "other": b})
    assert r.status_code == 200 and r.json()["voice_id"] == a and r.json()["merged"] == b
    after = cli_json("speakers", "list", "--index", str(index), "--json")
    assert b not in {v["voice_id"] for v in after}
    merged = next(v for v in after if v["voice_id"] == a)
    assert set(b_locals) <= {(loc["take_id"], loc["label"]) for loc in merged["locals"]}
    assert voices_without_media(client.get("/api/voices").json()) == after
    # The old id still resolves, to the voice it was merged into.
    hits = client.get("/api/search/speaker", params={"name": b}).json()
    assert hits and {h["voice_id"] for h in hits} == {a}
    # Split one of those takes' speaker off again: a new voice holding exactly it.
    take_id, label = b_locals[0]
    r = client.post("/api/voices/split", json={"voice": a, "take": take_id, "label": label})
    assert r.status_code == 200, r.text
    new = r.json()["voice_id"]
    split = next(v for v in cli_json("speakers", "list", "--index", str(index), "--json") if v["voice_id"] == new)
    assert [(loc["take_id"], loc["label"]) for loc in split["locals"]] == [(take_id, label)]
    r = client.post("/api/voices/merge", json={"keep": a, "other": a})
    assert r.status_code == 400 and "already the same voice" in r.json()["error"]


def test_accepting_the_screenplays_names(client, index):
    proposals = client.get("/api/voices/proposals").json()
    assert proposals == cli_json("speakers", "name", "--from-script", "--index", str(index), "--json")
    assert {p["character"] for p in proposals["proposals"]} == {"MAYA", "LEO"}
    assert not proposals["applied"]
    r = client.post("/api/voices/accept-proposals")
    assert r.status_code == 200 and r.json()["applied"] is True
    want = {p["voice_id"]: p["character"] for p in proposals["proposals"]}
    assert sorted(r.json()["named"]) == sorted(want)
    listed = {v["voice_id"]: v["name"] for v in cli_json("speakers", "list", "--index", str(index), "--json")}
    assert {vid: listed[vid] for vid in want} == want
    # LEO's line is found by his name at once.
    hits = client.get("/api/search/line", params={"q": LINE7, "speaker": "LEO"}).json()
    assert hits and {h["speaker"] for h in hits} == {"LEO"}
