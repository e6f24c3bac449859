"""The screenplays' tables (``script_*``): every statement :mod:`indexer.script.catalog` needs, by name.

* ``script_scripts``   one row per screenplay (by name: the title, or the file name)
* ``script_versions``  one row per import (version 1, 2 ...), with the parsed document as JSON
* ``script_scenes``    scenes of a version: number, heading, INT/EXT, location, time, pages, eighths
* ``script_lines``     dialogue lines of a version: ``line_id`` (``12A/4``), a stable ``uid``, character,
                       text, page; ``change`` says new / changed / same against the previous version
* ``script_matches``   which takes were matched against a version, to which scene, how, and when
* ``script_deliveries`` one row per delivery: line, take, seconds, score, delivered words, diff

Rows come back as ``sqlite3.Row`` (read by column name, like a dict).
"""

from __future__ import annotations

import sqlite3
from typing import Any


class Screenplays:
    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def any(self) -> bool:
        """Whether any screenplay was imported."""
        row = self._db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='script_versions'").fetchone()
        return bool(row) and self._db.execute("SELECT COUNT(*) FROM script_versions").fetchone()[0] > 0

    # ------------------------------------------------------------------ scripts and versions
    def script(self, name: str, *, nocase: bool = False) -> sqlite3.Row | None:
        sql = "SELECT * FROM script_scripts WHERE name=?" + (" COLLATE NOCASE" if nocase else "")
        return self._db.execute(sql, (name,)).fetchone()

    def script_name(self, script_id: int) -> str | None:
        row = self._db.execute("SELECT name FROM script_scripts WHERE script_id=?", (script_id,)).fetchone()
        return None if row is None else row[0]

    def script_names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT name FROM script_scripts ORDER BY name")]

    def last_imported_script(self) -> int | None:
        row = self._db.execute("SELECT script_id FROM script_versions ORDER BY version_id DESC LIMIT 1").fetchone()
        return None if row is None else row[0]

    def version(self, script_id: int, version: int | None = None) -> sqlite3.Row | None:
        """A version of a script (its latest when ``version`` is None)."""
        if version is not None:
            return self._db.execute("SELECT * FROM script_versions WHERE script_id=? AND version=?",
                                    (script_id, version)).fetchone()
        return self._db.execute("SELECT * FROM script_versions WHERE script_id=? ORDER BY version DESC LIMIT 1",
                                (script_id,)).fetchone()

    def latest_versions(self) -> list[sqlite3.Row]:
        """The latest version of every imported script, in import order."""
        if not self.any():
            return []
        return self._db.execute(
            "SELECT * FROM script_versions v WHERE version = (SELECT MAX(version) FROM script_versions w "
            "WHERE w.script_id = v.script_id) ORDER BY version_id").fetchall()

    def version_by_id(self, version_id: int) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM script_versions WHERE version_id=?", (version_id,)).fetchone()

    def versions(self) -> list[sqlite3.Row]:
        """Every import, oldest first, with its script's name and title."""
        return self._db.execute(
            "SELECT s.name, s.title, v.version, v.version_id, v.path, v.format, v.pages, v.pages_source, "
            "v.n_scenes, v.n_lines, v.imported_at, v.warnings FROM script_versions v JOIN script_scripts s "
            "USING(script_id) ORDER BY v.version_id").fetchall()

    def lines(self, version_id: int) -> list[sqlite3.Row]:
        return self._db.execute("SELECT * FROM script_lines WHERE version_id=? ORDER BY seq",
                                (version_id,)).fetchall()

    def line_ids(self, version_id: int) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT line_id FROM script_lines WHERE version_id=? ORDER BY seq",
                                               (version_id,))]

    def add_version(self, *, script_name: str, title: str | None, script_id: int | None, version: int,
                    fields: dict[str, Any], scenes: list[tuple], lines: list[tuple], now: str) -> int:
        """One import in one transaction (a new script row when ``script_id`` is None): the version row
        (``fields``), its scenes and lines (rows without the version id). Returns the version id."""
        with self._db:
            if script_id is None:
                cur = self._db.execute("INSERT INTO script_scripts(name, title, created_at) VALUES(?,?,?)",
                                       (script_name, title, now))
                script_id = cur.lastrowid
            cols = ["script_id", "version", *fields]
            cur = self._db.execute(
                f"INSERT INTO script_versions({', '.join(cols)}) VALUES({','.join('?' * len(cols))})",
                [script_id, version, *fields.values()])
            version_id = cur.lastrowid
            self._db.executemany(
                "INSERT INTO script_scenes(version_id, idx, label, number, heading, int_ext, location, time_of_day, "
                "page_start, page_end, eighths, n_lines) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                [(version_id, *r) for r in scenes])
            self._db.executemany(
                "INSERT INTO script_lines(version_id, line_id, uid, seq, scene_idx, scene, position, character, "
                "extensions, parentheticals, text, norm, dual, page, layout_lines, change) "
                "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", [(version_id, *r) for r in lines])
        return version_id

    # ------------------------------------------------------------------ matches
    def put_match(self, version_id: int, take_id: str, *, scene: str | None, scene_source: str | None,
                  take_key: str, matcher: int, total: float, now: str, deliveries: list[tuple]) -> None:
        """A take's match against a version replaces the earlier one (deliveries: rows of (n, line, start,
        end, score, coverage, status, attempt, delivered, diff, data JSON)), in one transaction."""
        with self._db:
            self._db.execute("DELETE FROM script_deliveries WHERE version_id=? AND take_id=?", (version_id, take_id))
            self._db.execute(
                "INSERT INTO script_matches(version_id, take_id, scene, scene_source, take_key, matcher, total, "
                "matched_at) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(version_id, take_id) DO UPDATE SET "
                "scene=excluded.scene, scene_source=excluded.scene_source, take_key=excluded.take_key, "
                "matcher=excluded.matcher, total=excluded.total, matched_at=excluded.matched_at",
                (version_id, take_id, scene, scene_source, take_key, matcher, total, now))
            self._db.executemany(
                "INSERT INTO script_deliveries(version_id, take_id, n, line_id, start, \"end\", score, coverage, "
                "status, attempt, delivered, diff, data) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(version_id, take_id, *r) for r in deliveries])

    def matches(self, version_id: int, take_id: str | None = None) -> dict[str, sqlite3.Row]:
        """Stored matches of a version, by take (only that take's with ``take_id``)."""
        sql, args = "SELECT * FROM script_matches WHERE version_id=?", (version_id,)
        if take_id is not None:
            sql, args = sql + " AND take_id=?", (version_id, take_id)
        return {r["take_id"]: r for r in self._db.execute(sql, args)}

    def deliveries(self, version_id: int, take_id: str | None = None) -> dict[str, list[str]]:
        """The stored deliveries (their JSON) of a version, by take, in order (only that take's with
        ``take_id``)."""
        sql, args = "SELECT take_id, data FROM script_deliveries WHERE version_id=?", (version_id,)
        if take_id is not None:
            sql, args = sql + " AND take_id=?", (version_id, take_id)
        out: dict[str, list[str]] = {}
        for r in self._db.execute(sql + " ORDER BY take_id, n", args):
            out.setdefault(r["take_id"], []).append(r["data"])
        return out
