"""The pipeline stages of one session, speech side: ASR -> Thinker -> Talker (the video side, FrameClock ->
Face -> Body -> Render, is mio.runtime.video).

Each stage keeps its per-session state here and uses shared, already-loaded backends (weights
load once per process, see `mio.runtime.session.Models`).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from mio.core.clock import SessionClock
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
from mio.runtime.pacing import trim_silence
from mio.runtime.pipeline import Processor
from mio.runtime.stats import Stats
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
                 avatar_has_floor: Callable[[], bool] = lambda: False) -> None:
        super().__init__()
        self.asr, self.stats, self.context = asr, stats, context
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
        """Decode the utterance up to `speech_end` now; keep it if the endpoint follows."""
        if self.asr is None or speech_end in self._decodes:
            return
        self._decodes[speech_end] = self._decode(self._ep.samples[:speech_end], VAD_RATE)

    def _drop_stale(self) -> None:
        """Speech resumed: decodes of the utterance so far are stale (a queued one is skipped)."""
        for fut in self._decodes.values():
            fut.cancel()
        self._decodes = {}

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


class ThinkerProcessor(Processor):
    """UserText -> StartOfTurn, PlanChunk*, EndOfTurn. Streams clauses as the LLM writes them."""

    name = "thinker"

    def __init__(self, thinker, conversation, stats: Stats) -> None:
        super().__init__()
        self.thinker, self.conv, self.stats = thinker, conversation, stats
        self.turn_id = 0
        self._stop = threading.Event()

    async def start(self) -> None:
        with self.stats.time("thinker_warm"):
            await self.run_blocking(self.thinker.warm, self.conv)

    def _produce(self, text: str, loop: asyncio.AbstractEventLoop, q: asyncio.Queue) -> None:
        try:
            for clause in self.thinker.reply(self.conv, text):
                if self._stop.is_set():
                    break
                loop.call_soon_threadsafe(q.put_nowait, clause)
        except BaseException as e:  # noqa: BLE001 - handed to the event loop
            loop.call_soon_threadsafe(q.put_nowait, e)
        loop.call_soon_threadsafe(q.put_nowait, None)

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        if not isinstance(frame, UserText):
            yield frame
            return
        text = self.thinker.check_input(frame.text)
        self.turn_id += 1
        turn, sid = self.turn_id, frame.session_id
        yield frame  # the transcript, for transports that show it
        yield StartOfTurn(turn_id=turn, session_id=sid, pts=frame.pts)
        self._stop.clear()
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        t0 = time.perf_counter()
        worker = loop.run_in_executor(None, self._produce, text, loop, q)
        said: list[str] = []
        try:
            index = 0
            while True:
                item = await q.get()
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
            self._stop.set()
            await asyncio.shield(worker)
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


class TalkerProcessor(Processor):
    """PlanChunk -> (PlanChunk re-stamped, AudioChunk): speech per clause, placed on the session clock.

    Each clause's audio is trimmed to its sound (mio.runtime.pacing): the voices render ~0.3 s of
    silence before the first word, which the listener would wait through on every reply.
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
        speech = await self.run_blocking(self.voice.synthesize, frame.text, frame.emotion)
        samples, words, phones = speech.samples, speech.words, speech.phones
        if self.trim:
            cut = trim_silence(samples, speech.sample_rate, frame.text, words, phones)
            samples, words, phones = cut.samples, cut.words, cut.phones
            self.stats.add("talker_trimmed_lead", cut.lead_cut_s)
        duration = len(samples) / speech.sample_rate
        self.stats.add("talker", time.perf_counter() - t0, media=duration)
        start = max(self.playhead, self.clock.now())
        if frame.turn_id != self._turn:  # a new reply starts after the user stopped speaking
            self._turn = frame.turn_id
            start = max(start, self.user_end + self.response_gap)
            if self.clock.realtime:
                start = max(start, self.clock.now() + self.schedule_lead)
        self.playhead = start + duration
        frame.pts = start
        yield frame
        yield AudioChunk(samples=samples, sample_rate=speech.sample_rate, turn_id=frame.turn_id,
                         text=frame.text, words=words, phones=phones, emotion=frame.emotion,
                         session_id=frame.session_id, pts=start)

    async def on_interrupt(self, frame: Interrupt) -> None:
        self.playhead = self.clock.now()
