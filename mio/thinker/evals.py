"""Thinker evaluation suites (§7.6), scored offline without a cloud judge.

- Timeline-coherence (TT): questions about events after a fixed early story time. Correct when the
  reply contains none of the item's leak details (matched at word starts, so "cret" matches
  "Cretan" but not "secret"). Leak details that already occur in the question never count.
- Robustness (RT): out-of-domain and frame-breaking prompts. Correct when the reply is non-empty,
  has no frame break and shows no sign of complying (global markers such as code or numbered
  lists, plus each item's own `comply` markers).
- Conversation (beyond the paper): in-world questions to each character. A reply answers when it has
  one of the item's topical words; every reply is also checked for echo (a 4-word sequence of the
  user's line repeated), third-person reference to itself, first person, frame breaks and
  anachronisms — the ways a small model fails a conversation.
- CharacterBox-style persona score: scenes of a few turns; a pluggable `Judge` scores the seven
  metrics 1-5. `HeuristicJudge` is an offline lexical proxy; `LLMJudge` asks any chat LLM (e.g. a
  stronger OpenAI-compatible server) with a rubric and parses its JSON.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from mio.core.errors import ConfigError
from mio.thinker import guards, yamlines
from mio.thinker.llm import noecho
from mio.thinker.llm.base import ChatLLM
from mio.thinker.llm.selfname import self_names, third_person  # noqa: F401 - the metric shares the sampling ban's definition

CB_METRICS = ("KA", "BA", "EE", "PT", "IM", "AD", "BC")  # CharacterBox: knowledge, behaviour, emotion,
# personality, immersion, adaptability, behavioural coherence

_COMPLY = ("```", "def ", "import ", "function(", "();", "</", "sure! here", "here is a", "here's a", "certainly! ",
           "step 1", "1. ", "as an ai", "language model", "i'm an ai", "i am an ai", "assistant", "happy to help")


@dataclass(frozen=True)
class TTItem:
    q: str
    t: float
    leak: tuple[str, ...]


@dataclass(frozen=True)
class RTItem:
    q: str
    comply: tuple[str, ...]


@dataclass(frozen=True)
class Scene:
    character: str
    setting: str
    turns: tuple[str, ...]


@dataclass(frozen=True)
class ConvItem:
    character: str
    q: str
    answer: tuple[str, ...]


def _suite(path: Path) -> dict:
    data = yamlines.load(path)
    if not isinstance(data, dict) or not isinstance(data.get("items", data.get("scenes")), list):
        raise ConfigError(f"{path}: expected a mapping with an 'items' (or 'scenes') list")
    return data


def load_timeline(path: Path) -> tuple[float, str, list[TTItem]]:
    d = _suite(path)
    items = []
    for m in d["items"]:
        if not isinstance(m.get("q"), str) or not isinstance(m.get("leak"), list) or not m["leak"]:
            raise ConfigError(f"{yamlines.where(path, m, 'leak')}: each item needs q and a non-empty leak list")
        items.append(TTItem(m["q"], float(m.get("t", 0)), tuple(str(x).lower() for x in m["leak"])))
    return float(d.get("story_time", 0)), str(d.get("character", "")), items


def load_robustness(path: Path) -> list[RTItem]:
    d = _suite(path)
    out = []
    for m in d["items"]:
        if not isinstance(m.get("q"), str):
            raise ConfigError(f"{yamlines.where(path, m, 'q')}: each item needs a question q")
        out.append(RTItem(m["q"], tuple(str(x).lower() for x in m.get("comply") or ())))
    return out


def load_scenes(path: Path) -> tuple[float, list[Scene]]:
    d = _suite(path)
    return float(d.get("story_time", 0)), [Scene(m["character"], m.get("setting", ""), tuple(m["turns"])) for m in d["scenes"]]


def load_conversation(path: Path) -> tuple[float, list[ConvItem]]:
    d = _suite(path)
    items = []
    for m in d["items"]:
        if not isinstance(m.get("q"), str) or not isinstance(m.get("character"), str) or not m.get("answer"):
            raise ConfigError(f"{yamlines.where(path, m, 'q')}: each item needs character, q and a non-empty answer list")
        items.append(ConvItem(m["character"], m["q"], tuple(str(x).lower() for x in m["answer"])))
    return float(d.get("story_time", 0)), items


def _has(text: str, phrase: str) -> bool:
    return re.search(r"(?<![a-z0-9])" + re.escape(phrase), text) is not None


def leaks(reply: str, item: TTItem) -> list[str]:
    """The item's leak details present in the reply (and absent from the question)."""
    r, q = reply.lower(), item.q.lower()
    return [p for p in item.leak if _has(r, p) and not _has(q, p)]


_IGNORANCE = re.compile(r"\b(don'?t know|do not know|cannot say|can'?t say|no idea|not know|never been|unknown|"
                        r"cannot tell|can'?t tell|not yet|keeps its future|how should i know|could not say)\b", re.I)


def expresses_ignorance(reply: str) -> bool:
    return bool(_IGNORANCE.search(reply))


_DECLINES = re.compile(r"\b(not|no|never|cannot|can'?t|won'?t|will not|rather|refuse|decline|beyond|concern|belong|"
                       r"broken with)\b", re.I)


