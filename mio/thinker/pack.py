"""Story packs: a story is data (docs/architecture.md §5) — one folder under stories/:

    stories/<story>/
      story.yaml            title, story clock (chapters), default character
      characters/<id>.yaml  persona cards (see persona.py)
      graph/nodes.yaml      diegetic knowledge graph: entities, traits, lore, events, each with story time t
      graph/edges.yaml      relations between nodes, each with story time t
      eval/*.yaml           evaluation suites (Timeline-coherence, Robustness, CharacterBox scenes)

Story time is a number on the story clock: chapter index from the first chapter of the story
(fractions allowed; 0 = before the story begins). A node or edge becomes true at `t` and, beyond
the paper, stops being true at the optional `t_end` (§6.2). Every validation error names the
file, the line and the field.

The graph is checked as a graph too: no edge from a node to itself, no edge repeated, no edge to
an unknown node, and no cycle in a hierarchy relation (`HIERARCHY_RELATIONS`, plus any the pack
names in story.yaml's `acyclic_relations`): "A is part of B is part of A" is a broken pack, not a
fact, and a retriever that walks such a relation would never stop. Other relations may form
cycles (Nemo saves Ned, Ned saves Nemo).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator

from mio.core import yamlines
from mio.core.errors import ConfigError

NODE_KINDS = ("entity", "trait", "lore", "event", "place")
# Relations that order nodes (containment, membership, kind, descent): a cycle in one is an error.
# Each maps to (canonical name, reversed?): "A contains B" is the edge B -part_of-> A.
HIERARCHY_RELATIONS: dict[str, tuple[str, bool]] = {
    "part_of": ("part_of", False), "contains": ("part_of", True),
    "located_in": ("located_in", False), "inside": ("located_in", False),
    "member_of": ("member_of", False), "has_member": ("member_of", True),
    "is_a": ("is_a", False), "kind_of": ("is_a", False), "subclass_of": ("is_a", False),
    "child_of": ("child_of", False), "parent_of": ("child_of", True),
}
_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


@dataclass(frozen=True)
class Chapter:
    index: float  # story time at the chapter's start
    part: int
    number: int  # within its part
    title: str

    def label(self) -> str:
        return f"Part {self.part}, Chapter {self.number}: {self.title}"


@dataclass(frozen=True)
class StoryClock:
    """Chapter-level story time (§6.2 `t`), with labels and parsing of `/time` arguments."""

    chapters: tuple[Chapter, ...]
    start: float  # where a new conversation begins

    @property
    def end(self) -> float:
        return self.chapters[-1].index if self.chapters else 0.0

    def clamp(self, t: float) -> float:
        if not math.isfinite(t):
            raise ConfigError(f"story time {t!r} is not a finite number")
        return min(max(0.0, float(t)), self.end)

    def chapter(self, t: float) -> Chapter | None:
        found = None
        for ch in self.chapters:
            if ch.index <= t + 1e-9:
                found = ch
        return found

    def label(self, t: float) -> str:
        ch = self.chapter(t)
        return ch.label() if ch else "before the story begins"

    def parse(self, text: str, current: float) -> float:
        """`12` (chapter index), `+2` / `-1` (advance), `2:5` or `II.5` (part 2, chapter 5)."""
        s = text.strip()
        if not s:
            raise ConfigError("give a story time, e.g. /time 12, /time +1 or /time 2:5")
        m = re.fullmatch(r"(?i)(?:part\s*)?(\d+|i{1,3}|iv)\s*[:.,]\s*(?:chapter\s*)?(\d+)", s)
        if m and not re.fullmatch(r"\d+\.\d+", s):
            part = _roman(m.group(1))
            number = int(m.group(2))
            for ch in self.chapters:
                if ch.part == part and ch.number == number:
                    return ch.index
            raise ConfigError(f"there is no part {part}, chapter {number} in this story")
        try:
            value = float(s)
        except ValueError:
            raise ConfigError(f"{text!r} is not a story time; try 12, +1 or 2:5") from None
        return self.clamp(current + value if s[0] in "+-" else value)


def _roman(s: str) -> int:
    return int(s) if s.isdigit() else {"i": 1, "ii": 2, "iii": 3, "iv": 4}[s.lower()]


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    name: str
    text: str
    t: float
    t_end: float | None = None


@dataclass(frozen=True)
class Edge:
    src: str
    rel: str
    dst: str
    text: str
    t: float
    t_end: float | None = None


@dataclass(frozen=True)
class StoryPack:
    folder: Path
    id: str
    title: str
    clock: StoryClock
    default_character: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def digest(self) -> str:
        """Content hash of the graph: the SQLite store is rebuilt when the pack changes."""
        h = hashlib.sha256()
        for n in self.nodes:
            h.update(repr(n).encode())
        for e in self.edges:
            h.update(repr(e).encode())
        return h.hexdigest()[:16]

    def character_files(self) -> list[Path]:
        return sorted((self.folder / "characters").glob("*.yaml"))


def _story_time(v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"must be a number (story time), got {v!r}")
    return float(v)


def _optional_time(v: object) -> float | None:
    return None if v is None else _story_time(v)


def _node_id(v: str) -> str:
    if not _ID.match(v):
        raise ValueError(f"{v!r} must be lowercase letters, digits, _ or -")
    return v


def _node_kind(v: str) -> str:
    if v not in NODE_KINDS:
        raise ValueError(f"{v!r} is not one of {', '.join(NODE_KINDS)}")
    return v


StoryTime = Annotated[float, BeforeValidator(_story_time)]
OptionalTime = Annotated[float | None, BeforeValidator(_optional_time)]


def _relations(v: object) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(r, str) for r in v):
        raise ValueError("must be a list of relation names")
    return tuple(v)


class _NodeFields(BaseModel):
    """One entry of graph/nodes.yaml (checked in this order)."""

    id: Annotated[yamlines.Text, AfterValidator(_node_id)]
    kind: Annotated[yamlines.Text, AfterValidator(_node_kind)]
    t: StoryTime
    t_end: OptionalTime = None
    text: yamlines.Text
    name: yamlines.OptionalText = ""


class _EdgeFields(BaseModel):
    """One entry of graph/edges.yaml."""

    src: yamlines.Text
    rel: yamlines.Text
    dst: yamlines.Text
    t: StoryTime
    t_end: OptionalTime = None
    text: yamlines.OptionalText = ""


class _StoryFields(BaseModel):
    """story.yaml's scalar fields (the parts and chapters are checked as a list below)."""

    title: yamlines.Text
    start: StoryTime
    acyclic_relations: Annotated[tuple[str, ...], BeforeValidator(_relations)] = ()
    default_character: yamlines.Text


