"""Benchmarks on a fresh checkout (issue 20, item 3): every `mio bench X` either prepares the data it
needs itself, with a progress bar, or says in one line which command makes it, before anything is
measured. These tests run the refusal and preparation paths, never a whole benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mio.cli import build_parser, main
from mio.core.errors import InputError


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _bench_names() -> list[str]:
    return sorted(_subcommands(_subcommands(build_parser())["bench"]))


def _run(argv: list[str], capsys) -> tuple[int, list[str]]:
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err[-800:]
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("usage:", " ", "\x1b[2m[mio"))]
    return rc, lines


def test_every_bench_is_listed():
    assert {"pipeline", "thinker", "llm", "serve", "iis", "perf", "asr", "codec", "tts", "voices", "face", "body",
            "render"} <= set(_bench_names())


@pytest.mark.parametrize("suite", _bench_names())
def test_a_results_path_that_cannot_be_written_is_refused_before_the_run(suite, tmp_path, capsys, monkeypatch):
    """A benchmark can run for an hour: its -o is checked first, not when the figures are in."""
    monkeypatch.chdir(tmp_path)
    for bad in ("results.txt", str(tmp_path / "a-file" / "x.json")):
        (tmp_path / "a-file").write_text("")
        rc, lines = _run(["bench", suite, "-o", bad], capsys)
        assert rc == 2 and len(lines) == 1, lines
        assert lines[0].startswith("mio: error:")
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["a-file"]  # nothing prepared or written


@pytest.mark.parametrize("argv, names", [
    (["bench", "body", "--data", "{t}/none"], "mio train body --stage data --out {t}/none"),
    (["bench", "body", "--items", "0"], "--items must be at least"),
    (["bench", "body", "--frames", "0"], "--frames must be at least"),
    (["bench", "body", "--sequences", "0"], "--sequences must be at least"),
    (["bench", "body", "--guidance", "nan"], "--guidance"),
    (["bench", "body", "--ablation", "causal"], "NAME=DIT_DIR"),
    (["bench", "body", "--evaluator", "{t}/none"], "{t}/none"),
    (["bench", "codec", "--corpus", "{t}/none"], "mio train codec --build-corpus --corpus {t}/none"),
    (["bench", "tts", "--corpus", "{t}/none"], "mio train codec --build-corpus --corpus {t}/none"),
    (["bench", "face", "--data", "{t}/none"], "mio train face --stage vq --data {t}/none --generate"),
    (["bench", "face", "--conversations", "0"], "--conversations must be at least 1"),
])
def test_missing_data_names_the_command_that_makes_it(argv, names, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, lines = _run([a.format(t=tmp_path) for a in argv], capsys)
    assert rc == 2 and len(lines) == 1, lines
    assert names.format(t=tmp_path) in lines[0]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # refused before anything was prepared


@pytest.mark.slow  # renders speech with the real voice engines (~15 s on 2 loaded cores)
def test_codec_held_out_speech_is_rendered_once_with_a_bar_and_grows_on_demand(tmp_path, monkeypatch, capfd):
    """`mio bench codec` / `mio bench tts` without a corpus: held-out voices speak held-out sentences
    into out/bench/codec-heldout, once; a later run asking for more adds to them."""
    from mio.bench.codec import heldout_utterances
    from mio.talker.codec.data import VOICES

    monkeypatch.chdir(tmp_path)  # no out/codec-corpus here
    said: list[str] = []
    cache = Path("out/bench/codec-heldout")
    two = heldout_utterances(None, 2, cache, said.append)
    assert len(two) == 2 and all(u.path.is_file() and u.split == "test" and u.text for u in two)
    assert {u.speaker for u in two} <= {v.speaker for v in VOICES if v.held_out}
    assert "held-out speech" in capfd.readouterr().err and said  # the bar and the line that says where
    mtimes = [u.path.stat().st_mtime_ns for u in two]
    assert [u.path for u in heldout_utterances(None, 1, cache, said.append)] == [two[0].path]
    three = heldout_utterances(None, 3, cache, said.append)
    assert [u.path for u in three[:2]] == [u.path for u in two] and len(three) == 3
    assert [u.path.stat().st_mtime_ns for u in two] == mtimes  # kept, not rendered again
    with pytest.raises(InputError, match="has no held-out split"):
        heldout_utterances(str(tmp_path / "elsewhere"), 2, cache, said.append)


@pytest.mark.slow  # renders six utterances with the real voice engines
def test_tts_bench_references_come_from_the_held_out_speech(tmp_path, monkeypatch):
    """Without a corpus, `mio bench tts` measures speaker similarity against held-out voices it
    renders (it used to report SIM 0.000 for every backend, measured against nothing)."""
    from mio.bench import tts as tts_bench

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tts_bench, "REFERENCE_UTTERANCES", 6)
    root = tts_bench.reference_corpus(None, Path("out/bench"))
    assert root == Path("out/bench/codec-heldout")
    refs = tts_bench._references(root, 2)
    assert refs and all(Path(p).is_file() and text for p, text, _ in refs)
    assert len({speaker for _, _, speaker in refs}) == len(refs)  # one clip per held-out speaker
