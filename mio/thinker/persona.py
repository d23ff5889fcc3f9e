"""Character cards: a character is data (a folder under stories/ with character.yaml).

Validation errors name the file and the field, so a broken pack is easy to fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mio.core.errors import ConfigError
from mio.core.frames import Emotion

STORIES_DIR = Path(os.environ.get("MIO_STORIES", Path(__file__).resolve().parents[2] / "stories"))


@dataclass(frozen=True)
class Character:
    name: str
    summary: str
    manner: str = ""
    values: tuple[str, ...] = ()
    knowledge_bounds: str = ""
    refusal: str = "I'd rather not talk about that."
    greeting: str = "Hello!"
    default_emotion: Emotion = field(default_factory=Emotion)
    voice_backend: str | None = None
    voice: str | None = None
    look: str = "default"
    examples: tuple[tuple[str, str], ...] = ()
    folder: Path | None = None

    def system_prompt(self) -> str:
        """The persona prefix; stable across turns so the LLM keeps it in its KV cache."""
        lines = [
            f"You are {self.name}. {self.summary}",
            f"How you speak: {self.manner}" if self.manner else "",
            f"You value {', '.join(self.values)}." if self.values else "",
            f"Limits: {self.knowledge_bounds}" if self.knowledge_bounds else "",
            f"Always stay in character as {self.name}; never say you are an AI or an assistant.",
            "Reply with one to three short spoken sentences.",
        ]
        return "\n".join(line for line in lines if line)

    def few_shot(self) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for user, reply in self.examples:
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        return out


def _req(data: dict, key: str, path: Path, kind: type = str):
    if key not in data or data[key] in (None, ""):
        raise ConfigError(f"{path}: missing required field {key!r}")
    if not isinstance(data[key], kind):
        raise ConfigError(f"{path}: field {key!r} must be a {kind.__name__}, got {type(data[key]).__name__}")
    return data[key]


def load_character(name_or_path: str | Path) -> Character:
    """Load `stories/<name>/character.yaml` or a folder / yaml path the user gives."""
    import yaml

    name = str(name_or_path)
    looks_like_path = "/" in name or name.endswith((".yaml", ".yml")) or Path(name).is_absolute()
    p = Path(name) if looks_like_path else STORIES_DIR / name
    if p.is_dir():
        p = p / "character.yaml"
    if not p.is_file():
        known = sorted(d.name for d in STORIES_DIR.iterdir() if (d / "character.yaml").is_file()) if STORIES_DIR.is_dir() else []
        raise ConfigError(f"character {str(name_or_path)!r} not found; known characters: {', '.join(known) or 'none'}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}{where}: invalid YAML ({getattr(e, 'problem', e)})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of fields at the top level")
    emo = data.get("default_emotion") or {}
    if not isinstance(emo, dict):
        raise ConfigError(f"{p}: field 'default_emotion' must be a mapping with label and intensity")
    voice = data.get("voice") or {}
    avatar = data.get("avatar") or {}
    examples = []
    for i, ex in enumerate(data.get("examples") or []):
        if not isinstance(ex, dict) or "user" not in ex or len(ex) != 2:
            raise ConfigError(f"{p}: examples[{i}] must have 'user' and the character's reply")
        reply = next(v for k, v in ex.items() if k != "user")
        examples.append((str(ex["user"]), str(reply)))
    return Character(
        name=_req(data, "name", p),
        summary=_req(data, "summary", p),
        manner=str(data.get("manner", "")),
        values=tuple(str(v) for v in data.get("values") or ()),
        knowledge_bounds=str(data.get("knowledge_bounds", "")),
        refusal=str(data.get("refusal", Character.refusal)),
        greeting=str(data.get("greeting", "Hello!")),
        default_emotion=Emotion(str(emo.get("label", "neutral")), float(emo.get("intensity", 0.5))),
        voice_backend=voice.get("backend"),
        voice=voice.get("voice"),
        look=str(avatar.get("look", "default")),
        examples=tuple(examples),
        folder=p.parent,
    )
