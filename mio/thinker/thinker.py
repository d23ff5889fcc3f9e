"""The Thinker (§6): user turn -> in-character action plan, streamed clause by clause.

`Thinker` holds what is shared by every session of a process: the chat LLM, the sentence embedder,
each story's diegetic knowledge graph and the episodic store. `Conversation` is one session's
state: short-term memory (§6.2 tier 1: recent turns within a token budget, older turns condensed,
active goals), the story clock position, and who the user is.

Prompt layout (the LLM keeps the stable prefix in its KV cache; docs/architecture.md §5):
    [system: persona card] [few-shot examples] [recent turns]  <- stable / growing prefix
    [user: (the turn's memory note: retrieved facts, episodic memories, condensed older turns)
           this turn]                                          <- per turn

The memory note goes inside the user's turn, in parentheses before the words, rather than in a
system message of its own: every token of a turn is pre-filled before the reply's first word
(~10 ms each here), and the own message costs five more (`<|im_end|>\n<|im_start|>system\n`);
it also makes every turn begin the same way, so the opening of the next user turn can be
pre-filled between turns (`Thinker.prime`). The character card tells the model that its notes are
its own memories.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mio.core import registry
from mio.core.config import ThinkerConfig
from mio.core.errors import ConfigError, InputError
from mio.core.frames import Emotion
from mio.core.paths import memory_folder
from mio.thinker import guards
from mio.thinker.llm.base import Avoid, ChatLLM
from mio.thinker.memory.embed import Embedder, create_embedder
from mio.thinker.memory.episodic import EpisodicStore
from mio.thinker.memory.graph import GraphStore, Retrieval
from mio.thinker.persona import Character
from mio.thinker.plan import Clause, PlanError, annotate, parse_plan_json, repair, split_clauses, validate
from mio.thinker.pov import first_person

COMMANDS = ("/time",)
UNSURE_NOTE = "You do not know the answer. Say so in one short sentence, in character."


@dataclass
class Turn:
    role: str
    text: str
    note: str = ""  # the memory note prompted just before this user turn (kept so the KV cache matches)


@dataclass
class Conversation:
    """One session's short-term memory: recent turns within a token budget, older turns condensed."""

    character: Character
    max_history_tokens: int = 600
    turns: list[Turn] = field(default_factory=list)
    user_id: str = "guest"
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    story_time: float | None = None  # position on the story clock; None for characters without a story
    goals: list[str] = field(default_factory=list)  # active goals, beyond the card's own
    condensed_words: int = 60  # budget of the condensed summary of older turns
    _listeners: list = field(default_factory=list, repr=False)
    _last_prompt: tuple[str, str] = field(default=("", ""), repr=False)

    def _window(self) -> int:
        """Index of the first turn kept verbatim."""
        budget = self.max_history_tokens
        start = len(self.turns)
        for i in range(len(self.turns) - 1, -1, -1):
            cost = len(self.turns[i].text) // 4 + 4  # ~4 characters per token
            if cost > budget:
                break
            budget -= cost
            start = i
        if start < len(self.turns) and self.turns[start].role == "assistant":
            start += 1
        return start

    def history(self) -> list[dict[str, str]]:
        """Recent turns exactly as they were prompted, each user turn with the memory note it was
        given, so consecutive prompts share their prefix and only the new turn is pre-filled."""
        return [{"role": t.role, "content": with_note(t.text, t.note)} for t in self.turns[self._window():]]

    def condensed(self) -> str:
        """Older turns that no longer fit, condensed (not silently dropped): what the user said."""
        older = [t for t in self.turns[: self._window()] if t.role == "user"]
        parts: list[str] = []
        words = 0
        for t in reversed(older):
            snippet = " ".join(t.text.split()[:12])
            words += len(snippet.split())
            if words > self.condensed_words:
                break
            parts.insert(0, f'"{snippet}"')
        return ("Earlier the visitor said: " + "; ".join(parts) + ".") if parts else ""

    def prefix(self) -> list[dict[str, str]]:
        """What every prompt of this conversation begins with until the next turn is added: the persona,
        the examples and the recent turns (the part the LLM keeps pre-filled)."""
        # The story's present is part of the cached prefix: it changes only when the clock moves.
        label = self.story_label()
        system = self.character.system_prompt() + (f"\nNow: {label}." if label else "")
        return [{"role": "system", "content": system}, *self.character.few_shot(), *self.history()]

    def messages(self, user_text: str, context: str = "") -> list[dict[str, str]]:
        note = "\n".join(x for x in (context, self.condensed(),
                                     f"Current aims: {'; '.join(self.goals)}." if self.goals else "") if x)
        self._last_prompt = (user_text, note)
        return [*self.prefix(), {"role": "user", "content": with_note(user_text, note)}]

    def add(self, role: str, text: str) -> None:
        if text:
            last_user, last_note = self._last_prompt
            note = last_note if role == "user" and text == last_user else ""
            self.turns.append(Turn(role, text, note))
            for listener in self._listeners:
                listener(self, role, text)

    # -- story clock --------------------------------------------------------------------------
    def set_story_time(self, t: float) -> float:
        if self.character.story is None:
            raise ConfigError(f"{self.character.name} has no story clock")
        self.story_time = self.character.story.clock.clamp(float(t))
        return self.story_time

    def advance(self, chapters: float = 1.0) -> float:
        return self.set_story_time((self.story_time or 0.0) + chapters)

    def story_label(self) -> str:
        if self.character.story is None or self.story_time is None:
            return ""
        return self.character.story.clock.label(self.story_time)


