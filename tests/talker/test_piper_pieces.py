"""Piper cut at VITS's latent frames: the same audio in two halves, the model's own timings, and a
clause's first words handed out before the rest is decoded."""

from __future__ import annotations

import numpy as np
import pytest

from mio.core.config import TalkerConfig
from mio.runtime.pacing import sound_span

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def piper():
    from mio.talker.voices.piper import PiperVoice

    return PiperVoice(TalkerConfig(backend="piper"))


def test_the_cut_graph_gives_the_whole_graphs_samples(piper):
    assert piper.streams
    pv = piper._voice
    ids = pv.phonemes_to_ids(piper._phonemes("Welcome aboard the Nautilus, Professor.")[0])
    feeds = {"input": np.array([ids], np.int64), "input_lengths": np.array([len(ids)], np.int64),
             "scales": np.array([0.667, 1.0, 0.0], np.float32)}
    whole = pv.session.run(None, feeds)[0].reshape(-1)
    z, frames = piper._front.run(None, feeds)
    halves = piper._decoder.run(None, {"/Mul_7_output_0": z})[0].reshape(-1)
    assert len(whole) == len(halves) == int(frames.sum()) * piper.hop
    assert np.max(np.abs(whole - halves)) < 1e-5


def test_model_timings_follow_the_sound(piper):
    speech = piper.synthesize("The sea is everything.")
    assert [w.label for w in speech.words] == ["The", "sea", "is", "everything"]
    start, end = sound_span(speech.samples, speech.sample_rate)
    assert abs(speech.words[0].start - start) < 0.04 and abs(speech.words[-1].end - end) < 0.1
    assert all(a.end <= b.start + 1e-6 for a, b in zip(speech.words, speech.words[1:], strict=False))
    assert len(speech.phones) >= 12 and all(p.label.isalpha() and p.label.isupper() for p in speech.phones)
    # a clause whose words espeak joins ("I am" -> one word) falls back to the aligner
    joined = piper.synthesize("I am Captain Nemo.")
    assert [w.label for w in joined.words] == ["I", "am", "Captain", "Nemo"]


def test_the_first_words_come_alone_and_the_pieces_join_without_a_seam(piper):
    text = "Welcome aboard the Nautilus, Professor Aronnax."
    pieces = list(piper.synthesize_pieces(text))
    assert len(pieces) == 2 and [last for _, _, last in pieces] == [False, True]
    (a, ta, _), (b, tb, _) = pieces
    assert ta + " " + tb == text and ta.split() == [w.label for w in a.words]
    assert 0.35 <= a.duration <= 1.2 < b.duration
    whole = piper.synthesize(text)
    joined = np.concatenate([a.samples, b.samples])
    assert abs(len(joined) - len(whole.samples)) <= 2
    # the noise of VITS differs between runs; the seam itself must not click
    seam = len(a.samples)
    jump = abs(float(joined[seam]) - float(joined[seam - 1]))
    assert jump < 0.2
    assert tb.split()[0] == b.words[0].label and b.words[0].start >= 0.0
    short = list(piper.synthesize_pieces("Aye,"))
    assert len(short) == 1  # too short to split


def test_the_first_piece_grows_when_the_decoder_is_slow(piper):
    rtf = piper.decode_rtf
    try:
        piper.decode_rtf = 0.1
        assert piper.first_piece_s(2.0) == pytest.approx(0.35)  # fast: the shortest first piece
        piper.decode_rtf = 1.0  # a busy machine: the rest takes as long as it plays
        assert piper.first_piece_s(2.0) == pytest.approx(1.2)
        pieces = [sp for sp, _, _ in piper.synthesize_pieces("Aye, the sea is calm tonight, Professor.")]
        total = sum(sp.duration for sp in pieces)
        assert len(pieces) == 1 or pieces[0].duration >= 0.55 * total  # the first piece covers the rest
    finally:
        piper.decode_rtf = rtf
