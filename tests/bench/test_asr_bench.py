"""`mio bench asr` on stand-ins: the WER, name and determinism bookkeeping (the real run is the bench)."""

from __future__ import annotations

import numpy as np

from mio.bench.asr import NAMES, SENTENCES, bench_asr, names_in, normalise
from mio.core.config import MioConfig
from mio.talker.base import Speech


class _Voice:
    def synthesize(self, text, emotion=None):
        return Speech(np.full(16000, 0.1, np.float32), 16000)


class _ASR:
    """Hears every sentence right when the story is in the prompt, and mangles one name without it."""

    name = "fake"

    def __init__(self) -> None:
        self.n = 0
        self._order = [s for s in SENTENCES]

    def transcribe(self, samples, rate, context=None):
        text = self._order[(self.n // 2) % len(self._order)]
        self.n += 1
        return text if context and "Aronnax" in context else text.replace("Nautilus", "naughty list")


def test_bench_asr_counts_wer_names_and_determinism():
    result = bench_asr(MioConfig(), voices=(("a", None), ("b", None)), asr=_ASR(), synth=lambda b, v: _Voice())
    s = result["summary"]
    assert s["wer_story_prompt"] == 0.0 and s["names_heard_story_prompt"] == 1.0
    assert s["wer_name_only_prompt"] > 0 and s["names_heard_name_only_prompt"] < 1.0
    assert s["deterministic"] is True
    assert "Nautilus" in result["voices"]["a:default"]["name_only"]["names_missed"]
    assert "human" in result["human_recordings"] or "none" in result["human_recordings"]


def test_names_are_found_whatever_the_case_and_punctuation():
    assert names_in("we sailed on the abraham lincoln, with ned land!") == ["Ned Land", "Abraham Lincoln"]
    assert normalise("Captain, what's the Nautilus?") == "captain what's the nautilus"
    assert set(NAMES) <= {n for s in SENTENCES for n in names_in(s)}  # every name is spoken in the set
