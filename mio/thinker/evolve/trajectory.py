"""Trajectory logging (§6.2.1): every session's turns and the user's reactions, in SQLite.

A trajectory tau = {(s_t, a_t)}: s_t is the user's turn t (text, and when they spoke, the prosody of
their audio; when a camera frame was given, their visual cues), a_t is Mio's action plan for it
(the clauses with emotion and gesture). The user's *reaction* to a_t is what they do next — the
cues of turn t+1 (`Trajectory.reaction(t)`); the last action's reaction is only the post-session
rating R_Global. Turn rewards R_t (Eq. 20-21) are stored beside the turns by `mio evolve rewards`.

The store is bounded: at most `max_sessions` sessions (the oldest are dropped) and `max_turns` turns
per session. It lives in the Thinker's memory dir (`trajectories.sqlite`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mio.core.errors import InputError
from mio.core.paths import memory_folder
from mio.thinker.evolve import visual as vis
from mio.thinker.evolve.prosody import Prosody, prosody
from mio.thinker.memory.db import Database, to_blob

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY, user_id TEXT NOT NULL, character TEXT NOT NULL, started REAL NOT NULL,
  ended REAL, rating REAL);
CREATE TABLE IF NOT EXISTS turns (
  session_id TEXT NOT NULL, idx INTEGER NOT NULL, t REAL NOT NULL, user_text TEXT NOT NULL,
  plan TEXT NOT NULL, prosody TEXT, visual TEXT, emb BLOB, reward REAL, reward_source TEXT, descriptor TEXT,
  PRIMARY KEY (session_id, idx));
CREATE INDEX IF NOT EXISTS sessions_started ON sessions (started);
"""
RATING_MIN, RATING_MAX = 1.0, 5.0  # post-session rating scale (stars)
MAX_AUDIO_S = 60.0  # user audio kept per turn for prosody
VISUAL_EVERY_S = 0.5  # camera frames analysed at most this often


def global_reward(rating: float) -> float:
    """R_Global in [-1, 1] from a 1..5 star rating (3 stars = 0)."""
    if not RATING_MIN <= rating <= RATING_MAX:
        raise InputError(f"rating {rating} is outside {RATING_MIN:g}..{RATING_MAX:g}")
    return (rating - 3.0) / 2.0


@dataclass
class TurnRecord:
    idx: int
    user_text: str
    plan: list[dict] = field(default_factory=list)  # [{text, emotion, intensity, gesture}]
    prosody: Prosody | None = None
    visual: vis.Visual | None = None
    embedding: np.ndarray | None = None
    t: float = 0.0
    reward: float | None = None
    reward_source: str = ""
    descriptor: str = ""

    @property
    def reply(self) -> str:
        return " ".join(c.get("text", "") for c in self.plan).strip()


@dataclass
class Trajectory:
    session_id: str
    user_id: str
    character: str
    turns: list[TurnRecord]
    rating: float | None = None

    def reaction(self, t: int) -> TurnRecord | None:
        """The user's reaction to a_t: their next turn (None after the last action)."""
        return self.turns[t + 1] if t + 1 < len(self.turns) else None


