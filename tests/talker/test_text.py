"""Text clean-up, clause splitting, tokens and pronunciations (no TTS engine needed)."""

from __future__ import annotations

import numpy as np
import pytest

from mio.core.errors import InputError
from mio.talker.align import estimate_timings
from mio.talker.text import (
    ARPABET,
    MAX_CLAUSE_CHARS,
    Lexicon,
    clean_text,
    ipa_to_arpabet,
    letters_to_arpabet,
    sentence_final_words,
    split_clauses,
    word_tokens,
)


def test_clean_text_normalises_and_refuses_bad_input():
    assert clean_text("  Hello,\n\tworld!\x00 ") == "Hello, world!"
    for bad in ("", "   ", "...!?"):
        with pytest.raises(InputError):
            clean_text(bad)
    with pytest.raises(InputError, match="limit per clause"):
        clean_text("a" * (MAX_CLAUSE_CHARS + 1))
    with pytest.raises(InputError, match="str"):
        clean_text(42)


def test_split_clauses_keeps_every_word_and_the_limit():
    text = "Hi! I am Mio. " + "This sentence keeps going, and going, and going on " * 6 + "until it ends."
    clauses = split_clauses(text, max_chars=80)
    assert clauses[:2] == ["Hi!", "I am Mio."]
    assert all(len(c) <= 80 for c in clauses)
    assert " ".join(clauses).split() == text.split()


def test_word_tokens_and_sentence_ends():
    text = "Don't panic, it's 3.5 km! Captain Nemo’s ship."
    assert word_tokens(text) == ["Don't", "panic", "it's", "3.5", "km", "Captain", "Nemo's", "ship"]
    assert sentence_final_words(text) == [False, False, False, False, True, False, False, True]


def test_ipa_and_letters_map_to_arpabet():
    assert ipa_to_arpabet("həlˈoʊ wˈɜːld") == ["HH", "AH", "L", "OW", "W", "ER", "L", "D"]
    assert ipa_to_arpabet("ʧˈIz") == ["CH", "AY", "Z"]  # misaki alphabet (hibari's G2P)
    assert set(letters_to_arpabet("quixotic42")) <= ARPABET


def test_lexicon_knows_words_numbers_and_names():
    lex = Lexicon.shared()
    assert lex.phones("hello") == ["HH", "AH", "L", "OW"]
    assert lex.phones("Nautilus")  # CMUdict or espeak-ng; never empty
    for token in ("2024", "Zqxwv"):
        phones = lex.phones(token)
        assert phones and set(phones) <= ARPABET


def test_estimated_timings_cover_the_voiced_audio():
    sr = 24000
    x = np.zeros(3 * sr, np.float32)
    x[sr // 2 : 5 * sr // 2] = 0.2 * np.sin(np.arange(2 * sr) * 0.1)
    timings = estimate_timings(x, sr, "Hello there, Captain Nemo.")
    words, phones = timings.words, timings.phones
    assert timings.method == "estimate"
    assert [w.label for w in words] == ["Hello", "there", "Captain", "Nemo"]
    assert abs(words[0].start - 0.5) < 0.02 and abs(words[-1].end - 2.5) < 0.02
    starts = [p.start for p in phones]
    assert starts == sorted(starts) and all(p.end > p.start for p in phones)
    assert words[2].start > words[1].end  # a pause at the comma
