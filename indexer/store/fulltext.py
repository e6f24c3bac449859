"""Reading the catalog's full-text index (FTS5 over the lines): candidates for a search, their bm25 scores, and
the words' document counts. A part of :class:`indexer.store.catalog.Index` (it mixes this class in), kept apart
from the catalog's writing and reading of takes; the one place with SQL besides the other store modules."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import UsageError


class FullTextReads:
    """Full-text reads of an :class:`~indexer.store.catalog.Index` (``self._db``, its locks and caches)."""

    def fts(self, match: str, limit: int, take_ids: list[str] | None = None, *,
            aside: bool = False) -> list[tuple[int, float]]:
        """Full-text candidates: (line rowid, bm25 rank) best first. ``aside``: on a second read connection of
        this index, so that it runs at the same time as a query on the first from another thread (SQLite
        serialises the statements of one connection; a writer's has its own uncommitted state, so a writer
        always uses its one connection)."""
        if take_ids is not None:
            if not take_ids:
                return []
            sql = (f"SELECT lines_fts.rowid, bm25(lines_fts, 1.0, 0.6) AS r FROM lines_fts "
                   f"JOIN lines ON lines.id = lines_fts.rowid WHERE lines_fts MATCH ? "
                   f"AND lines.take_id IN ({','.join('?' * len(take_ids))}) ORDER BY r LIMIT ?")
            params: list[Any] = [match, *take_ids, limit]
        else:
            sql = "SELECT rowid, bm25(lines_fts, 1.0, 0.6) AS r FROM lines_fts WHERE lines_fts MATCH ? ORDER BY r LIMIT ?"
            params = [match, limit]
        return [(r[0], r[1]) for r in self._fts_rows(sql, params, self._aside_db() if aside else self._db)]

    def fts_any(self, phrases: list[str], limit: int, take_ids: list[str] | None = None,
                fill: bool = False) -> list[tuple[int, float]]:
        """The lines matching any of the phrases: exactly ``fts(" OR ".join(phrases), limit, take_ids)``, the
        same rowids and bm25 values in the same order, at a fraction of its cost when the phrases were seen
        before (see :class:`_PhraseScores`). Phrases are read one by one and kept only once the full-text
        index has held still for a few seconds (``fill``: at once)."""
        if take_ids is not None or not phrases:
            return self.fts(" OR ".join(phrases), limit, take_ids)
        stamp = self._fts_stamp()
        if not fill and not self._bm25.settled(stamp):
            return self.fts(" OR ".join(phrases), limit, take_ids)
        scores = []
        for phrase in phrases:
            got = self._bm25.get(stamp, phrase)
            if got is None:
                rows = self._fts_rows("SELECT rowid, bm25(lines_fts, 1.0, 0.6) FROM lines_fts WHERE lines_fts MATCH ?",
                                      [phrase])
                a = np.array(rows, dtype=np.float64).reshape(-1, 2)
                # bm25 is minus the sum of the phrases' shares: one phrase alone gives minus its share, exactly
                got = (a[:, 0].astype(np.int64), -a[:, 1])
                if self._fts_stamp() != stamp:      # another connection committed between the statements
                    return self.fts(" OR ".join(phrases), limit, take_ids)
                self._bm25.put(stamp, phrase, got)
            scores.append(got)
        return _PhraseScores.best(scores, limit)

    def _stamp(self) -> tuple[int, int]:
        """Changes whenever the catalog does, by this connection or any other."""
        return self._db.execute("PRAGMA data_version").fetchone()[0], self._db.total_changes

    def common_words(self, n: int) -> list[str]:
        """The ``n`` words held by the most lines, most first."""
        return [r[0] for r in self._db.execute(
            "SELECT term FROM lines_vocab WHERE col='norm' ORDER BY doc DESC LIMIT ?", (n,))]

    def _fts_stamp(self) -> tuple[bytes, int]:
        """Changes whenever the full-text index does, seen alike by every connection (unlike data_version): FTS5's
        structure record, rewritten by every committed write to the index (a new segment, a merge), and this
        connection's own uncommitted changes."""
        row = self._db.execute("SELECT block FROM lines_fts_data WHERE id=10").fetchone()
        return (bytes(row[0]) if row else b""), self._db.total_changes

    def _fts_rows(self, sql: str, params: list, db: sqlite3.Connection | None = None) -> list:
        try:
            cur = (db or self._db).cursor()
            cur.row_factory = None
            return cur.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "fts5: syntax error" in str(exc) or "unterminated string" in str(exc) or "no such column" in str(exc):
                raise UsageError(f"The search {params[0]!r} is not a valid full-text query ({exc}).") from None
            raise

    def doc_freq(self, terms: Iterable[str]) -> tuple[dict[str, int], int]:
        """How many lines contain each normalised term (for IDF weights), and the number of lines."""
        terms = sorted(set(terms))
        # Counting 100k lines costs 5 ms a search: counted again only when the catalog changed.
        # A term's count walks its whole posting list (3 ms for "you" in 100k lines): counts are kept too, and
        # both are dropped when any connection changed the catalog.
        with self._df_lock:
            stamp = self._stamp()
            if self._df_cache[0] != stamp:
                self._df_cache = (stamp, self._db.execute("SELECT COUNT(*) FROM lines").fetchone()[0], {})
            _, total, known = self._df_cache
            missing = [t for t in terms if t not in known]
            if missing:
                found = dict(self._db.execute(
                    f"SELECT term, doc FROM lines_vocab WHERE col='norm' AND term IN ({','.join('?' * len(missing))})",
                    missing).fetchall())
                if len(known) + len(missing) > 100_000:
                    known.clear()
                known.update((t, found.get(t, 0)) for t in missing)
            return {t: known[t] for t in terms if known[t]}, total


