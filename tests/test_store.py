"""The store owns persistence: no SQL or Chroma elsewhere, one schema version with migrations (an index
of the last release opens and is upgraded in place), full-text errors are errors, and readers read an
index they may not write."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
from pathlib import Path

import pytest

from conftest import DAILIES, FIXTURES, ROOT, as_other_user, run_cli
from indexer.errors import UsageError
from indexer.store import SCHEMA_VERSION, Index

# The fixture shoot indexed by the last release (commit cd693a3: `dailies index fixtures/shoot`, then
# `dailies script import fixtures/scene.fountain` and `dailies speakers name --from-script --yes`).
RELEASE_0 = ROOT / "tests" / "data" / "release-0"

PERSISTENCE = re.compile(r"\bsqlite3\b|\.execute(many|script)?\(|\bchromadb\b")


def test_no_sql_or_chroma_outside_the_store():
    hits = []
    for folder in ("indexer", "cli"):
        for p in sorted((ROOT / folder).rglob("*.py")):
            if (ROOT / "indexer" / "store") in p.parents:
                continue
            for n, line in enumerate(p.read_text().splitlines(), 1):
                if PERSISTENCE.search(line):
                    hits.append(f"{p.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not hits, "SQL or Chroma outside indexer/store/:\n" + "\n".join(hits)


def test_the_persistence_grep_finds_what_it_looks_for():
    """The grep above cannot pass by matching nothing."""
    for line in ("import sqlite3", "db.execute('SELECT 1')", "db.executemany(sql, rows)", "import chromadb"):
        assert PERSISTENCE.search(line), line
    assert not PERSISTENCE.search("index.takes_by_id(ids)")


# ------------------------------------------------------------------ full-text search errors

def test_a_broken_full_text_query_is_an_error_not_no_matches(tmp_path):
    with Index.open_writer(tmp_path / "idx") as idx:
        assert idx.fts('norm:"comet"', 10) == []                    # a valid query on an empty index
        with pytest.raises(UsageError, match="not a valid full-text query"):
            idx.fts('norm:"comet', 10)                             # the query's own FTS syntax: one sentence
        idx._db.execute("DROP TABLE lines_fts")                     # the catalog itself is broken
        with pytest.raises(sqlite3.OperationalError):
            idx.fts('norm:"comet"', 10)


# ------------------------------------------------------------------ migrations

def _release_copy(parent: Path) -> Path:
    dst = parent / "idx"
    shutil.copytree(RELEASE_0, dst)
    return dst


def _meta(path: Path) -> dict:
    db = sqlite3.connect(f"file:{path / 'catalog.sqlite'}?mode=ro&immutable=1", uri=True)   # writes nothing there
    try:
        return dict(db.execute("SELECT key, value FROM meta"))
    finally:
        db.close()


def test_the_committed_release_index_is_of_the_previous_schema():
    assert _meta(RELEASE_0)["schema_version"] == "1" and SCHEMA_VERSION > 1


def test_an_index_of_the_last_release_is_upgraded_in_place(tmp_path):
    path = _release_copy(tmp_path)
    status = run_cli("status", "--index", str(path), "--json", check=True)     # a reader upgrades it
    assert _meta(path)["schema_version"] == str(SCHEMA_VERSION)
    assert json.loads(status.stdout)["indexed"] == 5
    with sqlite3.connect(path / "catalog.sqlite") as db:
        cols = {r[1] for r in db.execute("PRAGMA table_info(voice_locals)")}
        take_cols = {r[1] for r in db.execute("PRAGMA table_info(takes)")}
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"window_sum", "window_count"} <= cols and {"script_versions", "voice_voices", "steps", "take_channels",
                                                       "review_notes"} <= tables
    assert {"circled", "circle_note", "circled_at"} <= take_cols                  # schema 3: circled takes
    assert not any(t["circled"] for t in json.loads(status.stdout)["takes"])
    # what the release wrote is all there: lines and vectors, voices and their names, the screenplay
    hits = json.loads(run_cli("search", "line", "the comet won't wait for office hours", "--index", str(path),
                              "--json", check=True).stdout)
    assert hits and hits[0]["tc_in"] and {h["speaker"] for h in hits[:3]} == {"MAYA"}
    assert hits[0]["rankers"].get("semantic") is not None                   # Chroma's vectors were read
    voices = json.loads(run_cli("speakers", "list", "--index", str(path), "--json", check=True).stdout)
    assert sorted(v["name"] for v in voices) == ["LEO", "MAYA"]
    cov = run_cli("script", "coverage", "--scene", "12A", "--index", str(path), check=True)
    assert "12A/7" in cov.stdout
    again = json.loads(run_cli("status", "--index", str(path), "--json", check=True).stdout)
    first = json.loads(status.stdout)
    assert {k: again[k] for k in ("indexed", "lines", "shots", "voices")} == \
        {k: first[k] for k in ("indexed", "lines", "shots", "voices")}       # a second open changes nothing
    # the upgraded index takes a circle, and its search hits say so
    run_cli("circle", "12A_T3_CamB", "--note", "print", "--index", str(path), check=True)
    hits = json.loads(run_cli("search", "line", "the comet won't wait for office hours", "--index", str(path),
                              "--json", check=True).stdout)
    assert {h["name"] for h in hits if h["circled"]} == {"12A_T3_CamB"}
    # and a review note (schema 5)
    note = json.loads(run_cli("notes", "add", "12A_T3_CamB", "1", "x", "--index", str(path), "--json",
                              check=True).stdout)
    assert note["seconds"] <= 1.0 < note["seconds"] + 0.05 and note["frame"] > 0       # the frame holding 1 s
    assert json.loads(run_cli("notes", "list", "--index", str(path), "--json", check=True).stdout) == [note]


def test_a_newer_index_is_refused_in_one_sentence(tmp_path):
    path = _release_copy(tmp_path)
    with sqlite3.connect(path / "catalog.sqlite") as db:
        db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    proc = run_cli("status", "--index", str(path))
    assert proc.returncode != 0 and "newer dailies" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------ read-only index folders

def _run_as_other(*args: str):
    import subprocess

    env = dict(os.environ, HOME=tempfile.gettempdir())
    return subprocess.run(as_other_user([DAILIES, *args]), capture_output=True, text=True, env=env,
                          cwd=tempfile.gettempdir())


@pytest.fixture
def read_only_index():
    """The release index, upgraded, in a folder that nobody may write (0555, files 0444)."""
    base = Path(tempfile.mkdtemp(prefix="dailies-ro-"))
    os.chmod(base, 0o755)                     # mkdtemp makes it 0700: the other user must reach it
    path = _release_copy(base)
    Index.open_writer(path).close()
    for p in [path, *path.rglob("*")]:
        os.chmod(p, 0o555 if p.is_dir() else 0o444)
    before = sorted(str(p.relative_to(path)) for p in path.rglob("*"))
    yield path, before
    for p in [path, *path.rglob("*")]:
        os.chmod(p, stat.S_IRWXU | (0 if p.is_file() else stat.S_IRGRP))
    shutil.rmtree(base)


def test_the_read_only_folder_is_really_read_only_for_the_test_user(read_only_index):
    path, _ = read_only_index
    proc = _run_as_other("status", "--index", str(path / "new-index"))
    probe = __import__("subprocess").run(as_other_user(["touch", str(path / "probe")]), capture_output=True)
    assert probe.returncode != 0, "the test user can write the read-only folder: the tests below test nothing"
    assert proc.returncode != 0


def test_readers_work_on_an_index_they_cannot_write(read_only_index):
    path, before = read_only_index
    status = _run_as_other("status", "--index", str(path), "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["lines"] > 0
    search = _run_as_other("search", "line", "We have to follow the data, not the calendar.", "--index", str(path),
                           "--json")
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)
    assert hits and hits[0]["score"] > 0.9 and hits[0]["rankers"].get("semantic") is not None
    assert sorted(str(p.relative_to(path)) for p in path.rglob("*")) == before      # nothing written there


def test_a_writer_on_a_read_only_index_is_told_in_one_sentence(read_only_index):
    path, _ = read_only_index
    proc = _run_as_other("index", str(FIXTURES / "shoot"), "--index", str(path))
    assert proc.returncode != 0
    assert "read-only" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_circling_on_a_read_only_index_is_told_in_one_sentence(read_only_index):
    path, before = read_only_index
    proc = _run_as_other("circle", "12A_T3_CamB", "--index", str(path))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "read-only" in proc.stderr and "circling takes or adding notes needs write permission" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = _run_as_other("notes", "add", "12A_T3_CamB", "1", "x", "--index", str(path))
    assert proc.returncode != 0 and "adding notes needs write permission" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert sorted(str(p.relative_to(path)) for p in path.rglob("*")) == before


def test_a_read_only_index_of_the_last_release_says_how_to_upgrade(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="dailies-ro-"))
    os.chmod(base, 0o755)
    path = _release_copy(base)
    try:
        for p in [path, *path.rglob("*")]:
            os.chmod(p, 0o555 if p.is_dir() else 0o444)
        proc = _run_as_other("status", "--index", str(path))
        assert proc.returncode != 0 and "older dailies" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        for p in [path, *path.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        shutil.rmtree(base)


# ------------------------------------------------------------------ typed takes

def test_takes_come_out_of_the_store_typed_with_their_clock(tmp_path):
    from fractions import Fraction

    from indexer.records import Take

    with Index.open(_release_copy(tmp_path)) as idx:
        takes = idx.takes()
        assert takes and all(isinstance(t, Take) for t in takes)
        by_name = {t.name: t for t in takes}
        df = by_name["12A_T2_CamA"]                                   # the 29.97 drop-frame take
        assert df.rate == Fraction(30000, 1001) and df.drop_frame and df.clock.drop_frame
        assert df.clock.tc_in(0.0) == df.start_tc and ";" in df.start_tc
        assert df["rate"] == "30000/1001" and dict(df)["take_id"] == df.take_id     # the row, as stored
        hit = df.hit("line", 1.0, 2.0, "words", 1.0)
        assert (hit.clip, hit.rate, hit.tc_in, hit.tc_out) == (df.path, "30000/1001", df.clock.tc_in(1.0),
                                                               df.clock.tc_out(2.0))
        assert idx.take("12A_T2_CamA") == df and idx.takes_by_id([df.take_id]) == {df.take_id: df}


def test_readers_of_a_new_index_and_its_writer_make_its_vector_store_one_at_a_time(tmp_path):
    """A new index's vector store is made by whichever process comes first, under the store's lock, which the
    writer makes before the catalog (so every reader that finds the catalog takes it). Eight readers that arrive
    as soon as the catalog exists, while the writer opens the store on a thread (as a run does), all read it.
    (Made by eight readers at once without the lock, they raced in Chroma's own migrations: "table collections
    already exists", found by the reliability suite.)"""
    import subprocess
    import sys

    path = tmp_path / "idx"
    writer = Index.open_writer(path)
    try:
        assert (path / "chroma.lock").is_file() and not (path / "chroma").exists()
        code = ("import sys; from indexer.store import Index\n"
                "with Index.open(sys.argv[1]) as idx: print(idx.vectors.count('lines'))")
        procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=str(ROOT)) for _ in range(8)]
        writer.vectors.open_soon(("lines",))
        outs = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
        assert writer.vectors.count("lines") == 0
    finally:
        writer.close()
    assert all(rc == 0 and out.strip() == "0" for out, err, rc in outs), [err for _, err, _ in outs]
    assert (path / "chroma" / "chroma.sqlite3").is_file()


