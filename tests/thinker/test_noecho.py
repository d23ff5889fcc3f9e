"""The no-echo constraint: a reply cannot copy four words in a row from the user's line, and
nothing else is banned (three words may be shared; the memory notes are not the user's line)."""

from __future__ import annotations

import numpy as np

from mio.thinker.evals import echo
from mio.thinker.llm.noecho import NoEcho

VOCAB = ["<s>", " the", " sea", " monster", " everyone", " feared", " was", " a", " submarine", "The", " The",
         " Sea", " Monster", " Everyone", " Feared", " whale", " Nautilus", ".", " Was", " A", " Submarine", " Whale"]
IDS = {w: i for i, w in enumerate(VOCAB)}


def tokenize(text: str) -> list[int]:
    return [IDS[" " + w] if " " + w in IDS else IDS[w] for w in text.split(" ") if w]


def detokenize(ids) -> str:
    return "".join(VOCAB[i] for i in ids)


def greedy(processor: NoEcho, prompt: list[int], preferred: list[str], steps: int) -> str:
    """Sample greedily from scores that prefer `preferred` (in order) at every step."""
    ids = list(prompt)
    for _ in range(steps):
        scores = np.zeros(len(VOCAB), np.float32)
        for rank, word in enumerate(preferred):
            scores[IDS[word]] = 10.0 - rank * 0.1  # earlier = more likely
        generated = detokenize(ids[len(prompt):]).split()
        for w in generated:  # the fake model never says a word twice
            for form in (" " + w, w, " " + w.capitalize()):
                if form in IDS:
                    scores[IDS[form]] = -np.inf
        scores = processor(np.array(ids), scores)
        ids.append(int(np.argmax(scores)))
    return detokenize(ids[len(prompt):])


USER = "What was the sea monster everyone feared?"


def test_the_fourth_copied_word_is_banned_and_the_reply_goes_on():
    p = NoEcho(USER, tokenize=lambda s: tokenize(s.replace("?", "")), detokenize=detokenize)
    prompt = [IDS["<s>"]]
    reply = greedy(p, prompt, ["The", " sea", " monster", " everyone", " was", " a", " whale", " feared"], steps=6)
    assert reply.startswith("The sea monster was")  # " everyone" was banned; the next choice came
    assert echo(reply, USER) is None and p.bans >= 1


def test_three_shared_words_are_allowed_and_an_unrelated_line_bans_nothing():
    p = NoEcho(USER, tokenize=lambda s: tokenize(s.replace("?", "")), detokenize=detokenize)
    assert p.banned_after("A whale, the sea monster") == {IDS[" everyone"], IDS[" Everyone"]}
    assert p.banned_after("the sea") == set()  # only two words: nothing to ban yet
    assert p.banned_after("a sea monster") == set()  # not the user's 3 words
    assert not NoEcho("Hello there!", tokenize=lambda s: [], detokenize=detokenize).active
