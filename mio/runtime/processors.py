"""The pipeline stages of one session that make the reply: Thinker -> Talker (before them the listening
stage, mio.runtime.listening; after them the video side, mio.runtime.video).

Each stage keeps its per-session state here and uses shared, already-loaded backends (weights
load once per process, see `mio.runtime.session.Models`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable

from mio.core.clock import SessionClock
from mio.core.cpu import Urgent
from mio.core.frames import (
    AudioChunk,
    EndOfTurn,
    Frame,
    Interrupt,
    PlanChunk,
    StartOfTurn,
    UserAudio,
    UserText,
)
from mio.runtime.pacing import KEEP_LEAD_S, trim_silence
from mio.runtime.pipeline import Processor
from mio.runtime.stats import Stats
from mio.runtime.threads import run_in_thread

log = logging.getLogger(__name__)

SPOKEN_ENDS = tuple(".,;:!?\"')]\u2014-")  # a clause ending in one of these is spoken as written


class _Produced:
    """What a worker thread produces, read in order on the event loop: items, then None (the end)
    or an exception. `stop` asks the worker to end early."""

    def __init__(self) -> None:
        self.items: list[object] = []
        self.more = asyncio.Event()
        self.stop = threading.Event()

    def put(self, item: object) -> None:
        self.items.append(item)
        self.more.set()

    async def each(self) -> AsyncIterator[object]:
        """Every item as it comes, the end (None or the exception) included."""
        i = 0
        while True:
            while i == len(self.items):
                self.more.clear()
                await self.more.wait()
            item = self.items[i]
            i += 1
            yield item
            if item is None or isinstance(item, BaseException):
                return


class _Reply(_Produced):
    """One reply being written on a worker thread; its clauses gathered as they come."""

    def __init__(self, text: str, started: float) -> None:
        super().__init__()
        self.text, self.started = text, started
        self.worker: concurrent.futures.Future | None = None

    def drain(self) -> AsyncIterator[object]:
        """The clauses, then None or the exception (the processor tells the two apart)."""
        return self.each()


class ThinkerProcessor(Processor):
    """UserText -> StartOfTurn, PlanChunk*, EndOfTurn. Streams clauses as the LLM writes them.

    Preemptive generation (spoken turns): when the user falls silent, the ASR stage decodes what
    was said and `speculate(text)` starts the reply at once, while the endpointer's hang-over is
    still waiting to be sure the turn is over. Its clauses are held here (the first one is handed
    to `on_speculative_clause`, which pre-synthesises it) and nothing is said, shown or remembered
    until the UserText of the confirmed turn arrives with the same text: then the running reply
    goes out as if it had started now, with its head start already won. If the user speaks again,
    `discard()` stops it: the conversation never sees it (turns are added only when a reply goes
    out), and the next reply starts only after the discarded one has let go of the LLM.
    """

    name = "thinker"

    def __init__(self, thinker, conversation, stats: Stats) -> None:
        super().__init__()
        self.thinker, self.conv, self.stats = thinker, conversation, stats
        self.turn_id = 0
        self._stop = threading.Event()
        self._spec: _Reply | None = None
        self._writing = False  # a UserText is being answered
        self._discarded: list[concurrent.futures.Future] = []  # discarded replies still finishing
        self.on_speculative_clause: Callable[[PlanChunk], None] | None = None

    async def start(self) -> None:
        with self.stats.time("thinker_warm"):
            await self.run_blocking(self.thinker.warm, self.conv)

    def _begin(self, text: str) -> _Reply:
        """Start writing the reply to `text` on a worker thread (after any discarded one ended)."""
        loop = asyncio.get_running_loop()
        reply = _Reply(text, time.perf_counter())
        prior = list(self._discarded)

        hold = self.thinker.config.yield_to_voice_s
        urgent = Urgent.shared()

        def produce() -> None:
            for fut in prior:  # a discarded reply lets go of the conversation and the LLM first
                with contextlib.suppress(BaseException):
                    fut.result()
            try:
                first = True
                for clause in self.thinker.reply(self.conv, text, stop=reply.stop):  # checked per token
                    if reply.stop.is_set():
                        break
                    voiced = urgent.begun
                    loop.call_soon_threadsafe(reply.put, clause)
                    if first and hold > 0:
                        # The user hears nothing until this clause is voiced, and the rest of the
                        # reply is seconds ahead of the speech: the LLM stops here (between tokens)
                        # while the Talker voices it, instead of taking the cores it needs.
                        self.stats.add("thinker_paused_for_voice", urgent.wait_done(voiced, hold))
                    first = False
            except BaseException as e:  # noqa: BLE001 - handed to the event loop
                loop.call_soon_threadsafe(reply.put, e)
            loop.call_soon_threadsafe(reply.put, None)

        reply.worker = run_in_thread(produce, name="mio-reply")
        return reply

    # -- preemptive generation ----------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """No reply is being written and no user text waits."""
        return not self._writing and not any(isinstance(f, UserText) for f in self.inbox._ordered)

    @property
    def speculating(self) -> str | None:
        return self._spec.text if self._spec is not None else None

    def speculate(self, text: str, session_id: str = "") -> bool:
        """Start replying to `text` before the turn is confirmed. False when it was not started
        (a reply is being written, a command, or this speculation is already running)."""
        text = (text or "").strip()
        if self._spec is not None and self._spec.text == text:
            return False
        self.discard()
        if not text or not self.idle or self.thinker.is_command(text) or \
                len(text) > self.thinker.config.max_input_chars:
            return False
        self._spec = spec = self._begin(text)
        self.stats.mark("speculation_started", 1.0)
        if self.on_speculative_clause is not None:
            asyncio.ensure_future(self._first_clause(spec, session_id))
        return True

    async def _first_clause(self, spec: _Reply, session_id: str) -> None:
        """Hand the speculation's first clause to the Talker as soon as it is written."""
        while not spec.items:
            spec.more.clear()
            await spec.more.wait()
        item = spec.items[0]
        if self._spec is spec and self.on_speculative_clause is not None and \
                not (item is None or isinstance(item, BaseException)):
            self.on_speculative_clause(PlanChunk(turn_id=self.turn_id + 1, index=0, text=item.text,
                                                 emotion=item.emotion, gesture=item.gesture, camera=item.camera,
                                                 session_id=session_id))

    def discard(self) -> None:
        """Drop the speculative reply (the user went on speaking, or typed): nothing of it remains."""
        spec, self._spec = self._spec, None
        if spec is None:
            return
        spec.stop.set()
        self.stats.mark("speculation_discarded", 1.0)
        if spec.worker is not None and not spec.worker.done():
            self._discarded.append(spec.worker)
            spec.worker.add_done_callback(self._forget_worker)

    def _forget_worker(self, fut: concurrent.futures.Future) -> None:
        with contextlib.suppress(ValueError):
            self._discarded.remove(fut)

    # -- a turn -------------------------------------------------------------------------------
    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        if not isinstance(frame, UserText):
            yield frame
            return
        text = self.thinker.check_input(frame.text)
        if self._spec is not None and self._spec.text != text:
            self.discard()
        self._writing = True
        try:
            async for out in self._answer(frame, text):
                yield out
        finally:
            self._writing = False

    async def _answer(self, frame: UserText, text: str) -> AsyncIterator[Frame]:
        self.turn_id += 1
        turn, sid = self.turn_id, frame.session_id
        yield frame  # the transcript, for transports that show it
        yield StartOfTurn(turn_id=turn, session_id=sid, pts=frame.pts)
        t0 = time.perf_counter()
        reply, self._spec = self._spec, None
        if reply is not None:  # confirmed with the text the reply began on: it goes out now
            self.stats.add("thinker_head_start", t0 - reply.started)
            self.stats.mark("speculation_used", 1.0)
        else:
            reply = self._begin(text)
        self._stop = reply.stop
        said: list[str] = []
        try:
            index = 0
            async for item in reply.drain():
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                if index == 0:
                    self.stats.add("thinker_first_clause", time.perf_counter() - t0)
                said.append(item.text)
                yield PlanChunk(turn_id=turn, index=index, text=item.text, emotion=item.emotion,
                                gesture=item.gesture, camera=item.camera, session_id=sid, pts=frame.pts)
                index += 1
            self.stats.add("thinker_turn", time.perf_counter() - t0)
        finally:
            reply.stop.set()
            await asyncio.shield(asyncio.wrap_future(reply.worker))
            if not self.thinker.is_command(text):  # chat commands (/time) are not conversation
                self.conv.add("user", text)  # episodic write: one SQLite insert, embedding cached by recall
                self.conv.add("assistant", " ".join(said))
                self._prime()
        yield EndOfTurn(turn_id=turn, session_id=sid, pts=frame.pts, text=" ".join(said))

    async def on_interrupt(self, frame: Interrupt) -> None:
        self._stop.set()
        # What the user actually heard replaces the full reply in short-term memory.
        turns = self.conv.turns
        if frame.heard_text is not None and turns and turns[-1].role == "assistant":
            heard = frame.heard_text.strip()
            if heard != turns[-1].text:
                turns[-1].text = (heard + " ...") if heard else "(interrupted before speaking)"
                self._prime()

    def _prime(self) -> None:
        """Pre-fill the next turn's prompt opening while the user reads, listens or thinks
        (Thinker.prime; it skips itself when the LLM is busy). Best effort: a failure is logged."""
        def prime() -> None:
            try:
                self.thinker.prime(self.conv)
            except Exception:  # noqa: BLE001 - an optimisation; the next turn pre-fills what is missing
                log.warning("pre-filling the next turn failed", exc_info=True)

        run_in_thread(prime, name="mio-prime")

    async def stop(self) -> None:
        self.discard()