def _items(path: Path, key: str) -> list[dict]:
    data = yamlines.load(path)
    if isinstance(data, dict):
        data = data.get(key)
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of {key} (or a mapping with a '{key}' list)")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: {key}[{i}] must be a mapping, got {type(item).__name__}")
    return data


def _check_time(path: Path, m: dict, t: float, t_end: float | None, end: float) -> None:
    if not 0 <= t <= end:
        raise ConfigError(f"{yamlines.where(path, m, 't')}: {t} is outside the story clock 0..{end}")
    if t_end is not None and not t < t_end:
        raise ConfigError(f"{yamlines.where(path, m, 't_end')}: must be later than t={t}")


def _hierarchy(rel: str, extra: frozenset[str]) -> tuple[str, bool] | None:
    return HIERARCHY_RELATIONS.get(rel) or ((rel, False) if rel in extra else None)


def _check_cycles(path: Path, edges: list[tuple[Edge, dict]], extra: frozenset[str]) -> None:
    """Refuse a cycle in any hierarchy relation; the error names the cycle and the edge closing it."""
    graphs: dict[str, dict[str, list[tuple[str, dict]]]] = {}
    for e, m in edges:
        h = _hierarchy(e.rel, extra)
        if h is None:
            continue
        name, flip = h
        a, b = (e.dst, e.src) if flip else (e.src, e.dst)
        graphs.setdefault(name, {}).setdefault(a, []).append((b, m))
    for name, succ in graphs.items():
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        for root in sorted(succ):
            if state.get(root):
                continue
            # Iterative DFS (a long chain must not hit Python's recursion limit).
            path_nodes, stack = [root], [iter(succ.get(root, ()))]
            state[root] = 1
            while stack:
                step = next(stack[-1], None)
                if step is None:
                    state[path_nodes.pop()] = 2
                    stack.pop()
                    continue
                nxt, m = step
                if state.get(nxt) == 1:
                    loop = path_nodes[path_nodes.index(nxt):] + [nxt]
                    raise ConfigError(f"{yamlines.where(path, m, 'rel')}: cycle in the {name!r} hierarchy: "
                                      f"{' -> '.join(loop)} (a hierarchy relation must not loop back)")
                if not state.get(nxt):
                    state[nxt] = 1
                    path_nodes.append(nxt)
                    stack.append(iter(succ.get(nxt, ())))