def test_a_vector_store_opened_on_a_thread_raises_its_error_at_first_use(tmp_path):
    """An error met by Vectors.open_soon's thread is raised by the first call that needs the store, as it was
    met: a second try would say only "'RustBindingsAPI' object has no attribute 'bindings'"."""
    path = tmp_path / "idx"
    writer = Index.open_writer(path)
    (path / "chroma").write_text("not a folder")
    writer.vectors.open_soon(("lines",))
    with pytest.raises(Exception, match="File exists"):
        writer.vectors.count("lines")
    writer.close()


def _write_zebra_take(writer) -> None:
    """A one-line take, "The zebra saw the comet.", committed by a writer (a word the fixture shoot never says)."""
    from fractions import Fraction

    from indexer import embed
    from indexer.records import Line, MediaInfo, Shot, Word

    text = "The zebra saw the comet."
    words = [Word(0.3 * i, 0.3 * i + 0.25, w, 0.9) for i, w in enumerate(text.split())]
    info = MediaInfo(path="/synthetic/zebra.mov", name="99_T1_CamA", size=0, mtime_ns=0, container="mov,mp4",
                     duration=2.0, rate=Fraction(24), start_tc="01:00:00:00", tc_source="none",
                     drop_frame=False, has_video=True, frames=48, width=320, height=180, video_codec="h264",
                     scene="99", take="1", camera="A")
    writer.upsert_take("zebra0001", "zebra0001", info, status="pending")
    writer.commit_take("zebra0001", info, [Shot(0, 0, 47)], [Line(0, 0.0, 1.5, words, shots=[0])],
                       embed.embed([text]), models={"synthetic": True}, seconds=0.0)


