"""The pipeline stages of one session: ASR -> Thinker -> Talker -> FrameClock -> Face -> Body -> Render.

Each stage keeps its per-session state here and uses shared, already-loaded backends (weights
load once per process, see `mio.runtime.session.Models`).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from mio.core.clock import MediaClock, SessionClock
from mio.core.frames import (
    AudioChunk,
    BodyFrame,
    EndOfStream,
    EndOfTurn,
    FaceFrame,
    Frame,
    Interrupt,
    PlanChunk,
    StartOfTurn,
    Tick,
    UserAudio,
    UserText,
    VideoFrame,
)
from mio.core.layouts import VIDEO_FPS
from mio.runtime.pacing import KEEP_LEAD_S, trim_silence
from mio.runtime.pipeline import Processor
from mio.runtime.stats import Stats
from mio.runtime.threads import run_in_thread
from mio.talker.stream_asr import (
    VAD_FRAME,
    VAD_RATE,
    EndpointConfig,
    Endpointer,
    is_backchannel,
    load_vad,
    shared_scheduler,
)


@dataclass(frozen=True)
class SpeechEvent:
    """What the ASR stage tells the session about the user's voice, as it happens (not through
    the pipeline: the Thinker may be busy writing a reply while the user starts to talk).

    kind: speech (an utterance began), barge (it is long enough to interrupt the avatar),
    partial (a live caption), end (the utterance is over; `text` is its transcript, `turn` says
    whether it became a turn: empty and backchannel utterances do not).
    """

    kind: str
    text: str = ""
    turn: bool = False
    speech_end_pts: float = 0.0  # session time the user's speech ended (end events)
    speech_end_wall: float = 0.0  # perf_counter time of the same moment, for latency figures


async def _ignore(event: SpeechEvent) -> None:
    return None


class ASRProcessor(Processor):
    """The user's voice -> transcripts.

    Live (wall clock): streaming. Every UserAudio chunk goes through the Silero endpointer
    (mio.talker.stream_asr): live captions decode the growing window, the utterance is decoded
    as soon as the user pauses (ahead of the endpoint, so the transcript is ready when the
    hang-over ends), and at the endpoint the transcript becomes a UserText at once. Backchannels
    ("mm-hm", "yeah" while the avatar talks) and utterances with no words are not turns.
    Offline (media clock) and on an explicit user EndOfTurn: everything buffered is transcribed.
    `asr` may be None (no recogniser loaded): utterances are still segmented, for barge-in.
    """

    name = "asr"
    keeps_input_on_interrupt = True  # the user talking over the avatar is exactly when audio matters

    def __init__(self, asr, stats: Stats, context: str | None = None, *, clock: SessionClock | None = None,
                 vad=None, endpoint: EndpointConfig | None = None,
                 on_event: Callable[[SpeechEvent], Awaitable[None]] | None = None,
                 avatar_has_floor: Callable[[], bool] = lambda: False,
                 on_speculate: Callable[[str], object] | None = None,
                 on_discard: Callable[[], object] | None = None) -> None:
        super().__init__()
        self.asr, self.stats, self.context = asr, stats, context
        # Preemptive generation: a transcript decoded at the pause starts the reply (on_speculate);
        # speech again, or an utterance that does not become a turn, drops it (on_discard).
        self.on_speculate, self.on_discard = on_speculate, on_discard
        self.clock = clock
        self.streaming = clock is not None and clock.realtime
        self.on_event = on_event or _ignore
        self.avatar_has_floor = avatar_has_floor
        self._buf: list[UserAudio] = []
        self._ep = Endpointer(vad if vad is not None else load_vad(), endpoint or EndpointConfig()) \
            if self.streaming else None
        self._utt_start_pts = 0.0  # session time of the utterance's first sample
        self._decodes: dict[int, asyncio.Future] = {}  # speech_end (samples) -> decode of audio[:speech_end]
        self._caption: asyncio.Future | None = None
        self._sid = ""

    # -- decoding -----------------------------------------------------------------------------
    def _decode(self, audio: np.ndarray, rate: int, caption: bool = False) -> asyncio.Future:
        """A future transcript of `audio` from the process's shared decode queue (None: a caption
        that was not worth running now). Urgent decodes go before every session's captions."""
        if self.asr is None:
            fut = asyncio.get_running_loop().create_future()
            fut.set_result("")
            return fut
        t0 = time.perf_counter()
        fut = shared_scheduler(self.asr).submit(audio, rate, self.context, caption)
        fut.add_done_callback(lambda f: None if f.cancelled() or f.exception() is not None or f.result() is None
                              else self.stats.add("asr", time.perf_counter() - t0, media=len(audio) / rate))
        return fut

    def _speculate(self, speech_end: int) -> None:
        """Decode the utterance up to `speech_end` now; keep it if the endpoint follows. With
        preemptive generation the reply starts on that transcript while the hang-over runs."""
        if self.asr is None or speech_end in self._decodes:
            return
        fut = self._decode(self._ep.samples[:speech_end], VAD_RATE)
        self._decodes[speech_end] = fut
        if self.on_speculate is not None:
            t_pause = time.perf_counter()
            fut.add_done_callback(lambda f: self._decoded_at_pause(f, speech_end, t_pause))

    def _decoded_at_pause(self, fut: asyncio.Future, speech_end: int, t_pause: float) -> None:
        ep = self._ep
        if fut.cancelled() or fut.exception() is not None or self._decodes.get(speech_end) is not fut:
            return  # the user spoke again (or the decode failed): nothing to start
        if not ep.in_speech or ep.speech_end != speech_end:
            return  # the endpoint came first: _finish takes the transcript
        text = (fut.result() or "").strip()
        brief = (speech_end - ep.speech_start) / VAD_RATE < ep.config.min_barge_in_s
        if text and not is_backchannel(text, self.avatar_has_floor(), brief):
            self.stats.add("asr_pause_to_transcript", time.perf_counter() - t_pause)
            self.on_speculate(text)

    def _discard(self) -> None:
        if self.on_discard is not None:
            self.on_discard()

    def _drop_stale(self) -> None:
        """Speech resumed: decodes of the utterance so far are stale (a queued one is skipped),
        and so is a reply begun on one."""
        for fut in self._decodes.values():
            fut.cancel()
        self._decodes = {}
        self._discard()

    def _live_caption(self, speech_end: int) -> None:
        if self.asr is None or (self._caption is not None and not self._caption.done()) or self._decodes:
            return  # one decode at a time per session: captions never delay a transcript
        fut = self._decode(self._ep.samples[:speech_end], VAD_RATE, caption=True)
        self._caption = fut

        def done(f: asyncio.Future) -> None:
            if not f.cancelled() and f.exception() is None and f.result() and self._ep.in_speech:
                asyncio.ensure_future(self.on_event(SpeechEvent("partial", f.result())))

        fut.add_done_callback(done)

    # -- frames -------------------------------------------------------------------------------
    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        if isinstance(frame, UserAudio):
            yield frame  # the listening face hears every chunk at once
            if self._ep is None:
                self._buf.append(frame)
                return
            async for out in self._stream(frame):
                yield out
        elif isinstance(frame, EndOfTurn) and frame.role == "user":
            if self._ep is not None and self._ep.in_speech:  # the microphone was switched off mid-utterance
                self._ep.in_speech = False
                async for out in self._finish(self._ep.speech_end, frame.pts, time.perf_counter()):
                    yield out
            elif self._buf:
                async for out in self._transcribe_buffered(frame):
                    yield out
        else:
            yield frame

    async def _stream(self, frame: UserAudio) -> AsyncIterator[Frame]:
        arrived = time.perf_counter()
        self._sid = frame.session_id
        samples = frame.samples
        if frame.sample_rate != VAD_RATE:
            g = math.gcd(frame.sample_rate, VAD_RATE)
            samples = resample_poly(samples, VAD_RATE // g, frame.sample_rate // g).astype(np.float32)
        ep = self._ep
        before = len(ep.audio) * VAD_FRAME  # utterance samples before this chunk
        for event in ep.push(samples):
            if event.kind == "start":
                # The utterance (with its pre-roll) began this long before the end of this chunk.
                self._utt_start_pts = frame.pts + frame.duration - (len(ep.audio) * VAD_FRAME) / VAD_RATE
                self._decodes, self._caption, before = {}, None, 0
                self._discard()
                await self.on_event(SpeechEvent("speech"))
            elif event.kind == "barge":
                await self.on_event(SpeechEvent("barge"))
            elif event.kind == "partial":
                self._live_caption(event.speech_end)
            elif event.kind == "pause":
                self._speculate(event.speech_end)
            elif event.kind == "resume":
                self._drop_stale()
            elif event.kind == "end":
                # Wall time the speech ended: this chunk arrived with audio after that moment.
                after_end = (before + len(samples) - event.speech_end) / VAD_RATE
                async for out in self._finish(event.speech_end, self._utt_start_pts + event.speech_end / VAD_RATE,
                                              arrived - max(0.0, after_end)):
                    yield out
                before = 0

    async def _finish(self, speech_end: int, end_pts: float, end_wall: float) -> AsyncIterator[Frame]:
        t_endpoint = time.perf_counter()
        task = self._decodes.get(speech_end)
        reused = task is not None  # decoded at the pause: usually finished by now
        if task is None:
            task = self._decode(self._ep.samples[:speech_end], VAD_RATE)
        self._decodes = {}
        text = ((await task) or "").strip()
        # What the recogniser adds after the endpoint (the hang-over itself is the endpointer's).
        self.stats.add("asr_after_endpoint", time.perf_counter() - t_endpoint)
        self.stats.mark("asr_decode_reused", 1.0 if reused else 0.0)
        brief = (speech_end - self._ep.speech_start) / VAD_RATE < self._ep.config.min_barge_in_s
        turn = bool(text) and not is_backchannel(text, self.avatar_has_floor(), brief)
        if not turn:
            self._discard()
        await self.on_event(SpeechEvent("end", text, turn, end_pts, end_wall))
        sid = self._sid
        if turn:
            yield EndOfTurn(turn_id=0, role="user", session_id=sid, pts=end_pts)
            yield UserText(text=text, session_id=sid, pts=end_pts)

    async def _transcribe_buffered(self, frame: EndOfTurn) -> AsyncIterator[Frame]:
        sr = self._buf[0].sample_rate
        audio = np.concatenate([b.samples for b in self._buf])
        self._buf = []
        text = ((await self._decode(audio, sr)) or "").strip()
        yield frame
        if text:
            yield UserText(text=text, session_id=frame.session_id, pts=frame.pts)
        else:  # nothing intelligible was said: the turn ends without a reply
            yield EndOfTurn(turn_id=0, role="assistant", session_id=frame.session_id, pts=frame.pts)

    async def stop(self) -> None:
        for t in [*self._decodes.values(), *([self._caption] if self._caption else [])]:
            t.cancel()


class _Reply:
    """One reply being written on a worker thread; its clauses gathered as they come."""

    def __init__(self, text: str, started: float) -> None:
        self.text, self.started = text, started
        self.stop = threading.Event()
        self.items: list[object] = []  # clauses, then an exception or None (the end)
        self.more = asyncio.Event()
        self.worker: concurrent.futures.Future | None = None

    def put(self, item: object) -> None:
        self.items.append(item)
        self.more.set()

    async def drain(self) -> AsyncIterator[object]:
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

        def produce() -> None:
            for fut in prior:  # a discarded reply lets go of the conversation and the LLM first
                with contextlib.suppress(BaseException):
                    fut.result()
            try:
                for clause in self.thinker.reply(self.conv, text, stop=reply.stop):  # checked per token
                    if reply.stop.is_set():
                        break
                    loop.call_soon_threadsafe(reply.put, clause)
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
        yield EndOfTurn(turn_id=turn, session_id=sid, pts=frame.pts, text=" ".join(said))

    async def on_interrupt(self, frame: Interrupt) -> None:
        self._stop.set()
        # What the user actually heard replaces the full reply in short-term memory.
        turns = self.conv.turns
        if frame.heard_text is not None and turns and turns[-1].role == "assistant":
            heard = frame.heard_text.strip()
            if heard != turns[-1].text:
                turns[-1].text = (heard + " ...") if heard else "(interrupted before speaking)"

    async def stop(self) -> None:
        self.discard()


class _Synthesis:
    """One clause being synthesised on a worker thread: its pieces (speech, words, last?, compute
    seconds) as they come, then None; or an exception."""

    def __init__(self) -> None:
        self.items: list[object] = []
        self.more = asyncio.Event()
        self.stop = threading.Event()

    def put(self, item: object) -> None:
        self.items.append(item)
        self.more.set()

    async def drain(self) -> AsyncIterator[tuple]:
        i = 0
        while True:
            while i == len(self.items):
                self.more.clear()
                await self.more.wait()
            item = self.items[i]
            i += 1
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


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

        def work() -> None:
            try:
                t = time.perf_counter()
                if pieced:
                    pieces = self.voice.synthesize_pieces(chunk.text, chunk.emotion)
                else:
                    pieces = iter([(self.voice.synthesize(chunk.text, chunk.emotion), chunk.text, True)])
                for speech, text, last in pieces:
                    now = time.perf_counter()
                    loop.call_soon_threadsafe(syn.put, (speech, text, last, now - t))
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


MAX_SKIPS_KEPT = 10000  # skipped frame times a live session remembers (benches read them)


class FrameClock(Processor):
    """Emits a `Tick` for every video frame that is due.

    Live (wall clock): a timer task ticks at `fps`, skipping frames when the stages behind it
    fall behind (so the stream stays real time). Offline (media clock): ticks cover the media
    that exists: every audio chunk and user audio is followed by the ticks up to its end, and a
    finished reply by a short tail so the avatar settles.
    """

    name = "frame_clock"

    def __init__(self, clock: SessionClock, stats: Stats, fps: float = VIDEO_FPS, tail: float = 0.6,
                 max_backlog: int = 3) -> None:
        super().__init__()
        self.clock, self.stats, self.fps, self.tail = clock, stats, fps, tail
        self.max_backlog = max_backlog
        self.index = 0  # next frame to tick
        self.horizon = 0.0
        self.skipped = 0
        self.skipped_pts: collections.deque[float] = collections.deque(maxlen=MAX_SKIPS_KEPT)  # for benches
        self._timer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.clock.realtime:
            # Start at the present frame: session start-up (loading, warm-up) may have taken
            # seconds, and frames for that time would only be stale.
            self.index = math.ceil(self.clock.now() * self.fps)
            self._timer = asyncio.create_task(self._tick_live())

    async def _tick_live(self) -> None:
        while True:
            due = self.index / self.fps
            delay = due - self.clock.now()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.backlog() > self.max_backlog:
                self.skipped += 1
                self.skipped_pts.append(due)
            else:
                await self.push(Tick(index=self.index, pts=due))
            self.index += 1

    def backlog(self) -> int:
        """Frames waiting in every stage after this one (a slow renderer backs up its inbox)."""
        n, p = 0, self.next
        while p is not None:
            n += len(p.inbox)
            p = p.next
        return n

    def _ticks_until(self, t: float) -> list[Tick]:
        out = []
        while self.index / self.fps < t - 1e-9:
            out.append(Tick(index=self.index, pts=self.index / self.fps))
            self.index += 1
        if isinstance(self.clock, MediaClock):
            self.clock.advance_to(self.index / self.fps)
        return out

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        yield frame
        if self.clock.realtime:
            return
        if isinstance(frame, AudioChunk):
            self.horizon = max(self.horizon, frame.end)
        elif isinstance(frame, UserAudio):
            self.horizon = max(self.horizon, frame.pts + frame.duration)
        elif isinstance(frame, EndOfTurn) and frame.role == "assistant":
            self.horizon = max(self.horizon, self.clock.now()) + self.tail
        elif isinstance(frame, EndOfStream):
            pass
        else:
            return
        for tick in self._ticks_until(self.horizon):
            yield tick

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class FaceProcessor(Processor):
    """Feeds both audio tracks to the face session; on each Tick emits a FaceFrame (§3)."""

    name = "face"

    def __init__(self, face_session, clock: SessionClock, stats: Stats) -> None:
        super().__init__()
        self.face, self.clock, self.stats = face_session, clock, stats

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        if isinstance(frame, AudioChunk):
            self.face.push_agent_audio(frame)
        elif isinstance(frame, UserAudio):
            self.face.push_user_audio(frame)
        elif isinstance(frame, PlanChunk):
            self.face.set_emotion(frame.emotion, frame.pts)
        elif isinstance(frame, Tick):
            with self.stats.time("face", media=1 / VIDEO_FPS):
                values = self.face.frame(frame.pts)
            yield FaceFrame(values=values, layout=self.face.layout.name, session_id=frame.session_id, pts=frame.pts)
        yield frame

    async def on_interrupt(self, frame: Interrupt) -> None:
        self.face.interrupt(self.clock.now())


class BodyProcessor(Processor):
    """Sets gesture prompts from the plan at their times; on each Tick emits a BodyFrame (§4)."""

    name = "body"

    def __init__(self, body_session, clock: SessionClock, stats: Stats) -> None:
        super().__init__()
        self.body, self.clock, self.stats = body_session, clock, stats

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        if isinstance(frame, PlanChunk) and frame.gesture:
            self.body.set_prompt(frame.gesture, frame.pts)
        elif isinstance(frame, Tick):
            with self.stats.time("body", media=1 / VIDEO_FPS):
                pose = self.body.frame(frame.pts)
            yield BodyFrame(features=pose.features, joints=pose.joints, session_id=frame.session_id, pts=frame.pts)
        yield frame

    async def on_interrupt(self, frame: Interrupt) -> None:
        self.body.set_prompt(None, self.clock.now())


class RenderProcessor(Processor):
    """Renders the latest face and body parameters at each Tick into a VideoFrame (§5)."""

    name = "render"

    def __init__(self, renderer, stats: Stats, camera=None, look: str | None = None) -> None:
        super().__init__()
        self.renderer, self.stats, self.camera = renderer, stats, camera
        self.look = look  # the session character's look (a name the renderer's add_look gave); None = default
        self._face: np.ndarray | None = None
        self._joints: np.ndarray | None = None
        self._lock = threading.Lock()  # one GL context may be shared by sessions

    def _render(self, face: np.ndarray, joints: np.ndarray | None) -> np.ndarray:
        with self._lock:
            if self.look is None:
                return self.renderer.render(face, joints, self.camera)
            return self.renderer.render(face, joints, self.camera, self.look)

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        if isinstance(frame, FaceFrame):
            self._face = frame.values
            yield frame
        elif isinstance(frame, BodyFrame):
            self._joints = frame.joints
            yield frame
        elif isinstance(frame, Tick):
            if self._face is None:
                return
            t0 = time.perf_counter()
            image = await self.run_blocking(self._render, self._face, self._joints)
            self.stats.add("render", time.perf_counter() - t0, media=1 / VIDEO_FPS)
            yield VideoFrame(image=image, index=frame.index, session_id=frame.session_id, pts=frame.pts)
        else:
            yield frame
