"""A downloaded story pack is untrusted input: YAML bombs, absurd nesting and broken graphs are
refused with one line naming the file and line, quickly, before anything large is built."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mio.core import yamlines
from mio.core.errors import ConfigError
from mio.thinker.pack import load_pack
from mio.thinker.persona import STORIES_DIR

PACK = STORIES_DIR / "twenty-thousand-leagues"


def billion_laughs(levels: int = 10, width: int = 10) -> str:
    """The classic alias bomb: `levels` lines expand to width**levels strings."""
    lines = ["l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _pack_with(tmp_path: Path, file: str, text: str, append: bool = False) -> Path:
    dst = tmp_path / "pack"
    shutil.copytree(PACK, dst)
    p = dst / file
    p.write_text(p.read_text() + text if append else text)
    return dst


@pytest.mark.timeout(20)
def test_an_alias_bomb_in_a_pack_is_refused_by_story_validate(tmp_path):
    pack = _pack_with(tmp_path, "graph/nodes.yaml", billion_laughs())
    # the real command, as a user runs it: one line on stderr, exit code 2, no traceback
    proc = subprocess.run([sys.executable, "-m", "mio.cli", "story", "validate", str(pack)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert "nodes.yaml line 2: refused: alias *l0 is not allowed" in err


@pytest.mark.parametrize("text, message", [
    ("a: &x 1\nb: *x\n", r"line 2: refused: alias \*x is not allowed"),
    ("base: &b {k: 1}\nother:\n  <<: *b\n", r"line 3: refused: alias \*b"),  # merge keys need aliases too
    ("[" * 100_000, r"line 1: refused: nested more than 64 levels deep"),
    ("x: [" + ", ".join(["1"] * (yamlines.MAX_NODES + 10)) + "]\n", rf"refused: more than {yamlines.MAX_NODES} YAML nodes"),
])
def test_yaml_limits(tmp_path, text, message):
    f = tmp_path / "x.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        yamlines.load(f)
    with pytest.raises(ConfigError, match=message):
        yamlines.load_plain(f)


def test_huge_and_binary_yaml_files_are_refused(tmp_path):
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(yamlines.MAX_BYTES + 1)
    with pytest.raises(ConfigError, match="bytes; a YAML file here may have at most"):
        yamlines.load(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: \xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        yamlines.load(binary)


def test_a_config_file_with_aliases_is_refused(tmp_path):
    from mio.core.config import load_config

    f = tmp_path / "cfg.yaml"
    f.write_text(billion_laughs())
    with pytest.raises(ConfigError, match="refused: alias"):
        load_config(f)


EDGE = "- {{src: {src}, rel: {rel}, dst: {dst}, t: 12}}\n"


@pytest.mark.parametrize("extra, message", [
    (EDGE.format(src="nemo", rel="admires", dst="nemo"), r"edges.yaml line \d+, field 'dst': edge from 'nemo' to itself"),
    (EDGE.format(src="nemo", rel="respects", dst="aronnax") * 2,
     r"field 'rel': duplicate edge nemo -respects-> aronnax at t=12.0 \(first at line \d+\)"),
    # the shipped graph says "nautilus contains library"; a library containing the Nautilus closes a loop
    (EDGE.format(src="library", rel="contains", dst="nautilus"),
     r"field 'rel': cycle in the 'part_of' hierarchy: .*library -> nautilus|nautilus -> library"),
    (EDGE.format(src="nautilus", rel="part_of", dst="salon"), r"cycle in the 'part_of' hierarchy"),
    (EDGE.format(src="nemo", rel="knows", dst="ghost"), r"field 'dst': unknown node 'ghost'"),
])
def test_broken_graphs_are_refused(tmp_path, extra, message):
    pack = _pack_with(tmp_path, "graph/edges.yaml", extra, append=True)
    with pytest.raises(ConfigError, match=message):
        load_pack(pack)


def test_cycles_in_ordinary_relations_and_declared_hierarchies(tmp_path):
    # "saved" both ways happens in the novel: an ordinary relation may loop
    pack = _pack_with(tmp_path, "graph/edges.yaml",
                      EDGE.format(src="nemo", rel="saved", dst="ned_land") + EDGE.format(src="ned_land", rel="saved", dst="nemo"),
                      append=True)
    assert len(load_pack(pack).edges) == len(load_pack(PACK).edges) + 2
    # ... unless the pack declares that relation a hierarchy
    story = pack / "story.yaml"
    story.write_text(story.read_text() + "acyclic_relations: [saved]\n")
    with pytest.raises(ConfigError, match=r"cycle in the 'saved' hierarchy: (nemo -> ned_land -> nemo|ned_land -> nemo -> ned_land)"):
        load_pack(pack)


def test_a_long_hierarchy_chain_does_not_hit_the_recursion_limit(tmp_path):
    nodes = "".join(f"- {{id: n{i}, kind: place, t: 1, text: room {i}}}\n" for i in range(5000))
    edges = "".join(f"- {{src: n{i}, rel: part_of, dst: n{i + 1}, t: 1}}\n" for i in range(4999))
    dst = tmp_path / "pack"
    shutil.copytree(PACK, dst)
    (dst / "graph" / "nodes.yaml").write_text("nodes:\n" + nodes)
    (dst / "graph" / "edges.yaml").write_text("edges:\n" + edges)
    assert len(load_pack(dst).edges) == 4999
    (dst / "graph" / "edges.yaml").write_text("edges:\n" + edges + "- {src: n4999, rel: part_of, dst: n0, t: 1}\n")
    with pytest.raises(ConfigError, match="cycle in the 'part_of' hierarchy: n0 -> n1 -> "):
        load_pack(dst)
