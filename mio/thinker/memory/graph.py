"""The diegetic knowledge graph (§6.2) in SQLite, with story-time-aware dual-level retrieval.

Nodes (entities, traits, lore, events, places) and edges (relations) each carry story time `t`
(when it becomes true) and an optional `t_end` (when it stops being true). Embeddings (MiniLM,
384-d float32) are stored in the database beside each row.

Story-Time-Aware Retrieval: semantic search over nodes (specific entities), then over edges
(relations/themes), with edges touching the retrieved nodes favoured. The Narrative-Present gate
is part of the SQL that selects the candidates (`NarrativePresentGate.sql`), never a filter after
ranking: a fact with t > t_current, or t_end <= t_current, is not read from the database at all.
The gated candidate matrix is cached in memory per story time (invalidated when the database
changes), so a query is one matrix-vector product.

`flat=True` is the paper's Baseline (temporally flat RAG): the same search with no gate.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mio.thinker.memory.db import Database, from_blobs, to_blob
from mio.thinker.memory.embed import Embedder
from mio.thinker.pack import Edge, Node, StoryPack

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS nodes (
  pk INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
  text TEXT NOT NULL, t REAL NOT NULL, t_end REAL, emb BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS edges (
  pk INTEGER PRIMARY KEY, src TEXT NOT NULL, rel TEXT NOT NULL, dst TEXT NOT NULL,
  text TEXT NOT NULL, t REAL NOT NULL, t_end REAL, emb BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS nodes_t ON nodes (t);
CREATE INDEX IF NOT EXISTS edges_t ON edges (t);
"""


class NarrativePresentGate:
    """§6.2: at story time t_current nothing with t > t_current (or t_end <= t_current) is visible.
    The condition is SQL so that it runs inside the candidate query."""

    @staticmethod
    def sql(alias: str) -> str:
        return f"({alias}.t <= :t AND ({alias}.t_end IS NULL OR {alias}.t_end > :t))"

    @staticmethod
    def admits(t: float, t_end: float | None, t_current: float) -> bool:
        """The same rule in Python, for tests and for checking results."""
        return t <= t_current and (t_end is None or t_end > t_current)


NODE_SQL = "SELECT n.id, n.text, n.t, n.t_end, n.emb, n.id, n.id FROM nodes n"
EDGE_SQL = ("SELECT e.src || ':' || e.rel || ':' || e.dst, e.text, e.t, e.t_end, e.emb, e.src, e.dst "
            "FROM edges e JOIN nodes a ON a.id = e.src JOIN nodes b ON b.id = e.dst")
GATED_NODES = f"{NODE_SQL} WHERE {NarrativePresentGate.sql('n')}"
# An edge is visible when it is and both its ends have come into being.
GATED_EDGES = f"{EDGE_SQL} WHERE {NarrativePresentGate.sql('e')} AND a.t <= :t AND b.t <= :t"
FUTURE_NODES = f"{NODE_SQL} WHERE n.t > :t"  # what the gate withholds (spoiler guard only)
FUTURE_EDGES = f"{EDGE_SQL} WHERE e.t > :t"


@dataclass(frozen=True)
class Hit:
    level: str  # "node" | "edge"
    id: str
    text: str
    t: float
    t_end: float | None
    score: float


@dataclass(frozen=True)
class Retrieval:
    nodes: tuple[Hit, ...]
    edges: tuple[Hit, ...]

    @property
    def hits(self) -> tuple[Hit, ...]:
        return self.nodes + self.edges

    @property
    def best(self) -> float:
        return max((h.score for h in self.hits), default=0.0)


class _Candidates:
    """One gated candidate set in memory: ids, texts, times, endpoints and the (N, D) matrix."""

    def __init__(self, rows: list[tuple], dim: int) -> None:
        self.ids = [r[0] for r in rows]
        self.texts = [r[1] for r in rows]
        self.t = np.array([r[2] for r in rows], np.float64)
        self.t_end = [r[3] for r in rows]
        self.matrix = from_blobs([r[4] for r in rows], dim)  # (N, D)
        self.ends = [(r[5], r[6]) for r in rows]

    def top(self, q: np.ndarray, k: int, min_score: float, level: str, bonus: np.ndarray | None = None) -> list[Hit]:
        if not self.ids or k <= 0:
            return []
        scores = self.matrix @ q  # (N,)
        if bonus is not None:
            scores = scores + bonus
        k = min(k, len(scores))
        idx = np.argpartition(-scores, k - 1)[:k]
        idx = idx[np.argsort(-scores[idx])]
        return [Hit(level, self.ids[i], self.texts[i], float(self.t[i]), self.t_end[i], float(scores[i]))
                for i in idx if scores[i] >= min_score]


