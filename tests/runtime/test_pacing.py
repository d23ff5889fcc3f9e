"""Clause audio trimmed to its sound: the reply starts with its first word, timings move with the cut."""

from __future__ import annotations

import asyncio

import numpy as np

from mio.core.clock import MediaClock
from mio.core.frames import AudioChunk, PlanChunk, Segment
from mio.runtime.pacing import KEEP_LEAD_S, leading_silence, pause_after, sound_span, trim_silence
from mio.runtime.pipeline import run_test
from mio.runtime.processors import TalkerProcessor
from mio.runtime.stats import Stats
from mio.talker.base import Speech

SR = 24000


def clause(lead: float, sound: float, tail: float) -> np.ndarray:
    t = np.arange(int(sound * SR)) / SR
    voice = (0.4 * np.sin(2 * np.pi * 150 * t) * np.hanning(len(t)) ** 0.1).astype(np.float32)
    quiet = lambda s: (1e-5 * np.random.default_rng(0).standard_normal(int(s * SR))).astype(np.float32)  # noqa: E731
    return np.concatenate([quiet(lead), voice, quiet(tail)])


def test_trim_keeps_the_sound_and_a_pause_that_fits_the_punctuation():
    audio = clause(0.3, 1.0, 0.45)
    words = (Segment("Good", 0.32, 0.6), Segment("evening", 0.6, 1.28))
    cut = trim_silence(audio, SR, "Good evening.", words)
    assert abs(leading_silence(cut.samples, SR) - KEEP_LEAD_S) <= 0.011
    _, end = sound_span(cut.samples, SR)
    assert abs(len(cut.samples) / SR - end - pause_after("Good evening.")) <= 0.011
    assert abs(cut.lead_cut_s - (0.3 - KEEP_LEAD_S)) <= 0.011
    assert abs(cut.words[0].start - (0.32 - cut.lead_cut_s)) < 1e-9
    assert cut.words[-1].end <= len(cut.samples) / SR
    assert pause_after("Well,") < pause_after("Well.")


def test_silence_alone_is_left_alone():
    quiet = np.zeros(SR, np.float32)
    cut = trim_silence(quiet, SR, "...")
    assert len(cut.samples) == SR and cut.lead_cut_s == 0.0


class _PaddedVoice:
    """A voice that pads each clause with the silences hibari renders."""

    sample_rate = SR

    def synthesize(self, text, emotion=None):
        return Speech(clause(0.3, 0.8, 0.45), SR, words=(Segment(text.split()[0], 0.3, 0.6),))


def test_talker_sends_trimmed_clauses_back_to_back():
    talker = TalkerProcessor(_PaddedVoice(), MediaClock(), Stats(), response_gap=0.0)
    plan = [PlanChunk(turn_id=1, index=i, text=t) for i, t in enumerate(("Hello there,", "my friend."))]
    out = asyncio.run(run_test(talker, plan))
    audio = [f for f in out if isinstance(f, AudioChunk)]
    assert len(audio) == 2
    for a in audio:
        assert leading_silence(a.samples, SR) <= KEEP_LEAD_S + 0.011
        assert a.words[0].start < 0.05  # the timing moved with the cut
    assert abs(audio[1].pts - audio[0].end) < 1e-9  # the next clause follows the kept pause
    assert audio[0].duration < 0.8 + 0.2  # 0.75 s of padding gone, a comma's breath kept


def test_a_clause_cut_mid_sentence_is_spoken_as_continuing():
    """The Thinker cuts a long first sentence before "and", "of", ... (mio.thinker.plan): the voice
    gets it with a comma (a continuing intonation, a short breath); finished clauses go as written."""
    heard = []

    class Recording(_PaddedVoice):
        def synthesize(self, text, emotion=None):
            heard.append(text)
            return super().synthesize(text, emotion)

    talker = TalkerProcessor(Recording(), MediaClock(), Stats(), response_gap=0.0)
    plan = [PlanChunk(turn_id=1, index=i, text=t) for i, t in
            enumerate(("The Nautilus is a vessel designed", "and built by me.", "It is my home!"))]
    asyncio.run(run_test(talker, plan))
    assert heard == ["The Nautilus is a vessel designed,", "and built by me.", "It is my home!"]
