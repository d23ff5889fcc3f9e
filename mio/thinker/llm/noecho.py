"""No echo: while a reply is sampled, it may not copy four words in a row from the user's line.

Small chat models answer a question by restating it ("Where do we eat tonight?" -> "We eat tonight
at ..."; "What was the sea monster everyone feared?" -> "The sea monster everyone feared was ..."),
which a listener hears as the character parroting them (`mio bench thinker` counts a reply that
shares a 4-gram with the user's line as an echo). The field's cure is a decoding constraint, the
way `no_repeat_ngram_size` keeps a model from repeating itself: here the banned n-grams come from
the user's line instead of the reply. Words are compared case- and punctuation-free; when the last
three words of the reply so far are the start of one of the user's 4-grams, the tokens that would
begin its fourth word get -inf. The model then says it another way; facts from the memory notes
and the character's own words are untouched (only the user's line is banned).

    processor = NoEcho(user_text, tokenize=lambda s: llm.tokenize(s.encode(), add_bos=False, special=False),
                       detokenize=lambda ids: llm.detokenize(ids).decode("utf-8", "replace"))
    llm.create_chat_completion(..., logits_processor=[processor])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

N = 4  # the echo test of mio.thinker.evals.echo: a shared 4-gram of words
WORD = re.compile(r"[a-z0-9']+")  # a word, as mio.thinker.evals.echo counts them too


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


class NoEcho:
    """A llama-cpp-python logits processor: `(input_ids, scores) -> scores`, applied at each step."""

    def __init__(self, user_text: str, tokenize: Callable[[str], Sequence[int]],
                 detokenize: Callable[[Sequence[int]], str]) -> None:
        self.detokenize = detokenize
        user = words(user_text)
        fourth: dict[tuple[str, ...], set[str]] = {}
        for i in range(len(user) - N + 1):
            fourth.setdefault(tuple(user[i:i + N - 1]), set()).add(user[i + N - 1])
        # the first token of each banned word, as the model would write it after a space
        first_token: dict[str, set[int]] = {}
        for word in {w for ws in fourth.values() for w in ws}:
            ids: set[int] = set()
            for variant in (word, word.capitalize()):
                toks = tokenize(" " + variant)
                if toks:
                    ids.add(int(toks[0]))
            first_token[word] = ids
        self._banned = {k: set().union(*(first_token[w] for w in ws)) for k, ws in fourth.items()}
        self._start: int | None = None  # where the reply begins in input_ids
        self.bans = 0  # steps at which something was banned (for tests and benches)

    @property
    def active(self) -> bool:
        return bool(self._banned)

    def banned_after(self, reply_so_far: str) -> set[int]:
        """Token ids that may not come next after `reply_so_far`."""
        tail = tuple(words(reply_so_far)[-(N - 1):])
        return self._banned.get(tail, set()) if len(tail) == N - 1 else set()

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self._start is None:
            self._start = len(input_ids)  # first call: nothing of the reply is sampled yet
        if not self._banned or len(input_ids) - self._start < N - 1:
            return scores
        banned = self.banned_after(self.detokenize(list(input_ids[self._start:])))
        if banned:
            self.bans += 1
            scores[np.fromiter(banned, np.int64)] = -np.inf
        return scores
