"""The reward-decomposition oracle M_oracle (§6.2.1, Eq. 20-21).

A frozen LLM reads the augmented trajectory tau' = {(s_t, a_t, d_t)} and the global rating
R_Global and returns one reward R_t per action a_t as JSON. The output is structured and validated
(a pydantic schema: one entry per turn, each index once, finite values); with the embedded llama.cpp
backend the JSON is also grammar-constrained to the schema while it is generated. The paper states the
sum constraint (Eq. 21) as a soft instruction in the prompt; here it is then *enforced*: when
|sum R_t - R_Global| exceeds a tolerance the rewards are renormalised (`enforce_sum`).

When the oracle's output stays invalid after its retries, `CueOracle` decomposes from the
descriptors alone (a transparent rule: the share of R_Global moves towards turns whose reaction
was positive), and the turns are marked with that source so nothing pretends to be the LLM's.
"""

from __future__ import annotations

import json
import math
import re

from pydantic import BaseModel, Field, ValidationError

from mio.thinker.evolve.trajectory import Trajectory
from mio.thinker.llm.base import ChatLLM

SUM_TOLERANCE = 0.05  # |sum R_t - R_Global| allowed before renormalising (Eq. 21)
REWARD_BOUND = 2.0  # no single turn may claim more than this (R_Global is in [-1, 1])


class TurnReward(BaseModel):
    turn: int = Field(ge=0)
    reward: float
    reason: str = Field(default="", max_length=300)


class OracleOutput(BaseModel):
    turns: list[TurnReward]


def oracle_schema(n_turns: int) -> dict:
    """JSON schema handed to a grammar-constrained backend (llama.cpp)."""
    return {
        "type": "object",
        "properties": {"turns": {"type": "array", "minItems": n_turns, "maxItems": n_turns, "items": {
            "type": "object",
            "properties": {"turn": {"type": "integer"}, "reward": {"type": "number"}, "reason": {"type": "string"}},
            "required": ["turn", "reward", "reason"]}}},
        "required": ["turns"],
    }


class OracleError(ValueError):
    """The oracle's output does not match the schema."""


def parse_oracle(raw: str, n_turns: int) -> list[float]:
    """Validated turn rewards from the oracle's raw text (JSON, possibly wrapped in prose/fences)."""
    m = re.search(r"\{.*\}", raw, re.S)
    if m is None:
        raise OracleError("no JSON object in the oracle output")
    try:
        out = OracleOutput.model_validate(json.loads(m.group(0)))
    except (json.JSONDecodeError, ValidationError) as e:
        raise OracleError(f"oracle output does not match the schema: {str(e)[:200]}") from e
    if len(out.turns) != n_turns:
        raise OracleError(f"oracle scored {len(out.turns)} turns, the trajectory has {n_turns}")
    by_turn = {t.turn: t.reward for t in out.turns}
    if sorted(by_turn) != list(range(n_turns)):
        raise OracleError(f"oracle turn indices {sorted(by_turn)} are not 0..{n_turns - 1}, each once")
    rewards = [by_turn[i] for i in range(n_turns)]
    if not all(math.isfinite(r) for r in rewards):
        raise OracleError("oracle returned a non-finite reward")
    return [max(-REWARD_BOUND, min(REWARD_BOUND, r)) for r in rewards]


def enforce_sum(rewards: list[float], r_global: float, tol: float = SUM_TOLERANCE) -> tuple[list[float], bool]:
    """Eq. 21 made hard: returns rewards with sum == R_Global (within `tol`) and whether they were changed.

    If the oracle's sum has the sign of R_Global (and is not ~0), the rewards are scaled, which keeps
    their proportions; otherwise scaling would flip or blow them up, so the difference is spread
    evenly (a shift, which keeps their differences — the credit ranking is unchanged either way).
    """
    n = len(rewards)
    if n == 0:
        return [], False
    total = sum(rewards)
    if abs(total - r_global) <= tol:
        return list(rewards), False
    if abs(total) > 1e-6 and total * r_global > 0:
        return [r * r_global / total for r in rewards], True
    shift = (r_global - total) / n
    return [r + shift for r in rewards], True


