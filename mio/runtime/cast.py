"""The cast: which voice and which look a session's character gets.

A character card names its voice (`voice:`, a `VoiceSpec` of mio.talker.voices.bank) and its look
(`avatar:`, a preset of mio.render.avatar or a mapping that changes one). Voices and looks are
loaded once per process and shared (`Models`); a session only picks them by its character:

    spec = voice_spec(character, cfg.talker)      # None -> the talker config's own voice
    look = look_spec(character, cfg.render)       # None -> the renderer's default look
    check_cast(character)                         # `mio story validate`: bad voice/look -> ConfigError

What the user sets explicitly wins over the card: `--set talker.backend=...` / `talker.voice=...`
give every character that voice, `--set render.look=...` that look (to compare voices or looks
across characters, or to run with an engine the card does not use).
"""

from __future__ import annotations

from pathlib import Path

from mio.core.config import RenderConfig, TalkerConfig
from mio.core.errors import ConfigError
from mio.render.looks import check_look_spec
from mio.talker.voices.bank import VoiceSpec, parse_voice_spec
from mio.thinker.persona import Character, load_character, parse_card

_DEFAULT_TALKER = TalkerConfig()
_DEFAULT_RENDER = RenderConfig()


def _where(character: Character, field: str) -> str:
    card = f"{character.folder / 'characters' / (character.id + '.yaml')}" if character.story else character.id
    return f"{card} {field}"


def voice_spec(character: Character, talker: TalkerConfig) -> VoiceSpec | None:
    """The card's voice, unless the user chose an engine or voice (talker.backend / talker.voice)."""
    if (talker.backend, talker.voice) != (_DEFAULT_TALKER.backend, _DEFAULT_TALKER.voice):
        return None
    return parse_voice_spec(character.voice_spec or None, _where(character, "voice"))


def look_spec(character: Character, render: RenderConfig) -> str | dict | None:
    """The card's look, unless the user chose one (render.look) or the renderer has no looks."""
    if render.backend != "anny" or render.look != _DEFAULT_RENDER.look:
        return None
    return character.avatar or character.look


def check_cast(character: Character) -> None:
    """Raise a one-line ConfigError if the card's voice or look is unknown or out of range; loads no
    model (it runs in `mio story validate`)."""
    parse_voice_spec(character.voice_spec or None, _where(character, "voice"))
    if character.avatar:
        check_look_spec(character.avatar, _where(character, "avatar"))


def pack_cast(path: str | Path) -> list[Character]:
    """Every character of a story pack (or the one stand-alone character) at `path`, parsed."""
    first = load_character(path)
    if first.story is None:
        return [first]
    cards = sorted((first.story.folder / "characters").glob("*.yaml"))
    if not cards:
        raise ConfigError(f"{first.story.folder}: no character cards in characters/")
    return [parse_card(card, first.story) for card in cards]
