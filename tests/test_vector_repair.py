"""A damaged vector store (Chroma's HNSW files): `dailies rebuild-vectors` finds it and makes the line vectors
again from the catalog, on the fixture shoot's real index.

Chroma often does not raise on a damaged store: the process that reads it dies in native code (SIGSEGV), so the
check reads it in a child process. The store
is damaged here as a torn write leaves it: a segment's data_level0.bin overwritten. A store of fewer than some
thousand vectors is remade from Chroma's own log when loaded, so the damaged collection holds 3,000.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import run_cli
from indexer.store import Index, refresh_vector_clients

pytestmark = pytest.mark.slow        # three child processes read the store per check (about 30 s in all)

QUERY = "We have to follow the data, not the calendar."


def _lines(path) -> dict:
    refresh_vector_clients()            # another process may have changed the store since this one read it
    with Index.open(path) as idx:
        got = idx.vectors.get("lines", include=("metadatas", "documents", "embeddings"))
    return {i: (m, d, np.asarray(e)) for i, m, d, e in zip(got["ids"], got["metadatas"], got["documents"],
                                                             got["embeddings"])}


def _search(path) -> list[dict]:
    return json.loads(run_cli("search", "line", QUERY, "--index", str(path), "--json", check=True).stdout)


def test_a_damaged_store_is_found_and_its_line_vectors_made_again_from_the_catalog(shoot_index, tmp_path):
    path = tmp_path / "idx"
    shutil.copytree(shoot_index, path)
    before_lines, before_hits = _lines(path), _search(path)
    assert before_lines and before_hits

    ok = run_cli("rebuild-vectors", "--index", str(path))
    said = " ".join(ok.stdout.split())          # rich wraps the sentence where the temporary path's length puts it
    assert ok.returncode == 0 and "reads cleanly" in said and "Nothing to do" in said, ok
    assert sorted(p.name for p in path.iterdir() if p.name.startswith("chroma.set-aside")) == []

    # Picture vectors of some take (3,000: enough that Chroma keeps them in HNSW files), then damage them.
    with Index.open_writer(path) as idx:
        take = idx.takes(status="indexed")[0]
        vecs = np.random.default_rng(0).standard_normal((3000, 8)).astype(np.float32)
        idx.vectors.replace_take("frames", take.take_id, [f"f{i}" for i in range(len(vecs))], vecs,
                                 [{"take_id": take.take_id}] * len(vecs))
        with idx._db:           # what the picture step records with them
            idx._db.execute("UPDATE takes SET n_frames=3000 WHERE take_id=?", (take.take_id,))
    refresh_vector_clients()
    segment = max((path / "chroma").glob("*/data_level0.bin"), key=lambda p: p.stat().st_size)   # the 3,000
    data = segment.read_bytes()
    segment.write_bytes(bytes(range(256)) * (len(data) // 256) + data[len(data) // 256 * 256:])

    check = run_cli("rebuild-vectors", "--check", "--index", str(path))
    assert check.returncode == 1, check
    # (here Chroma raised; a store damaged elsewhere crashed the reader: "reading it crashed the process (SIGSEGV)")
    assert "is damaged: reading it" in " ".join(check.stdout.split()), check.stdout
    assert "Traceback" not in check.stdout + check.stderr

    fixed = run_cli("rebuild-vectors", "--index", str(path))
    assert fixed.returncode == 0, fixed
    said = " ".join(fixed.stdout.split())
    assert "is damaged" in said and f"Rebuilt the line vectors of 5 takes ({len(before_lines)} lines)" in said, said
    assert "1 takes had picture vectors" in said and "--visual-only" in said, said
    [aside] = [p for p in path.iterdir() if p.name.startswith("chroma.set-aside")]
    assert aside.is_dir() and (aside / segment.parent.name / "data_level0.bin").read_bytes() != data  # kept as found

    assert run_cli("rebuild-vectors", "--check", "--index", str(path)).returncode == 0
    after_lines = _lines(path)
    assert after_lines.keys() == before_lines.keys()
    for lid, (meta, doc, vec) in before_lines.items():
        assert after_lines[lid][0] == meta and after_lines[lid][1] == doc, lid
        np.testing.assert_allclose(after_lines[lid][2], vec, atol=1e-6)
    assert _search(path) == before_hits
    with Index.open(path) as idx:
        assert idx.vectors.count("frames") == 0
        assert all(t.n_frames == 0 for t in idx.takes())


def test_an_interrupted_rebuild_is_finished_by_the_next_one(shoot_index, tmp_path):
    """A rebuild stopped half-way leaves a store that reads cleanly but lacks lines: the index remembers that
    the rebuild did not finish, and the next run finishes it instead of saying there is nothing to do."""
    from indexer.repair import rebuild_vectors

    path = tmp_path / "idx"
    shutil.copytree(shoot_index, path)
    before_lines, before_hits = _lines(path), _search(path)

    def stop(k: int, n: int) -> None:
        if k == 2:
            raise KeyboardInterrupt

    with Index.open_writer(path) as idx:
        try:
            rebuild_vectors(idx, progress=stop)
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError("the rebuild was not interrupted")
    assert 0 < len(_lines(path)) < len(before_lines)

    check = run_cli("rebuild-vectors", "--check", "--index", str(path))
    said = " ".join(check.stdout.split())
    assert check.returncode == 1 and "is incomplete: an earlier `dailies rebuild-vectors`" in said, check
    again = run_cli("rebuild-vectors", "--index", str(path))
    assert again.returncode == 0 and "Rebuilt the line vectors of 5 takes" in " ".join(again.stdout.split()), again
    assert run_cli("rebuild-vectors", "--check", "--index", str(path)).returncode == 0
    assert _lines(path).keys() == before_lines.keys()
    assert _search(path) == before_hits