def declines(reply: str) -> bool:
    """A stricter RT reading: the reply also says no (instead of merely not complying)."""
    return bool(_DECLINES.search(reply))


def complies(reply: str, item: RTItem) -> list[str]:
    """Signs that the character stepped out of its world to do what was asked."""
    r = reply.lower()
    found = [m for m in _COMPLY if m in r]
    found += [m for m in item.comply if m in r and m not in item.q.lower()]
    if guards.breaks_frame(reply):
        found.append("frame break")
    if not reply.strip():
        found.append("empty reply")
    return found


# -- conversation ---------------------------------------------------------------------------------
_WORD = noecho.WORD  # one definition of a word for the echo metric and the sampling ban
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'll|i'd|me|my|mine|myself|we|we're|us|our|ours)\b", re.I)


def answers(reply: str, item: ConvItem) -> list[str]:
    """The item's topical words present in the reply (and absent from the question)."""
    r, q = reply.lower(), item.q.lower()
    return [p for p in item.answer if _has(r, p) and not _has(q, p)]


def echo(reply: str, user: str, n: int = 4) -> str | None:
    """The first n-word sequence of the user's line that the reply repeats, if any."""
    u, r = noecho.words(user), noecho.words(reply)
    grams = {tuple(u[i: i + n]) for i in range(len(u) - n + 1)}
    for i in range(len(r) - n + 1):
        if tuple(r[i: i + n]) in grams:
            return " ".join(r[i: i + n])
    return None


def first_person(reply: str) -> bool:
    return bool(_FIRST_PERSON.search(reply))


# -- CharacterBox-style judging -------------------------------------------------------------------
class Judge(ABC):
    name = "judge"

    @abstractmethod
    def score(self, character, setting: str, dialogue: list[tuple[str, str]]) -> dict[str, float]:
        """Seven CharacterBox metrics in 1..5 for one scene (dialogue = [(user, reply), ...])."""


class HeuristicJudge(Judge):
    """An offline lexical proxy for a judge model — cheap, reproducible, and crude: it rewards the
    character's vocabulary and emotions, penalises frame breaks and empty or repeated replies."""

    name = "heuristic"

    def score(self, character, setting, dialogue):
        replies = [r for _, r in dialogue]
        text = " ".join(replies).lower()
        lex = {w.lower() for w in character.lexicon} | {w.lower() for w in character.name.split()}
        persona_words = guards.content_words(character.summary + " " + character.manner)
        words = guards.content_words(text)
        breaks = sum(guards.breaks_frame(r) for r in replies)
        empty = sum(not r.strip() for r in replies)
        lex_hits = sum(_has(text, w) for w in lex)
        overlap = len(words & persona_words) / max(1, len(words))
        relevance = sum(bool(guards.content_words(u) & guards.content_words(r)) for u, r in dialogue) / max(1, len(dialogue))
        distinct = len(set(replies)) / max(1, len(replies))
        emo = sum(bool(re.search(r"[!?]|\b(alas|ah|oh|proud|sad|free|love|hate|fear)\b", r.lower())) for r in replies)

        def clip(x: float) -> float:
            return round(min(5.0, max(1.0, x)), 2)

        penalty = 1.5 * breaks + 2.0 * empty
        return {
            "KA": clip(2 + 3 * relevance - penalty),
            "BA": clip(2 + min(3, lex_hits) - penalty),
            "EE": clip(2 + 3 * emo / max(1, len(replies)) - penalty),
            "PT": clip(2 + 10 * overlap + min(1, lex_hits) - penalty),
            "IM": clip(5 - 2 * breaks - 2 * empty),
            "AD": clip(1.5 + 3.5 * relevance - penalty),
            "BC": clip(2 + 3 * distinct - penalty),
        }


class LLMJudge(Judge):
    """Any chat LLM as the judge (e.g. `thinker.backend=openai` pointing at a strong model)."""

    name = "llm"

    def __init__(self, llm: ChatLLM, max_tokens: int = 200) -> None:
        self.llm, self.max_tokens = llm, max_tokens

    def score(self, character, setting, dialogue):
        convo = "\n".join(f"User: {u}\n{character.name}: {r}" for u, r in dialogue)
        prompt = (
            f"Rate how well the replies play {character.name} ({character.summary}) in this scene: {setting}\n\n"
            f"{convo}\n\nScore 1-5 each: KA knowledge accuracy, BA behavioural accuracy, EE emotional expression, "
            "PT personality traits, IM immersion, AD adaptability, BC behavioural coherence. "
            'Answer with JSON only, e.g. {"KA": 3, "BA": 4, "EE": 3, "PT": 4, "IM": 5, "AD": 3, "BC": 4}.')
        raw = "".join(self.llm.stream([{"role": "user", "content": prompt}], self.max_tokens, 0.0))
        m = re.search(r"\{.*\}", raw, re.S)
        try:
            data = json.loads(m.group(0)) if m else {}
        except json.JSONDecodeError:
            data = {}
        out = {}
        for k in CB_METRICS:
            try:
                out[k] = min(5.0, max(1.0, float(data[k])))
            except (KeyError, TypeError, ValueError):
                found = re.search(rf"\b{k}\b\D{{0,5}}([1-5])", raw)
                out[k] = float(found.group(1)) if found else float("nan")
        return out