class GraphStore:
    """A story's knowledge graph in one SQLite file (or ":memory:")."""

    def __init__(self, path: str | Path, embedder: Embedder, cache_size: int = 8) -> None:
        self.db = Database(path, SCHEMA)
        self.embedder = embedder
        self._cache: OrderedDict[tuple, _Candidates] = OrderedDict()
        self._cache_size = cache_size
        self._version = (self.db.data_version(), 0)
        self._writes = 0

    # -- writing ----------------------------------------------------------------------------
    def import_pack(self, pack: StoryPack) -> bool:
        """Load the pack's graph unless this database already holds this exact version. True if loaded."""
        digest = pack.digest()
        if self.meta("digest") == digest:
            return False
        node_emb = self.embedder.encode([f"{n.name}: {n.text}" for n in pack.nodes]) if pack.nodes else None
        edge_emb = self.embedder.encode([e.text for e in pack.edges]) if pack.edges else None
        with self.db.write() as c:
            c.execute("DELETE FROM nodes")
            c.execute("DELETE FROM edges")
            self._insert(c, pack.nodes, node_emb, pack.edges, edge_emb)
            c.execute("INSERT OR REPLACE INTO meta VALUES ('digest', ?)", (digest,))
            c.execute("INSERT OR REPLACE INTO meta VALUES ('story', ?)", (pack.id,))
        self._changed()
        return True

    def add(self, nodes: list[Node] = (), edges: list[Edge] = (), node_emb: np.ndarray | None = None,
            edge_emb: np.ndarray | None = None) -> None:
        if nodes and node_emb is None:
            node_emb = self.embedder.encode([f"{n.name}: {n.text}" for n in nodes])
        if edges and edge_emb is None:
            edge_emb = self.embedder.encode([e.text for e in edges])
        with self.db.write() as c:
            self._insert(c, nodes, node_emb, edges, edge_emb)
        self._changed()

    @staticmethod
    def _insert(c, nodes, node_emb, edges, edge_emb) -> None:
        c.executemany("INSERT INTO nodes (id, kind, name, text, t, t_end, emb) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      [(n.id, n.kind, n.name, n.text, n.t, n.t_end, to_blob(node_emb[i])) for i, n in enumerate(nodes)])
        c.executemany("INSERT INTO edges (src, rel, dst, text, t, t_end, emb) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      [(e.src, e.rel, e.dst, e.text, e.t, e.t_end, to_blob(edge_emb[i])) for i, e in enumerate(edges)])

    def _changed(self) -> None:
        self._writes += 1

    def meta(self, key: str) -> str | None:
        rows = self.db.read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def counts(self) -> tuple[int, int]:
        return (self.db.read("SELECT COUNT(*) FROM nodes")[0][0], self.db.read("SELECT COUNT(*) FROM edges")[0][0])

    # -- reading ----------------------------------------------------------------------------
    def _candidates(self, sql: str, t: float | None) -> _Candidates:
        version = (self.db.data_version(), self._writes)
        if version != self._version:
            self._cache.clear()
            self._version = version
        key = (sql, t)
        cand = self._cache.get(key)
        if cand is None:
            cand = _Candidates(self.db.read(sql, {"t": t} if t is not None else {}), self.embedder.dim)
            self._cache[key] = cand
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return cand

    def retrieve(self, query: str | np.ndarray, t_current: float | None, *, k_nodes: int = 3, k_edges: int = 3,
                 min_score: float = 0.25, flat: bool = False) -> Retrieval:
        """Dual-level retrieval: nodes, then edges (favouring edges that touch the retrieved nodes).
        `flat=True` (the Baseline) searches the whole graph with no gate."""
        q = self.embedder.encode_one(query) if isinstance(query, str) else query
        if flat:
            nodes_c, edges_c = self._candidates(NODE_SQL, None), self._candidates(EDGE_SQL, None)
        else:
            if t_current is None:
                raise ValueError("the diegetic memory needs the current story time")
            nodes_c = self._candidates(GATED_NODES, float(t_current))
            edges_c = self._candidates(GATED_EDGES, float(t_current))
        nodes = nodes_c.top(q, k_nodes, min_score, "node")
        bonus = None
        if nodes and edges_c.ids:
            found = {h.id for h in nodes}
            bonus = np.array([0.08 if (a in found or b in found) else 0.0 for a, b in edges_c.ends], np.float32)
        edges = edges_c.top(q, k_edges, min_score, "edge", bonus)
        return Retrieval(tuple(nodes), tuple(edges))

    def withheld(self, query: str | np.ndarray, t_current: float, k: int = 6, min_score: float = 0.2) -> list[Hit]:
        """The future facts the gate keeps out of the prompt that are closest to `query`.
        Used only by the spoiler guard to check a draft reply; never put into a prompt."""
        q = self.embedder.encode_one(query) if isinstance(query, str) else query
        hits = self._candidates(FUTURE_NODES, float(t_current)).top(q, k, min_score, "node")
        hits += self._candidates(FUTURE_EDGES, float(t_current)).top(q, k, min_score, "edge")
        return sorted(hits, key=lambda h: -h.score)[:k]

    def future_texts(self, t_current: float) -> list[str]:
        """Every fact the gate withholds at t_current (for the spoiler guard only)."""
        return self._candidates(FUTURE_NODES, float(t_current)).texts + self._candidates(FUTURE_EDGES, float(t_current)).texts

    def present_texts(self, t_current: float) -> list[str]:
        return self._candidates(GATED_NODES, float(t_current)).texts + self._candidates(GATED_EDGES, float(t_current)).texts

    def close(self) -> None:
        self.db.close()