class _Synthesis(_Produced):
    """One clause being synthesised on a worker thread: its pieces (speech, words, last?, compute
    seconds) as they come, then None; or an exception."""

    async def drain(self) -> AsyncIterator[tuple]:
        async for item in self.each():
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]


class TalkerProcessor(Processor):
    """PlanChunk -> (PlanChunk re-stamped, AudioChunk): speech per clause, placed on the session clock.

    Each clause's audio is trimmed to its sound (mio.runtime.pacing): the voices render ~0.3 s of
    silence before the first word, which the listener would wait through on every reply. A reply's
    first clause comes in pieces where the voice can (piper: its first words, then the rest), so
    its first sound waits for a fraction of the clause. A speculative reply's first clause is
    synthesised before its turn is confirmed (`prepare`).
    """

    name = "talker"

    def __init__(self, voice, clock: SessionClock, stats: Stats, response_gap: float = 0.35,
                 trim: bool = True, schedule_lead: float = 0.04) -> None:
        super().__init__()
        self.voice, self.clock, self.stats = voice, clock, stats
        self.response_gap = response_gap
        self.trim = trim
        self.schedule_lead = schedule_lead  # live: a reply starts this far ahead (ready for the next video frame)
        self.playhead = 0.0  # end of the speech already scheduled
        self.user_end = 0.0  # end of the user's latest audio
        self._turn: int | None = None
        self._early: dict[tuple, _Synthesis] = {}  # first clauses synthesised before their turn was confirmed
        self.stream_pieces = True  # voices that can: a reply's first words go out before the rest is decoded

    @staticmethod
    def _key(chunk: PlanChunk) -> tuple:
        return chunk.text, chunk.emotion.label, round(float(chunk.emotion.intensity), 3)

    def _drop_early(self) -> None:
        for syn in self._early.values():
            syn.stop.set()
        self._early = {}

    def prepare(self, chunk: PlanChunk) -> None:
        """Synthesise a speculative reply's first clause now (mio.runtime.processors.ThinkerProcessor):
        if its turn is confirmed, the clause is ready (or under way) when it arrives."""
        self._drop_early()
        self._early = {self._key(chunk): self._start(chunk)}

    def _pieced(self, chunk: PlanChunk) -> bool:
        return chunk.index == 0 and self.stream_pieces and hasattr(self.voice, "synthesize_pieces")

    def _start(self, chunk: PlanChunk) -> _Synthesis:
        loop = asyncio.get_running_loop()
        syn = _Synthesis()
        pieced = self._pieced(chunk)
        # A clause the Thinker cut mid-sentence (a long first sentence before "and", "which", ...;
        # mio.thinker.plan.split_clauses) is spoken with a comma: a continuing intonation and a short
        # breath, not the fall of a finished sentence.
        spoken = chunk.text if chunk.text.rstrip().endswith(SPOKEN_ENDS) else chunk.text.rstrip() + ","

        def work() -> None:
            # A reply's first sound waits for this clause (its first piece): the LLM, writing the
            # clauses after it, pauses between tokens meanwhile (mio.core.cpu.Urgent).
            urgent = Urgent.shared().running() if chunk.index == 0 else contextlib.nullcontext()
            try:
                t = time.perf_counter()
                with urgent:
                    if pieced:
                        pieces = self.voice.synthesize_pieces(spoken, chunk.emotion)
                    else:
                        pieces = iter([(self.voice.synthesize(spoken, chunk.emotion), spoken, True)])
                    first = next(pieces, None)
                for speech, said, last in itertools.chain([first] if first is not None else [], pieces):
                    now = time.perf_counter()
                    loop.call_soon_threadsafe(syn.put, (speech, said, last, now - t))
                    t = now
                    if syn.stop.is_set():
                        return
                loop.call_soon_threadsafe(syn.put, None)
            except BaseException as e:  # noqa: BLE001 - handed to the event loop
                loop.call_soon_threadsafe(syn.put, e)

        run_in_thread(work, name="mio-talk")
        return syn

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        if isinstance(frame, UserAudio):
            # Offline, user audio is the utterance itself: the reply leaves a natural gap after
            # it. Live, the microphone streams silence too, and the endpointer's hang-over has
            # already waited for the user to stop.
            if not self.clock.realtime:
                self.user_end = max(self.user_end, frame.pts + frame.duration)
            yield frame
            return
        if not isinstance(frame, PlanChunk):
            yield frame
            return
        t0 = time.perf_counter()
        syn = self._early.pop(self._key(frame), None) if frame.index == 0 else None
        if frame.index == 0:
            self._drop_early()
        early = syn is not None
        if syn is None:
            syn = self._start(frame)
        first = True
        try:
            async for speech, text, last, compute in syn.drain():
                if first:
                    self.stats.add("talker_wait_presynthesised" if early else "talker_first_piece",
                                   time.perf_counter() - t0)
                for out in self._place(frame, speech, text, compute, first=first, last=last):
                    yield out
                first = False
        finally:
            syn.stop.set()  # a cut reply: the worker stops after the piece it is decoding

    def _place(self, frame: PlanChunk, speech, text: str, compute: float, *, first: bool, last: bool) -> list[Frame]:
        """Trim a clause (or piece) to its sound and put it on the session clock after what is scheduled."""
        t_trim = time.perf_counter()
        samples, words, phones = speech.samples, speech.words, speech.phones
        if self.trim:
            big = 1e9  # an inner piece boundary keeps every sample on that side
            cut = trim_silence(samples, speech.sample_rate, text, words, phones,
                               keep_lead=KEEP_LEAD_S if first else big, keep_tail=None if last else big)
            samples, words, phones = cut.samples, cut.words, cut.phones
            if first:
                self.stats.add("talker_trimmed_lead", cut.lead_cut_s)
        duration = len(samples) / speech.sample_rate
        # compute time, wherever it ran (a pre-synthesised clause ran before its turn was confirmed)
        self.stats.add("talker", compute + time.perf_counter() - t_trim, media=duration)
        start = max(self.playhead, self.clock.now())
        if frame.turn_id == self._turn:  # a later piece or clause that came after the speech before it ended
            self.stats.add("talker_piece_gap" if not first else "talker_clause_gap", start - self.playhead)
        if frame.turn_id != self._turn:  # a new reply starts after the user stopped speaking
            self._turn = frame.turn_id
            start = max(start, self.user_end + self.response_gap)
            if self.clock.realtime:
                start = max(start, self.clock.now() + self.schedule_lead)
        self.playhead = start + duration
        out: list[Frame] = []
        if first:
            frame.pts = start
            out.append(frame)
        out.append(AudioChunk(samples=samples, sample_rate=speech.sample_rate, turn_id=frame.turn_id,
                              text=text, words=words, phones=phones, emotion=frame.emotion,
                              session_id=frame.session_id, pts=start))
        return out

    async def on_interrupt(self, frame: Interrupt) -> None:
        self.playhead = self.clock.now()
