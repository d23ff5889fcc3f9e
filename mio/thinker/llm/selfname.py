"""First person: while a reply is sampled, the character may not name itself as someone else.

Small chat models given a persona ("You are Captain Nemo ...") and notes about that persona often
answer about it in the third person ("Captain Nemo built the Nautilus in secret"), or greet the
user with the name the user greeted them with ("Good evening, Captain Nemo!"); `mio bench thinker`
counts such replies (`third_person`). The cure here is the one the field uses for words a reply
must not contain (`bad_words_ids` in Hugging Face's `generate`, logit bias in OpenAI's API): the
tokens that would write the character's own name get -inf while sampling — except right after a
self-introduction ("I am Captain Nemo", "my name is Ned Land"), where the name is the first person.

`third_person` below is also the metric (mio.thinker.evals), so the constraint and the measurement
share one definition of "naming oneself as someone else".

    processor = NoSelfName("Captain Nemo", tokenize=..., detokenize=...)
    llm.create_chat_completion(..., logits_processor=[processor])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

TITLES = frozenset({"captain", "professor", "monsieur", "master", "mister", "mr", "sir", "doctor"})
# Words that may end a name but are too common to stand for it alone ("Ned Land": "land").
_COMMON = frozenset({"land", "sea", "the", "and", "of"})
# "I am Pierre Aronnax": a self-introduction, with up to two words (a given name) before the name.
SELF_INTRO = re.compile(r"\b(i am|i'm|my name is|call me|i remain|i was|i have been|it is i|this is)\s*,?"
                        r"(\s+[a-z]+){0,2}$", re.I)
_TITLE_END = re.compile(r"\b(" + "|".join(sorted(TITLES)) + r")\s*$")
_WORD = re.compile(r"[a-z0-9']+")


def name_words(name: str) -> list[str]:
    """The words that stand for a character on their own: each part of its name that is not a title
    or a common word ("Captain Nemo" -> nemo; "Ned Land" -> ned; "Professor Aronnax" -> aronnax)."""
    return [w for w in _WORD.findall(name.lower()) if w not in TITLES and w not in _COMMON and len(w) >= 3]


def self_names(name: str) -> list[str]:
    """How a character may be named: the full name, then each word that stands for it."""
    return [name.lower(), *name_words(name)]


def introduces_self(before: str) -> bool:
    """Whether a name written right after `before` is the speaker introducing itself."""
    before = _TITLE_END.sub("", before.lower().rstrip()).rstrip()
    return bool(SELF_INTRO.search(before))


def third_person(reply: str, name: str) -> str | None:
    """The reply names its own speaker as someone else ("Captain Nemo has gone to the bottom of the
    ocean"), outside a self-introduction ("I am Captain Nemo"). Returns the phrase, or None."""
    low = reply.lower()
    accepted: list[tuple[int, int]] = []  # spans of the full name said in the first person
    for n in self_names(name):
        for m in re.finditer(r"(?<![a-z])" + re.escape(n) + r"(?![a-z])", low):
            if any(a <= m.start() and m.end() <= b for a, b in accepted):
                continue  # "Ned" inside an accepted "Ned Land"
            before = low[: m.start()]
            signature = not _TITLE_END.sub("", before.rstrip()).strip() and low[m.end():].lstrip().startswith(",")
            if introduces_self(before) or signature:  # "I am Ned Land"; "Ned Land, harpooner."
                accepted.append(m.span())
                continue
            return low[max(0, m.start() - 20): m.end() + 20].strip()
    return None


class NoSelfName:
    """A llama-cpp-python logits processor: `(input_ids, scores) -> scores`, applied at each step.

    Each spelling of each name word (" Nemo", "Nemo", " nemo") and of the name's own title when
    capitalised (" Captain": "Captain Nemo" is otherwise written "Captain Nomo") is a token sequence; while the reply
    so far ends with the first j tokens of one, its token j+1 is banned (for j = 0, only when that
    first token carries at least three letters of the name, so that a short piece such as "N" stays
    free for every other word, and the name is cut at its second token instead)."""

    def __init__(self, name: str, tokenize: Callable[[str], Sequence[int]],
                 detokenize: Callable[[Sequence[int]], str]) -> None:
        self.detokenize = detokenize
        seqs: set[tuple[int, ...]] = set()
        titles = [w for w in _WORD.findall(name.lower()) if w in TITLES]  # "Captain" of "Captain Nemo", capitalised
        spellings = [(w, (" " + w.capitalize(), w.capitalize(), " " + w, " " + w.upper())) for w in name_words(name)]
        spellings += [(t, (" " + t.capitalize(), t.capitalize())) for t in titles]
        for _, variants in spellings:
            for variant in variants:
                toks = tuple(int(t) for t in tokenize(variant))
                if toks:
                    seqs.add(toks)
        self._first = {s[0] for s in seqs if sum(c.isalpha() for c in detokenize([s[0]])) >= 3}
        self._later = [(s[:j], s[j]) for s in seqs for j in range(1, len(s))]
        self._start: int | None = None  # where the reply begins in input_ids
        self.bans = 0  # steps at which the name was banned (for tests and benches)

    @property
    def active(self) -> bool:
        return bool(self._first or self._later)

    def banned_after(self, reply_ids: Sequence[int]) -> set[int]:
        """Token ids that may not come next after the reply's tokens `reply_ids`."""
        tail = tuple(int(t) for t in reply_ids)
        banned = {nxt for prefix, nxt in self._later if tail[-len(prefix):] == prefix}
        banned |= self._first
        if banned and introduces_self(self.detokenize(list(reply_ids))):
            return set()
        return banned

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self._start is None:
            self._start = len(input_ids)  # first call: nothing of the reply is sampled yet
        banned = self.banned_after(input_ids[self._start:])
        if banned:
            self.bans += 1
            scores[np.fromiter(banned, np.int64)] = -np.inf
        return scores
