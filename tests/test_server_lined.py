"""The lined script and coverage in the review room (issue 16, part A), with Starlette's test client on the
fixture shoot with fixtures/scene.fountain imported: /api/script, /api/coverage (what `dailies script
coverage --json` prints), the pages, and `dailies script lined` (the same HTML as /script/print)."""

from __future__ import annotations

import json
import re

import pytest
from starlette.testclient import TestClient

from conftest import run_cli
from indexer.server import create_app


@pytest.fixture(scope="module")
def client(scripted_index):
    with TestClient(create_app(scripted_index, proxies=False), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def lined(client) -> dict:
    r = client.get("/api/script")
    assert r.status_code == 200
    return r.json()


def by_name(lined: dict) -> dict[str, dict]:
    return {t["name"]: t for t in lined["takes"]}


def test_one_take_line_per_take_of_the_scene_and_take_2_skips_the_manifests_line(lined, manifest):
    takes = by_name(lined)
    assert set(takes) == {t["name"] for t in manifest["takes"] if t["scene"] == manifest["scene"]}
    ids = {s["n"]: s["id"] for s in manifest["script_lines"]}
    for mt in manifest["takes"]:
        states = {ln["line_id"]: ln["state"] for ln in takes[mt["name"]]["lines"]}
        assert list(states) == [s["id"] for s in manifest["script_lines"]]       # the scene, in script order
        if mt["kind"] == "video_only":                                           # MOS: nothing to say
            assert set(states.values()) == {"mos"}
            continue
        said = {d["script_line"] for d in mt["deliveries"] if d["kind"] != "false_start"}
        skipped = {ids[n] for n in mt["skipped_lines"]} | {ids[n] for n in ids if n not in said}
        assert {lid for lid, st in states.items() if st == "skipped"} == skipped, mt["name"]
    t2 = next(t for t in manifest["takes"] if t["take"] == 2)
    assert t2["skipped_lines"] and all(
        {ln["line_id"]: ln for ln in takes[t2["name"]]["lines"]}[ids[n]]["start"] is None for n in t2["skipped_lines"])
    # Drawn on the page: each take's segments cover the rows of the line they stand for.
    page = lined["pages"][0]
    assert len(page["takes"]) == len(takes) and page["columns"] == len(takes)
    rows = {}
    for r in page["rows"]:
        if r["line_id"]:
            rows.setdefault(r["line_id"], []).append(r["y"])
    for x in page["takes"]:
        assert [s["line_id"] for s in x["segments"]] == list(rows)
        for s in x["segments"]:
            assert (s["y0"], s["y1"]) == (min(rows[s["line_id"]]), max(rows[s["line_id"]]))


def test_a_take_lines_play_point_is_its_best_delivery(client, lined, manifest):
    """Take 3 says 12A/3 twice (a restart): the take line plays the best delivery, one the take page lists."""
    t3 = by_name(lined)["12A_T3_CamB"]
    entry = next(ln for ln in t3["lines"] if ln["line_id"] == "12A/3")
    detail = client.get(f"/api/takes/{t3['take_id']}").json()["script"]["lines"]
    dels = [d for d in detail if d["line_id"] == "12A/3"]
    assert len(dels) >= 2 and entry["deliveries"] == len(dels)
    best = min(dels, key=lambda d: ({"delivered": 0, "partial": 1}.get(d["status"], 2), -d["score"]))
    assert (entry["start"], entry["tc_in"], entry["diff"]) == (best["start"], best["tc_in"], best["diff"])
    assert entry["state"] == ("deviates" if re.search(r"\[-|\{\+", best["diff"]) else "delivered")


def test_rendered_pages_hold_every_dialogue_line_as_parsed(lined):
    from indexer.script import load_file
    from conftest import FIXTURES

    parsed = load_file(FIXTURES / "scene.fountain")
    said: dict[str, str] = {}
    for pg in lined["pages"]:
        for r in pg["rows"]:
            if r["kind"] in ("dialogue", "lyrics"):
                said[r["line_id"]] = said.get(r["line_id"], "") + r["text"]
    assert {k: "".join(v.split()) for k, v in said.items()} == \
        {ln.line_id: "".join(ln.text.split()) for ln in parsed.lines}
    assert len(lined["pages"]) == parsed.pages == lined["pages_count"]


def test_coverage_api_is_the_cli_json_and_its_cells_play(client, scripted_index, lined):
    api = client.get("/api/coverage")
    assert api.status_code == 200
    cli = json.loads(run_cli("script", "coverage", "--index", str(scripted_index), "--json", check=True).stdout)
    assert api.json() == cli
    starts = {(t["take_id"], ln["line_id"]): ln["start"] for t in lined["takes"] for ln in t["lines"]}
    n = 0
    for row in cli["rows"]:
        for tid, cell in row["cells"].items():
            assert (cell["start"] is None) == (cell["status"] == "missing")
            assert cell["start"] == starts[(tid, row["line_id"])]
            n += cell["start"] is not None
    assert n >= 20
    page = client.get("/coverage")
    assert page.status_code == 200
    assert len(re.findall(r'<a class="play"', page.text)) == n


def test_pages_print_export_and_cli_are_one_rendering(client, scripted_index, tmp_path, lined):
    page = client.get("/script")
    assert page.status_code == 200
    assert page.text.count('class="takeline') == len(lined["takes"])
    assert 'href="/script"' in page.text and 'href="/coverage"' in page.text        # the nav
    printed = client.get("/script/print")
    assert printed.status_code == 200
    assert "@page" in printed.text and "size: letter" in printed.text and "<script" not in printed.text
    assert "/static/" not in printed.text                                                 # self-contained
    assert 'href="/take/' in page.text and "href=" not in printed.text     # no links to a room the editor can't reach
    assert printed.text.count('<section class="sheet"') == len(lined["pages"])
    out = tmp_path / "lined.html"
    r = run_cli("script", "lined", "-o", str(out), "--index", str(scripted_index), check=True)
    said = " ".join(r.stderr.split())          # the message is wrapped to the console's width
    assert f"{len(lined['pages'])} page" in said and "Wrote" in said
    assert out.read_text() == printed.text


def test_bad_requests_get_one_sentence(client, shoot_index, tmp_path):
    r = client.get("/api/script", params={"version": "9"})
    assert r.status_code == 400 and r.json() == {"error": "The script has no version 9."}
    r = client.get("/api/coverage", params={"scene": "99"})
    assert r.status_code == 400 and r.json()["error"].startswith("No scene 99 in script")
    r = client.get("/script", params={"version": "x"})
    assert r.status_code == 400 and "is not a number" in r.text and "Traceback" not in r.text
    with TestClient(create_app(shoot_index, proxies=False), raise_server_exceptions=False) as bare:
        for url in ("/api/script", "/script", "/coverage", "/script/print"):
            r = bare.get(url)
            assert r.status_code == 400 and "script import" in r.text, url
    r = run_cli("script", "lined", "-o", str(tmp_path / "none" / "x.html"), "--index", str(shoot_index))
    assert r.returncode != 0 and "No screenplay has been imported" in r.stderr and "Traceback" not in r.stderr


def test_sheets_carry_the_page_numbers_a_final_draft_file_states():
    """A Final Draft scene stated on page 3 starts a sheet numbered 3; the sheet our layout adds for its long
    action (the file fit it on fewer) is 3A, not a number the crew's script does not have."""
    from indexer.script import parse_bytes
    from indexer.script.lined import build

    row = "Beat {:02d} of the long action paragraph: one sentence a row."
    assert len(row.format(0)) <= 60 < len(row.format(0)) + len(" Beat")      # one sentence per row of 60
    action = " ".join(row.format(i) for i in range(70))
    data = f"""<?xml version="1.0"?><FinalDraft DocumentType="Script" Version="5"><Content>
    <Paragraph Number="12A" Type="Scene Heading"><SceneProperties Length="1" Page="3"/><Text>INT. LAB - NIGHT</Text></Paragraph>
    <Paragraph Type="Action"><Text>{action}</Text></Paragraph>
    <Paragraph Number="13" Type="Scene Heading"><SceneProperties Length="1/8" Page="4"/><Text>EXT. ROOF - NIGHT</Text></Paragraph>
    <Paragraph Type="Character"><Text>MAYA</Text></Paragraph><Paragraph Type="Dialogue"><Text>There.</Text></Paragraph>
    </Content></FinalDraft>""".encode()
    s = parse_bytes(data, "lab.fdx")
    assert s.pages_source == "stored"
    lined = build(s, "lab", 1, [], {})
    assert [p["number"] for p in lined["pages"]] == ["3", "3A"]
    assert [p["page"] for p in lined["pages"]] == [1, 2]


def test_the_printed_lined_script_ends_with_the_editors_log(scripted_index, tmp_path, manifest):
    """After the lined pages, the editor's log (facing pages): per scene a row per take with its start TC, length,
    the lines it delivers, its circle and the remarks (the circle note, then the review notes by frame)."""
    import shutil

    index = tmp_path / "index"
    shutil.copytree(scripted_index, index)
    run_cli("circle", "12A_T3_CamB", "--note", "print this one", "--index", str(index), check=True)
    run_cli("notes", "add", "12A_T3_CamB", "2", "flare on the lens", "--by", "Ana", "--index", str(index), check=True)
    run_cli("notes", "add", "12A_T3_CamB", "1", "slate late", "--index", str(index), check=True)
    with TestClient(create_app(index, proxies=False)) as c:
        data = c.get("/api/script").json()
        printed = c.get("/script/print").text
        notes = c.get("/api/notes").json()
    scenes = sorted({t["scene"] for t in data["takes"]})
    assert printed.count('<section class="log"') == len(scenes) and printed.count('<section class="sheet"') == \
        len(data["pages"])                                      # the lined pages are as before, the log after them
    assert printed.index('<section class="log"') > printed.rindex('<section class="sheet"')
    rows = dict(re.findall(r'<tr data-take="(\w+)"[^>]*>(.*?)</tr>', printed, re.S))
    assert set(rows) == {t["take_id"] for t in data["takes"]}
    t3 = next(t for t in data["takes"] if t["name"] == "12A_T3_CamB")
    row = rows[t3["take_id"]]
    said = sum(ln["state"] in ("delivered", "deviates") for ln in t3["lines"])
    assert f"<td>{said}/{len(t3['lines'])}</td>" in row and "◯" in row and t3["start_tc"] in row
    by_frame = [n for n in notes if n["name"] == "12A_T3_CamB"]
    remarks = re.findall(r'<div class="(cnote|rnote)">(.*?)</div>', row)
    assert remarks == [("cnote", "print this one")] + [
        ("rnote", f"{n['tc']} {n['text']}" + (f" ({n['author']})" if n["author"] else "")) for n in by_frame]
    assert [n["text"] for n in by_frame] == ["slate late", "flare on the lens"]          # by frame
    assert sum("◯" in r for r in rows.values()) == 1
    mos = next(t for t in data["takes"] if t["name"] == "12A_T4_CamC_MOS")
    assert mos["no_dialogue"] and "<td>MOS</td>" in rows[mos["take_id"]]
    out = tmp_path / "lined.html"
    run_cli("script", "lined", "-o", str(out), "--index", str(index), check=True)
    assert out.read_text() == printed
