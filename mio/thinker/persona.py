"""Character cards: a character is data — a persona card in a story pack (see pack.py), or a
stand-alone folder with `character.yaml` (a character without a story world, like `mio`).

    load_character("nemo")                           # searched in every pack under stories/
    load_character("twenty-thousand-leagues")        # the pack's default character
    load_character("twenty-thousand-leagues/ned")    # one character of a pack
    load_character("path/to/pack" or "card.yaml")

Validation errors name the file, the line and the field, so a broken pack is easy to fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mio.core.errors import ConfigError
from mio.core.frames import Emotion
from mio.thinker import yamlines
from mio.thinker.pack import StoryPack, load_pack

STORIES_DIR = Path(os.environ.get("MIO_STORIES", Path(__file__).resolve().parents[2] / "stories"))
_EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "curious", "thinking", "fearful")


@dataclass(frozen=True)
class Character:
    name: str
    summary: str
    manner: str = ""
    values: tuple[str, ...] = ()
    knowledge_bounds: str = ""
    refusal: str = "I'd rather not talk about that."
    refusals: tuple[str, ...] = ()  # in-character refusals of out-of-world requests (refusal first)
    unknown: str = "I cannot say; that lies beyond what I know."  # when asked about what it cannot know yet
    greeting: str = "Hello!"
    goals: tuple[str, ...] = ()  # active goals (§6.2 short-term memory)
    default_emotion: Emotion = field(default_factory=Emotion)
    voice_backend: str | None = None
    voice: str | None = None
    voice_spec: dict = field(default_factory=dict)  # the card's whole `voice:` mapping (engine + shape), plain
    look: str = "default"
    avatar: dict = field(default_factory=dict)  # the pack's avatar mapping (look + phenotype/appearance changes)
    examples: tuple[tuple[str, str], ...] = ()
    lexicon: tuple[str, ...] = ()  # words typical of the character's speech (persona scoring)
    folder: Path | None = None
    id: str = ""
    story: StoryPack | None = None

    def system_prompt(self) -> str:
        """The persona prefix; stable across turns so the LLM keeps it in its KV cache.
        Nothing that changes per turn (story time, retrieved facts) may go here.

        Small models fail a conversation in a few known ways (measured by `mio bench thinker`'s
        conversation suite): they speak of the character in the third person (the notes name it),
        repeat the user's words, drift into the assistant role, or write the code they are asked
        for. Each rule below names one of those failures; they cost nothing per turn (cached)."""
        name = self.name
        lines = [
            f"You are {name}. {self.summary}",
            f"How you speak: {self.manner}" if self.manner else "",
            f"You value {', '.join(self.values)}." if self.values else "",
            f"Your aims: {'; '.join(self.goals)}." if self.goals else "",
            f"Limits: {self.knowledge_bounds}" if self.knowledge_bounds else "",
            f"Always speak as {name} in the first person (I, me, my); your notes are your own memories.",
            "Answer the visitor's question itself in your own words; do not repeat the question.",
            f"You are a person of your own world, never an AI, a model or an assistant. You never write code, "
            f"lists, emails or essays, and you do not know modern things: decline such requests as {name} would.",
            "Only speak of things in your notes or your own past; if you do not know, say so.",
            "Reply with one to three short spoken sentences.",
        ]
        return "\n".join(line for line in lines if line)

    def few_shot(self) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for user, reply in self.examples:
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        return out

    def refusal_for(self, text: str) -> str:
        """One of the character's refusals, chosen by the request so replies vary but are reproducible."""
        options = self.refusals or (self.refusal,)
        return options[sum(map(ord, text)) % len(options)]



