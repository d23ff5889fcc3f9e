"""A chat LLM that streams text: the Thinker's language backbone."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator


class ChatLLM(ABC):
    name: str = "llm"

    @abstractmethod
    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float, *,
               session: str | None = None, avoid: str | None = None) -> Iterator[str]:
        """Yield text pieces of the assistant's reply to `messages` (OpenAI chat format).

        `avoid` is the user's line: a backend that can constrain its sampling keeps the reply from
        copying four words in a row from it (mio.thinker.llm.noecho); others may ignore it.

        `session` names the conversation the call belongs to, so a backend holding one context can
        keep each conversation's pre-filled state apart (sessions take turns on it)."""

    def warm(self, messages: list[dict[str, str]], *, session: str | None = None) -> None:  # noqa: B027
        """Pre-fill a prompt prefix (the persona) so the first turn starts fast (optional)."""

    def forget(self, session: str) -> None:  # noqa: B027 - optional
        """The conversation `session` has ended: drop whatever is kept for it."""
