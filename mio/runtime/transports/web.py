"""The web transport: one live `Session` <-> one WebSocket client (the browser page or a game engine).

Independent of the web framework: the server hands it an async `send(str | bytes)` and feeds it
every client message with `handle(message)`; the session's `on_frame` is `WebTransport.on_frame`.

The wire protocol (every message both ways, the binary media header, the error codes) lives in
one file, mio/runtime/transports/messages.py: a pydantic model per message type. Server messages
are built from those models only and queued with `WebTransport.send`; client messages are parsed
by `parse_client_message` straight from the JSON text.

Bounded everywhere: text messages and audio chunks have a maximum size; queued outgoing media
is bounded (video keeps only the newest frames for a slow client; a client that stops reading
altogether is disconnected); every malformed message gets an `error` reply, never a crash.
"""

from __future__ import annotations

import asyncio
import collections
import io
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mio.core.errors import InputError, MioError
from mio.core.frames import (
    AudioChunk,
    BodyFrame,
    EndOfTurn,
    ErrorFrame,
    FaceFrame,
    Frame,
    Interrupt,
    PlanChunk,
    StartOfTurn,
    UserSpeech,
    UserText,
    VideoFrame,
)
from mio.runtime.transports.messages import (
    AUDIO,
    CLIENT_TYPES,  # noqa: F401 - re-exported for clients that import it from here
    HEADER,
    MODES,
    VIDEO,
    BadMessage,
    BodyOut,
    EndMsg,
    ErrorOut,
    FaceOut,
    InterruptMsg,
    InterruptOut,
    MicMsg,
    PingMsg,
    PlanOut,
    PongOut,
    ServerMessage,
    StoryTimeMsg,
    StoryTimeOut,
    TextMsg,
    TurnEndOut,
    TurnStartOut,
    UserPartialOut,
    UserTextOut,
    VadOut,
    encode,
    parse_client_message,
    unpack,  # noqa: F401 - re-exported for clients that import it from here
)
from mio.runtime.transports.messages import round_time as _r

log = logging.getLogger("mio.web")


@dataclass(frozen=True)
class WebLimits:
    max_message_bytes: int = 256 * 1024  # any single client message (text or audio)
    max_outgoing: int = 600  # queued JSON/audio messages before the client counts as stalled
    video_backlog: int = 3  # newest video frames kept for a client that reads slowly
    jpeg_quality: int = 80
    min_mic_rate: int = 8000
    max_mic_rate: int = 48000


class ClientStalled(MioError):
    """The client stopped reading: its outgoing queue is full."""


def pack_audio(chunk: AudioChunk) -> bytes:
    samples = np.ascontiguousarray(chunk.samples, dtype="<f4")
    return HEADER.pack(AUDIO, chunk.sample_rate, chunk.turn_id, chunk.pts) + samples.tobytes()


def pack_video(frame: VideoFrame, quality: int = 80) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame.image, dtype=np.uint8)).save(buf, "JPEG", quality=quality)
    return HEADER.pack(VIDEO, frame.index, 0, frame.pts) + buf.getvalue()


def find_story_clock(session) -> Callable[[Any], Any] | None:
    """The Thinker's story-clock setter, where the Thinker offers one (session, then conversation)."""
    for owner in (session, getattr(session, "conversation", None)):
        fn = getattr(owner, "set_story_time", None)
        if callable(fn):
            return fn
    return None


