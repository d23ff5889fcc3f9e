"""The listening stage of one session: the user's microphone audio through the voice-activity
endpointer (mio.talker.stream_asr) to transcripts, decoded ahead of the end of the turn (at the
user's pauses, for live captions and for a reply that may start early), and the speech events
(start, pause, end, backchannel) the session uses for barge-in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from mio.audio import resample
from mio.core.clock import SessionClock
from mio.core.frames import (
    EndOfTurn,
    Frame,
    UserAudio,
    UserText,
)
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
        samples = resample(frame.samples, frame.sample_rate, VAD_RATE)
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
