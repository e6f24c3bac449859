"""The voice registry's tables (``voice_voices``, ``voice_locals``, ``voice_meta``): every statement
the registry (:mod:`indexer.speakers.identity`) needs, by name. The registry's logic (matching,
centroids, merges) stays there; the schema is the catalog's (:mod:`indexer.store.schema`)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Iterator

from . import schema


class VoiceTables:
    """The registry's rows in one catalog connection (an index's, or a private in-memory one)."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    @classmethod
    def memory(cls) -> "VoiceTables":
        """A registry of its own, in memory (evaluations, benchmarks, tests)."""
        return cls.standalone(":memory:")

    @classmethod
    def standalone(cls, path: str | Path) -> "VoiceTables":
        """A registry in a catalog file of its own (made with the index's voice tables if new)."""
        db = sqlite3.connect(str(path), check_same_thread=False)
        with db:
            db.execute("BEGIN")
            for stmt in schema._statements(schema.VOICE_TABLES):
                db.execute(stmt)
        return cls(db)

    # ------------------------------------------------------------------ transactions and change stamps
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._db:
            yield

    @property
    def stamp(self) -> int:
        """Changes made through this connection so far (a cache over the rows is valid while it holds)."""
        return self._db.total_changes

    def present(self) -> bool:
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE name='voice_voices'").fetchone() is not None

    # ------------------------------------------------------------------ meta
    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM voice_meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO voice_meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET "
                         "value=excluded.value", (key, value))

    # ------------------------------------------------------------------ voices
    def highest_number(self) -> int:
        row = self._db.execute("SELECT MAX(CAST(SUBSTR(voice_id, 2) AS INTEGER)) FROM voice_voices").fetchone()
        return row[0] or 0

    def add_voice(self, voice_id: str, now: str) -> None:
        self._db.execute("INSERT INTO voice_voices(voice_id, name, merged_into, created_at, updated_at) "
                         "VALUES(?, NULL, NULL, ?, ?)", (voice_id, now, now))

    def merged_into(self, voice_id: str) -> tuple[bool, str | None]:
        """(whether the voice exists, the voice it was merged into)."""
        row = self._db.execute("SELECT merged_into FROM voice_voices WHERE voice_id=?", (voice_id,)).fetchone()
        return (row is not None, None if row is None else row[0])

    def voice(self, voice_id: str) -> tuple[str, str | None] | None:
        row = self._db.execute("SELECT voice_id, name FROM voice_voices WHERE voice_id=?", (voice_id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def names(self, voice_ids: tuple[str, ...] | None = None) -> dict[str, str | None]:
        if voice_ids is None:
            return {r[0]: r[1] for r in self._db.execute("SELECT voice_id, name FROM voice_voices")}
        return {r[0]: r[1] for r in self._db.execute(
            f"SELECT voice_id, name FROM voice_voices WHERE voice_id IN ({','.join('?' * len(voice_ids))})",
            voice_ids)}

    def named(self, name: str) -> list[str]:
        """Voices (not merged away) called ``name`` (case-insensitive), by id."""
        return [r[0] for r in self._db.execute(
            "SELECT voice_id FROM voice_voices WHERE merged_into IS NULL AND name = ? COLLATE NOCASE "
            "ORDER BY voice_id", (name,))]

    def set_name(self, voice_id: str, name: str | None, now: str | None = None) -> None:
        if now is None:
            self._db.execute("UPDATE voice_voices SET name=? WHERE voice_id=?", (name, voice_id))
        else:
            self._db.execute("UPDATE voice_voices SET name=?, updated_at=? WHERE voice_id=?", (name, now, voice_id))

    def merge(self, keep: str, other: str, now: str) -> None:
        """Every local of ``other`` becomes ``keep``'s; ``other`` (and what was merged into it) points at ``keep``."""
        self._db.execute("UPDATE voice_locals SET voice_id=?, updated_at=? WHERE voice_id=?", (keep, now, other))
        self._db.execute("UPDATE voice_voices SET merged_into=?, updated_at=? WHERE voice_id=?", (keep, now, other))
        self._db.execute("UPDATE voice_voices SET merged_into=? WHERE merged_into=?", (keep, other))
        self._db.execute("UPDATE voice_voices SET updated_at=? WHERE voice_id=?", (now, keep))

    # ------------------------------------------------------------------ local speakers
    def embeddings(self, model: str, default_model: str) -> list[tuple]:
        """(take, voice, embedding blob, seconds, window sum blob, window count) of every assigned local
        whose embedding was made by ``model`` (locals without a model count as ``default_model``)."""
        return self._db.execute(
            "SELECT take_id, voice_id, embedding, seconds, window_sum, window_count FROM voice_locals WHERE "
            "voice_id IS NOT NULL AND embedding IS NOT NULL AND COALESCE(model, ?) = ?",
            (default_model, model)).fetchall()

    def take_locals(self, take_id: str, model: str, default_model: str) -> list[tuple]:
        """(label, voice, embedding blob, pinned) of a take's locals made by ``model``."""
        return self._db.execute(
            "SELECT label, voice_id, embedding, pinned FROM voice_locals WHERE take_id=? AND "
            "COALESCE(model, ?) = ?", (take_id, default_model, model)).fetchall()

    def delete_take(self, take_id: str) -> None:
        self._db.execute("DELETE FROM voice_locals WHERE take_id=?", (take_id,))

    def add_locals(self, rows: list[tuple]) -> None:
        """Rows of (take, label, voice, embedding, seconds, channel, pinned, similarity, model, updated,
        window sum, window count)."""
        self._db.executemany(
            "INSERT INTO voice_locals(take_id, label, voice_id, embedding, seconds, channel, pinned, similarity, "
            "model, updated_at, window_sum, window_count) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    def voice_of_local(self, take_id: str, label: str) -> tuple[bool, str | None]:
        """(whether the local is registered, its voice)."""
        row = self._db.execute("SELECT voice_id FROM voice_locals WHERE take_id=? AND label=?",
                               (take_id, label)).fetchone()
        return (row is not None, None if row is None else row[0])

    def assigned(self) -> list[tuple[str, str, str, float]]:
        """(take, label, voice, seconds) of every local that has a voice, by take and label."""
        return self._db.execute("SELECT take_id, label, voice_id, seconds FROM voice_locals "
                                "WHERE voice_id IS NOT NULL ORDER BY take_id, label").fetchall()

    def labels_of_take(self, take_id: str) -> list[tuple[str, str | None]]:
        return self._db.execute("SELECT label, voice_id FROM voice_locals WHERE take_id=? ORDER BY label",
                                (take_id,)).fetchall()

    def shared_takes(self, a: str, b: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM (SELECT take_id FROM voice_locals WHERE voice_id IN (?, ?) "
                                "GROUP BY take_id HAVING COUNT(DISTINCT voice_id) > 1)", (a, b)).fetchone()[0]

    def pin(self, take_id: str, label: str, voice_id: str, now: str) -> None:
        self._db.execute("UPDATE voice_locals SET voice_id=?, pinned=1, updated_at=? WHERE take_id=? AND label=?",
                         (voice_id, now, take_id, label))