class TrajectoryLog:
    """The SQLite store of trajectories."""

    def __init__(self, path: str | Path, *, max_sessions: int = 500, max_turns: int = 200) -> None:
        self.db = Database(path, SCHEMA)
        self.max_sessions, self.max_turns = max_sessions, max_turns

    @classmethod
    def in_memory_dir(cls, memory_dir: str | None) -> TrajectoryLog:
        folder = memory_folder(memory_dir)
        return cls(":memory:" if folder == ":memory:" else Path(folder) / "trajectories.sqlite")

    # -- writing ------------------------------------------------------------------------------
    def begin(self, session_id: str, user_id: str, character: str) -> Recorder:
        with self.db.write() as c:
            c.execute("INSERT OR IGNORE INTO sessions (id, user_id, character, started) VALUES (?, ?, ?, ?)",
                      (session_id, user_id, character, time.time()))
            old = c.execute("SELECT id FROM sessions ORDER BY started DESC LIMIT -1 OFFSET ?",
                            (self.max_sessions,)).fetchall()
            for (sid,) in old:  # bounded: drop the oldest sessions
                c.execute("DELETE FROM turns WHERE session_id = ?", (sid,))
                c.execute("DELETE FROM sessions WHERE id = ?", (sid,))
        return Recorder(self, session_id)

    def add_turn(self, session_id: str, turn: TurnRecord) -> None:
        if turn.idx >= self.max_turns:
            return
        with self.db.write() as c:
            c.execute(
                "INSERT OR REPLACE INTO turns (session_id, idx, t, user_text, plan, prosody, visual, emb) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, turn.idx, turn.t, turn.user_text, json.dumps(turn.plan),
                 json.dumps(turn.prosody.to_dict()) if turn.prosody else None,
                 json.dumps(turn.visual.to_dict()) if turn.visual else None,
                 to_blob(turn.embedding) if turn.embedding is not None else None))

    def rate(self, session_id: str, rating: float) -> None:
        global_reward(rating)  # validates the range
        with self.db.write() as c:
            if c.execute("UPDATE sessions SET rating = ?, ended = COALESCE(ended, ?) WHERE id = ?",
                         (float(rating), time.time(), session_id)).rowcount == 0:
                raise InputError(f"no recorded session {session_id!r}")

    def end(self, session_id: str) -> None:
        with self.db.write() as c:
            c.execute("UPDATE sessions SET ended = ? WHERE id = ?", (time.time(), session_id))

    def set_rewards(self, session_id: str, rewards: list[float], source: str, descriptors: list[str]) -> None:
        with self.db.write() as c:
            for i, (r, d) in enumerate(zip(rewards, descriptors, strict=True)):
                c.execute("UPDATE turns SET reward = ?, reward_source = ?, descriptor = ? WHERE session_id = ? AND idx = ?",
                          (float(r), source, d, session_id, i))

    def set_embedding(self, session_id: str, idx: int, emb: np.ndarray) -> None:
        with self.db.write() as c:
            c.execute("UPDATE turns SET emb = ? WHERE session_id = ? AND idx = ?", (to_blob(emb), session_id, idx))

    # -- reading ------------------------------------------------------------------------------
    def session_ids(self, *, rated: bool = False) -> list[str]:
        where = " WHERE rating IS NOT NULL" if rated else ""
        return [r[0] for r in self.db.read(f"SELECT id FROM sessions{where} ORDER BY started")]

    def load(self, session_id: str) -> Trajectory:
        rows = self.db.read("SELECT id, user_id, character, rating FROM sessions WHERE id = ?", (session_id,))
        if not rows:
            raise InputError(f"no recorded session {session_id!r}")
        sid, user, character, rating = rows[0]
        turns = []
        for idx, t, text, plan, pro, visual, emb, reward, src, desc in self.db.read(
                "SELECT idx, t, user_text, plan, prosody, visual, emb, reward, reward_source, descriptor "
                "FROM turns WHERE session_id = ? ORDER BY idx", (sid,)):
            turns.append(TurnRecord(
                idx, text, json.loads(plan), Prosody(**json.loads(pro)) if pro else None,
                vis.Visual(**json.loads(visual)) if visual else None,
                np.frombuffer(emb, np.float32).copy() if emb else None, t, reward, src or "", desc or ""))
        return Trajectory(sid, user, character, turns, rating)

    def close(self) -> None:
        self.db.close()


class Recorder:
    """One session's trajectory as it happens. The runtime calls `observe(frame)` on its output
    frames (UserText opens a turn, PlanChunk clauses fill a_t, EndOfTurn stores it), `user_audio`
    with the microphone audio and `camera` with camera frames; `rate` stores the post-session rating."""

    def __init__(self, log: TrajectoryLog, session_id: str, face: vis.FaceCues | None = None) -> None:
        self.log, self.session_id = log, session_id
        self.turn: TurnRecord | None = None
        self.n = 0
        self._audio: list[np.ndarray] = []
        self._rate = 0
        self._visual: list[vis.Visual] = []
        self._face = face
        self._last_camera = -1e9

    def user_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        if self._rate and sample_rate != self._rate:
            self._audio = []
        self._rate = sample_rate
        if sum(map(len, self._audio)) < MAX_AUDIO_S * sample_rate:
            self._audio.append(np.asarray(samples, np.float32))

    def camera(self, image: np.ndarray, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now - self._last_camera < VISUAL_EVERY_S:
            return
        self._last_camera = now
        if self._face is None:
            self._face = vis.FaceCues()
        self._visual.append(self._face(image))

    def user_turn(self, text: str, t: float = 0.0) -> None:
        self._flush()
        pro = None
        if self._audio:
            audio = np.concatenate(self._audio)
            if len(audio) >= 0.1 * self._rate:
                pro = prosody(audio, self._rate)
        self.turn = TurnRecord(self.n, text, prosody=pro, visual=vis.mean(self._visual) if self._visual else None, t=t)
        self._audio, self._visual = [], []

    def clause(self, text: str, emotion: str, intensity: float, gesture: str | None) -> None:
        if self.turn is not None:
            self.turn.plan.append({"text": text, "emotion": emotion, "intensity": round(float(intensity), 3),
                                   "gesture": gesture})

    def observe(self, frame) -> None:
        from mio.core.frames import EndOfTurn, PlanChunk, UserText

        if isinstance(frame, UserText):
            self.user_turn(frame.text, frame.pts)
        elif isinstance(frame, PlanChunk):
            self.clause(frame.text, frame.emotion.label, frame.emotion.intensity, frame.gesture)
        elif isinstance(frame, EndOfTurn) and frame.role == "assistant":
            self._flush()

    def _flush(self) -> None:
        if self.turn is not None and self.turn.plan:
            self.log.add_turn(self.session_id, self.turn)
            self.n += 1
        self.turn = None

    def rate(self, rating: float) -> None:
        self._flush()
        self.log.rate(self.session_id, rating)

    def close(self) -> None:
        self._flush()
        self.log.end(self.session_id)
        if self._face is not None:
            self._face.close()
