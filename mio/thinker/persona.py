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
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator

from mio.core import yamlines
from mio.core.errors import ConfigError
from mio.core.frames import Emotion
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



def _emotion_label(v: str) -> str:
    if v not in _EMOTIONS:
        raise ValueError(f"{v!r} is not one of {', '.join(_EMOTIONS)}")
    return v


def _unit(v: object) -> float:
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        x = -1.0
    if not 0 <= x <= 1:
        raise ValueError("must be a number in 0..1")
    return x


def _example(v: object) -> tuple[str, str]:
    if not isinstance(v, dict) or "user" not in v or len(v) != 2:
        raise ValueError("must have 'user' and the character's reply")
    return str(v["user"]), str(next(x for k, x in v.items() if k != "user"))


def _spaces(v: str) -> str:
    return " ".join(v.split())


class _EmotionFields(BaseModel):
    label: Annotated[str, BeforeValidator(str), AfterValidator(_emotion_label)] = "neutral"
    intensity: Annotated[float, BeforeValidator(_unit)] = 0.5


def _emotion(v: object) -> object:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ValueError("must be a mapping with label and intensity")
    return v


class _CardFields(BaseModel):
    """A persona card's fields (characters/<id>.yaml or character.yaml), checked in this order."""

    name: yamlines.Text
    summary: Annotated[yamlines.Text, AfterValidator(_spaces)]
    manner: Annotated[yamlines.OptionalText, AfterValidator(_spaces)] = ""
    values: yamlines.TextList = ()
    knowledge_bounds: Annotated[yamlines.OptionalText, AfterValidator(_spaces)] = ""
    refusal: Annotated[str, BeforeValidator(str)] = Character.refusal
    refusals: yamlines.TextList = ()
    unknown: Annotated[str, BeforeValidator(str)] = Character.unknown
    greeting: Annotated[str, BeforeValidator(str)] = "Hello!"
    goals: yamlines.TextList = ()
    default_emotion: Annotated[_EmotionFields, BeforeValidator(_emotion)] = _EmotionFields()
    voice: yamlines.Mapping = {}
    avatar: yamlines.Mapping = {}
    examples: Annotated[tuple[Annotated[tuple[str, str], BeforeValidator(_example)], ...],
                        BeforeValidator(lambda v: v or [])] = ()
    lexicon: yamlines.TextList = ()


def parse_card(p: Path, story: StoryPack | None = None) -> Character:
    data = yamlines.load(p)
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of fields at the top level")
    f = yamlines.validate(_CardFields, p, data)
    emo = f.default_emotion
    return Character(
        name=f.name,
        summary=f.summary,
        manner=f.manner,
        values=f.values,
        knowledge_bounds=f.knowledge_bounds,
        refusal=f.refusal,
        refusals=(f.refusal, *[r for r in f.refusals if r != f.refusal]),
        unknown=f.unknown,
        greeting=f.greeting,
        goals=f.goals,
        default_emotion=Emotion(emo.label, emo.intensity),
        voice_backend=f.voice.get("backend"),
        voice=f.voice.get("voice"),
        voice_spec=f.voice,
        look=str(f.avatar.get("look", "default")),
        avatar=f.avatar,
        examples=f.examples,
        lexicon=f.lexicon,
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
