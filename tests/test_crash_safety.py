"""kill -9 in the middle of writes to every store loses at most the write in flight: a writer
process acknowledges each committed write on stdout and is SIGKILLed at a random moment; the
store then opens cleanly (SQLite integrity_check "ok") and holds every acknowledged write."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = textwrap.dedent("""
    import sys
    import numpy as np
    from mio.thinker.memory.embed import Embedder

    class StubEmbedder(Embedder):  # the stores' write paths without loading MiniLM
        dim = 384
        def encode(self, texts):
            rng = np.random.default_rng(len(texts))
            v = rng.standard_normal((len(texts), self.dim)).astype(np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

    path, run = sys.argv[1], sys.argv[2]
    def ack(i):
        print(i, flush=True)
""")

WRITERS = {
    "transcripts": """
        from mio.server.store import SessionStore
        store = SessionStore(path)
        store.begin(run, user_id="u", character="nemo", mode="browser")
        transcript = []
        for i in range(100000):
            transcript.append({"role": "user" if i % 2 == 0 else "assistant", "text": f"turn {i} " + "x" * 2000, "pts": i})
            store.save_transcript(run, transcript)
            ack(i)
    """,
    "episodic": """
        from mio.thinker.memory.episodic import EpisodicStore
        store = EpisodicStore(path, StubEmbedder())
        emb = np.ones(384, np.float32) / np.sqrt(384)
        for i in range(100000):
            store.add("ada", "nemo", run, "user", f"memory {i} " + "y" * 500, emb=emb)
            ack(i)
    """,
    "trajectories": """
        from mio.thinker.evolve.trajectory import TrajectoryLog, TurnRecord
        log = TrajectoryLog(path, max_turns=10**9)
        log.begin(run, "ada", "nemo")
        for i in range(100000):
            log.add_turn(run, TurnRecord(idx=i, user_text=f"question {i}", plan=[{"text": "z" * 1000}],
                                          embedding=np.ones(384, np.float32)))
            ack(i)
    """,
    "graph": """
        from pathlib import Path
        from mio.thinker.memory.graph import GraphStore
        from mio.thinker.pack import load_pack
        from mio.thinker.persona import STORIES_DIR
        pack = load_pack(STORIES_DIR / "twenty-thousand-leagues")
        store = GraphStore(path, StubEmbedder())
        for i in range(100000):  # a whole pack import is one write
            with store.db.write() as c:
                c.execute("DELETE FROM meta WHERE key = 'digest'")
            store.import_pack(pack)
            ack(i)
    """,
}


def _count(kind: str, db_file: Path, run: str) -> int:
    """Writes of run `run` found in the store after the crash."""
    if kind == "transcripts":
        from mio.server.store import SessionStore

        row = SessionStore(db_file.parent).get(run)
        return len(row["transcript"]) if row else 0
    table = {"episodic": "episodes", "trajectories": "turns"}[kind]
    with sqlite3.connect(db_file) as db:
        return db.execute(f"SELECT COUNT(*) FROM {table} WHERE session_id = ?", (run,)).fetchone()[0]  # noqa: S608


def _graph_state(db_file: Path) -> tuple[tuple[int, int], str | None]:
    from mio.thinker.memory.graph import GraphStore

    store = GraphStore(db_file, None)
    try:
        return store.counts(), store.meta("digest")
    finally:
        store.close()


def _run_and_kill(script: str, target: Path, run: str, rng: random.Random) -> int:
    """Start the writer, SIGKILL it at a random moment; the last write it acknowledged."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script, str(target), run], stdout=subprocess.PIPE, text=True, env=env)
    try:
        last = int(proc.stdout.readline())  # it is writing
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        acks = [int(x) for x in (proc.stdout.read() or "").split()]
        return max([last, *acks])
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_kill_9_mid_write_loses_at_most_the_write_in_flight(tmp_path, kind):
    from mio.thinker.pack import load_pack
    from mio.thinker.persona import STORIES_DIR

    rng = random.Random(kind)
    script = PRELUDE + textwrap.dedent(WRITERS[kind])
    db_file = tmp_path / ("sessions.sqlite" if kind == "transcripts" else f"{kind}.sqlite")
    target = tmp_path if kind == "transcripts" else db_file
    for run in ("r1", "r2", "r3"):  # three crashes into the same store, each at a random moment
        last = _run_and_kill(script, target, run, rng)
        with sqlite3.connect(db_file) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if kind == "graph":  # a pack import is one write: the graph is there in whole, never in part
            pack = load_pack(STORIES_DIR / "twenty-thousand-leagues")
            counts, digest = _graph_state(db_file)
            assert counts == (len(pack.nodes), len(pack.edges)), counts
            assert digest in (None, pack.digest())  # None: cut between a run's two writes; re-imported on use
            continue
        found = _count(kind, db_file, run)
        assert last + 1 <= found <= last + 2, (run, found, last)  # every acknowledged write, at most one more
