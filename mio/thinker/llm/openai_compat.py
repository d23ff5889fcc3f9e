"""Any OpenAI-compatible chat server (Ollama, vLLM, llama.cpp server, hosted APIs) by URL.

Streams `/chat/completions` with server-sent events over the standard library's http.client,
so it adds no dependency. Nothing here runs unless the user selects `thinker.backend=openai`.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from urllib.parse import urlsplit

from mio.core.config import ThinkerConfig
from mio.core.errors import BackendError
from mio.thinker.llm.base import Avoid, ChatLLM


class OpenAICompatLLM(ChatLLM):
    name = "openai"

    def __init__(self, config: ThinkerConfig, timeout: float = 60.0) -> None:
        if not config.url:
            raise BackendError("thinker.backend=openai needs thinker.url, e.g. http://127.0.0.1:11434/v1")
        parts = urlsplit(config.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(f"thinker.url {config.url!r} is not an http(s) URL")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.path = parts.path.rstrip("/") + "/chat/completions"
        self.model = config.model
        self.api_key = os.environ.get(config.api_key_env, "")
        self.timeout = timeout

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout)

    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float, *,
               session: str | None = None, avoid: Avoid | None = None) -> Iterator[str]:
        body = json.dumps(
            {"model": self.model, "messages": messages, "max_tokens": max_tokens,
             "temperature": temperature, "stream": True}
        )
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        conn = self._connect()
        try:
            try:
                conn.request("POST", self.path, body=body, headers=headers)
                resp = conn.getresponse()
            except OSError as e:
                raise BackendError(f"cannot reach the LLM server at {self.host}:{self.port}: {e}") from e
            if resp.status != 200:
                detail = resp.read(500).decode("utf-8", "replace")
                raise BackendError(f"LLM server answered HTTP {resp.status}: {detail}")
            for raw in resp:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    event = json.loads(data)
                    text = event["choices"][0].get("delta", {}).get("content")
                except (json.JSONDecodeError, KeyError, IndexError, TypeError) as e:
                    raise BackendError(f"LLM server sent a malformed stream event: {data[:200]!r}") from e
                if text:
                    yield text
        finally:
            conn.close()