def _plain(obj):
    """A pack mapping without the loader's `__line__` bookkeeping keys (at any depth)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items() if not str(k).startswith("__")}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj

def _req(data: dict, key: str, path: Path, kind: type = str):
    if key not in data or data[key] in (None, ""):
        raise ConfigError(f"{yamlines.where(path, data, None)}: missing required field {key!r}")
    if not isinstance(data[key], kind):
        raise ConfigError(f"{yamlines.where(path, data, key)}: must be a {kind.__name__}, got {type(data[key]).__name__}")
    return data[key]


def _str_list(data: dict, key: str, path: Path) -> tuple[str, ...]:
    v = data.get(key) or []
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, (str, int, float)) for x in v):
        raise ConfigError(f"{yamlines.where(path, data, key)}: must be a list of text")
    return tuple(str(x) for x in v)


def parse_card(p: Path, story: StoryPack | None = None) -> Character:
    data = yamlines.load(p)
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of fields at the top level")
    emo = data.get("default_emotion") or {}
    if not isinstance(emo, dict):
        raise ConfigError(f"{yamlines.where(p, data, 'default_emotion')}: must be a mapping with label and intensity")
    label = str(emo.get("label", "neutral"))
    if label not in _EMOTIONS:
        raise ConfigError(f"{yamlines.where(p, emo, 'label')}: {label!r} is not one of {', '.join(_EMOTIONS)}")
    try:
        intensity = float(emo.get("intensity", 0.5))
    except (TypeError, ValueError):
        intensity = -1.0
    if not 0 <= intensity <= 1:
        raise ConfigError(f"{yamlines.where(p, emo, 'intensity')}: must be a number in 0..1")
    voice = data.get("voice") or {}
    avatar = data.get("avatar") or {}
    for key, val in (("voice", voice), ("avatar", avatar)):
        if not isinstance(val, dict):
            raise ConfigError(f"{yamlines.where(p, data, key)}: must be a mapping")
    examples = []
    raw_examples = data.get("examples") or []
    if not isinstance(raw_examples, list):
        raise ConfigError(f"{yamlines.where(p, data, 'examples')}: must be a list of {{user: ..., <name>: ...}}")
    for i, ex in enumerate(raw_examples):
        ex = yamlines.strip(ex) if isinstance(ex, dict) else ex
        if not isinstance(ex, dict) or "user" not in ex or len(ex) != 2:
            line = raw_examples[i].get("__line__") if isinstance(raw_examples[i], dict) else None
            at = f" line {line}" if line else ""
            raise ConfigError(f"{p}{at}: examples[{i}] must have 'user' and the character's reply")
        reply = next(v for k, v in ex.items() if k != "user")
        examples.append((str(ex["user"]), str(reply)))
    refusal = str(data.get("refusal", Character.refusal))
    refusals = _str_list(data, "refusals", p)
    return Character(
        name=_req(data, "name", p),
        summary=" ".join(str(_req(data, "summary", p)).split()),
        manner=" ".join(str(data.get("manner", "")).split()),
        values=_str_list(data, "values", p),
        knowledge_bounds=" ".join(str(data.get("knowledge_bounds", "")).split()),
        refusal=refusal,
        refusals=(refusal, *[r for r in refusals if r != refusal]),
        unknown=str(data.get("unknown", Character.unknown)),
        greeting=str(data.get("greeting", "Hello!")),
        goals=_str_list(data, "goals", p),
        default_emotion=Emotion(label, intensity),
        voice_backend=voice.get("backend"),
        voice=voice.get("voice"),
        voice_spec=_plain(voice),
        look=str(avatar.get("look", "default")),
        avatar=_plain(avatar),
        examples=tuple(examples),
        lexicon=_str_list(data, "lexicon", p),
        folder=p.parent if story is None else story.folder,
        id=p.stem if story is not None else p.parent.name,
        story=story,
    )


def _packs() -> list[Path]:
    return sorted(d for d in STORIES_DIR.iterdir() if (d / "story.yaml").is_file()) if STORIES_DIR.is_dir() else []


def known_characters() -> list[str]:
    names = [d.name for d in sorted(STORIES_DIR.iterdir()) if (d / "character.yaml").is_file()] if STORIES_DIR.is_dir() else []
    for pack in _packs():
        names += [f.stem for f in sorted((pack / "characters").glob("*.yaml"))]
    return names


def load_character(name_or_path: str | Path) -> Character:
    """Resolve a character by name, `story/name`, pack folder, card file or legacy folder."""
    name = str(name_or_path)
    looks_like_path = name.startswith((".", "/", "~")) or name.endswith((".yaml", ".yml")) or Path(name).is_absolute()
    looks_like_path |= Path(name).exists() and not (STORIES_DIR / name).exists()  # e.g. stories/mio from the repo root
    p = Path(name).expanduser() if looks_like_path else STORIES_DIR / name
    if not looks_like_path and not p.exists() and "/" not in name:
        for pack in _packs():  # a character name: search every pack
            if (pack / "characters" / f"{name}.yaml").is_file():
                p = pack / "characters" / f"{name}.yaml"
                break
    if not looks_like_path and "/" in name and not p.exists():  # story/character
        story_dir, _, char = name.partition("/")
        p = STORIES_DIR / story_dir / "characters" / f"{char}.yaml"
    if p.is_dir() and (p / "story.yaml").is_file():
        story = load_pack(p)
        return parse_card(p / "characters" / f"{story.default_character}.yaml", story)
    if p.is_dir():
        p = p / "character.yaml"
    if p.is_file() and p.parent.name == "characters" and (p.parent.parent / "story.yaml").is_file():
        return parse_card(p, load_pack(p.parent.parent))
    if not p.is_file():
        raise ConfigError(f"character {name!r} not found; known characters: {', '.join(known_characters()) or 'none'}")
    return parse_card(p)
