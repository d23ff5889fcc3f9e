"""Story packs: the 20,000 Leagues pack loads, is big enough and covers both parts; broken packs
get errors that name the file, the line and the field."""

import shutil
from pathlib import Path

import pytest

from mio.core.config import MioConfig
from mio.core.errors import ConfigError
from mio.thinker.pack import load_pack
from mio.thinker.persona import STORIES_DIR, load_character

PACK = STORIES_DIR / "twenty-thousand-leagues"


def test_nemo_is_the_default_character_of_a_big_enough_graph():
    ch = load_character(MioConfig().character)
    assert ch.name == "Captain Nemo" and ch.story is not None
    story = ch.story
    assert len(story.nodes) + len(story.edges) >= 300
    parts = {story.clock.chapter(n.t).part for n in story.nodes if n.t >= 1}
    assert parts == {1, 2}
    assert len({int(n.t) for n in story.nodes}) >= 40  # chapter-level story time across the novel
    assert {load_character(n).name for n in ("aronnax", "conseil", "ned")} == {"Professor Aronnax", "Conseil", "Ned Land"}
    assert load_character("twenty-thousand-leagues/ned").name == "Ned Land"


def test_story_clock_labels_and_parses():
    clock = load_pack(PACK).clock
    assert clock.label(10) == "Part 1, Chapter 10: The Man of the Seas"
    assert clock.label(38).startswith("Part 2, Chapter 14")
    assert clock.parse("12", 3) == 12 and clock.parse("+2", 10) == 12 and clock.parse("2:14", 0) == 38
    assert clock.parse("II.1", 0) == 25 and clock.parse("999", 0) == clock.end
    with pytest.raises(ConfigError, match="not a story time"):
        clock.parse("tomorrow", 0)
    with pytest.raises(ConfigError, match="no part 3"):
        clock.parse("3:1", 0)


def _broken(tmp_path: Path, file: str, old: str, new: str) -> Path:
    dst = tmp_path / "pack"
    shutil.copytree(PACK, dst)
    p = dst / file
    text = p.read_text()
    assert old in text
    p.write_text(text.replace(old, new, 1))
    return dst


@pytest.mark.parametrize("file,old,new,message", [
    ("graph/nodes.yaml", "name: the Nautilus, t: 0", "name: the Nautilus, t: soon",
     r"nodes.yaml line \d+, field 't': must be a number"),
    ("graph/nodes.yaml", "{id: scotia, kind: event", "{id: scotia, kind: gossip",
     r"nodes.yaml line \d+, field 'kind': 'gossip' is not one of"),
    ("graph/nodes.yaml", "{id: moravian,", "{id: scotia,", r"nodes.yaml line \d+, field 'id': duplicate id 'scotia' \(first at line \d+\)"),
    ("graph/nodes.yaml", "t: 10, t_end: 46", "t: 10, t_end: 5", r"field 't_end': must be later than t=10"),
    ("graph/nodes.yaml", "name: the Nautilus, t: 0", "name: the Nautilus, t: 99", r"field 't': 99.0 is outside the story clock"),
    ("graph/edges.yaml", "dst: nautilus, t: 0, text: \"Captain Nemo commands", "dst: nautilsu, t: 0, text: \"Captain Nemo commands",
     r"edges.yaml line 3, field 'dst': unknown node 'nautilsu'"),
    ("graph/edges.yaml", "{src: nemo, rel: reached, dst: south_pole, t: 38", "{src: nemo, rel: reached, dst: south_pole, t: 12",
     r"edges.yaml line \d+, field 't': 12.0 is before its node 'south_pole' exists"),
    ("graph/edges.yaml", "rel: lies_off", "rel: off", r"field 'rel': must be text, got bool"),
    ("story.yaml", "default_character: nemo", "default_character: nobody", r"story.yaml line \d+, field 'default_character'"),
    ("characters/nemo.yaml", "default_emotion: {label: neutral", "default_emotion: {label: smug",
     r"nemo.yaml line \d+, field 'label': 'smug' is not one of"),
    ("graph/nodes.yaml", "- {id: nemo, kind", "- {id: nemo, [kind", r"nodes.yaml line \d+: invalid YAML"),
])
def test_broken_pack_errors_name_file_line_and_field(tmp_path, file, old, new, message):
    with pytest.raises(ConfigError, match=message):
        load_character(str(_broken(tmp_path, file, old, new)))


def test_validate_command(capsys):
    from mio.cli import main

    assert main(["story", "validate", str(PACK)]) == 0
    assert "Captain Nemo" in capsys.readouterr().out
