"""The catalog's one schema (every table of an index) and its migrations.

``SCHEMA_VERSION`` is stored in ``meta``. A writer upgrades an older catalog in place, one step at a
time (:data:`MIGRATIONS`), in one transaction; a reader of an older catalog upgrades it the same way
when it may write the folder, else it is told in one sentence what to do.

History:

1. the first release: takes, files, shots, lines (+ FTS), shot tags, steps; the voice registry's
   tables (``voice_*``) and the screenplays' (``script_*``) were created by their own modules on
   first use, and ``voice_locals`` gained ``window_sum``/``window_count`` by ``ALTER TABLE``.
2. one schema: every table exists in every index, created and upgraded here only.
3. circled takes: ``takes`` gains ``circled`` (0/1), ``circle_note`` and ``circled_at`` (the script
   supervisor's circled/printed takes, set by `dailies circle` or the review room).
4. ``take_channels``: each sound channel of a take and its role (mix, boom, iso and whose; production
   sound, :mod:`indexer.tracks`). A take indexed before has none until it is indexed again.
5. ``review_notes``: the team's notes at a frame of a take (`dailies notes`, the review room's player), kept
   like circles: a review mark, written beside the one writer and left alone by re-indexing.
6. a review note may cover a stretch of its take, and be edited: ``review_notes`` gains ``end_frame`` (its last
   frame; NULL for a note at one frame) and ``edited_at`` (when its text was last changed; NULL: never).
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 6

CATALOG_TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, content_hash TEXT, take_id TEXT,
    status TEXT NOT NULL, error TEXT, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS takes(
    take_id TEXT PRIMARY KEY, content_hash TEXT NOT NULL UNIQUE, path TEXT NOT NULL, name TEXT NOT NULL,
    scene TEXT, take TEXT, camera TEXT, rate TEXT NOT NULL, start_tc TEXT NOT NULL,
    drop_frame INTEGER NOT NULL, duration REAL, frames INTEGER, has_video INTEGER, has_audio INTEGER,
    info TEXT NOT NULL, status TEXT NOT NULL, error TEXT, models TEXT, notes TEXT,
    n_lines INTEGER NOT NULL DEFAULT 0, n_shots INTEGER NOT NULL DEFAULT 0, n_frames INTEGER NOT NULL DEFAULT 0,
    index_seconds REAL, indexed_at TEXT, updated_at TEXT NOT NULL,
    circled INTEGER NOT NULL DEFAULT 0, circle_note TEXT, circled_at TEXT);
CREATE INDEX IF NOT EXISTS takes_name ON takes(name);
CREATE TABLE IF NOT EXISTS shots(
    take_id TEXT NOT NULL, idx INTEGER NOT NULL, first_frame INTEGER NOT NULL, last_frame INTEGER NOT NULL,
    PRIMARY KEY(take_id, idx));
CREATE TABLE IF NOT EXISTS lines(
    id INTEGER PRIMARY KEY, line_id TEXT NOT NULL UNIQUE, take_id TEXT NOT NULL, idx INTEGER NOT NULL,
    start REAL NOT NULL, "end" REAL NOT NULL, text TEXT NOT NULL, norm TEXT NOT NULL, phon TEXT NOT NULL,
    words TEXT NOT NULL, shots TEXT NOT NULL, speaker TEXT, voice_id TEXT, data TEXT);
CREATE INDEX IF NOT EXISTS lines_take ON lines(take_id, idx);
CREATE VIRTUAL TABLE IF NOT EXISTS lines_fts USING fts5(
    norm, phon, content='lines', content_rowid='id', tokenize='unicode61', prefix='4');
CREATE VIRTUAL TABLE IF NOT EXISTS lines_vocab USING fts5vocab(lines_fts, 'col');
CREATE TRIGGER IF NOT EXISTS lines_ai AFTER INSERT ON lines BEGIN
    INSERT INTO lines_fts(rowid, norm, phon) VALUES (new.id, new.norm, new.phon);
END;
CREATE TRIGGER IF NOT EXISTS lines_ad AFTER DELETE ON lines BEGIN
    INSERT INTO lines_fts(lines_fts, rowid, norm, phon) VALUES ('delete', old.id, old.norm, old.phon);
END;
CREATE TABLE IF NOT EXISTS shot_tags(
    take_id TEXT NOT NULL, shot INTEGER NOT NULL, grp TEXT NOT NULL, label TEXT NOT NULL, score REAL NOT NULL,
    PRIMARY KEY(take_id, shot, grp));
CREATE INDEX IF NOT EXISTS shot_tags_label ON shot_tags(label);
CREATE TABLE IF NOT EXISTS take_channels(
    take_id TEXT NOT NULL, channel INTEGER NOT NULL, role TEXT NOT NULL, name TEXT, owner TEXT, source TEXT,
    PRIMARY KEY(take_id, channel));
CREATE TABLE IF NOT EXISTS review_notes(
    note_id INTEGER PRIMARY KEY AUTOINCREMENT, take_id TEXT NOT NULL, frame INTEGER NOT NULL, text TEXT NOT NULL,
    author TEXT, created_at TEXT NOT NULL, end_frame INTEGER, edited_at TEXT);
CREATE INDEX IF NOT EXISTS review_notes_take ON review_notes(take_id, frame);
CREATE TABLE IF NOT EXISTS steps(
    take_id TEXT NOT NULL, step TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, created_at TEXT NOT NULL,
    PRIMARY KEY(take_id, step));
"""

