"""Script imports in the index catalog: versions, stable line ids, atomic imports, the CLI sub-app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer.errors import DailiesError
from indexer.script import catalog
from indexer.script.model import ScriptError
from indexer.store import Index

ROOT = Path(__file__).resolve().parents[1]
SCENE = (ROOT / "fixtures" / "scene.fountain").read_text()


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def lines(idx: Index, version_id: int) -> dict[str, tuple[str, str, str]]:
    return {r["line_id"]: (r["uid"], r["text"], r["change"]) for r in idx._db.execute(
        "SELECT * FROM script_lines WHERE version_id=? ORDER BY seq", (version_id,))}


def test_reimport_keeps_ids_and_revisions_lock_them(tmp_path):
    v1_path = write(tmp_path, "comet.fountain", SCENE)
    with Index.open_writer(tmp_path / "idx") as idx:
        v1 = catalog.import_script(idx, v1_path)
        assert (v1.name, v1.version, v1.unchanged) == ("The Comet", 1, False)
        again = catalog.import_script(idx, v1_path)
        assert again.unchanged and again.version == 1
        first = lines(idx, v1.version_id)
        assert list(first) == [f"12A/{i}" for i in range(1, 9)]

        # Revision: a line inserted after 12A/2, 12A/4 reworded, 12A/6 cut.
        rev = SCENE.replace("LEO\nI brought you coffee.", "MAYA\nWho is there?\n\nLEO\nI brought you coffee.")
        rev = rev.replace("You remembered. Put it by the star charts.", "You remembered. Put it on the charts.")
        rev = rev.replace("MAYA\nThen she can have it when the sky cooperates.\n\n", "")
        v2 = catalog.import_script(idx, write(tmp_path, "comet.fountain", rev))
        assert v2.version == 2 and not v2.unchanged
        assert v2.changes == {"same": 6, "changed": 1, "new": 1, "removed": 1}
        second = lines(idx, v2.version_id)
        assert list(second) == ["12A/1", "12A/2", "12A/2A", "12A/3", "12A/4", "12A/5", "12A/7", "12A/8"]
        assert second["12A/2A"][2] == "new"
        assert second["12A/4"][2] == "changed" and second["12A/4"][0] == first["12A/4"][0]
        for lid in ("12A/1", "12A/3", "12A/7", "12A/8"):
            assert second[lid][0] == first[lid][0] and second[lid][2] == "same"
        # --renumber: positions again
        v3 = catalog.import_script(idx, write(tmp_path, "comet.fountain", rev + "\n"), renumber=True)
        assert list(lines(idx, v3.version_id)) == [f"12A/{i}" for i in range(1, 9)]
        assert [r["version"] for r in catalog.scripts(idx)] == [1, 2, 3]


def test_several_scripts_live_side_by_side(tmp_path):
    with Index.open_writer(tmp_path / "idx") as idx:
        catalog.import_script(idx, write(tmp_path, "a.fountain", SCENE))
        catalog.import_script(idx, write(tmp_path, "b.fountain", "INT. SHED - DAY #3#\n\nOLD MAN\nGet off my lawn.\n"))
        names = {r["name"] for r in catalog.scripts(idx)}
        assert names == {"The Comet", "b"}
        assert catalog.resolve_version(idx)["n_lines"] == 1                    # the last imported
        assert catalog.resolve_version(idx, "the comet")["n_lines"] == 8
        with pytest.raises(DailiesError, match="No script named 'nope'"):
            catalog.resolve_version(idx, "nope")


def test_failed_import_leaves_nothing_behind(tmp_path, monkeypatch):
    with Index.open_writer(tmp_path / "idx") as idx:
        with pytest.raises(ScriptError):
            catalog.import_script(idx, write(tmp_path, "bad.fountain", "INT. A - DAY\n\n/* never closed\n"))
        assert not catalog.has_scripts(idx)
        # a failure while writing rows rolls the whole import back
        catalog.import_script(idx, write(tmp_path, "ok.fountain", SCENE))
        real = catalog._lock_ids

        def broken_lock(script, prev, renumber):
            uids, change, counts = real(script, prev, renumber)
            uids[-1] = uids[0]                              # duplicate uid is fine; make line ids clash instead
            script.lines[-1].line_id = script.lines[0].line_id
            return uids, change, counts

        monkeypatch.setattr(catalog, "_lock_ids", broken_lock)
        rev = SCENE.replace("Black, no sugar.", "Black, two sugars.")
        with pytest.raises(Exception):
            catalog.import_script(idx, write(tmp_path, "ok.fountain", rev))
        assert [r["version"] for r in catalog.scripts(idx)] == [1]
        assert idx._db.execute("SELECT COUNT(*) FROM script_lines").fetchone()[0] == 8


def test_queries_without_an_imported_script_say_what_to_do(tmp_path):
    with Index.open_writer(tmp_path / "idx"):
        pass
    with Index.open(tmp_path / "idx") as idx:
        with pytest.raises(DailiesError, match="script import"):
            catalog.resolve_version(idx)


# ------------------------------------------------------------------------------------------ CLI

@pytest.fixture()
def cli():
    from cli.script_cmd import script_app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(script_app, list(args), catch_exceptions=True)
    return run


def test_cli_import_list_line_coverage_on_an_index_without_takes(tmp_path, cli):
    idx = str(tmp_path / "idx")
    script = write(tmp_path, "comet.fountain", SCENE)
    r = cli("import", str(script), "--index", idx, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["scenes"], out["dialogue_lines"], out["characters"], out["takes_matched"]) == (1, 8, ["LEO", "MAYA"], 0)
    r = cli("list", "--index", idx, "--json")
    assert json.loads(r.stdout)[0]["name"] == "The Comet"
    r = cli("line", "12A/4", "--index", idx, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == []
    r = cli("line", "12A/40", "--index", idx)
    assert isinstance(r.exception, DailiesError) and "12A/1 to 12A/8" in str(r.exception)
    r = cli("coverage", "--index", idx, "--format", "csv")
    assert r.exit_code == 0
    rows = r.stdout.strip().splitlines()
    assert rows[0] == "page,scene,line_id,character,text" and len(rows) == 9
    cov = json.loads(cli("coverage", "--index", idx, "--json").stdout)
    assert cov["scenes"][0]["never"] == [f"12A/{i}" for i in range(1, 9)]
    r = cli("coverage", "--index", idx, "--scene", "99")
    assert isinstance(r.exception, DailiesError)
    r = cli("coverage", "--index", idx, "--format", "pdf")
    assert isinstance(r.exception, DailiesError) and "Unknown format" in str(r.exception)
