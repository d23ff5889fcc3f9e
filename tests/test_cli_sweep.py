"""The CLI sweep: bad paths, empty/garbage/huge inputs and bad numbers on every subcommand are a
one-line error with exit code 2, before any model loads, never a traceback (issue 20, item 2).

Each case runs `mio.cli.main` in-process; the inputs are files nobody's code wrote (random bytes,
empty files, truncated archives, a YAML alias bomb)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

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
    np.savez(d / "nanfeat.npz", features=np.full((20, 263), np.nan, np.float32), fps=20.0)
    np.savez(d / "zerofps.npz", joints=np.zeros((20, 22, 3), np.float32), fps=0.0)
    np.savez(d / "tinyfps.npz", joints=np.zeros((20, 22, 3), np.float32), fps=1e-9)  # "lasts" 634 years
    np.savez(d / "noframes.npz", joints=np.zeros((0, 22, 3), np.float32), fps=20.0)
    np.savez(d / "facenan.npz", params=np.full((20, 61), np.nan, np.float32), fps=25.0, layout="arkit52")
    np.savez(d / "face0fps.npz", params=np.zeros((20, 61), np.float32), fps=0.0, layout="arkit52")
    (d / "frames.json").write_text('{"frames": []}')
    sr = 16000
    sf.write(d / "tone.wav", (0.3 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr)).astype(np.float32), sr)
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
    # found by trying every subcommand again (issue 20 closing pass)
    ["render", "{d}/nanfeat.npz"], ["render", "{d}/zerofps.npz"], ["render", "{d}/tinyfps.npz"],
    ["render", "{d}/noframes.npz"], ["render", "{d}/facenan.npz"], ["render", "{d}/face0fps.npz", "-o", "x.avi"],
    ["render", "{d}/face0fps.npz"], ["render", "{d}/wrong.npz", "--fps", "nan"],
    ["render", "{d}/wrong.npz", "--size", "100000x100000"], ["render", "{d}/wrong.npz", "--azimuth", "nan"],
    ["render", "{d}/wrong.npz", "--camera", "orbit", "--orbit-seconds", "0"],
    ["render", "{d}/wrong.npz", "--camera-file", "{d}/frames.json"],
    ["export", "motion", "{d}/nanfeat.npz"], ["export", "motion", "{d}/face0fps.npz"],
    ["face", "track", "{d}/tone.wav"], ["face", "animate", "--self", "{d}/tone.wav", "--style", "-1"],
    ["story", "ask", ""], ["say", "hi", "--set", "talker.speed=nan"],
    ["bench", "pipeline", "--turns", "0"], ["bench", "pipeline", "--sessions", "0"], ["bench", "render", "--frames", "0"],
    ["bench", "codec", "--utterances", "0"], ["bench", "thinker", "--limit", "0"], ["bench", "llm", "--reps", "0"],
    ["bench", "serve", "--sessions", "0"], ["bench", "body", "--items", "0"], ["bench", "iis", "--utmos", "{d}/tone.wav"],
    ["bench", "face", "--conversations", "0"], ["bench", "render", "-o", "x.txt"],
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
