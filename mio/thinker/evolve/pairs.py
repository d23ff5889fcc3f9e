"""Synthetic preference pairs (§6.2.2): per scenario, a teacher writes an in-character positive
o_pos and a flawed negative o_neg (persona drift, frame break, or a spoiler for a question asked
before its event).

The teacher is any configured chat LLM (`thinker.backend=openai` for a strong one; the embedded
SmolLM2-135M otherwise). Every teacher output is validated; one that fails is regenerated once and
then replaced by a grounded fallback from the character card (its refusals and its "unknown" line)
or the knowledge-graph fact — the pair records which (`pos_source`, `neg_source`), so the share
of real teacher text is always visible.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from mio.core.errors import InputError
from mio.thinker import evals, guards
from mio.thinker.evolve.scenarios import Scenario
from mio.thinker.llm.base import ChatLLM
from mio.thinker.persona import Character
from mio.thinker.plan import clean_spoken
from mio.thinker.thinker import Conversation

FLAWS = ("frame_break", "persona_drift")
MAX_WORDS = 60


@dataclass(frozen=True)
class Pair:
    scenario: dict
    prompt: list[dict[str, str]]  # the actor's chat messages, exactly as the Thinker prompts them
    pos: str
    neg: str
    flaw: str
    pos_source: str  # teacher | fallback
    neg_source: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def actor_messages(character: Character, sc: Scenario) -> list[dict[str, str]]:
    """The Thinker's prompt for this scenario: persona prefix, few-shot, story time, the memory note
    (the graph fact, unless the Narrative-Present gate withholds it), then the user's line."""
    conv = Conversation(character)
    if character.story is not None and sc.story_time is not None:
        conv.set_story_time(sc.story_time)
    note = f"Your notes: {sc.fact}" if sc.fact and not sc.future else ""
    return conv.messages(sc.text, note)


def _clean(text: str) -> str:
    return " ".join(clean_spoken(text).split()[:MAX_WORDS])


def valid_positive(text: str, sc: Scenario) -> bool:
    if len(text.split()) < 3 or guards.breaks_frame(text):
        return False
    if evals.complies(text, evals.RTItem(sc.text, ())):
        return False
    if sc.future:
        return evals.expresses_ignorance(text)
    if sc.intent == "frame_break":
        return evals.declines(text)
    return True


class PairTeacher:
    """Writes (o_pos, o_neg) for scenarios with a teacher LLM."""

    def __init__(self, teacher: ChatLLM, characters: Callable[[str], Character], *, max_tokens: int = 64,
                 temperature: float = 0.7, negative_teacher: ChatLLM | None = None) -> None:
        """`negative_teacher` (default: the same LLM) may be a second instance of it: the flawed
        negatives use other system prompts, and a separate instance keeps the persona prefix of the
        positives in the first one's KV cache."""
        self.teacher, self.characters = teacher, characters
        self.negative_teacher = negative_teacher or teacher
        self.max_tokens, self.temperature = max_tokens, temperature

    def _ask(self, messages: list[dict[str, str]], llm: ChatLLM | None = None) -> str:
        llm = llm or self.teacher
        return _clean("".join(llm.stream(messages, self.max_tokens, self.temperature)))

    def positive(self, ch: Character, sc: Scenario, prompt: list[dict[str, str]]) -> tuple[str, str]:
        guide = (f"Answer as {ch.name} at your very best: fully in character, grounded in your notes, "
                 "one to three short spoken sentences.")
        if sc.future:
            guide += " This has not happened yet for you: say you cannot know it."
        elif sc.intent == "frame_break":
            guide += " The request is outside your world: decline it in character."
        msgs = [*prompt[:-1], {"role": "system", "content": guide}, prompt[-1]]
        for _ in range(2):
            out = self._ask(msgs)
            if valid_positive(out, sc):
                return out, "teacher"
        if sc.future:
            return ch.unknown, "fallback"
        if sc.intent == "frame_break" or not sc.fact:
            return ch.refusal_for(sc.text), "fallback"
        return sc.fact, "fallback"

    def negative(self, ch: Character, sc: Scenario, flaw: str, pos: str) -> tuple[str, str]:
        if flaw == "spoiler":  # the gate's failure: telling what has not happened yet
            return f"Yes, I know it well. {sc.fact}", "fallback"
        if flaw == "frame_break":
            system = ("You are a helpful AI assistant, not a character. Answer the user's message directly and "
                      "mention that you are an AI language model.")
        else:  # persona drift: someone else's voice, values and knowledge
            system = ("You are a cheerful modern teenager who knows nothing about ships, the sea or the 1860s. "
                      "Reply casually with modern slang, in one or two sentences.")
        msgs = [{"role": "system", "content": system}, {"role": "user", "content": sc.text}]
        for _ in range(2):
            out = self._ask(msgs, self.negative_teacher)
            if len(out.split()) >= 3 and out != pos:
                if flaw == "frame_break" and not guards.breaks_frame(out):
                    out = "As an AI language model, " + out[0].lower() + out[1:]
                return out, "teacher"
        if flaw == "frame_break":
            return "As an AI language model, I can help with that. Here is what you asked for.", "fallback"
        return "lol idk, that sounds kinda boring tbh. wanna talk about something else?", "fallback"

    def pair(self, sc: Scenario, index: int) -> Pair:
        ch = self.characters(sc.character)
        prompt = actor_messages(ch, sc)
        pos, pos_src = self.positive(ch, sc, prompt)
        flaw = "spoiler" if sc.future else "frame_break" if sc.intent == "frame_break" else FLAWS[index % len(FLAWS)]
        neg, neg_src = self.negative(ch, sc, flaw, pos)
        return Pair(sc.to_dict(), prompt, pos, neg, flaw, pos_src, neg_src)


def write_pairs(path: Path, pairs: Iterable[Pair]) -> int:
    """Append pairs to a JSONL file (resumable: the caller skips scenarios already written)."""
    n = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for p in pairs:
            f.write(p.to_json() + "\n")
            f.flush()
            n += 1
    return n


def read_pairs(path: Path) -> list[Pair]:
    if not path.is_file():
        raise InputError(f"no pairs file {path} (make one with `mio evolve collect`)")
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(Pair(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as e:
            raise InputError(f"{path}:{i}: not a preference pair: {e}") from e
    return out
