"""The review room's downloads (`/api/export/stringout`, `/api/export/markers`) on the fixture shoot: the files
`dailies export` writes for the same search, one file as it is or several in one zip, named after the search; the
search page's filters followed; errors one sentence, the token checked."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import opentimelineio as otio
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from cli.export_cmd import export_app
from indexer.server import create_app

LINE2 = "The comet won't wait for office hours, Leo."
LINE7 = "We have to follow the data, not the calendar."
TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def client(scripted_index):
    with TestClient(create_app(scripted_index, proxies=False), raise_server_exceptions=False) as c:
        yield c


def cli_files(tmp_path: Path, *args: str) -> dict[str, str]:
    """What `dailies export ARGS -o tmp_path/NAME` writes: {file name: text}."""
    result = CliRunner().invoke(export_app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {p.name: p.read_text() for p in sorted(tmp_path.iterdir())}


def files_of(response) -> dict[str, str]:
    """The downloaded files: the zip's members, or the one file under its Content-Disposition name."""
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=\"")
    name = disposition.split("filename=\"")[1].split("\"")[0]
    if name.endswith(".zip"):
        assert response.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(response.content)) as z:
            return {n: z.read(n).decode() for n in sorted(z.namelist())}
    return {name: response.text}


def test_an_edl_per_rate_comes_as_the_cli_files_in_one_zip(client, scripted_index, tmp_path):
    # LINE2 is delivered by takes at 23.976, 25 and 29.97 DF: an EDL holds one rate, so three EDLs, zipped.
    r = client.get("/api/export/stringout", params={"q": LINE2, "format": "edl", "limit": "100"})
    got = files_of(r)
    stem = "line-The-comet-won-t-wait-for-office-hours-Leo"
    assert r.headers["content-disposition"].startswith(f'attachment; filename="{stem}.zip"')
    assert sorted(got) == [f"{stem}_23.976.edl", f"{stem}_25.edl", f"{stem}_29.97DF.edl"]
    cli = cli_files(tmp_path, "stringout", "--line", LINE2, "--index", str(scripted_index), "-o",
                    str(tmp_path / f"{stem}.edl"))
    assert got == cli
    described = json.loads(r.headers["x-dailies-files"])
    assert sorted(d["name"] for d in described) == sorted(got) and all("CMX 3600 EDL, 1 event" in d["description"]
                                                                  for d in described)


@pytest.mark.parametrize("fmt, ext", [("otio", ".otio"), ("xml", ".xml"), ("fcpxml", ".fcpxml")])
def test_one_timeline_file_is_the_cli_file(client, scripted_index, tmp_path, fmt, ext):
    r = client.get("/api/export/stringout", params={"q": LINE7, "format": fmt, "limit": "100", "handles": "6"})
    stem = "line-We-have-to-follow-the-data-not-the-calendar"
    got = files_of(r)
    assert list(got) == [stem + ext]
    cli = cli_files(tmp_path, "stringout", "--line", LINE7, "--handles", "6", "--index", str(scripted_index),
                    "-o", str(tmp_path / (stem + ext)))
    assert got == cli
    if fmt == "otio":
        tl = otio.adapters.read_from_string(got[stem + ext], "otio_json")
        # T1, T2 and T3 with their sound, and the wild track's sound
        assert {c.name for c in tl.find_clips()} == {"12A_T1_CamA", "12A_T2_CamA", "12A_T3_CamB", "12A_WT1"}
        assert tl.name == f"line: {LINE7}"


def test_markers_per_take_are_the_cli_files(client, scripted_index, tmp_path):
    r = client.get("/api/export/markers", params={"q": LINE7, "format": "avid", "limit": "100"})
    got = files_of(r)
    stem = "line-We-have-to-follow-the-data-not-the-calendar"
    cli = cli_files(tmp_path, "markers", "--line", LINE7, "--format", "avid", "--index", str(scripted_index),
                    "-o", str(tmp_path / f"{stem}.txt"))
    assert got == cli and len(got) == 4 and all(n.startswith(stem + "_12A_") for n in got)
    one = client.get("/api/export/markers", params={"q": LINE7, "format": "csv", "limit": "100"})
    assert list(files_of(one)) == [f"{stem}.csv"] and one.headers["content-type"].startswith("text/csv")


