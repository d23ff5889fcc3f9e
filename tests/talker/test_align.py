"""Forced alignment with pocketsphinx on real synthesised speech, and its fallback."""

from __future__ import annotations

import numpy as np
import pytest

from mio.core.config import TalkerConfig
from mio.talker.align import Aligner, align, estimate_timings
from mio.talker.text import ARPABET, word_tokens

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hibari():
    from mio.talker.voices.hibari import HibariVoice

    return HibariVoice(TalkerConfig(align=False))


def test_alignment_finds_the_words(hibari):
    # a pause in the middle: "Hello there." [pause] "Captain Nemo sailed in 1869."
    text = "Hello there. Captain Nemo sailed in 1869."
    speech = hibari.synthesize(text)
    t = align(speech.samples, speech.sample_rate, text, hibari.pronounce)
    assert t.method == "pocketsphinx"
    assert [w.label for w in t.words] == word_tokens(text)
    assert t.words[0].start > 0.02  # the leading silence is not speech
    for w in t.words:
        assert 0.08 < w.end - w.start < 1.2, w  # "1869" is read as four syllables
    gap = t.words[2].start - t.words[1].end
    assert gap > 0.1, "the sentence pause should fall between 'there' and 'Captain'"
    assert {p.label for p in t.phones} <= ARPABET
    # phones tile their words
    for w in t.words:
        inner = [p for p in t.phones if w.start - 1e-6 <= p.start and p.end <= w.end + 1e-6]
        assert inner, w
    # close to the even-spread estimate in total extent, but not identical
    est = estimate_timings(speech.samples, speech.sample_rate, text)
    assert abs(est.words[-1].end - t.words[-1].end) < 0.3


def test_alignment_falls_back_instead_of_crashing():
    sr = 24000
    silence = np.zeros(sr, np.float32)
    t = align(silence, sr, "Nothing was said here.")
    assert [w.label for w in t.words] == ["Nothing", "was", "said", "here"]
    t = align(np.zeros(10, np.float32), sr, "Hi.")
    assert len(t.words) == 1
    assert align(silence, sr, "...").words == ()


def test_pronunciations_cover_unknown_words(hibari):
    prons = Aligner.shared().pronunciations(["Nemo's", "1869", "Zqxwv"], hibari.pronounce)
    assert all(p and set(p) <= ARPABET for p in prons)
    assert len(prons[1]) > 6  # eighteen sixty-nine
