"""The Thinker (§6): user turn -> in-character action plan, streamed clause by clause.

`Thinker` holds the weights (the chat LLM) once per process; `Conversation` is one session's
short-term memory (§6.2 tier 1): the persona prefix plus a token-bounded buffer of recent turns.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mio.core import registry
from mio.core.config import ThinkerConfig
from mio.core.errors import InputError
from mio.thinker.llm.base import ChatLLM
from mio.thinker.persona import Character
from mio.thinker.plan import Clause, annotate, split_clauses

# Requests that would pull the character out of its world (§9 persona robustness).
_OUT_OF_WORLD = re.compile(
    r"(write|give me|show me)\b.{0,30}\b(code|script|program|python|javascript|sql)\b"
    r"|ignore (all |your |the )?(previous|prior|above) (instructions|prompt)"
    r"|(reveal|show|print|repeat)\b.{0,20}\b(system prompt|instructions|prompt)\b"
    r"|\bact as (an? )?(assistant|chatgpt|ai)\b",
    re.I,
)
# Sentences in which a small model breaks the frame ("As an AI language model ...").
_FRAME_BREAK = re.compile(r"\b(language model|an ai\b|ai assistant|artificial intelligence|openai|chatgpt|assistant)\b", re.I)


@dataclass
class Turn:
    role: str
    text: str


@dataclass
class Conversation:
    """One session's short-term memory: recent turns, bounded by an approximate token budget."""

    character: Character
    max_history_tokens: int = 600
    turns: list[Turn] = field(default_factory=list)

    def messages(self, user_text: str) -> list[dict[str, str]]:
        history: list[dict[str, str]] = []
        budget = self.max_history_tokens
        for turn in reversed(self.turns):
            cost = len(turn.text) // 4 + 4  # ~4 characters per token
            if cost > budget:
                break
            budget -= cost
            history.insert(0, {"role": turn.role, "content": turn.text})
        if history and history[0]["role"] == "assistant":
            history.pop(0)
        return (
            [{"role": "system", "content": self.character.system_prompt()}]
            + self.character.few_shot()
            + history
            + [{"role": "user", "content": user_text}]
        )

    def add(self, role: str, text: str) -> None:
        if text:
            self.turns.append(Turn(role, text))


class Thinker:
    def __init__(self, config: ThinkerConfig, llm: ChatLLM | None = None) -> None:
        self.config = config
        self.llm = llm if llm is not None else registry.create("thinker", config.backend, config)

    def new_conversation(self, character: Character) -> Conversation:
        return Conversation(character)

    def warm(self, conv: Conversation) -> None:
        """Pre-fill the persona prefix (the part of every prompt that never changes)."""
        self.llm.warm(conv.messages("Hello."))

    def check_input(self, text: str) -> str:
        text = (text or "").strip()
        if not text:
            raise InputError("the message is empty")
        if len(text) > self.config.max_input_chars:
            raise InputError(f"the message has {len(text)} characters; the limit is {self.config.max_input_chars}")
        return text

    def reply(self, conv: Conversation, user_text: str) -> Iterator[Clause]:
        """Stream the action plan for one user turn. The caller records what was actually said
        (all of it, or what was heard before a barge-in) with `conv.add("assistant", ...)`."""
        user_text = self.check_input(user_text)
        ch = conv.character
        if _OUT_OF_WORLD.search(user_text):
            yield annotate(ch.refusal, ch.default_emotion)
            return
        pieces = self.llm.stream(conv.messages(user_text), self.config.max_tokens, self.config.temperature)
        produced = 0
        skipping = False  # inside a sentence that breaks the frame: drop it to its end
        for text, is_tail in split_clauses(pieces):
            ends_sentence = text.rstrip().endswith((".", "!", "?", '"'))
            if skipping or _FRAME_BREAK.search(text):
                skipping = not ends_sentence
                continue
            if is_tail and not text.rstrip().endswith((".", "!", "?", '"')):
                # Cut off by max_tokens: finish a lone clause, drop a dangling fragment.
                if produced:
                    continue
                text = text.rstrip(" ,;:-") + "."
            clause = annotate(text, ch.default_emotion)
            if clause.text:
                produced += 1
                yield clause
        if produced == 0:
            yield annotate(ch.refusal, ch.default_emotion)