def with_note(text: str, note: str) -> str:
    """A user turn as prompted: its memory note, in parentheses, before the user's words."""
    return f"({note})\n{text}" if note else text


def distinct_facts(texts: list[str], overlap: float = 0.75) -> list[str]:
    """Drop a retrieved fact whose content words are mostly said by the facts before it.

    A node and the edge retrieved beside it often state one thing twice ("The Nautilus is seventy
    metres long and eight wide, ..." / "The Nautilus is seventy metres long."); every prompted token
    is pre-filled before the reply's first word (~10 ms each here), so the repeat costs latency and
    tells the model nothing.
    """
    kept: list[str] = []
    seen: set[str] = set()
    for text in texts:
        words = guards.content_words(text)
        if words and len(words & seen) >= overlap * len(words):
            continue
        kept.append(text)
        seen |= words
    return kept


def _until(pieces: Iterator[str], stop: threading.Event | None) -> Iterator[str]:
    """The LLM's text pieces until `stop` is set, checked on every token; the LLM's stream is closed
    either way, so a backend holding a lock while it streams lets go of it at once."""
    try:
        for piece in pieces:
            if stop is not None and stop.is_set():
                return
            yield piece
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


class Thinker:
    def __init__(self, config: ThinkerConfig, llm: ChatLLM | None = None, embedder: Embedder | None = None) -> None:
        self.config = config
        self.llm = llm if llm is not None else registry.create("thinker", config.backend, config)
        self._embedder = embedder
        self._graphs: dict[Path, GraphStore] = {}
        self._episodic: EpisodicStore | None = None
        self._lock = threading.Lock()

    # -- shared memory stores (built lazily, once per process) --------------------------------
    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = create_embedder(self.config.embedder)
            return self._embedder

    def _db_path(self, name: str) -> str:
        folder = memory_folder(self.config.memory_dir)
        return ":memory:" if folder == ":memory:" else str(Path(folder) / name)

    def graph(self, character: Character) -> GraphStore | None:
        story = character.story
        if story is None or not story.nodes or self.config.memory == "off":
            return None
        embedder = self.embedder
        with self._lock:
            store = self._graphs.get(story.folder)
            if store is None:
                store = GraphStore(self._db_path(f"{story.id}-{story.digest()}-{embedder.name}.sqlite"), embedder)
                store.import_pack(story)
                self._graphs[story.folder] = store
            return store

    @property
    def episodic(self) -> EpisodicStore | None:
        if not self.config.episodic:
            return None
        embedder = self.embedder
        with self._lock:
            if self._episodic is None:
                self._episodic = EpisodicStore(self._db_path(f"episodic-{embedder.name}.sqlite"), embedder)
            return self._episodic

    # -- conversations ------------------------------------------------------------------------
    def new_conversation(self, character: Character, *, user_id: str = "guest", session_id: str | None = None,
                         story_time: float | None = None, remember: bool = True) -> Conversation:
        """`remember` False: nothing of this conversation goes into episodic memory (an anonymous
        visitor, whose id no later session will have: the lines could never be recalled)."""
        conv = Conversation(character, max_history_tokens=self.config.max_history_tokens, user_id=user_id)
        if session_id:
            conv.session_id = session_id
        if character.story is not None:
            t = story_time if story_time is not None else self.config.story_time
            conv.set_story_time(character.story.clock.start if t is None else t)
        if self.config.episodic and remember:
            conv._listeners.append(self._remember)
        return conv

    def _remember(self, conv: Conversation, role: str, text: str) -> None:
        """Episodic memory: what the user says is stored for their later sessions."""
        if role != "user" or text.startswith(COMMANDS) or self.episodic is None:
            return
        emb = conv.__dict__.pop("_last_query", None)
        emb = emb[1] if emb is not None and emb[0] == text else None
        self.episodic.add(conv.user_id, conv.character.id or conv.character.name, conv.session_id, role, text, emb)

    def warm(self, conv: Conversation) -> None:
        """Pre-fill the persona prefix (the part of every prompt that never changes) and open the
        memory stores, so the first turn pays for neither."""
        if self.config.memory != "off" and conv.character.story is not None:
            self.graph(conv.character)
        if self.config.episodic:
            _ = self.episodic
        # one retrieval and the spoiler guard at this story time: their first call reads and indexes the
        # gated facts (~60 ms here), which the first turn would otherwise wait for
        self.recall(conv, "Hello.")
        self.spoiler_guard(conv)
        self.llm.warm(conv.messages("Hello."), session=conv.session_id)

    def prime(self, conv: Conversation) -> int:
        """Between turns: pre-fill what the next prompt is sure to begin with (the turns so far, as
        recorded, and the opening of the next user turn), so the next turn pre-fills only its own
        words. Tokens evaluated (0 when there was nothing new or the LLM was busy)."""
        return self.llm.prime(conv.prefix(), session=conv.session_id)

    def forget(self, conv: Conversation) -> None:
        """The session of `conv` has ended: the LLM drops the state it kept for it (its memories stay)."""
        self.llm.forget(conv.session_id)

    def check_input(self, text: str) -> str:
        text = (text or "").strip()
        if not text:
            raise InputError("the message is empty")
        if len(text) > self.config.max_input_chars:
            raise InputError(f"the message has {len(text)} characters; the limit is {self.config.max_input_chars}")
        return text

    # -- chat commands ------------------------------------------------------------------------
    @staticmethod
    def is_command(text: str) -> bool:
        return text.strip().split(" ")[0].lower() in COMMANDS

    def command(self, conv: Conversation, text: str) -> str:
        """`/time` shows the story clock; `/time 12`, `/time +1`, `/time 2:5` set it."""
        arg = text.strip()[len("/time"):].strip()
        story = conv.character.story
        if story is None:
            return f"{conv.character.name} has no story clock."
        if arg:
            conv.set_story_time(story.clock.parse(arg, conv.story_time or 0.0))
        return f"Story time is now {conv.story_label()}."

    # -- memory retrieval ---------------------------------------------------------------------
    def recall(self, conv: Conversation, user_text: str) -> tuple[str, Retrieval | None]:
        """The per-turn context: story time, retrieved facts (nodes then edges), episodic memories."""
        lines: list[str] = []
        retrieval = None
        need_embedding = (self.config.memory != "off" and conv.character.story is not None) or self.config.episodic
        q = self.embedder.encode_one(user_text) if need_embedding else None
        if q is not None:
            conv.__dict__["_last_query"] = (user_text, q)
        store = self.graph(conv.character) if q is not None else None
        if store is not None:
            flat = self.config.memory == "flat"
            retrieval = store.retrieve(q, conv.story_time, k_nodes=self.config.facts_nodes,
                                       k_edges=self.config.facts_edges, min_score=self.config.min_score, flat=flat)
            # as the speaker's own memories ("I built the Nautilus"), so the reply comes in the first person
            facts = [first_person(f, conv.character.name) for f in distinct_facts([h.text for h in retrieval.hits])]
            if facts:
                lines.append("Your notes: " + " ".join(facts))
        if self.episodic is not None and q is not None:
            past = self.episodic.recall(conv.user_id, conv.character.id or conv.character.name, q,
                                        exclude_session=conv.session_id, k=2)
            if past:
                said = dict.fromkeys(" ".join(e.text.split()[:12]) for e in past)  # distinct, short
                lines.append("This visitor told you in an earlier meeting: " + "; ".join(f'"{t}"' for t in said) + ".")
        return "\n".join(lines), retrieval

    def spoiler_guard(self, conv: Conversation) -> guards.SpoilerGuard | None:
        store = self.graph(conv.character)
        if store is None or self.config.memory != "diegetic" or not self.config.guards or conv.story_time is None:
            return None
        key = (id(store), conv.story_time, conv.character.id)
        cache = self.__dict__.setdefault("_guards", {})
        if key not in cache:
            t = conv.story_time
            future = store.future_texts(t)
            ch = conv.character
            known = " ".join([ch.system_prompt(), *(u + " " + r for u, r in ch.examples), *ch.refusals, ch.unknown, ch.greeting])
            cache[key] = guards.SpoilerGuard(store.present_texts(t), future, known)
        return cache[key]

    # -- one turn -----------------------------------------------------------------------------
    def reply(self, conv: Conversation, user_text: str, stop: threading.Event | None = None) -> Iterator[Clause]:
        """Stream the action plan for one user turn. The caller records what was actually said
        (all of it, or what was heard before a barge-in) with `conv.add("assistant", ...)`.
        `stop`, checked on every token: once set, the reply ends and the LLM is let go at once (a
        barge-in, or a dropped speculative reply), instead of at the next clause boundary."""
        user_text = self.check_input(user_text)
        ch = conv.character
        if self.is_command(user_text):
            yield Clause(self.command(conv, user_text), Emotion("neutral", 0.3), None)
            return
        if self.config.guards and guards.out_of_world(user_text):
            yield annotate(ch.refusal_for(user_text), ch.default_emotion)
            return
        context, _ = self.recall(conv, user_text)
        spoilers = self.spoiler_guard(conv)
        messages = conv.messages(user_text, context)
        leaked = False
        for attempt in range(2):
            produced, leaked = 0, False
            temperature = self.config.temperature if attempt == 0 else min(self.config.temperature, 0.2)
            avoid = Avoid(user_text if self.config.no_echo else "", ch.name if self.config.first_person else "")
            for clause in self._draft(messages, ch, temperature, conv.session_id, avoid, stop):
                if spoilers is not None and spoilers.check(clause.text, user_text) is not None:
                    leaked = True  # stop here: the rest of the draft is not spoken
                    break
                produced += 1
                yield clause
            if produced or (stop is not None and stop.is_set()):
                return
            if leaked:  # a spoiler before anything was said: regenerate more conservatively
                messages = [*messages[:-1], {"role": "system", "content": UNSURE_NOTE}, messages[-1]]
            # else nothing valid came out (malformed output): regenerate once
        yield annotate(ch.unknown if leaked else ch.refusal_for(user_text), ch.default_emotion)

    def _draft(self, messages: list[dict[str, str]], ch: Character, temperature: float,
               session: str | None = None, avoid: Avoid | None = None,
               stop: threading.Event | None = None) -> Iterator[Clause]:
        """LLM text -> repaired, annotated, validated clauses (invalid ones are dropped). `avoid`:
        what sampling keeps out of the reply (the user's words, thinker.no_echo; the character's own
        name in the third person, thinker.first_person); `stop`: see `reply`."""
        pieces = _until(self.llm.stream(messages, self.config.max_tokens, temperature, session=session,
                                        avoid=avoid), stop)
        first = ""
        for piece in pieces:  # a JSON plan (stronger models may answer in JSON) is parsed whole
            first += piece
            if len(first.strip()) >= 2:
                break
        if first.lstrip().startswith(("{", "[{", '["', "```")):
            raw = first + "".join(pieces)
            try:
                yield from (c for c in parse_plan_json(raw, ch.default_emotion) if not guards.breaks_frame(c.text))
            except PlanError:
                return
            return

        def chained() -> Iterator[str]:
            yield first
            yield from pieces

        produced = 0
        skipping = False  # inside a sentence that breaks the frame: drop it to its end
        for text, is_tail in split_clauses(chained()):
            text, stop = repair(text)
            ends_sentence = text.rstrip().endswith((".", "!", "?", '"'))
            if skipping or guards.breaks_frame(text):
                skipping = not ends_sentence
                if stop:
                    break
                continue
            if (is_tail or stop) and not ends_sentence:
                # Cut off by max_tokens (or by a role marker): finish a lone clause, drop a fragment.
                if produced or len(text.split()) < 3:
                    break
                text = text.rstrip(" ,;:-") + "."
            try:
                clause = validate(annotate(text, ch.default_emotion))
            except PlanError:
                if stop:
                    break
                continue
            produced += 1
            yield clause
            if stop:
                break

