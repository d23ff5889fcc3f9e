"""A chat LLM that streams text: the Thinker's language backbone."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator


class ChatLLM(ABC):
    name: str = "llm"

    @abstractmethod
    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> Iterator[str]:
        """Yield text pieces of the assistant's reply to `messages` (OpenAI chat format)."""

    def warm(self, messages: list[dict[str, str]]) -> None:  # noqa: B027 - optional
        """Pre-fill a prompt prefix (the persona) so the first turn starts fast."""
