"""`dailies speakers list/name/merge/split` (cli/speakers_cmd.py) on an index with a hand-made registry.

The registry's embeddings are synthetic unit vectors; these tests are about the commands.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.speakers_cmd import speakers_app
from indexer.records import Line, MediaInfo, Word
from indexer.store import Index
from indexer.speakers.identity import LocalIn, VoiceRegistry

RNG = np.random.default_rng(3)
A, B = (v / np.linalg.norm(v) for v in RNG.normal(size=(2, 192)))


def _info(name: str) -> MediaInfo:
    return MediaInfo(path=f"/shoot/{name}.mov", name=name, size=1, mtime_ns=1, container="mov", duration=10.0,
                     rate=Fraction(24000, 1001), start_tc="01:00:00:00", tc_source="stream", drop_frame=False,
                     has_video=True, frames=240, scene="12A", take=name[-1], camera="A")


def _line(i: int, start: float, text: str, speaker: str) -> Line:
    words = [Word(start + 0.3 * k, start + 0.3 * k + 0.25, w, 0.9) for k, w in enumerate(text.split())]
    return Line(i, words[0].start, words[-1].end, words, [], speaker)


@pytest.fixture
def index(tmp_path):
    path = tmp_path / "idx"
    with Index.open_writer(path) as idx:
        for take_id, name in (("aaaaaaaaaaaa", "12A_T1_CamA"), ("bbbbbbbbbbbb", "12A_T2_CamA")):
            idx.upsert_take(take_id, take_id * 2, _info(name), status="pending")
            lines = [_line(0, 1.0, "you're still here", "SPEAKER_00"),
                     _line(1, 3.0, "the comet won't wait for office hours", "SPEAKER_01")]
            _commit_lines_only(idx, take_id, lines)
            VoiceRegistry(idx.voice_tables()).register_take(take_id, [LocalIn("SPEAKER_00", A, 4.0), LocalIn("SPEAKER_01", B, 6.0)])
    return path


def _commit_lines_only(idx: Index, take_id: str, lines: list[Line]) -> None:
    """Write the catalog rows a finished take has, without Chroma (the speakers commands never read it)."""
    from indexer.store import line_id
    from indexer.textnorm import phonetic, tokens

    with idx._db:
        for ln in lines:
            toks = tokens(ln.text)
            idx._db.execute(
                'INSERT INTO lines(line_id, take_id, idx, start, "end", text, norm, phon, words, shots, speaker) '
                "VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                (line_id(take_id, ln.index), take_id, ln.index, ln.start, ln.end, ln.text, " ".join(toks),
                 " ".join(phonetic(t) for t in toks), json.dumps([w.to_json() for w in ln.words]), "[]", ln.speaker))
        idx._db.execute("UPDATE takes SET status='indexed' WHERE take_id=?", (take_id,))


def run(index, *args):
    result = CliRunner().invoke(speakers_app, [*args, "--index", str(index)])
    return result


def test_list_names_merge_split(index):
    r = run(index, "list", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [(v["voice_id"], v["takes"], v["seconds"]) for v in rows] == [("V001", 2, 12.0), ("V002", 2, 8.0)]
    assert rows[0]["example"]["text"] == "the comet won't wait for office hours"
    assert rows[0]["example"]["tc_in"].startswith("01:00:0")

    assert run(index, "name", "V001", "MAYA").exit_code == 0
    assert run(index, "name", "v2", "LEO").exit_code == 0
    rows = json.loads(run(index, "list", "--json").stdout)
    assert [v["name"] for v in rows] == ["MAYA", "LEO"]

    r = run(index, "split", "MAYA", "12A_T2_CamA", "--name", "MAYA_DOUBLE")
    assert r.exit_code == 0, r.output
    rows = json.loads(run(index, "list", "--json").stdout)
    assert [(v["voice_id"], v["name"], v["takes"]) for v in rows] == [
        ("V001", "MAYA", 1), ("V002", "LEO", 2), ("V003", "MAYA_DOUBLE", 1)]

    r = run(index, "merge", "MAYA", "V003")
    assert r.exit_code == 0, r.output
    rows = json.loads(run(index, "list", "--json").stdout)
    assert [(v["voice_id"], v["name"], v["takes"]) for v in rows] == [("V001", "MAYA", 2), ("V002", "LEO", 2)]

    human = run(index, "list")
    assert "MAYA" in human.stdout and "V002" in human.stdout


def test_errors(index, tmp_path):
    r = run(index, "name", "V009", "X")
    assert r.exit_code != 0 and "No voice called 'V009'" in str(r.exception)
    r = CliRunner().invoke(speakers_app, ["list", "--index", str(tmp_path / "none")])
    assert r.exit_code != 0 and "No dailies index" in str(r.exception)
    assert not (tmp_path / "none").exists()
    r = CliRunner().invoke(speakers_app, ["name", "V001", "X", "--index", str(tmp_path / "none")])
    assert not (tmp_path / "none").exists()      # a write command never creates an index
