"""Per-session character: a session gets its card's voice and look; what the user sets wins; a card's
unknown voice or look fails at `mio story validate`, in one line that names the card."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import shutil
from pathlib import Path

import pytest

from mio.cli import main
from mio.core.config import RenderConfig, TalkerConfig
from mio.core.errors import ConfigError
from mio.runtime.cast import check_cast, look_spec, pack_cast, voice_spec
from mio.runtime.session import Session
from mio.thinker.persona import STORIES_DIR, load_character
from tests.fakes import fake_models

PACK = STORIES_DIR / "twenty-thousand-leagues"


def test_each_card_names_its_own_voice_and_look():
    cast = {ch.id: ch for ch in pack_cast(PACK)}
    assert set(cast) == {"nemo", "aronnax", "conseil", "ned"}
    specs = {k: voice_spec(ch, TalkerConfig()) for k, ch in cast.items()}
    assert specs["nemo"].backend == "piper" and specs["nemo"].voice == "joe"
    assert len({s for s in specs.values()}) == 4  # four distinct voices
    looks = {k: look_spec(ch, RenderConfig()) for k, ch in cast.items()}
    assert {v["look"] for v in looks.values()} == {"nemo", "aronnax", "conseil", "ned"}
    mio = load_character("mio")
    assert voice_spec(mio, TalkerConfig()).voice == "heart" and look_spec(mio, RenderConfig())["look"] == "default"


def test_what_the_user_sets_wins_over_the_card():
    nemo = load_character("nemo")
    assert voice_spec(nemo, TalkerConfig(backend="espeak")) is None  # -> the talker config's own voice
    assert voice_spec(nemo, TalkerConfig(voice="af_sky")) is None
    assert look_spec(nemo, RenderConfig(look="casual")) is None  # -> the renderer's default look
    assert look_spec(nemo, RenderConfig(backend="null")) is None  # renderers without looks


@pytest.mark.parametrize(("field", "value", "message"), [
    ("voice_spec", {"backend": "piper", "voice": "bob"}, "nemo.yaml voice: piper voice 'bob'"),
    ("voice_spec", {"backend": "festival"}, "nemo.yaml voice: unknown backend 'festival'"),
    ("voice_spec", {"backend": "hibari", "pitch": 40}, "nemo.yaml voice"),
    ("avatar", {"look": "pirate"}, "nemo.yaml avatar.look: unknown look 'pirate'"),
    ("avatar", {"look": "nemo", "hat": "tricorn"}, "nemo.yaml avatar.hat"),
])
def test_a_bad_voice_or_look_is_a_one_line_error_naming_the_card(field, value, message):
    nemo = dataclasses.replace(load_character("nemo"), **{field: value})
    with pytest.raises(ConfigError) as e:
        check_cast(nemo)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_story_validate_checks_every_card(tmp_path: Path, capsys):
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    assert main(["story", "validate", str(pack)]) == 0
    assert "Captain Nemo" in capsys.readouterr().out
    card = pack / "characters" / "ned.yaml"  # not the pack's default character: every card is checked
    card.write_text(card.read_text().replace("avatar: {look: ned}", "avatar: {look: viking}"))
    assert main(["story", "validate", str(pack)]) == 2
    err = capsys.readouterr().err.strip()
    assert "ned.yaml avatar.look: unknown look 'viking'" in err and "Traceback" not in err


def test_two_sessions_on_one_models_get_their_own_character():
    """As the server does: one Models, a view per session with the ticket's character."""
    models = fake_models()
    renderer = models.renderer.renderer
    sessions = []
    for name in ("nemo", "ned"):
        view = copy.copy(models)
        view.character = load_character(name)
        sessions.append(Session(view))
    talkers = [next(p for p in s.pipeline.processors if p.name == "talker") for s in sessions]
    renders = [next(p for p in s.pipeline.processors if p.name == "render") for s in sessions]
    assert [r.look for r in renders] == ["nemo", "ned"]
    assert renderer.looks == ["default", "nemo", "ned"]  # each look added once, shared
    asked = models.voices.asked
    assert [s.backend for s in asked] == ["piper", "hibari"] and asked[1].pitch < 0
    assert all(t.voice is models.voice for t in talkers)

    async def draw(s: Session) -> None:
        await s.start()
        await s.send_text("Hello!")
        await s.wait_turn()
        await s.close()

    for s in sessions:
        asyncio.run(draw(s))
    assert {"nemo", "ned"} <= set(renderer.drawn)
    models.close()
