"""Vectors of an index in Chroma: ``lines`` (text embeddings of utterances) and ``frames`` (CLIP).

Embedded (``PersistentClient`` in the index folder's ``chroma/``) by default, or a Chroma server
(``--chroma-url`` / ``DAILIES_CHROMA_URL``), where collection names carry the index's uid.

Chroma's embedded store cannot open a folder it may not write: a reader of a read-only index reads
a private copy of ``chroma/`` (made on first use, removed on close), so searches there rank exactly
as they do on a writable index.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock (one process at a time there)
    fcntl = None

CHROMA_DIR = "chroma"
ACCESS_LOCK = "chroma.lock"     # beside chroma/: see Vectors._access
# Records a writer adds or changes per hold of the folder's exclusive lock (see Vectors._access). Readers wait for
# the whole of a hold: a take's 200 lines at once held it 80-250 ms at 100k lines (about 1 ms a vector), so the
# review room's searches waited 200 ms on average (p95 460 ms) while `index` wrote. Slices of 50 bound that wait
# to one slice; each costs the writer a call of a few ms.
WRITE_SLICE = 50
# A vector that no longer belongs to any take keeps its place, with this as its take_id, instead of being deleted.
# Chroma 1.5.9's embedded store crashes (SIGSEGV in its native code, in the writer or in any later reader) when it
# replays log records that add vectors onto saved HNSW files that hold deleted ones: each first load of a
# collection in a process replays what the files have not saved yet (up to 1,000 records). Measured on copies of
# a 108k-line bench index whose takes had been re-indexed (then: delete, upsert of the same ids): 3 to 6 loads in
# 10 crashed, and so did the writer re-indexing two more takes the same way (4 runs in 4); upserts in place there:
# 0 crashes in 10 loads; the same delete-then-add on an index with no deletions saved: 0 in 10. Every read here
# leaves retired records out; `dailies rebuild-vectors --force` makes a store without them (and mends one that
# already holds deletions).
RETIRED = "~retired~"       # no take id has a tilde
NOT_SAVED_YET = "Nothing found on disk"     # Chroma's error for an HNSW segment with no saved files
# Chroma shares one system per folder between the clients of a process and builds it on first use; threads
# opening clients at once (the review room's first searches) raced there: "Could not connect to tenant
# default_tenant", "'RustBindingsAPI' object has no attribute 'bindings'".
_OPEN_LOCK = threading.RLock()


class Vectors:
    """The Chroma side of one index (every Chroma call of the project is in this class)."""

    def __init__(self, folder: Path, url: str | None, uid: Callable[[], str | None], *, readonly: bool):
        self.folder = folder
        self.url = url
        self._uid = uid
        self.readonly = readonly
        self._client = None
        self._copy: str | None = None
        self._collections: dict[str, Any] = {}
        self._opening: threading.Thread | None = None
        self._open_error: BaseException | None = None

    def _name(self, kind: str) -> str:
        return kind if not self.url else f"{self._uid()}-{kind}"

    @contextmanager
    def _access(self, write: bool):
        """Chroma's embedded store is not safe across processes: a process reading the HNSW files while
        another writes them can crash in Chroma's native code (seen here: the review room's readers
        segfaulted while `dailies index` wrote). Every embedded call holds the index folder's
        ``chroma.lock``: shared to read, exclusive to write (and to load a collection, which writes: see
        :meth:`collection`), so reads never meet a write. A new descriptor
        per call (flock is per open file, so threads of a process exclude each other too). No lock for a
        Chroma server (it serialises its clients), a reader of a private copy, or a folder with no lock file
        (made by the first writer) that the reader may not create."""
        if self.url or self._copy is not None or fcntl is None:
            yield
            return
        path = self.folder / ACCESS_LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666) if not self.readonly else os.open(path, os.O_RDONLY)
        except OSError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)                      # releases the lock

    def open_soon(self, kinds: tuple[str, ...] = ()) -> None:
        """Open the store, and load these collections, on a thread of their own, so that the first call finds
        them open: importing chromadb and opening a client cost 1.5-2 s of every run's start, and loading a
        large collection more, time that the caller's model loads and decoding can share. An error is raised
        by the first call that needs the store (a second try would hide it: Chroma keeps a half-made client,
        whose error says nothing); :meth:`close` waits for the thread."""
        if self._opening is not None or (self._client is not None and all(k in self._collections for k in kinds)):
            return

        def open_now():
            try:
                self.client()
                for kind in kinds:
                    self.collection(kind)
            except BaseException as exc:
                self._open_error = exc
        self._opening = threading.Thread(target=open_now, name="dailies-open-vectors", daemon=True)
        self._opening.start()

    def _opened(self, *, raise_error: bool = True) -> None:
        """Wait for :meth:`open_soon`'s thread (from any other thread), and raise what it met."""
        opening = self._opening
        if opening is not None and opening is not threading.current_thread():
            opening.join()
            self._opening = None
            error, self._open_error = self._open_error, None
            if error is not None and raise_error:
                raise error

    @staticmethod
    def make_lock(folder: Path) -> None:
        """Make the folder's ``chroma.lock`` (see :meth:`_access`)."""
        os.close(os.open(folder / ACCESS_LOCK, os.O_RDWR | os.O_CREAT, 0o666))

    def client(self):
        self._opened()
        with _OPEN_LOCK:
            if self._client is not None:
                return self._client
            with self._access(write=True):     # opening writes chroma.sqlite3, a reader's too
                return self._open()

    def _open(self):
        if self._client is None:
            chromadb = _import_chromadb()
            from chromadb.config import Settings

            settings = Settings(anonymized_telemetry=False)
            if self.url:
                from urllib.parse import urlparse

                u = urlparse(self.url)
                self._client = chromadb.HttpClient(host=u.hostname or "localhost", port=u.port or 8000,
                                                   ssl=u.scheme == "https", settings=settings)
            else:
                path = self.folder / CHROMA_DIR
                if self.readonly and path.is_dir() and not _writable(path):
                    self._copy = tempfile.mkdtemp(prefix="dailies-chroma-")
                    shutil.copytree(path, self._copy, dirs_exist_ok=True, copy_function=shutil.copyfile)
                    for d, _, _ in os.walk(self._copy):          # the folders kept the original's modes
                        os.chmod(d, 0o700)
                    path = Path(self._copy)
                self._client = chromadb.PersistentClient(path=str(path), settings=settings)
        return self._client

    def collection(self, kind: str):
        """A collection (cosine space, vectors supplied by us), created on first use.

        Chroma writes when it loads a collection's vectors from disk: its first read in a process (and the first
        after :func:`refresh_vector_clients`) rewrites the HNSW segment's files. So the load is done here, with
        the folder's lock held to write (a reader's too), never under a reader's shared lock, where another
        process's reads of the same files (the review room's workers all reload after each take the writer adds)
        would meet it."""
        self._opened()
        if kind not in self._collections:
            client = self.client()
            with _OPEN_LOCK, self._access(write=True):
                if kind not in self._collections:
                    col = client.get_or_create_collection(
                        self._name(kind), embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
                    if not self.url:
                        col.count()             # loads the segment (and rewrites its files) under this lock
                    self._collections[kind] = col
        return self._collections[kind]

    def close(self) -> None:
        self._opened(raise_error=False)     # an error no call met is not the closer's
        self._collections.clear()
        self._client = None
        if self._copy is not None:
            shutil.rmtree(self._copy, ignore_errors=True)
            self._copy = None

    def damage(self, tries: int = 3, timeout: float = 600.0) -> str | None:
        """Why the embedded store cannot be read, or None when it read cleanly ``tries`` times: every collection
        is loaded and queried in a child process, since a damaged store often does not raise but crashes the
        process that reads it (Chroma's native code, chroma-core/chroma#6979, #7238), and not on every load: a
        store damaged here crashed one load in three."""
        if self.url or not (self.folder / CHROMA_DIR).is_dir():
            return None
        import subprocess
        import sys

        for _ in range(tries):
            try:
                proc = subprocess.run([sys.executable, "-c", _PROBE, str(self.folder)], capture_output=True,
                                      text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                return f"reading it did not finish in {timeout:.0f} s"
            if proc.returncode != 0:
                return _failure(proc)
        return None

    def set_aside(self) -> Path | None:
        """Move the embedded store's folder aside as it is (``chroma.set-aside-<UTC time>``), never reading it;
        the next call starts a new, empty one. Returns the new name (None: no folder, or a Chroma server)."""
        src = self.folder / CHROMA_DIR
        if self.url or not src.is_dir():
            return None
        with _OPEN_LOCK, self._access(write=True):
            self.close()
            refresh_vector_clients()           # this process's Chroma forgets the old folder's files
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
            dst = self.folder / f"{CHROMA_DIR}.set-aside-{stamp}"
            n = 1
            while dst.exists():
                n += 1
                dst = self.folder / f"{CHROMA_DIR}.set-aside-{stamp}-{n}"
            src.rename(dst)
        return dst

    # ------------------------------------------------------------------ writing
    def replace_take(self, kind: str, take_id: str, ids: list[str], embeddings, metadatas: list[dict],
                     documents: list[str] | None = None) -> None:
        """A take's vectors of one kind become these: the ids it keeps are overwritten in place, the ones it no
        longer has are retired (see :data:`RETIRED`), never deleted.

        The records are written :data:`WRITE_SLICE` at a time, each slice under its own hold of the lock, so that a
        reader meanwhile waits for one slice, not the whole take. A reader between two slices sees part of the
        take's new vectors (or, re-indexing, some old ones): line search looks their ids up in the catalog, which
        has the take's lines as committed, and drops the ones it has not."""
        col = self.collection(kind)
        with self._access(write=False):             # the one writer reads: nothing else writes meanwhile
            before = set(col.get(where={"take_id": take_id}, include=[])["ids"])
        for i in range(0, len(ids), WRITE_SLICE):
            j = i + WRITE_SLICE
            kw: dict[str, Any] = {"ids": ids[i:j], "embeddings": np.asarray(embeddings[i:j]),
                                  "metadatas": metadatas[i:j]}
            if documents is not None:
                kw["documents"] = documents[i:j]
            with self._access(write=True):
                col.upsert(**kw)
        self._retire(col, sorted(before.difference(ids)))

    def delete_take(self, kind: str, take_id: str) -> None:
        """Retire every vector of a take (see :data:`RETIRED`)."""
        col = self.collection(kind)
        with self._access(write=False):
            ids = col.get(where={"take_id": take_id}, include=[])["ids"]
        self._retire(col, ids)

    def _retire(self, col, ids: list[str]) -> None:
        for i in range(0, len(ids), WRITE_SLICE):
            part = ids[i:i + WRITE_SLICE]
            with self._access(write=True):
                col.update(ids=part, metadatas=[{"take_id": RETIRED} for _ in part])

    def drop(self, kind: str) -> None:
        """Forget every vector of one kind (no error when there were none)."""
        client = self.client()
        with self._access(write=True):
            try:
                client.delete_collection(self._name(kind))
            except Exception:  # the collection did not exist
                pass
        self._collections.pop(kind, None)

    # ------------------------------------------------------------------ reading
    def count(self, kind: str) -> int:
        """Live vectors of one kind (retired ones not counted)."""
        col = self.collection(kind)
        with self._access(write=False):
            return col.count() - len(col.get(where={"take_id": RETIRED}, include=[])["ids"])

    def nearest(self, kind: str, vector, n: int, where: dict | None = None,
                include: tuple[str, ...] = ("distances",), *, with_retired: bool = False) -> dict:
        """Chroma's answer for the ``n`` nearest records (ids, and the ``include`` fields), one query. Retired
        records among them are left out (so fewer than ``n`` may come back), unless ``with_retired``: for a caller
        that resolves the ids elsewhere, where a retired one has no row (a query of ids and distances only costs
        a third or less of one that also reads the metadata to find the retired: 2.6 against 9.2 ms at 100k)."""
        col = self.collection(kind)
        asked = list(include) if with_retired else list(dict.fromkeys([*include, "metadatas"]))
        with self._access(write=False):
            try:
                res = col.query(query_embeddings=[np.asarray(vector).tolist()], n_results=n, where=where,
                                include=asked)
            except Exception as exc:
                if NOT_SAVED_YET not in str(exc):
                    raise
                # A writer's first vectors of this collection are in Chroma's log, and its HNSW segment is not
                # on disk yet (Chroma makes it after the writer's call has returned): no vector can be read yet,
                # so a search ranks by its other scores. The reliability suite's eight readers met this in 2 runs
                # of 2 while `dailies index` wrote its first takes ("unexpected error (InternalError ...)").
                res = {key: [[]] for key in ("ids", *asked)}
        return res if with_retired else _live(res, include, nested=True)

    def get(self, kind: str, where: dict | None = None, include: tuple[str, ...] = ("metadatas",),
            ids: list[str] | None = None, limit: int | None = None) -> dict:
        """Chroma's ``get`` of live records (retired ones left out)."""
        col = self.collection(kind)
        asked = list(dict.fromkeys([*include, "metadatas"]))
        with self._access(write=False):
            res = col.get(ids=ids, where=where, include=asked, limit=limit)
        return _live(res, include, nested=False)


def _live(res: dict, include, *, nested: bool) -> dict:
    """Chroma's result (of ``query`` when ``nested``, else of ``get``) without its retired records, and with only
    the fields asked for besides the ids."""
    out = dict(res)
    metas = res.get("metadatas")
    if nested and metas is not None:
        metas = metas[0] if len(metas) else None
    if metas is not None:
        keep = [i for i, m in enumerate(metas) if not (m and m.get("take_id") == RETIRED)]
        if len(keep) < len(metas):
            def pick(val):
                return val[keep] if isinstance(val, np.ndarray) else [val[i] for i in keep]

            for key in ("ids", "metadatas", *include):
                val = res.get(key)
                if val is not None:
                    out[key] = [pick(val[0]), *val[1:]] if nested else pick(val)
    if "metadatas" not in include:
        out["metadatas"] = None
    return out


def _failure(proc) -> str:
    """A probe's failure in words."""
    import signal

    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return f"reading it crashed the process ({name})"
    last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
    return f"reading it failed: {last}"


# Vectors.damage's child: load and query every collection of the folder's store, as a reader does.
_PROBE = """
import sys
from pathlib import Path
from indexer.store.vectors import Vectors
v = Vectors(Path(sys.argv[1]), None, lambda: None, readonly=True)
for c in v.client().list_collections():
    name = getattr(c, "name", c)
    v.count(name)
    got = v.get(name, include=("embeddings",), limit=1)
    if len(got["ids"]):
        v.nearest(name, got["embeddings"][0], 10)
v.close()
"""


def _import_chromadb():
    """chromadb, imported without the checks the ``overrides`` package makes as each class is defined.

    chromadb marks some 160 methods ``@override``. As each class is defined, the decorator finds its base classes
    by disassembling the caller's frame and compares signatures: about 0.7 of the 2.3 s that importing chromadb
    costs here, paid by every `dailies index` and every CLI search. The checks guard chromadb's own source
    against a misnamed method; what the decorator leaves is the method itself, marked ``__override__`` (what
    ``EnforceOverrides`` looks for). While chromadb is imported (first call only, under ``_OPEN_LOCK``), that is
    all it does; the package's own functions are put back after. Nothing else installed uses the package."""
    import sys

    if "chromadb" in sys.modules:
        return sys.modules["chromadb"]
    try:
        import overrides
    except ImportError:         # a chromadb that no longer needs it
        import chromadb
        return chromadb

    def mark(method=None, **_):
        def marked(m):
            m.__override__ = True
            return m
        return marked if method is None else marked(method)
    names = ("override", "overrides")
    saved = {name: getattr(overrides, name) for name in names if hasattr(overrides, name)}
    try:
        for name in names:
            setattr(overrides, name, mark)
        import chromadb
    finally:
        for name in names:
            if name in saved:
                setattr(overrides, name, saved[name])
            else:
                delattr(overrides, name)
    return chromadb


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and all(os.access(p, os.W_OK) for p in path.iterdir()
                                             if p.name == "chroma.sqlite3")


def refresh_vector_clients() -> None:
    """Make this process's next embedded Chroma clients read the vector store from disk again.

    A long-lived reader (the review room) whose client has answered a query keeps that collection's HNSW
    index in memory and does not see vectors the writer process added since. Call only with no query in
    flight: clients of every index in this process are dropped, and the next :meth:`Index.open` starts anew.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    with _OPEN_LOCK:
        SharedSystemClient.clear_system_cache()