class _PhraseScores:
    """Each full-text phrase's share of FTS5's bm25, per line, kept while the catalog is unchanged.

    FTS5 scores a line for ``a OR b OR ...`` as minus the sum, over the phrases in their order, of
    ``idf * f * (k1 + 1) / (f + k1 * (1 - b + b * D / avgdl))``: each phrase's share depends on that phrase, the
    line and the catalog's totals, never on the other phrases. So the query is answered from one share per
    phrase, added in the phrase order from 0.0 as FTS5 adds them (the same doubles), and ranked as SQLite's
    ``ORDER BY bm25 LIMIT n`` ranks (score, then rowid). What the sum costs FTS5 per line grows with the number of
    phrases (a 30-word line asks for 60 and more, 80 ms on 100k lines); common words' shares (the costly ones)
    come back query after query and are read once. Everything is dropped when the full-text index changes,
    since idf and avgdl do. Readers of one folder share them; the writer keeps its own.

    Reading the phrases one by one costs about twice the OR query (FTS5's bm25 reads each line's size once per
    phrase), which pays only when later searches reuse them: nothing is read one by one until the index has
    held still for ``SETTLE`` seconds (an index run commits a take every few seconds; a one-off CLI search
    never gets there), and searches meanwhile take the OR query as before.
    """

    MAX_ENTRIES = 4_000_000       # lines x phrases kept (16 bytes each): ~64 MB, then it starts again
    SETTLE = 5.0                  # seconds the full-text index must hold still before phrases are kept
    _by_path: dict[str, "_PhraseScores"] = {}
    _by_path_lock = threading.Lock()

    @classmethod
    def shared(cls, path: Path) -> "_PhraseScores":
        """One per index folder in a process, for all its readers (the review room's pool holds several)."""
        key = os.path.realpath(path)
        with cls._by_path_lock:
            if key not in cls._by_path and len(cls._by_path) >= 4:       # a process that opens many indexes
                cls._by_path.pop(next(iter(cls._by_path)))
            return cls._by_path.setdefault(key, cls())

    @classmethod
    def _forget_all(cls) -> None:
        """In a forked child: no lock held by a thread that did not come along, nothing shared with the parent."""
        cls._by_path, cls._by_path_lock = {}, threading.Lock()

    def __init__(self):
        self._lock = threading.Lock()
        self._stamp: Any = None
        self._seen: Any = None              # the last stamp asked about, and since when (see settled)
        self._seen_at = 0.0
        self._shares: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._entries = 0

    def settled(self, stamp) -> bool:
        """Whether the full-text index has been at ``stamp`` for ``SETTLE`` seconds as far as seen here, or phrases
        of it are kept already (a warm-up read them)."""
        now = time.monotonic()
        with self._lock:
            if stamp != self._seen:
                self._seen, self._seen_at = stamp, now
            return (self._stamp == stamp and bool(self._shares)) or now - self._seen_at >= self.SETTLE

    def get(self, stamp, phrase: str):
        with self._lock:
            return self._shares.get(phrase) if self._stamp == stamp else None

    def put(self, stamp, phrase: str, shares: tuple[np.ndarray, np.ndarray]) -> None:
        with self._lock:
            if self._stamp != stamp or self._entries + len(shares[0]) > self.MAX_ENTRIES:
                self._stamp, self._shares, self._entries = stamp, {}, 0
            if phrase not in self._shares:
                self._shares[phrase] = shares
                self._entries += len(shares[0])

    @staticmethod
    def best(shares: list[tuple[np.ndarray, np.ndarray]], limit: int) -> list[tuple[int, float]]:
        top = max((int(ids.max()) for ids, _ in shares if len(ids)), default=-1)
        if top < 0 or limit <= 0:
            return []
        total = np.zeros(top + 1)
        for ids, share in shares:           # in the phrase order; a phrase's rowids are distinct
            total[ids] += share
        ids = np.flatnonzero(total)         # every share of a matching line is > 0
        score = -total[ids]
        if len(ids) > limit:                # all lines tied with the limit-th, then SQLite's order among them
            keep = score <= np.partition(score, limit - 1)[limit - 1]
            ids, score = ids[keep], score[keep]
        order = np.lexsort((ids, score))[:limit]
        return [(int(i), float(s)) for i, s in zip(ids[order], score[order])]


os.register_at_fork(after_in_child=_PhraseScores._forget_all)