def load_pack(folder: Path) -> StoryPack:
    """Load and validate `folder/story.yaml` and its graph."""
    story_file = folder / "story.yaml"
    if not story_file.is_file():
        raise ConfigError(f"{folder}: not a story pack (no story.yaml)")
    s = yamlines.load(story_file)
    if not isinstance(s, dict):
        raise ConfigError(f"{story_file}: expected a mapping of fields at the top level")
    fields = yamlines.validate(_StoryFields, story_file, s)
    chapters: list[Chapter] = []
    parts = s.get("parts")
    if not isinstance(parts, list) or not parts:
        raise ConfigError(f"{yamlines.where(story_file, s, 'parts')}: a list of parts, each with a list of chapter titles")
    index = 0
    for p_i, part in enumerate(parts, 1):
        titles = part.get("chapters") if isinstance(part, dict) else None
        if not isinstance(titles, list) or not titles:
            raise ConfigError(f"{yamlines.where(story_file, part if isinstance(part, dict) else s, 'chapters')}: "
                              f"part {p_i} needs a list of chapter titles")
        for c_i, title_c in enumerate(titles, 1):
            index += 1
            chapters.append(Chapter(float(index), p_i, c_i, str(title_c)))
    start = fields.start
    clock = StoryClock(tuple(chapters), start)
    if not 0 <= start <= clock.end:
        raise ConfigError(f"{yamlines.where(story_file, s, 'start')}: {start} is outside the story clock 0..{clock.end}")
    default = fields.default_character
    if not (folder / "characters" / f"{default}.yaml").is_file():
        raise ConfigError(f"{yamlines.where(story_file, s, 'default_character')}: no characters/{default}.yaml")

    nodes: list[Node] = []
    seen: dict[str, int] = {}
    nodes_file = folder / "graph" / "nodes.yaml"
    edges_file = folder / "graph" / "edges.yaml"
    for m in _items(nodes_file, "nodes") if nodes_file.is_file() else []:
        f = yamlines.validate(_NodeFields, nodes_file, m)
        if f.id in seen:
            raise ConfigError(f"{yamlines.where(nodes_file, m, 'id')}: duplicate id {f.id!r} (first at line {seen[f.id]})")
        seen[f.id] = m["__line__"]
        _check_time(nodes_file, m, f.t, f.t_end, clock.end)
        nodes.append(Node(f.id, f.kind, f.name or f.id.replace("_", " "), f.text, f.t, f.t_end))
    by_id = {n.id: n for n in nodes}
    edges: list[tuple[Edge, dict]] = []
    seen_edges: dict[tuple[str, str, str, float], int] = {}
    for m in _items(edges_file, "edges") if edges_file.is_file() else []:
        f = yamlines.validate(_EdgeFields, edges_file, m)
        src, rel, dst, t, t_end = f.src, f.rel, f.dst, f.t, f.t_end
        for field, ref in (("src", src), ("dst", dst)):
            if ref not in by_id:
                raise ConfigError(f"{yamlines.where(edges_file, m, field)}: unknown node {ref!r}")
        if src == dst:
            raise ConfigError(f"{yamlines.where(edges_file, m, 'dst')}: edge from {src!r} to itself")
        _check_time(edges_file, m, t, t_end, clock.end)
        latest = max(by_id[src].t, by_id[dst].t)
        if t < latest:
            raise ConfigError(f"{yamlines.where(edges_file, m, 't')}: {t} is before its node "
                              f"{src if by_id[src].t == latest else dst!r} exists (t={latest})")
        key = (src, rel, dst, t)
        if key in seen_edges:
            raise ConfigError(f"{yamlines.where(edges_file, m, 'rel')}: duplicate edge {src} -{rel}-> {dst} at t={t} "
                              f"(first at line {seen_edges[key]})")
        seen_edges[key] = m["__line__"]
        text = f.text or f"{by_id[src].name} {rel.replace('_', ' ')} {by_id[dst].name}."
        edges.append((Edge(src, rel, dst, text, t, t_end), m))
    _check_cycles(edges_file, edges, frozenset(fields.acyclic_relations))
    return StoryPack(folder, folder.name, fields.title, clock, default, tuple(nodes), tuple(e for e, _ in edges))