# -- prompting ----------------------------------------------------------------------------------
SYSTEM = ("You are a reward model for a conversational character. You split a session's overall rating "
          "among the character's replies, judging each reply by how the user reacted right after it. "
          "Answer only with JSON.")


def oracle_prompt(traj: Trajectory, descriptors: list[str], r_global: float, character: str) -> list[dict[str, str]]:
    lines = []
    for i, (turn, d) in enumerate(zip(traj.turns, descriptors, strict=True)):
        plan = turn.plan[0] if turn.plan else {}
        extra = f" [emotion {plan.get('emotion', 'neutral')}, gesture {plan.get('gesture') or 'none'}]" if plan else ""
        lines.append(f"Turn {i}: User: {turn.user_text}\n  {character}: {turn.reply}{extra}\n  Reaction: {d}")
    body = "\n".join(lines)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": (
        f"Session with {character}. Overall rating R_Global = {r_global:+.2f} (from -1 worst to +1 best).\n{body}\n\n"
        f"Give each turn 0..{len(traj.turns) - 1} a reward. The rewards must add up to {r_global:+.2f}; "
        "replies followed by positive reactions get more. "
        'JSON: {"turns": [{"turn": 0, "reward": 0.1, "reason": "..."}, ...]}')}]


def ask_oracle(llm: ChatLLM, messages: list[dict[str, str]], n_turns: int, max_tokens: int) -> str:
    complete_json = getattr(llm, "complete_json", None)
    if complete_json is not None:  # grammar-constrained structured output
        return complete_json(messages, oracle_schema(n_turns), max_tokens)
    return "".join(llm.stream(messages, max_tokens, 0.0))


# -- the fallback: descriptors only -------------------------------------------------------------
_POSITIVE = ("pleased", "amused", "curious", "smiling", "looked at mio", "lively", "louder")
_NEGATIVE = ("annoyed", "bored", "confused", "not smiling", "looked away", "very few words", "flat", "unsteady",
             "more quietly")


def cue_valence(descriptor: str) -> float:
    d = descriptor.lower()
    pos = sum(w in d for w in _POSITIVE) - ("not smiling" in d)  # "not smiling" also contains "smiling"
    neg = sum(w in d for w in _NEGATIVE)
    return float(pos - neg)


class CueOracle:
    """R_t from the descriptors alone: an even share of R_Global, moved towards well-received turns."""

    name = "cues"

    def __init__(self, spread: float = 0.15) -> None:
        self.spread = spread

    def __call__(self, traj: Trajectory, descriptors: list[str], r_global: float) -> list[float]:
        n = len(descriptors)
        val = [cue_valence(d) for d in descriptors]
        mean = sum(val) / max(1, n)
        rewards = [r_global / n + self.spread * (v - mean) for v in val]
        return enforce_sum(rewards, r_global)[0]


class LLMOracle:
    """M_oracle: a frozen chat LLM with validated JSON output (retried), the sum enforced."""

    name = "llm"

    def __init__(self, llm: ChatLLM, *, retries: int = 2, max_tokens: int = 400, character: str = "Mio") -> None:
        self.llm, self.retries, self.max_tokens, self.character = llm, retries, max_tokens, character
        self.last_error = ""

    def __call__(self, traj: Trajectory, descriptors: list[str], r_global: float) -> tuple[list[float], str]:
        """Returns (R_t, source): source is "llm", "llm+renormalised" or "cues" (after invalid output)."""
        messages = oracle_prompt(traj, descriptors, r_global, self.character)
        n = len(traj.turns)
        for _ in range(self.retries):
            try:
                rewards = parse_oracle(ask_oracle(self.llm, messages, n, self.max_tokens + 40 * n), n)
            except OracleError as e:
                self.last_error = str(e)
                continue
            fixed, changed = enforce_sum(rewards, r_global)
            return fixed, "llm+renormalised" if changed else "llm"
        return CueOracle()(traj, descriptors, r_global), "cues"
