"""The CLI sweep: bad paths, empty/garbage/huge inputs and bad numbers on every subcommand are a
one-line error with exit code 2, before any model loads, never a traceback (issue 20, item 2).

Each case runs `mio.cli.main` in-process; the inputs are files nobody's code wrote (random bytes,
empty files, truncated archives, a YAML alias bomb)."""

from __future__ import annotations

import numpy as np
import pytest

from mio.cli import main

BIG = "a" * 100_000
EMOJI = "\U0001F600" * 5000


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    (d / "garbage.wav").write_bytes(rng.bytes(4096))
    (d / "garbage.npz").write_bytes(rng.bytes(4096))
    (d / "garbage.bvh").write_bytes(rng.bytes(4096))
    (d / "empty.npz").write_bytes(b"")
    (d / "empty.wav").write_bytes(b"")
    np.savez(d / "wrong.npz", something=np.zeros(3))
    (d / "emptydir").mkdir()
    (d / "list.yaml").write_text("- a\n- b\n")
    (d / "badyaml.yaml").write_text("talker: [unclosed\n")
    (d / "bomb.yaml").write_text('a: &a ["x","x","x","x","x","x","x","x","x"]\n'
                                 + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
                                           for i in range(9)))
    return d


CASES = [
    ["say", ""], ["say", BIG], ["say", EMOJI], ["say", "hi", "-o", "x.avi"], ["say", "hi", "-o", "x"],
    ["say", "hi", "--config", "{d}/missing.yaml"], ["say", "hi", "--config", "{d}/badyaml.yaml"],
    ["say", "hi", "--config", "{d}/list.yaml"], ["say", "hi", "--set", "garbage"], ["say", "hi", "--set", "talker.nope=1"],
    ["say", "hi", "--character", "nonexistent"], ["demo", "-o", "x.txt"], ["chat", "--record", "x.avi"],
    ["story", "info", "nonexistent"], ["story", "validate", "{d}/missing"], ["story", "validate", "{d}/emptydir"],
    ["story", "validate", "{d}/bomb.yaml"], ["story", "validate", "{d}/garbage.wav"],
    ["codec", "encode", "{d}/missing.wav", "-o", "x.npz"], ["codec", "encode", "{d}/garbage.wav", "-o", "x.npz"],
    ["codec", "encode", "{d}/empty.wav", "-o", "x.npz"], ["codec", "decode", "{d}/garbage.npz", "-o", "x.wav"],
    ["codec", "decode", "{d}/missing.npz", "-o", "x.wav"],
    ["tts", ""], ["tts", BIG], ["tts", "hi", "-o", "x.mp3"], ["tts", "hi", "--temperature", "nan"], ["tts", "hi", "--emotion", "nope"],
    ["face", "animate", "--self", "{d}/missing.wav", "--other", "{d}/missing.wav"],
    ["face", "animate", "--self", "{d}/garbage.wav", "--other", "{d}/garbage.wav"],
    ["body", "generate", ""], ["body", "generate", BIG], ["body", "generate", "walk", "--guidance", "nan"],
    ["body", "generate", "walk", "-o", "x.txt"],
    ["body", "import", "{d}/missing.bvh"], ["body", "import", "{d}/garbage.bvh"],
    ["render", "{d}/missing.npz"], ["render", "{d}/garbage.npz"], ["render", "{d}/empty.npz"], ["render", "{d}/wrong.npz"],
    ["export", "avatar", "--look", "nope"], ["export", "avatar", "-o", "x.txt"],
    ["export", "motion", "{d}/missing.npz"], ["export", "motion", "{d}/garbage.npz"], ["export", "motion", "{d}/empty.npz"],
    ["export", "motion", "{d}/wrong.npz"],
    ["evolve", "record", "hi", "--audio", "{d}/missing.wav"],
    ["serve", "--port", "99999"], ["llm-server", "--port", "-1"], ["llm-server", "--threads", "0"],
]


@pytest.mark.parametrize("argv", CASES, ids=lambda a: " ".join(x if len(x) < 24 else x[:10] + f"..({len(x)})" for x in a))
def test_bad_input_is_one_line_exit_2(argv, bad, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative outputs land here, never in the repo
    argv = [a.format(d=bad) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own usage errors
        rc = e.code
    err = capsys.readouterr().err
    # progress lines ("[mio tts] model ready") may come first; the error itself is one line
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("usage:", " ", "\x1b[2m[mio"))]
    assert rc == 2, (rc, err[-500:])
    assert "Traceback" not in err and len(lines) == 1, err[-800:]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "an output file was left behind"