VOICE_TABLES = """
CREATE TABLE IF NOT EXISTS voice_voices(
    voice_id TEXT PRIMARY KEY, name TEXT, merged_into TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS voice_locals(
    take_id TEXT NOT NULL, label TEXT NOT NULL, voice_id TEXT, embedding BLOB, seconds REAL NOT NULL,
    channel INTEGER, pinned INTEGER NOT NULL DEFAULT 0, similarity REAL, model TEXT, updated_at TEXT NOT NULL,
    window_sum BLOB, window_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(take_id, label));
CREATE INDEX IF NOT EXISTS voice_locals_voice ON voice_locals(voice_id);
CREATE TABLE IF NOT EXISTS voice_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

SCRIPT_TABLES = """
CREATE TABLE IF NOT EXISTS script_scripts(
    script_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, title TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS script_versions(
    version_id INTEGER PRIMARY KEY, script_id INTEGER NOT NULL REFERENCES script_scripts(script_id),
    version INTEGER NOT NULL, path TEXT NOT NULL, format TEXT NOT NULL, sha256 TEXT NOT NULL,
    title TEXT, pages INTEGER, pages_source TEXT, n_scenes INTEGER NOT NULL, n_lines INTEGER NOT NULL,
    warnings TEXT NOT NULL, doc TEXT NOT NULL, imported_at TEXT NOT NULL, UNIQUE(script_id, version));
CREATE TABLE IF NOT EXISTS script_scenes(
    version_id INTEGER NOT NULL REFERENCES script_versions(version_id), idx INTEGER NOT NULL,
    label TEXT NOT NULL, number TEXT, heading TEXT NOT NULL, int_ext TEXT, location TEXT, time_of_day TEXT,
    page_start INTEGER, page_end INTEGER, eighths INTEGER, n_lines INTEGER NOT NULL,
    PRIMARY KEY(version_id, idx));
CREATE TABLE IF NOT EXISTS script_lines(
    version_id INTEGER NOT NULL REFERENCES script_versions(version_id), line_id TEXT NOT NULL,
    uid TEXT NOT NULL, seq INTEGER NOT NULL, scene_idx INTEGER NOT NULL, scene TEXT NOT NULL,
    position INTEGER NOT NULL, character TEXT NOT NULL, extensions TEXT NOT NULL, parentheticals TEXT NOT NULL,
    text TEXT NOT NULL, norm TEXT NOT NULL, dual INTEGER NOT NULL, page INTEGER, layout_lines INTEGER,
    change TEXT NOT NULL, PRIMARY KEY(version_id, line_id));
CREATE INDEX IF NOT EXISTS script_lines_uid ON script_lines(uid);
CREATE TABLE IF NOT EXISTS script_matches(
    version_id INTEGER NOT NULL, take_id TEXT NOT NULL, scene TEXT, scene_source TEXT, take_key TEXT NOT NULL,
    matcher INTEGER NOT NULL, total REAL, matched_at TEXT NOT NULL, PRIMARY KEY(version_id, take_id));
CREATE TABLE IF NOT EXISTS script_deliveries(
    version_id INTEGER NOT NULL, take_id TEXT NOT NULL, n INTEGER NOT NULL, line_id TEXT NOT NULL,
    start REAL NOT NULL, "end" REAL NOT NULL, score REAL NOT NULL, coverage REAL NOT NULL, status TEXT NOT NULL,
    attempt INTEGER NOT NULL, delivered TEXT NOT NULL, diff TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY(version_id, take_id, n));
CREATE INDEX IF NOT EXISTS script_deliveries_line ON script_deliveries(version_id, line_id);
"""

SCHEMA = CATALOG_TABLES + VOICE_TABLES + SCRIPT_TABLES


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def _v1_to_v2(db: sqlite3.Connection) -> None:
    """The voice and screenplay tables join the one schema; an old registry gains its window profiles."""
    if "embedding" in _columns(db, "voice_locals") and "window_sum" not in _columns(db, "voice_locals"):
        db.execute("ALTER TABLE voice_locals ADD COLUMN window_sum BLOB")
        db.execute("ALTER TABLE voice_locals ADD COLUMN window_count INTEGER NOT NULL DEFAULT 0")
    for stmt in _statements(VOICE_TABLES + SCRIPT_TABLES):
        db.execute(stmt)


def _v2_to_v3(db: sqlite3.Connection) -> None:
    """Takes can be circled (printed), with a note."""
    have = _columns(db, "takes")
    for column, decl in (("circled", "INTEGER NOT NULL DEFAULT 0"), ("circle_note", "TEXT"), ("circled_at", "TEXT")):
        if column not in have:
            db.execute(f"ALTER TABLE takes ADD COLUMN {column} {decl}")


def _v3_to_v4(db: sqlite3.Connection) -> None:
    """Takes gain their channels' roles (the table starts empty: known when a take is indexed again)."""
    for stmt in _statements(CATALOG_TABLES):
        if "take_channels" in stmt:
            db.execute(stmt)


def _v4_to_v5(db: sqlite3.Connection) -> None:
    """Review notes at a frame of a take (the table starts empty)."""
    for stmt in _statements(CATALOG_TABLES):
        if "review_notes" in stmt:
            db.execute(stmt)


def _v5_to_v6(db: sqlite3.Connection) -> None:
    """A review note may cover a stretch: its last frame (NULL: one frame, as every note before); and be edited."""
    have = _columns(db, "review_notes")
    for column, decl in (("end_frame", "INTEGER"), ("edited_at", "TEXT")):
        if column not in have:
            db.execute(f"ALTER TABLE review_notes ADD COLUMN {column} {decl}")


# version n -> the step that upgrades a catalog of version n to n + 1 (run inside one transaction)
MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6}


def _statements(script: str) -> list[str]:
    """A schema script as single statements (``executescript`` would commit the caller's transaction)."""
    out, buf = [], []
    for line in script.strip().splitlines():
        buf.append(line)
        joined = "\n".join(buf)
        if sqlite3.complete_statement(joined):
            out.append(joined)
            buf = []
    return out


def create(db: sqlite3.Connection) -> None:
    """Every table of the current schema (idempotent), within the caller's transaction (DDL is
    transactional in SQLite, but Python opens none for it: the caller says BEGIN)."""
    for stmt in _statements(SCHEMA):
        db.execute(stmt)


def migrate(db: sqlite3.Connection, version: int) -> int:
    """Upgrade a catalog of ``version`` to :data:`SCHEMA_VERSION` in one transaction; returns the new version."""
    with db:
        db.execute("BEGIN IMMEDIATE")
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](db)
            version += 1
        create(db)
        db.execute("INSERT INTO meta(key, value) VALUES('schema_version', ?) "
                   "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (str(version),))
    return version
