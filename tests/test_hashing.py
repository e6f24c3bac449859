"""What identifies a take: the whole file up to 1 GiB, a fixed 96 MiB sample above (issue 14: hashing a 100 GB
original must not read it all before work starts)."""

from __future__ import annotations

import shutil

import pytest

from conftest import FIXTURES
from indexer import hashing

MiB = 1 << 20


class _Counting:
    """A file object that counts the bytes read through it."""

    def __init__(self, f):
        self.f, self.read_bytes = f, 0

    def seek(self, *a):
        return self.f.seek(*a)

    def read(self, n=-1):
        data = self.f.read(n)
        self.read_bytes += len(data)
        return data


@pytest.fixture
def big(tmp_path):
    """A 3 GiB sparse file (no disk used) with a few bytes written in its head, middle and tail."""
    p = tmp_path / "A001C003_big.mov"
    with open(p, "wb") as f:
        f.truncate(3 << 30)
        for off in (100, 1 << 30, (3 << 30) - 100):
            f.seek(off)
            f.write(b"dailies")
    return p


def test_small_files_keep_their_whole_content_hash():
    """Every index written before keeps its take ids: below the threshold nothing changed."""
    p = FIXTURES / "shoot" / "12A_T2_CamA.mov"
    assert hashing.content_hash(str(p)) == hashing.whole_content_hash(str(p))


def test_a_large_original_is_hashed_from_96_mib(big):
    size = big.stat().st_size
    with open(big, "rb") as f:
        counted = _Counting(f)
        digest = hashing._sampled_digest(counted, size)
    assert counted.read_bytes == 96 * MiB
    assert digest == hashing.content_hash(str(big)) and len(digest) == 32


@pytest.mark.parametrize("where", ["head", "tail", "sample", "size"])
def test_a_changed_large_original_gets_another_hash(big, where):
    before = hashing.content_hash(str(big))
    size = big.stat().st_size
    with open(big, "r+b") as f:
        if where == "size":
            f.truncate(size + 1)
        else:
            f.seek({"head": 5 * MiB, "tail": size - 5 * MiB,
                    "sample": 10 * (size - MiB) // (hashing._SAMPLES - 1) + 1000}[where])
            f.write(b"changed")
    assert hashing.content_hash(str(big)) != before


def test_sampled_and_whole_hashes_never_coincide(tmp_path, monkeypatch):
    """The sampled digest is personalised: a small file hashed both ways gives two different identities."""
    p = tmp_path / "x.wav"
    p.write_bytes(bytes(range(256)) * 40000)
    with open(p, "rb") as f:
        sampled = hashing._sampled_digest(f, p.stat().st_size)
    assert sampled != hashing.whole_content_hash(str(p))


def test_a_take_indexed_by_its_whole_hash_is_still_known_when_moved(tmp_path, monkeypatch):
    """A large take indexed before sampled hashing, then moved: recognised by its whole hash, not re-indexed."""
    from indexer.config import IndexSettings
    from indexer.pipeline import Indexer
    from indexer.store import Index

    src = tmp_path / "card1" / "12A_T4_CamC_MOS.mov"
    src.parent.mkdir()
    shutil.copy(FIXTURES / "shoot" / src.name, src)
    index = tmp_path / "index"
    with Index.open_writer(index) as idx:
        first = Indexer(idx, IndexSettings()).run([src]).results[0]
    assert first.status == "indexed"

    monkeypatch.setattr(hashing, "SAMPLED_ABOVE", 1000)      # the same file now counts as large
    dst = tmp_path / "card2" / src.name
    dst.parent.mkdir()
    shutil.move(src, dst)
    with Index.open_writer(index) as idx:
        again = Indexer(idx, IndexSettings()).run([dst]).results[0]
        assert [t.take_id for t in idx.takes()] == [first.take_id]
    assert (again.status, again.take_id) == ("moved", first.take_id)
