"""A chat LLM that streams text: the Thinker's language backbone."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Avoid:
    """What a reply may not say. A backend that can constrain its sampling enforces it while the
    reply is sampled (llama.cpp: logits processors); others may ignore it."""

    user_line: str = ""  # the reply copies no four words in a row from it (mio.thinker.llm.noecho)
    speaker: str = ""  # the speaker's own name, outside a self-introduction (mio.thinker.llm.selfname)


class ChatLLM(ABC):
    name: str = "llm"

    @abstractmethod
    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float, *,
               session: str | None = None, avoid: Avoid | None = None) -> Iterator[str]:
        """Yield text pieces of the assistant's reply to `messages` (OpenAI chat format).

        `avoid`: what the reply may not say (the user's words, the speaker's own name), for backends
        that can constrain their sampling.

        `session` names the conversation the call belongs to, so a backend holding one context can
        keep each conversation's pre-filled state apart (sessions take turns on it)."""

    def warm(self, messages: list[dict[str, str]], *, session: str | None = None) -> None:  # noqa: B027
        """Pre-fill a prompt prefix (the persona) so the first turn starts fast (optional)."""

    def prime(self, messages: list[dict[str, str]], *, session: str | None = None) -> int:
        """Between turns: pre-fill `messages` and the opening of the next user turn, if the backend
        keeps a pre-filled state and is idle (optional). Returns the tokens evaluated."""
        return 0

    def forget(self, session: str) -> None:  # noqa: B027 - optional
        """The conversation `session` has ended: drop whatever is kept for it."""
