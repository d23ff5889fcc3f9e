"""Episodic memory (§6.2): what each user told the character in past sessions, per user.

Rows are keyed by (user_id, character); every query filters on both inside the SQL, so one user's
memories never reach another user's prompt. Stored in SQLite with MiniLM embeddings; persists
across restarts and is shared safely by concurrent sessions (see db.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mio.thinker.memory.db import Database, from_blobs, to_blob
from mio.thinker.memory.embed import Embedder

SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
  pk INTEGER PRIMARY KEY, user_id TEXT NOT NULL, character TEXT NOT NULL, session_id TEXT NOT NULL,
  ts REAL NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL, emb BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS episodes_user ON episodes (user_id, character, ts);
"""
MAX_SCAN = 500  # most recent episodes of one user searched per query


@dataclass(frozen=True)
class Episode:
    session_id: str
    ts: float
    role: str
    text: str
    score: float = 0.0


@dataclass(frozen=True)
class Visitor:
    user_id: str
    character: str
    memories: int
    sessions: int
    last: float  # time of the latest memory (seconds since the epoch)


class EpisodicStore:
    def __init__(self, path: str | Path, embedder: Embedder | None) -> None:
        """`embedder` None: a store opened only to list or forget memories."""
        self.db = Database(path, SCHEMA)
        self.embedder = embedder

    def add(self, user_id: str, character: str, session_id: str, role: str, text: str,
            emb: np.ndarray | None = None) -> None:
        emb = self.embedder.encode_one(text) if emb is None else emb
        with self.db.write() as c:
            c.execute("INSERT INTO episodes (user_id, character, session_id, ts, role, text, emb) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (user_id, character, session_id, time.time(), role, text, to_blob(emb)))

    def recall(self, user_id: str, character: str, query: str | np.ndarray, *, exclude_session: str | None = None,
               k: int = 2, min_score: float = 0.3) -> list[Episode]:
        """This user's past-session memories most similar to `query`."""
        rows = self.db.read(
            "SELECT session_id, ts, role, text, emb FROM episodes WHERE user_id = :u AND character = :c "
            "AND session_id != :s ORDER BY ts DESC LIMIT :n",
            {"u": user_id, "c": character, "s": exclude_session or "", "n": MAX_SCAN})
        if not rows:
            return []
        q = self.embedder.encode_one(query) if isinstance(query, str) else query
        scores = from_blobs([r[4] for r in rows], self.embedder.dim) @ q
        order = np.argsort(-scores)[:k]
        return [Episode(rows[i][0], rows[i][1], rows[i][2], rows[i][3], float(scores[i])) for i in order
                if scores[i] >= min_score]

    def count(self, user_id: str, character: str | None = None) -> int:
        if character is None:
            return self.db.read("SELECT COUNT(*) FROM episodes WHERE user_id = ?", (user_id,))[0][0]
        return self.db.read("SELECT COUNT(*) FROM episodes WHERE user_id = ? AND character = ?", (user_id, character))[0][0]

    def visitors(self) -> list[Visitor]:
        """Whose memories the store holds, per user and character, most recent first."""
        rows = self.db.read("SELECT user_id, character, COUNT(*), COUNT(DISTINCT session_id), MAX(ts) FROM episodes "
                            "GROUP BY user_id, character ORDER BY MAX(ts) DESC")
        return [Visitor(*r) for r in rows]

    def forget_user(self, user_id: str) -> int:
        """Delete every memory of `user_id` (a user who asks to be forgotten: `mio story memory
        --forget`); returns how many there were."""
        with self.db.write() as c:
            return c.execute("DELETE FROM episodes WHERE user_id = ?", (user_id,)).rowcount

    def close(self) -> None:
        self.db.close()