def test_word_counts_are_kept_between_searches_and_follow_the_writer(tmp_path):
    """Line search weighs query words by how many lines hold them; the reader keeps those counts between
    searches (counting "you" walks 40k postings) but sees a writer's new lines at once (issue 15)."""
    path = _release_copy(tmp_path)
    with Index.open(path) as reader:
        before, total = reader.doc_freq(["comet", "zebra"])
        assert before["comet"] > 0 and "zebra" not in before
        assert reader.doc_freq(["comet", "zebra"]) == (before, total)            # from the kept counts
        with Index.open_writer(path) as writer:
            _write_zebra_take(writer)
        after, total_after = reader.doc_freq(["comet", "zebra"])
        assert after == {"comet": before["comet"] + 1, "zebra": 1} and total_after == total + 1


def test_kept_phrase_scores_rank_exactly_as_fts5_and_follow_the_writer(tmp_path, monkeypatch):
    """Line search's candidates come from per-phrase bm25 shares kept between searches (issue 15): the same
    rowids, scores and order, ties included, as FTS5's own OR query, and a writer's new line at once. Nothing
    is kept before the index has held still for a while (the OR query answers meanwhile)."""
    from indexer.search import full_text_phrases
    from indexer.store.fulltext import _PhraseScores

    path = _release_copy(tmp_path)
    with Index.open(path) as reader:
        reader.fts_any(['norm:"comet"', 'norm:"leo"'], 5)
        assert reader._bm25._entries == 0                      # just opened: not yet
        monkeypatch.setattr(_PhraseScores, "SETTLE", 0.0)
        reader.fts_any(['norm:"comet"', 'norm:"leo"'], 5)
        assert 'norm:"comet"' in reader._bm25._shares
        queries = [ln.tokens for t in reader.takes() for ln in reader.lines_of_take(t.take_id)]
        queries += [q[: max(1, len(q) // 2)] for q in queries]
        phrase_lists = [full_text_phrases(q) for q in queries]
        phrase_lists += [['norm:"can t"', 'norm:"comet"', 'norm:"comet"'],     # a two-token phrase; a repeat
                         ['phon:"KMT"', 'norm:"zebra"'], ['norm:"zebra"']]
        assert len(phrase_lists) > 70
        for rnd in range(2):                                                   # read, then kept
            for phrases in phrase_lists:
                for limit in (1, 5, 200):
                    want = reader.fts(" OR ".join(phrases), limit)
                    assert reader.fts_any(phrases, limit) == want, (phrases, limit)
        ranked = [reader.fts_any(p, 200) for p in phrase_lists]                 # lines tied across a limit:
        assert sum(len(r) > k and r[k - 1][1] == r[k][1] for r in ranked for k in (1, 5)) >= 10   # were there
        assert reader.fts_any(['norm:"zebra"'], 5) == []

        with Index.open(path) as other, Index.open_writer(path) as writer:
            assert other._bm25 is reader._bm25 and writer._bm25 is not reader._bm25   # readers share them
            _write_zebra_take(writer)
        for phrases in (['norm:"zebra"'], ['norm:"comet"', 'norm:"zebra"'], phrase_lists[0]):
            got = reader.fts_any(phrases, 200)
            assert got == reader.fts(" OR ".join(phrases), 200)
        assert len(reader.fts_any(['norm:"zebra"'], 5)) == 1


def test_a_phrase_query_aside_answers_as_the_main_connection_and_sees_a_writers_lines(tmp_path):
    """Line search runs its exact-phrase query on a second read connection while the word query runs on the first
    (issue 15): the same rows as on the first connection, a committed write seen by both, a writer's query on its
    own connection (its uncommitted lines are only there), and the second connection closed with the index."""
    import sqlite3

    path = _release_copy(tmp_path)
    with Index.open(path) as reader:
        phrases = [f'norm:"{" ".join(ln.tokens)}"' for t in reader.takes() for ln in reader.lines_of_take(t.take_id)
                   if len(ln.tokens) > 1]
        assert len(phrases) > 20
        for m in phrases + ['norm:"saw the comet"']:
            assert reader.fts(m, 300, aside=True) == reader.fts(m, 300), m
        aside = reader._aside
        assert aside is not None and aside is not reader._db
        with Index.open_writer(path) as writer:
            writer._db.execute("BEGIN")
            writer._db.execute("INSERT INTO lines_fts(rowid, norm, phon) VALUES (999999, 'zebra stripes', 'SBR')")
            assert writer.fts('norm:"zebra stripes"', 5, aside=True) == writer.fts('norm:"zebra stripes"', 5) != []
            assert reader.fts('norm:"zebra stripes"', 5, aside=True) == []
            writer._db.execute("ROLLBACK")
            assert writer._aside is None
            _write_zebra_take(writer)
        assert len(reader.fts('norm:"saw the comet"', 5, aside=True)) == len(reader.fts('norm:"saw the comet"', 5)) > 0
    with pytest.raises(sqlite3.ProgrammingError):
        aside.execute("SELECT 1")


def test_chroma_reads_wait_for_a_write_in_another_process(tmp_path):
    """Chroma's embedded store is not safe across processes (readers segfaulted in its native code while a
    writer wrote): a reader's Chroma calls wait while another process holds the index's chroma.lock to
    write, and a writer's wait while a reader reads."""
    import subprocess
    import sys
    import time

    import numpy as np

    path = tmp_path / "idx"
    with Index.open_writer(path) as w:
        w.vectors.replace_take("lines", "t1", ["a", "b"], np.eye(2, 4, dtype=np.float32),
                               [{"take_id": "t1"}, {"take_id": "t1"}])
    assert (path / "chroma.lock").is_file()
    hold = ("import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR); fcntl.flock(fd, getattr(fcntl, sys.argv[2]))\n"
            "print('held', flush=True); time.sleep(2.0)")
    for mode, opener, call in (("LOCK_EX", Index.open, lambda idx: idx.vectors.count("lines")),
                               ("LOCK_SH", Index.open_writer,
                                lambda idx: idx.vectors.delete_take("lines", "t1"))):
        with opener(path) as idx:
            idx.vectors.collection("lines")                     # opened before the other process holds it
            proc = subprocess.Popen([sys.executable, "-c", hold, str(path / "chroma.lock"), mode],
                                    stdout=subprocess.PIPE, text=True)
            assert proc.stdout.readline().strip() == "held"
            t = time.monotonic()
            call(idx)
            waited = time.monotonic() - t
            proc.wait(timeout=30)
        assert waited > 1.0, (mode, waited)
    with Index.open(path) as idx:
        assert idx.vectors.count("lines") == 0


def test_a_re_indexed_take_retires_the_vectors_it_lost_and_chroma_never_logs_a_delete(tmp_path):
    """Chroma 1.5.9 crashed (SIGSEGV) loading a collection whose saved HNSW files held deleted records while its
    log added records (see vectors.RETIRED): the store never deletes a vector. A take that lost lines keeps
    them retired, and no read shows them; a line that comes back is live again with its new vector."""
    import numpy as np

    from indexer.store.vectors import RETIRED

    rng = np.random.default_rng(7)
    first, second = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    path = tmp_path / "idx"

    def put(w, take, vecs):
        ids = [f"{take}-{i}" for i in range(len(vecs))]
        w.vectors.replace_take("lines", take, ids, vecs, [{"take_id": take, "idx": i} for i in range(len(vecs))],
                               [f"line {i}" for i in range(len(vecs))])

    with Index.open_writer(path) as w:
        put(w, "t1", first)
        put(w, "t2", second)
        put(w, "t1", second)                           # re-indexed: 3 lines, new vectors; t1-3 and t1-4 retired
        w.vectors.delete_take("lines", "t2")
    with Index.open(path) as idx:
        assert idx.vectors.count("lines") == 3
        live = idx.vectors.get("lines", include=("metadatas", "embeddings"))
        assert sorted(live["ids"]) == ["t1-0", "t1-1", "t1-2"]
        assert np.allclose(np.asarray(live["embeddings"])[np.argsort(live["ids"])], second, atol=1e-5)
        assert idx.vectors.get("lines", ids=["t1-4", "t2-0"])["ids"] == []
        near = idx.vectors.nearest("lines", first[4], 5, include=("distances", "documents"))
        assert near["ids"][0] and "t1-4" not in near["ids"][0] and not any(i.startswith("t2") for i in near["ids"][0])
        assert len(near["ids"][0]) == len(near["distances"][0]) == len(near["documents"][0])
        assert near["metadatas"] is None                   # not asked for
    with Index.open_writer(path) as w:
        put(w, "t1", first)                                # t1-3 and t1-4 come back
        assert w.vectors.count("lines") == 5
        assert w.vectors.nearest("lines", first[4], 1)["ids"][0] == ["t1-4"]
    db = sqlite3.connect(f"file:{path / 'chroma' / 'chroma.sqlite3'}?mode=ro", uri=True)
    ops = dict(db.execute("SELECT operation, COUNT(*) FROM embeddings_queue GROUP BY operation").fetchall())
    retired = db.execute("SELECT COUNT(*) FROM embedding_metadata WHERE key = 'take_id' AND string_value = ?",
                         (RETIRED,)).fetchone()[0]
    db.close()
    # chromadb's Operation: 0 add, 1 update, 2 upsert, 3 delete; nothing has been purged below 1,000 records
    assert ops.get(2) == 5 + 3 + 3 + 5 and ops.get(1) == 2 + 3 and 3 not in ops, ops
    assert retired == 3                                    # t2's three lines


def test_a_writer_holds_the_vector_lock_one_slice_at_a_time(tmp_path, monkeypatch):
    """Readers wait for the whole of a writer's exclusive hold of chroma.lock: a take's vectors are written and
    retired WRITE_SLICE records per hold (a 200-line take in one hold made the review room's searches wait
    200 ms on average while `index` wrote), and every record still ends up written, under the lock."""
    from contextlib import contextmanager

    import numpy as np
    from chromadb.api.models.Collection import Collection

    from indexer.store import vectors as V

    holds: list[list] = []                      # [exclusive?, records written during the hold]
    state = {"write": None}
    access = V.Vectors._access

    @contextmanager
    def recording(self, write):
        with access(self, write):
            state["write"] = write
            holds.append([write, 0])
            try:
                yield
            finally:
                state["write"] = None

    def counted(method):
        def call(self, ids, *a, **kw):
            assert state["write"] is True, "a Chroma write outside an exclusive hold of chroma.lock"
            holds[-1][1] += len(ids)
            return method(self, ids, *a, **kw)
        return call

    path = tmp_path / "idx"
    vecs = np.random.default_rng(3).standard_normal((120, 8)).astype(np.float32)
    with Index.open_writer(path) as w:
        w.vectors.collection("lines")
        monkeypatch.setattr(V.Vectors, "_access", recording)
        monkeypatch.setattr(Collection, "upsert", counted(Collection.upsert))
        monkeypatch.setattr(Collection, "update", counted(Collection.update))
        ids = [f"t1-{i:03d}" for i in range(120)]
        w.vectors.replace_take("lines", "t1", ids, vecs, [{"take_id": "t1"}] * 120)
        w.vectors.replace_take("lines", "t1", ids[:60], vecs[:60], [{"take_id": "t1"}] * 60)   # 60 lines retired
        monkeypatch.undo()
        assert w.vectors.count("lines") == 60
    written = [n for excl, n in holds if excl and n]
    assert max(written) <= V.WRITE_SLICE < 120
    assert sum(written) == 120 + 60 + 60 and len(written) == 3 + 2 + 2, holds


def test_a_reader_loads_the_vectors_only_when_no_other_process_reads_them(tmp_path):
    """Chroma rewrites a collection's HNSW files when a process first loads them, a reader too (the review
    room's workers each reload after every take the writer adds). So a reader loads them when it opens the
    collection, waiting for the index's chroma.lock to be free as a write does, and its queries never rewrite
    them: another process reading the files never sees them change."""
    import subprocess
    import sys
    import time

    import numpy as np

    from indexer.store import refresh_vector_clients

    path = tmp_path / "idx"
    vecs = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    with Index.open_writer(path) as w:
        w.vectors.replace_take("lines", "t1", [f"l{i}" for i in range(len(vecs))], vecs,
                               [{"take_id": "t1"}] * len(vecs))
    segment_files = sorted((path / "chroma").glob("*/*.bin"))
    assert segment_files, "Chroma kept no HNSW files: this test no longer tests what it says"
    # Another process reads: it holds the lock shared for 2 s and reports whether the files changed meanwhile.
    hold = ("import fcntl, os, sys, time\n"
            "files = sys.argv[2:]\n"
            "stamp = lambda: [os.stat(f).st_mtime_ns for f in files]\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_SH)\n"
            "before = stamp(); print('held', flush=True); time.sleep(2.0)\n"
            "print('unchanged' if stamp() == before else 'rewritten', flush=True)")

    def other_reader() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", hold, str(path / "chroma.lock"), *map(str, segment_files)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"
        return proc

    def stamps() -> list[int]:
        return [f.stat().st_mtime_ns for f in segment_files]

    for opened_first in (True, False):
        refresh_vector_clients()        # this process reads the files anew, as a review-room worker does
        before = stamps()
        with Index.open(path) as idx:
            if opened_first:
                idx.vectors.collection("lines")
                assert stamps() != before, "the reader's load did not rewrite the files: see Vectors.collection"
            proc = other_reader()
            t = time.monotonic()
            res = idx.vectors.nearest("lines", vecs[7], 1)
            waited = time.monotonic() - t
        assert proc.stdout.readline().strip() == "unchanged", opened_first
        proc.wait(timeout=30)
        assert res["ids"][0] == ["l7"]
        # A loaded collection's reads share the lock; a first read waits to load.
        assert (waited < 1.0) if opened_first else (waited > 1.0), (opened_first, waited)


def test_chromadb_is_imported_without_the_overrides_checks_and_they_are_put_back():
    """Vectors imports chromadb with the ``overrides`` package's class-definition checks off (0.7 s of every
    run's start): chromadb's methods are marked as the package marks them, and the package is itself again after."""
    import subprocess
    import sys

    code = ("import tempfile, pathlib, overrides\n"
            "from indexer.store.vectors import Vectors\n"
            "own = overrides.override\n"
            "v = Vectors(pathlib.Path(tempfile.mkdtemp()), None, lambda: None, readonly=False)\n"
            "v.collection('lines')\n"
            "from chromadb.api.rust import RustBindingsAPI\n"
            "print(RustBindingsAPI.start.__override__, overrides.override is own, overrides.overrides.__module__)\n"
            "v.close()\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "overrides.overrides"]
