"""The cast speaks: every character's card voice, through one real voice bank (loads real models).

What a user relies on: each of the four men is heard as a man (median F0 from librosa's pYIN
below 160 Hz, in the band his card describes), Mio keeps her own voice, every voice is
intelligible to whisper, the four are distinct speakers to Resemblyzer, the engines load once,
two sessions can speak at once from two threads, and a shape keeps the clause's timing.
The sentences are written for this test (not the bench's set).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mio.bench.voices import MALE_F0_MAX, character_specs, median_f0
from mio.core.config import TalkerConfig
from mio.talker.text import word_tokens
from mio.talker.voices.bank import VoiceBank, VoiceSpec

pytestmark = pytest.mark.slow

SENTENCES = (
    "The ship will leave the harbor in the morning.",
    "Please sit down and tell me what you saw.",
    "Bring the lamp closer so that I can read the map.",
)
# median F0 each card aims at (its `voice:` comment), with room for the tracker and the text
F0_BANDS = {
    "nemo": (70.0, 110.0),  # piper joe, unshaped: the deepest
    "ned": (90.0, 135.0),
    "conseil": (95.0, 140.0),
    "aronnax": (110.0, MALE_F0_MAX),  # the highest of the men, still a man
    "mio": (165.0, 260.0),  # hibari heart, a young woman
}
MAX_WER = 0.2  # whisper tiny.en on 3 clauses (27 words): at most 5 words wrong
DISTINCT_MARGIN = 0.05


@pytest.fixture(scope="module")
def cast():
    bank = VoiceBank(TalkerConfig())  # alignment on, as sessions run
    voices = {cid: bank.get(spec) for cid, (spec, _card) in character_specs(list(F0_BANDS)).items()}
    speech = {cid: [v.synthesize(s) for s in SENTENCES] for cid, v in voices.items()}
    return bank, voices, speech


@pytest.fixture(scope="module")
def asr():
    from mio.talker.asr import WhisperASR

    return WhisperASR(threads=1)


def test_each_character_is_intelligible_in_its_pitch_band(cast, asr):
    from mio.metrics.talker import wer

    _bank, _voices, speech = cast
    for cid, clauses in speech.items():
        f0 = median_f0(np.concatenate([s.samples for s in clauses]), 24000)
        lo, hi = F0_BANDS[cid]
        assert lo < f0 < hi, (cid, f0)
        heard = [asr.transcribe(s.samples, s.sample_rate) for s in clauses]
        assert wer(list(SENTENCES), heard) <= MAX_WER, (cid, heard)
        for s, text in zip(clauses, SENTENCES, strict=True):
            assert s.sample_rate == 24000 and np.abs(s.samples).max() <= 1.0
            assert [w.label for w in s.words] == word_tokens(text)
            assert all(0 <= w.start < w.end <= s.duration + 1e-6 for w in s.words)


def test_the_characters_are_distinct_speakers(cast):
    """Two characters sound less alike than two clauses of one character (Resemblyzer cosine)."""
    from mio.talker.tts.speaker import SpeakerEncoder

    _bank, _voices, speech = cast
    enc = SpeakerEncoder()
    emb = {cid: [enc.embed(s.samples, s.sample_rate) for s in clauses] for cid, clauses in speech.items()}

    def mean_cos(a: list[np.ndarray], b: list[np.ndarray], same: bool) -> float:
        pairs = [(x, y) for i, x in enumerate(a) for j, y in enumerate(b) if not same or i < j]
        return float(np.mean([x @ y / (np.linalg.norm(x) * np.linalg.norm(y)) for x, y in pairs]))

    self_sim = {c: mean_cos(e, e, True) for c, e in emb.items()}
    names = list(emb)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            cross = mean_cos(emb[a], emb[b], False)
            assert cross < min(self_sim[a], self_sim[b]) - DISTINCT_MARGIN, (a, b, cross, self_sim)


def test_the_bank_loaded_each_engine_once(cast):
    bank, voices, _speech = cast
    assert bank.loads == {("hibari", "heart"): 1, ("piper", "joe"): 1}
    hibari = [v for cid, v in voices.items() if v.spec.backend == "hibari"]
    assert len(hibari) == 4 and len({id(v.engine) for v in hibari}) == 1
    # the same spec again is the same voice; a new shape is a new view on the loaded engine
    assert bank.get(voices["ned"].spec) is voices["ned"]
    other = bank.get(VoiceSpec("hibari", "heart", pitch=-3))
    assert other.engine is voices["ned"].engine and bank.loads[("hibari", "heart")] == 1


def test_two_sessions_speak_at_once_from_two_threads(cast):
    """Two men on the one hibari model and one on piper, all at once, with the aligner shared."""
    _bank, voices, speech = cast
    who = ("ned", "conseil", "nemo")
    got: dict[str, list] = {cid: [] for cid in who}
    errors: list[BaseException] = []
    start = threading.Barrier(len(who))

    def speak(cid: str) -> None:
        try:
            start.wait()
            for text in SENTENCES[:2]:
                got[cid].append(voices[cid].synthesize(text))
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=speak, args=(cid,)) for cid in who]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for cid in who:
        for s, alone, text in zip(got[cid], speech[cid], SENTENCES, strict=False):
            assert [w.label for w in s.words] == word_tokens(text)
            if voices[cid].spec.backend == "hibari":  # deterministic: the same clause, sample for sample
                np.testing.assert_array_equal(s.samples, alone.samples)
                # the same words at the same times, to a frame or two: pocketsphinx's noise estimate
                # (remove_noise) carries over from the clause aligned before, whoever spoke it
                for a, b in zip(s.words, alone.words, strict=True):
                    # (times are multiples of 10 ms frames: 0.28 - 0.25 is 0.030000000000000027 in floats)
                    assert round(abs(a.start - b.start), 6) <= 0.03 and round(abs(a.end - b.end), 6) <= 0.03, (cid, a, b)


def test_a_shape_keeps_the_clause_timing(cast):
    """hibari reshapes its own frames: same length to the sample; speed alone changes the pace."""
    bank, voices, _speech = cast
    text = SENTENCES[0]
    plain = bank.get(VoiceSpec("hibari", "heart")).synthesize(text)
    shaped = bank.get(VoiceSpec("hibari", "heart", pitch=-8, formant=0.8, tilt=3, intonation=1.3)).synthesize(text)
    assert len(shaped.samples) == len(plain.samples)
    for a, b in zip(shaped.words, plain.words, strict=True):  # the aligner finds the words where they were
        assert abs(a.start - b.start) < 0.05 and abs(a.end - b.end) < 0.05, (a, b)
    ned = voices["ned"].synthesize(text)  # speed 1.08
    assert ned.duration == pytest.approx(plain.duration / voices["ned"].spec.speed, rel=0.05)