def test_the_export_follows_the_search_page_filters(client):
    everything = client.get("/api/search/line", params={"q": LINE2}).json()
    maya = next(h["voice_id"] for h in everything if h["name"] == "12A_T1_CamA")
    assert maya
    for filters in ({"take": "12A_T2_CamA"}, {"speaker": maya}, {"scene": "12A", "min_match": "0.9"}, {}):
        shown = client.get("/api/search/line", params={"q": LINE2, **filters}).json()
        r = client.get("/api/export/stringout", params={"q": LINE2, **filters, "format": "otio"})
        tl = otio.adapters.read_from_string(next(iter(files_of(r).values())), "otio_json")
        # each take's best hit, in the page's order
        assert [c.name for c in tl.video_tracks()[0].find_clips()] == list(dict.fromkeys(h["name"] for h in shown))
    assert len({h["name"] for h in everything}) == 3
    none = client.get("/api/export/stringout", params={"q": LINE7, "scene": "99Z"})
    assert none.status_code == 404 and none.json()["error"] == \
        f"Nothing to export: no take delivers \"{LINE7}\"; no file was written."


def test_only_the_hits_ticked_are_exported_every_one_of_them(client):
    line3 = "I brought you coffee. Black, no sugar."                  # T3 delivers it twice
    shown = client.get("/api/search/line", params={"q": line3}).json()
    by_take: dict[str, list[dict]] = {}
    for h in shown:
        by_take.setdefault(h["name"], []).append(h)
    twice = next(hs for hs in by_take.values() if len(hs) >= 2)           # a take with two hits: both kept
    other = next(hs[0] for name, hs in by_take.items() if name != twice[0]["name"])
    chosen = [twice[0], twice[1], other]
    keys = ["+".join(h["line_ids"]) for h in chosen]
    r = client.get("/api/export/stringout", params=[("q", line3), ("format", "otio"),
                                                    *(("only", k) for k in keys)])
    tl = otio.adapters.read_from_string(next(iter(files_of(r).values())), "otio_json")
    clips = list(tl.video_tracks()[0].find_clips()) or list(tl.find_clips())
    assert sorted(c.name for c in clips) == sorted(h["name"] for h in chosen)
    assert sorted(c.metadata["dailies"]["tc_in"] for c in clips) == sorted(h["tc_in"] for h in chosen)
    stale = client.get("/api/export/stringout", params={"q": LINE7, "only": "nosuchtake-00001"})
    assert stale.status_code == 404 and "none of the chosen hits" in stale.json()["error"]
    raw = client.get(f"/api/export/stringout?q={line3}&format=otio&only={keys[0]},{keys[2]}")   # "+" unescaped
    raw_tl = otio.adapters.read_from_string(next(iter(files_of(raw).values())), "otio_json")
    assert sorted(c.name for c in raw_tl.video_tracks()[0].find_clips()) == sorted([chosen[0]["name"], other["name"]])
    alone = client.get("/api/export/stringout", params={"script_line": "12A/4", "only": keys[0]})
    assert alone.status_code == 400
    assert alone.json()["error"] == "?only= picks among a line search's hits: give ?q= with it."


def test_a_script_line_export_is_the_cli_one(client, scripted_index, tmp_path):
    r = client.get("/api/export/stringout", params={"script_line": "12A/4", "format": "otio"})
    got = files_of(r)
    assert list(got) == ["script-12A-4.otio"]
    cli = cli_files(tmp_path, "stringout", "--script-line", "12A/4", "--index", str(scripted_index), "-o",
                    str(tmp_path / "script-12A-4.otio"))
    assert got == cli