class WebTransport:
    def __init__(self, send: Callable[[str | bytes], Awaitable[None]], *, mode: str = "browser",
                 limits: WebLimits | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self._send = send
        self.mode = mode
        self.limits = limits or WebLimits()
        self.session = None
        self.ended = asyncio.Event()  # the client sent `end`
        self.transcript: list[dict[str, Any]] = []
        self.transcript_changed = asyncio.Event()  # set at every change: the server stores it at once
        self.stats = collections.Counter()
        self._out: collections.deque[tuple[str, str | bytes]] = collections.deque()
        self._video: collections.deque[VideoFrame] = collections.deque()
        self._wake = asyncio.Event()
        self._stalled = False
        self._replying = False
        self._audio_end = 0.0  # session time the queued speech ends
        self._turn_text: list[str] = []
        self._turn_audio: dict[int, list[float]] = {}  # turn id -> [first audio pts, audio end]
        self._mic_rate = 0
        self._warned_no_asr = False
        self.last_activity = time.monotonic()  # the user's last act (not pings): the server's idle clock

    @property
    def replying(self) -> bool:
        """True while the Thinker is still writing this turn's reply."""
        return self._replying

    def attach(self, session) -> None:
        self.session = session

    # -- session -> client ------------------------------------------------------------------
    def _queue(self, kind: str, payload: str | bytes, front: bool = False) -> None:
        if len(self._out) >= self.limits.max_outgoing:
            self._stalled = True
        elif front:
            self._out.appendleft((kind, payload))
        else:
            self._out.append((kind, payload))
        self._wake.set()

    def send(self, msg: ServerMessage, front: bool = False) -> None:
        """Queue one text message (`front`: ahead of everything queued, as an interrupt must be)."""
        self._queue("json", encode(msg), front)

    def error(self, code: str, message: str) -> None:
        self.stats["errors_sent"] += 1
        self.send(ErrorOut(code=code, message=message))

    def speaking(self) -> bool:
        """True while queued speech has not finished playing on the session clock."""
        return self.session is not None and self._audio_end > self.session.clock.now()

    async def on_frame(self, frame: Frame) -> None:
        """The session's output callback: turn a frame into messages (never blocks)."""
        params = self.mode == "params"
        if isinstance(frame, VideoFrame):
            if not params:
                if len(self._video) >= self.limits.video_backlog:
                    self._video.popleft()
                    self.stats["video_dropped"] += 1
                self._video.append(frame)
                self._wake.set()
        elif isinstance(frame, AudioChunk):
            self._audio_end = max(self._audio_end, frame.end)
            self._turn_audio.setdefault(frame.turn_id, [frame.pts, frame.end])[1] = frame.end
            self.stats["audio_chunks"] += 1
            self._queue("audio", pack_audio(frame))
        elif isinstance(frame, FaceFrame):
            if params:
                self.send(FaceOut(pts=frame.pts, layout=frame.layout, values=frame.values))
        elif isinstance(frame, BodyFrame):
            if params:
                self.send(BodyOut(pts=frame.pts, joints=frame.joints, features=frame.features))
        elif isinstance(frame, UserText):
            self.transcript.append({"role": "user", "text": frame.text, "pts": _r(frame.pts)})
            self.transcript_changed.set()
            self.send(UserTextOut(text=frame.text, pts=frame.pts))
        elif isinstance(frame, StartOfTurn):
            self._replying, self._turn_text = True, []
            self.send(TurnStartOut(turn=frame.turn_id, pts=frame.pts))
        elif isinstance(frame, PlanChunk):
            self._turn_text.append(frame.text)
            self.send(PlanOut(turn=frame.turn_id, index=frame.index, text=frame.text, emotion=frame.emotion.label,
                              intensity=frame.emotion.intensity, gesture=frame.gesture, pts=frame.pts))
        elif isinstance(frame, EndOfTurn):
            if frame.role == "assistant":
                self._replying = False
                # The reply is stamped when it was heard (its first audio), not with the pts of the
                # user's message that the end-of-turn frame carries.
                start, end = self._turn_audio.pop(frame.turn_id, (None, None))
                heard = {"pts": _r(start), "end": _r(end)} if start is not None else {
                    "pts": _r(self.session.clock.now() if self.session is not None else frame.pts)}
                self.transcript.append({"role": "assistant", "text": frame.text, **heard})
                self.transcript_changed.set()
                self.send(TurnEndOut(turn=frame.turn_id, text=frame.text, pts=frame.pts))
        elif isinstance(frame, Interrupt):
            self._on_interrupt(frame)
        elif isinstance(frame, UserSpeech):
            self._on_user_speech(frame)
        elif isinstance(frame, ErrorFrame):
            self.error("pipeline", frame.message)

    def _on_interrupt(self, frame: Interrupt) -> None:
        # Barge-in: queued speech is dropped here, and the client drops what it has scheduled.
        before = len(self._out)
        self._out = collections.deque(m for m in self._out if m[0] != "audio")
        self.stats["audio_dropped"] += before - len(self._out)
        self.stats["interrupts"] += 1
        heard = frame.heard_text.strip()
        cut = {"role": "assistant", "text": (heard + " ...") if heard else "", "pts": _r(frame.pts),
               "end": _r(frame.pts), "interrupted": True}  # pts: when it began to be heard; end: the cut
        if self._replying:  # cut while the Thinker was still writing
            started = [a[0] for a in self._turn_audio.values()]
            self._turn_audio.clear()
            self.transcript.append({**cut, "pts": _r(min(started)), "end": max(_r(min(started)), cut["end"])}
                                   if started else cut)
        elif self.speaking() and self.transcript and self.transcript[-1]["role"] == "assistant":
            began = self.transcript[-1]["pts"]  # written in full, cut while it played (or before it began)
            self.transcript[-1] = {**cut, "pts": began, "end": max(began, cut["end"])}
        self._replying = False
        self.transcript_changed.set()
        if self.session is not None:
            self._audio_end = min(self._audio_end, self.session.clock.now())
        self.send(InterruptOut(heard_text=frame.heard_text, reason=frame.reason, pts=frame.pts), front=True)

    async def run_sender(self) -> None:
        """Drain the outgoing queues into the socket until cancelled. Raises ClientStalled."""
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._out or self._video:
                if self._stalled:
                    raise ClientStalled(f"the client stopped reading ({self.limits.max_outgoing} messages queued)")
                if self._out:
                    _kind, payload = self._out.popleft()
                    await self._send(payload)
                else:
                    frame = self._video.popleft()
                    data = await loop.run_in_executor(None, pack_video, frame, self.limits.jpeg_quality)
                    await self._send(data)
                    self.stats["video_sent"] += 1
            if self._stalled:
                raise ClientStalled(f"the client stopped reading ({self.limits.max_outgoing} messages queued)")

    # -- client -> session ------------------------------------------------------------------
    async def handle(self, message: str | bytes) -> None:
        """One client message. Every problem becomes an `error` message; nothing raises, and the
        session goes on whatever the client sent."""
        try:
            if isinstance(message, bytes | bytearray | memoryview):
                await self._mic_audio(bytes(message))
            elif isinstance(message, str):
                await self._command(message)
            else:
                self.error("bad_message", f"unsupported message of type {type(message).__name__}")
        except BadMessage as e:
            self.error(e.code, str(e))
        except InputError as e:
            self.error("bad_input", str(e))
        except MioError as e:
            self.error("failed", str(e))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a bug must not end the session; it is logged
            self.stats["internal_errors"] += 1
            log.exception("client message failed")
            self.error("internal", f"the server could not handle this message ({type(e).__name__}); "
                                   "the session goes on")

    async def _command(self, text: str) -> None:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.limits.max_message_bytes:
            self.error("too_large", f"message of {size} bytes; the limit is {self.limits.max_message_bytes}")
            return
        msg = parse_client_message(text)
        if not isinstance(msg, PingMsg):
            self.last_activity = time.monotonic()
        if isinstance(msg, TextMsg):
            await self.session.send_text(msg.text)
        elif isinstance(msg, InterruptMsg):
            await self.session.interrupt()
        elif isinstance(msg, MicMsg):
            await self._mic_state(msg)
        elif isinstance(msg, StoryTimeMsg):
            self._story_time(msg.value)
        elif isinstance(msg, PingMsg):
            self.send(PongOut(t=msg.t, session_time=self.session.clock.now()))
        elif isinstance(msg, EndMsg):
            self.ended.set()

    def _story_time(self, value: int | float | str) -> None:
        conv = getattr(self.session, "conversation", None)
        setter = find_story_clock(self.session)
        story = getattr(getattr(conv, "character", None), "story", None)
        if setter is None or story is None:
            name = getattr(getattr(conv, "character", None), "name", "this character")
            self.error("not_supported", f"setting the story time is not supported: {name} has no story clock"
                       if setter is not None else "setting the story time is not supported by this Thinker")
            return
        try:
            if isinstance(value, str):  # "12", "+1", "2:5" as the Thinker's story clock reads them
                parse = getattr(getattr(story, "clock", None), "parse", None)
                value = parse(value, getattr(conv, "story_time", None) or 0.0) if parse else float(value)
            t = setter(value)
        except MioError as e:
            raise InputError(str(e)) from None
        label = conv.story_label() if callable(getattr(conv, "story_label", None)) else ""
        self.send(StoryTimeOut(value=t if isinstance(t, int | float) else value, label=label))

    async def _mic_state(self, msg: MicMsg) -> None:
        if not msg.on:
            await self._end_utterance()
            self._mic_rate = 0
            return
        rate = msg.sample_rate
        lo, hi = self.limits.min_mic_rate, self.limits.max_mic_rate
        if rate is None or not lo <= rate <= hi:
            raise InputError(f'"mic" needs an integer "sample_rate" between {lo} and {hi} Hz, got {rate!r}')
        self._mic_rate = rate
        if self.session.models.asr is None and not self._warned_no_asr:
            self._warned_no_asr = True
            self.error("no_asr", "this server runs without speech recognition: your voice moves the "
                                 "listening face but is not answered; type instead")

    async def _mic_audio(self, data: bytes) -> None:
        if not self._mic_rate:
            raise InputError('microphone audio before {"type": "mic", "on": true, "sample_rate": ...}')
        if not data:
            raise InputError("empty audio message")
        if len(data) > self.limits.max_message_bytes:
            raise InputError(f"audio message of {len(data)} bytes; the limit is {self.limits.max_message_bytes}")
        if len(data) % 2:
            raise InputError(f"audio message of {len(data)} bytes: 16-bit PCM needs an even byte count")
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        self.stats["mic_chunks"] += 1
        await self._forward(samples)

    async def _forward(self, samples: np.ndarray, end_of_turn: bool = False) -> None:
        """Every microphone chunk goes to the session: its ASR stage segments the stream (Silero VAD),
        and the listening face hears the silence between utterances too."""
        now = self.session.clock.now()
        dur = len(samples) / self._mic_rate
        await self.session.send_user_audio(samples, self._mic_rate, pts=max(0.0, now - dur), end_of_turn=end_of_turn)

    def _on_user_speech(self, frame: UserSpeech) -> None:
        if frame.event == "speech":
            self.last_activity = time.monotonic()  # speaking is using the session (the idle clock)
            self.send(VadOut(state="speech"))
        elif frame.event == "partial":
            self.send(UserPartialOut(text=frame.text))
        elif frame.event == "end":
            self.stats["utterances"] += 1
            # speech_end: session time the user stopped speaking (the page's spoken first-audio meter)
            self.send(VadOut(state="end", text=frame.text, turn=frame.turn, speech_end=frame.pts))

    async def _end_utterance(self) -> None:
        if self._mic_rate:  # the microphone went off: an utterance in progress ends here
            await self._forward(np.zeros(self._mic_rate // 100, np.float32), end_of_turn=True)
