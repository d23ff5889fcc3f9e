"""The first-person constraint: while sampling, a character cannot name itself as someone else
("Captain Nemo built ...", "Good evening, Captain Nemo!"), but may introduce itself ("I am Captain
Nemo"); the metric (`evals.third_person`) and the ban share one definition."""

from __future__ import annotations

import numpy as np
import pytest

from mio.thinker.evals import third_person
from mio.thinker.llm.selfname import NoSelfName, name_words

# A toy vocabulary in which "Nemo" is one token after a space and two ("N", "emo") at the start.
VOCAB = ["<s>", " Good", " evening", ",", " Captain", " Nemo", "N", "emo", " sir", "!", " I", " am", " the",
         " master", " of", " Nautilus", ".", " built", " it", " Never", "Captain", " nemo", " NEMO"]
IDS = {w: i for i, w in enumerate(VOCAB)}


def tokenize(text: str) -> list[int]:
    if text in IDS:
        return [IDS[text]]
    if text == "Nemo":
        return [IDS["N"], IDS["emo"]]
    return []


def detokenize(ids) -> str:
    return "".join(VOCAB[i] for i in ids)


def greedy(processor: NoSelfName, preferred: list[str], steps: int) -> str:
    """Each step picks the first word of `preferred` that is allowed and not yet said."""
    prompt = [IDS["<s>"]]
    ids = list(prompt)
    for _ in range(steps):
        scores = np.full(len(VOCAB), -10.0, np.float32)
        for rank, word in enumerate(preferred):
            if IDS[word] not in ids[len(prompt):]:
                scores[IDS[word]] = 10.0 - rank * 0.1
        scores = processor(np.array(ids), scores)
        ids.append(int(np.argmax(scores)))
    return detokenize(ids[len(prompt):])


def test_the_name_words_leave_titles_and_common_words_out():
    assert name_words("Captain Nemo") == ["nemo"]
    assert name_words("Ned Land") == ["ned"]
    assert name_words("Professor Aronnax") == ["aronnax"]


def test_greeting_the_user_by_the_characters_own_name_is_banned():
    p = NoSelfName("Captain Nemo", tokenize, detokenize)
    reply = greedy(p, [" Good", " evening", ",", " Captain", " Nemo", " sir", "!"], steps=5)
    assert "Nemo" not in reply and reply.startswith(" Good evening, sir")  # the own title goes too
    assert third_person(" Good evening, Captain Nemo!", "Captain Nemo") is not None  # what it would have said
    assert p.bans >= 1


def test_a_self_introduction_may_say_the_name():
    p = NoSelfName("Captain Nemo", tokenize, detokenize)
    reply = greedy(p, [" I", " am", " Captain", " Nemo", ",", " the", " master"], steps=7)
    assert reply == " I am Captain Nemo, the master"
    assert third_person(reply, "Captain Nemo") is None


def test_a_name_split_into_short_tokens_is_cut_at_its_second_token():
    p = NoSelfName("Nemo", tokenize, detokenize)
    assert IDS["N"] not in p.banned_after([])  # "N" starts many words: it stays free
    assert IDS["emo"] in p.banned_after([IDS["N"]])
    assert p.banned_after([IDS[" I"], IDS[" am"], IDS[" Captain"]]) == set()  # "I am Captain Nemo" is allowed
    reply = greedy(p, ["N", "emo", " built", " it", " Never"], steps=3)
    assert "Nemo" not in reply


@pytest.mark.parametrize("text, flagged", [
    ("Captain Nemo built the Nautilus in secret.", True),
    ("It is said that Captain Nemo has gone to the bottom of the ocean.", True),
    ("I am Captain Nemo, and this vessel is my home.", False),
    ("My name is Ned Land.", False),
    ("Ned Land, harpooner, at your service.", False),
    ("The captain of this vessel is a free man.", False),
])
def test_the_metric_reads_third_person_as_the_ban_does(text, flagged):
    name = "Ned Land" if "Ned" in text else "Captain Nemo"
    assert (third_person(text, name) is not None) == flagged