def test_each_coverage_line_downloads_the_takes_that_delivered_it(client):
    import html
    import re

    cov = client.get("/api/coverage").json()
    page = client.get("/coverage").text
    links = {html.unescape(m.group(1)): html.unescape(m.group(2))
             for m in re.finditer(r'<td class="lid">([^<]+?) <a class="dl" download [^>]*href="([^"]+)"', page)}
    names = {c["take_id"]: c["name"] for c in cov["columns"]}
    for row in cov["rows"]:
        said = [names[t] for t, cell in row["cells"].items() if cell["start"] is not None]
        assert (row["line_id"] in links) == bool(said), row["line_id"]
        if not said:
            continue
        url = links[row["line_id"]]
        assert f"version={cov['version']}" in url and url.endswith("format=edl")
        r = client.get(url.replace("format=edl", "format=otio"))
        tl = otio.adapters.read_from_string(next(iter(files_of(r).values())), "otio_json")
        assert sorted({c.name for c in tl.find_clips()}) == sorted(said), row["line_id"]
    assert len(links) >= 7


def test_every_line_of_a_voice_is_the_cli_markers(client, scripted_index, tmp_path):
    voices = client.get("/api/voices").json()
    assert len(voices) >= 2
    for v in voices:
        r = client.get("/api/export/markers", params={"voice": v["voice_id"], "format": "csv"})
        got = files_of(r)
        stem = f"speaker-{v['voice_id']}"
        out = tmp_path / v["voice_id"]
        out.mkdir()
        cli = cli_files(out, "markers", "--speaker", v["voice_id"], "--format", "csv", "--index", str(scripted_index),
                        "-o", str(out / f"{stem}.csv"))
        assert got == cli and list(got) == [f"{stem}.csv"]
        lines = client.get("/api/search/speaker", params={"name": v["voice_id"]}).json()
        assert got[f"{stem}.csv"].count("\n") >= len(lines) >= 1          # a marker per line (and a header)
    one_take = client.get("/api/export/markers", params={"voice": voices[0]["voice_id"], "take": "12A_T1_CamA",
                                                        "format": "avid"})
    assert list(files_of(one_take)) == [f"speaker-{voices[0]['voice_id']}.txt"]      # one take: one file


@pytest.mark.parametrize("fmt", ["srt", "vtt", "csv", "txt", "json"])
def test_a_takes_transcript_is_the_cli_file(client, scripted_index, tmp_path, fmt):
    tid = next(t["take_id"] for t in client.get("/api/takes").json() if t["name"] == "12A_T1_CamA")
    r = client.get("/api/export/transcript", params={"take": tid, "format": fmt})
    got = files_of(r)
    cli = cli_files(tmp_path, "transcript", "12A_T1_CamA", "--format", fmt, "--index", str(scripted_index), "-o",
                    str(tmp_path / f"12A_T1_CamA.{fmt}"))
    assert got == cli and list(got) == [f"12A_T1_CamA.{fmt}"]
    assert LINE7.split(",")[0].lower() in got[f"12A_T1_CamA.{fmt}"].lower() or fmt == "json"


def test_the_ale_is_the_cli_files(client, scripted_index, tmp_path):
    for page in ("/", "/coverage", "/voices"):                 # every page's header offers it
        assert '<a class="ale" href="/api/export/ale" download' in client.get(page).text
    got = files_of(client.get("/api/export/ale"))
    cli = cli_files(tmp_path, "ale", "--index", str(scripted_index), "-o", str(tmp_path / "dailies.ale"))
    assert got == cli and len(got) >= 2 and all(n.startswith("dailies_") for n in got)    # one ALE per rate
    one = files_of(client.get("/api/export/ale", params={"take": "12A_T1_CamA"}))
    assert list(one) == ["dailies.ale"] and "12A_T1_CamA" in one["dailies.ale"] and "12A_T2" not in one["dailies.ale"]
    two = files_of(client.get("/api/export/ale", params=[("take", "12A_T1_CamA"), ("take", "12A_T3_CamB")]))
    assert sorted(two) == ["dailies_23.976.ale", "dailies_25.ale"]          # T3 runs at 25 fps: its own ALE


