"""Where the server keeps finished sessions: transcript, figures and the user's rating (SQLite, stdlib).

One row per session. The rating is stored with its session so self-evolution (§6.3) can read
rated conversations back: `SessionStore.rated()`. The transcript is saved at every turn
(`save_transcript`), not only when the session ends, so a crash loses at most the write in flight.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mio.core.errors import InputError

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    character   TEXT NOT NULL,
    mode        TEXT NOT NULL,
    started     REAL NOT NULL,
    ended       REAL,
    transcript  TEXT NOT NULL DEFAULT '[]',  -- JSON list of {role, text, pts[, interrupted]}
    stats       TEXT NOT NULL DEFAULT '{}',  -- JSON: transport counters, per-turn latencies
    rating      INTEGER,                     -- 1..5, given by the user after the session
    comment     TEXT,
    rated_at    REAL
)
"""
MAX_COMMENT_CHARS = 2000


class SessionStore:
    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / "sessions.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=5.0)
        db.row_factory = sqlite3.Row
        try:
            with db:  # commits, or rolls back on error
                yield db
        finally:
            db.close()

    def _write(self, sql: str, args: tuple) -> int:
        with self._lock, self._connect() as db:
            return db.execute(sql, args).rowcount

    def begin(self, session_id: str, *, user_id: str, character: str, mode: str) -> None:
        self._write("INSERT INTO sessions (id, user_id, character, mode, started) VALUES (?, ?, ?, ?, ?)",
                    (session_id, user_id, character, mode, time.time()))

    def save_transcript(self, session_id: str, transcript: list[dict[str, Any]]) -> None:
        """The transcript so far, written at every turn: a server killed mid-session keeps every
        turn but the one being written (one transaction each; SQLite's journal rolls a cut-off
        write back on the next open)."""
        self._write("UPDATE sessions SET transcript = ? WHERE id = ?", (json.dumps(transcript), session_id))

    def finish(self, session_id: str, transcript: list[dict[str, Any]], stats: dict[str, Any]) -> None:
        self._write("UPDATE sessions SET ended = ?, transcript = ?, stats = ? WHERE id = ?",
                    (time.time(), json.dumps(transcript), json.dumps(stats), session_id))

    def rate(self, session_id: str, rating: Any, comment: Any = None) -> None:
        if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
            raise InputError(f"rating must be an integer from 1 to 5, got {rating!r}")
        if comment is not None and not isinstance(comment, str):
            raise InputError("comment must be text")
        if comment is not None and len(comment) > MAX_COMMENT_CHARS:
            raise InputError(f"comment has {len(comment)} characters; the limit is {MAX_COMMENT_CHARS}")
        if not self._write("UPDATE sessions SET rating = ?, comment = ?, rated_at = ? WHERE id = ?",
                           (rating, comment or None, time.time(), session_id)):
            raise InputError(f"no stored session {session_id!r}")

    def get(self, session_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return _row(row) if row else None

    def rated(self) -> list[dict[str, Any]]:
        """Every rated session, oldest first (input for self-evolution)."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM sessions WHERE rating IS NOT NULL ORDER BY started").fetchall()
        return [_row(r) for r in rows]


def _row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["transcript"] = json.loads(d["transcript"])
    d["stats"] = json.loads(d["stats"])
    return d
