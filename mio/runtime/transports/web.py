"""The web transport: one live `Session` <-> one WebSocket client (the browser page or a game engine).

Independent of the web framework: the server hands it an async `send(str | bytes)` and feeds it
every client message with `handle(message)`; the session's `on_frame` is `WebTransport.on_frame`.

Wire protocol (the reference for clients: the page in mio/server/static/app.js, mio/bench/serve.py)
--------------------------------------------------------------------
Server -> client, binary (media): a 24-byte little-endian header `HEADER` then the payload.
    kind 1 AUDIO  aux1 = sample rate, aux2 = turn id, pts; payload float32 mono PCM
    kind 2 VIDEO  aux1 = frame index, aux2 = 0,      pts; payload JPEG (RGB)
    `pts` is seconds on the session clock: the client plays audio and shows video against one
    clock, so they stay in sync whatever the network does.
Server -> client, text: JSON objects with a `type`:
    ready, user_text, user_partial, turn_start, plan, turn_end, interrupt, vad, story_time, pong, error,
    and in parameter mode face / body (FaceFrame / BodyFrame values for game engines).
Client -> server, text: JSON `{"type": ...}`:
    text {text}, interrupt, mic {on, sample_rate}, story_time {value}, ping, end.
Client -> server, binary: microphone audio, 16-bit little-endian mono PCM at the rate announced
    by the last `mic` message; the session's ASR stage cuts it into utterances (Silero VAD).

Bounded everywhere: text messages and audio chunks have a maximum size; queued outgoing media
is bounded (video keeps only the newest frames for a slow client; a client that stops reading
altogether is disconnected); every malformed message gets an `error` reply, never a crash.
"""

from __future__ import annotations

import asyncio
import collections
import io
import json
import math
import struct
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

HEADER = struct.Struct("<BxxxIIxxxxd")  # kind, aux1, aux2, (pad), pts -> 24 bytes, keeps float32 aligned
AUDIO, VIDEO = 1, 2
MODES = ("browser", "params")
CLIENT_TYPES = ("text", "interrupt", "mic", "story_time", "ping", "end")


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


def unpack(data: bytes) -> tuple[int, int, int, float, bytes]:
    """(kind, aux1, aux2, pts, payload) of a server media message (for Python clients and tests)."""
    kind, aux1, aux2, pts = HEADER.unpack_from(data)
    return kind, aux1, aux2, pts, data[HEADER.size:]