@pytest.mark.parametrize("path, params, status, message", [
    ("/api/export/stringout", {"q": LINE7, "format": "mp4"}, 400,
     "Unknown string-out format 'mp4' (use one of: edl, xml, fcpxml, otio)."),
    ("/api/export/markers", {"q": LINE7, "format": "mov"}, 400,
     "Unknown marker format 'mov' (use one of: avid, resolve, premiere, csv, otio)."),
    ("/api/export/stringout", {}, 400,
     "Say what to export: ?q=LINE (a line search, with the search page's filters), ?script_line=12A/4, "
     "?voice=MAYA (every line of a voice) or ?notes=1 (the review notes)."),
    ("/api/export/stringout", {"q": LINE7, "script_line": "12A/4"}, 400,
     "Say what to export: ?q=LINE (a line search, with the search page's filters), ?script_line=12A/4, "
     "?voice=MAYA (every line of a voice) or ?notes=1 (the review notes)."),
    ("/api/export/stringout", {"q": LINE7, "handles": "-3"}, 400,
     "The parameter handles=-3 is out of range (0 to 10000)."),
    ("/api/export/stringout", {"q": LINE7, "order": "alphabetical"}, 400,
     "Unknown order 'alphabetical' (use rank or scene)."),
    ("/api/export/edl", {"q": LINE7}, 404,
     "No export 'edl': ask for /api/export/stringout, markers, transcript or ale."),
    ("/api/export/transcript", {}, 400, "Say which take's transcript (?take=CLIP or ?take=TAKE_ID)."),
    ("/api/export/transcript", {"take": "12A_T9"}, 404,
     "No take '12A_T9' in the index; `dailies status` lists the takes."),
    ("/api/export/stringout", {"script_line": "12A/99"}, 400, None),
])
def test_bad_requests_are_one_sentence(client, path, params, status, message):
    r = client.get(path, params=params)
    assert r.status_code == status
    body = r.json()
    assert set(body) == {"error"} and "Traceback" not in body["error"] and "\n" not in body["error"]
    if message is not None:
        assert body["error"] == message
    else:
        assert "12A/99" in body["error"]


def test_a_download_needs_the_token(scripted_index):
    with TestClient(create_app(scripted_index, token=TOKEN, proxies=False), raise_server_exceptions=False) as c:
        params = {"q": LINE7, "format": "otio"}
        assert c.get("/api/export/stringout", params=params).status_code == 401
        ok = c.get("/api/export/stringout", params=params, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.content


def test_zip_members_of_one_name_are_kept_apart():
    from indexer.server.downloads import attachment

    r = attachment([(Path("m_CLIP.txt"), "a", ""), (Path("m_CLIP.txt"), "b", ""), (Path("m_X.txt"), "c", "")],
                   zip_name="m.zip")
    with zipfile.ZipFile(io.BytesIO(r.body)) as z:
        assert {n: z.read(n).decode() for n in z.namelist()} == {"m_CLIP.txt": "a", "m_CLIP_2.txt": "b", "m_X.txt": "c"}
    assert r.headers["content-disposition"] == "attachment; filename=\"m.zip\"; filename*=UTF-8''m.zip"
    one = attachment([(Path("Szene 4 \"ä\".srt"), "x", "")])
    assert one.headers["content-disposition"] == \
        "attachment; filename=\"Szene 4 ___.srt\"; filename*=UTF-8''Szene%204%20%22%C3%A4%22.srt"
    assert one.body == b"x" and one.headers["content-type"] == "application/x-subrip"
    many = attachment([(Path(f"m_{k:04d}.txt"), "x", "Avid marker list, 1 marker on a take") for k in range(400)],
                      notes=["handles cut short"] * 2000, zip_name="m.zip")
    assert many.headers["x-dailies-file-count"] == "400"          # too many to describe in a header
    assert "x-dailies-files" not in many.headers and "x-dailies-notes" not in many.headers
