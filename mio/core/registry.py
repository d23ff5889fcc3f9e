"""Backend registry: every module's backend is chosen by name from the config.

Entries are import paths ("package.module:factory"), so naming a backend never imports the
heavy packages of the others. A factory takes the module's config dataclass.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from mio.core.errors import BackendError

_REGISTRY: dict[str, dict[str, str]] = {
    "thinker": {
        "llama": "mio.thinker.llm.llama:LlamaCppLLM",
        "openai": "mio.thinker.llm.openai_compat:OpenAICompatLLM",
    },
    "talker": {
        "hibari": "mio.talker.voices.hibari:HibariVoice",
        "piper": "mio.talker.voices.piper:PiperVoice",
        "espeak": "mio.talker.voices.espeak:EspeakVoice",
        "kodama": "mio.talker.tts.voice:KodamaVoice",
    },
    "face": {
        "procedural": "mio.face.procedural:ProceduralFace",
        "unils": "mio.face.unils.backend:UniLSFace",
    },
    "body": {
        "procedural": "mio.body.procedural:ProceduralBody",
        "flood": "mio.body.flood.backend:FloodBody",
    },
    "render": {
        "anny": "mio.render.raster:AnnyRenderer",
    },
}


def register(module: str, name: str, target: str) -> None:
    """Add or replace a backend: `target` is "package.module:attribute"."""
    _REGISTRY.setdefault(module, {})[name] = target


def names(module: str) -> list[str]:
    return sorted(_REGISTRY.get(module, {}))


def resolve(module: str, name: str) -> Callable[..., Any]:
    if module not in _REGISTRY:
        raise BackendError(f"unknown module {module!r}; modules: {sorted(_REGISTRY)}")
    target = _REGISTRY[module].get(name)
    if target is None:
        raise BackendError(f"unknown {module} backend {name!r}; choose one of: {', '.join(names(module))}")
    mod_name, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise BackendError(
            f"{module} backend {name!r} needs a package that is not installed ({e}); "
            "run `bash scripts/setup.sh`"
        ) from e
    return getattr(mod, attr)


def create(module: str, name: str, config: Any) -> Any:
    return resolve(module, name)(config)