def _r(x: float) -> float:
    return round(float(x), 4)


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
        self.stats = collections.Counter()
        self._out: collections.deque[tuple[str, str | bytes]] = collections.deque()
        self._video: collections.deque[VideoFrame] = collections.deque()
        self._wake = asyncio.Event()
        self._stalled = False
        self._replying = False
        self._audio_end = 0.0  # session time the queued speech ends
        self._turn_text: list[str] = []
        self._mic_rate = 0
        self._warned_no_asr = False

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

    def send_json(self, msg: dict[str, Any], front: bool = False) -> None:
        self._queue("json", json.dumps(msg, separators=(",", ":")), front)

    def error(self, code: str, message: str) -> None:
        self.stats["errors_sent"] += 1
        self.send_json({"type": "error", "code": code, "message": message})

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
            self.stats["audio_chunks"] += 1
            self._queue("audio", pack_audio(frame))
        elif isinstance(frame, FaceFrame):
            if params:
                self.send_json({"type": "face", "pts": _r(frame.pts), "layout": frame.layout,
                                "values": np.round(frame.values, 5).tolist()})
        elif isinstance(frame, BodyFrame):
            if params:
                self.send_json({"type": "body", "pts": _r(frame.pts), "joints": np.round(frame.joints, 5).tolist(),
                                "features": np.round(frame.features, 5).tolist()})
        elif isinstance(frame, UserText):
            self.transcript.append({"role": "user", "text": frame.text, "pts": _r(frame.pts)})
            self.send_json({"type": "user_text", "text": frame.text, "pts": _r(frame.pts)})
        elif isinstance(frame, StartOfTurn):
            self._replying, self._turn_text = True, []
            self.send_json({"type": "turn_start", "turn": frame.turn_id, "pts": _r(frame.pts)})
        elif isinstance(frame, PlanChunk):
            self._turn_text.append(frame.text)
            self.send_json({"type": "plan", "turn": frame.turn_id, "index": frame.index, "text": frame.text,
                            "emotion": frame.emotion.label, "intensity": frame.emotion.intensity,
                            "gesture": frame.gesture, "pts": _r(frame.pts)})
        elif isinstance(frame, EndOfTurn):
            if frame.role == "assistant":
                self._replying = False
                self.transcript.append({"role": "assistant", "text": frame.text, "pts": _r(frame.pts)})
                self.send_json({"type": "turn_end", "turn": frame.turn_id, "text": frame.text, "pts": _r(frame.pts)})
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
        cut = {"role": "assistant", "text": (heard + " ...") if heard else "", "pts": _r(frame.pts), "interrupted": True}
        if self._replying:  # cut while the Thinker was still writing
            self.transcript.append(cut)
        elif self.speaking() and self.transcript and self.transcript[-1]["role"] == "assistant":
            self.transcript[-1] = cut  # written in full, cut while it played
        self._replying = False
        if self.session is not None:
            self._audio_end = min(self._audio_end, self.session.clock.now())
        self.send_json({"type": "interrupt", "heard_text": frame.heard_text, "reason": frame.reason,
                        "pts": _r(frame.pts)}, front=True)

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
        """One client message. Every problem becomes an `error` message; nothing raises."""
        try:
            if isinstance(message, bytes | bytearray):
                await self._mic_audio(bytes(message))
            else:
                await self._command(message)
        except (InputError, ValueError, TypeError) as e:
            self.error("bad_input", str(e))
        except MioError as e:
            self.error("failed", str(e))

    async def _command(self, text: str) -> None:
        if len(text.encode()) > self.limits.max_message_bytes:
            self.error("too_large", f"message of {len(text.encode())} bytes; the limit is {self.limits.max_message_bytes}")
            return
        try:
            msg = json.loads(text)
        except json.JSONDecodeError as e:
            self.error("bad_json", f"message is not JSON ({e.msg} at character {e.pos})")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self.error("bad_message", 'a message must be a JSON object with a string "type"')
            return
        kind = msg["type"]
        if kind == "text":
            text_in = msg.get("text")
            if not isinstance(text_in, str):
                raise InputError('"text" message needs a string field "text"')
            await self.session.send_text(text_in)
        elif kind == "interrupt":
            await self.session.interrupt()
        elif kind == "mic":
            await self._mic_state(msg)
        elif kind == "story_time":
            self._story_time(msg.get("value"))
        elif kind == "ping":
            self.send_json({"type": "pong", "t": msg.get("t"), "session_time": _r(self.session.clock.now())})
        elif kind == "end":
            self.ended.set()
        else:
            self.error("unknown_type", f"unknown message type {kind!r}; expected one of {', '.join(CLIENT_TYPES)}")

    def _story_time(self, value: Any) -> None:
        ok = (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)) or (
            isinstance(value, str) and 0 < len(value) <= 64)
        if not ok:
            raise InputError('"story_time" needs a finite number or a short label in "value"')
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
        self.send_json({"type": "story_time", "value": t if isinstance(t, int | float) else value, "label": label})

    async def _mic_state(self, msg: dict[str, Any]) -> None:
        on = msg.get("on")
        if not isinstance(on, bool):
            raise InputError('"mic" message needs a boolean "on"')
        if not on:
            await self._end_utterance()
            self._mic_rate = 0
            return
        rate = msg.get("sample_rate")
        lo, hi = self.limits.min_mic_rate, self.limits.max_mic_rate
        if not isinstance(rate, int) or isinstance(rate, bool) or not lo <= rate <= hi:
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
            self.send_json({"type": "vad", "state": "speech"})
        elif frame.event == "partial":
            self.send_json({"type": "user_partial", "text": frame.text})
        elif frame.event == "end":
            self.stats["utterances"] += 1
            # speech_end: session time the user stopped speaking (the page's spoken first-audio meter)
            self.send_json({"type": "vad", "state": "end", "text": frame.text, "turn": frame.turn,
                            "speech_end": _r(frame.pts)})

    async def _end_utterance(self) -> None:
        if self._mic_rate:  # the microphone went off: an utterance in progress ends here
            await self._forward(np.zeros(self._mic_rate // 100, np.float32), end_of_turn=True)
