"""The client side of `mio bench serve`: a page's connection as the benchmark plays it (BenchClient:
the session's messages timestamped on arrival, the microphone streamed in real time) and the page's
jitter buffer (static/app.js) replayed on the arrivals to measure A/V offset and dropped audio.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mio.runtime.pacing import leading_silence, sound_span
from mio.runtime.transports.messages import AUDIO, VIDEO, unpack

# The page's jitter buffer (static/app.js): initial playout delay, adaptation window and margin.
JITTER_S, LATE_WINDOW, MARGIN_S, MAX_STEP_S = 0.08, 50, 0.02, 0.5
MIC_RATE, MIC_CHUNK_S, HISS_LEVEL = 16000, 0.1, 0.002
@dataclass
class Arrival:
    t: float  # perf_counter at receipt
    kind: str  # "audio", "video" or a JSON type
    pts: float = 0.0
    turn: int = 0
    duration: float = 0.0
    lead: float = 0.0  # audio: silence at the head of the chunk
    msg: dict = field(default_factory=dict)


def quantile(xs: list[float], q: float) -> float | None:
    """Nearest-rank quantile, as `mio bench pipeline` reports them (P50 of two turns is the lower)."""
    from mio.bench.pipeline import quantile

    return quantile(xs, q)


class JitterBuffer:
    """The page's playout clock, replayed: session time pts plays at client time pts + offset."""

    def __init__(self) -> None:
        self.offset: float | None = None
        self.lateness: list[float] = []
        self.steps = 0

    def video(self, t: float, pts: float, audio_playing: bool) -> None:
        arrival = t - pts
        if self.offset is None:
            self.offset = arrival + JITTER_S
        self.lateness = [*self.lateness[-(LATE_WINDOW - 1):], arrival - self.offset]
        if audio_playing or len(self.lateness) < 10:
            return
        tail = sorted(self.lateness)[int(0.95 * (len(self.lateness) - 1))] + MARGIN_S
        step = min(tail, MAX_STEP_S) if tail > 0.005 else (-0.02 if tail < -0.02 else 0.0)
        if step:
            self.offset += step
            self.lateness = [x - step for x in self.lateness]
            self.steps += 1


class BenchClient:
    """An asyncio WebSocket client that records every message with its arrival time, replays the
    page's jitter buffer on them, and streams a microphone."""

    def __init__(self, ws, name: str) -> None:
        self.ws, self.name = ws, name
        self.log: list[Arrival] = []
        self.buffer = JitterBuffer()
        self.offsets: list[tuple[float, float]] = []  # (video pts, how late it is drawn on the audio clock)
        self.audio_late = 0  # audio chunks that arrived after their time on the buffer (cut by the page)
        self.audio_end = 0.0  # client time the scheduled speech ends
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())
        self._utterances: asyncio.Queue[tuple[np.ndarray, asyncio.Future]] = asyncio.Queue()
        self._mic: asyncio.Task | None = None

    async def _read(self) -> None:
        async for raw in self.ws:
            t = time.perf_counter()
            if isinstance(raw, bytes):
                kind, aux1, aux2, pts, payload = unpack(raw)
                if kind == AUDIO:
                    samples = np.frombuffer(payload, "<f4")
                    a = Arrival(t, "audio", pts, aux2, len(samples) / aux1, leading_silence(samples, aux1))
                    off = self.buffer.offset
                    if off is not None:
                        if t > pts + off + a.duration:
                            self.audio_late += 1
                        self.audio_end = max(self.audio_end, pts + off + a.duration)
                    self.log.append(a)
                elif kind == VIDEO:
                    self.buffer.video(t, pts, audio_playing=t < self.audio_end)
                    self.offsets.append((pts, max(0.0, t - (pts + self.buffer.offset))))
                    self.log.append(Arrival(t, "video", pts, aux1))
            else:
                msg = json.loads(raw)
                if msg.get("type") == "interrupt":
                    self.audio_end = min(self.audio_end, t)
                self.log.append(Arrival(t, msg["type"], float(msg.get("pts") or 0.0), int(msg.get("turn") or 0), msg=msg))
            self._new.set()

    async def send(self, msg: dict) -> float:
        t = time.perf_counter()
        await self.ws.send(json.dumps(msg))
        return t

    async def wait_for(self, pred: Callable[[Arrival], bool], after: float, timeout: float = 120.0) -> Arrival:
        deadline = time.perf_counter() + timeout
        while True:
            for a in self.log:
                if a.t >= after and pred(a):
                    return a
            left = deadline - time.perf_counter()
            if left <= 0 or self._reader.done():
                raise TimeoutError(f"{self.name}: no such message from the server")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), left)
            except TimeoutError:
                pass

    def audible(self, a: Arrival) -> float:
        """Client time the first sound of audio chunk `a` plays on the page's clock."""
        due = a.pts + self.buffer.offset if self.buffer.offset is not None else a.t
        return max(a.t, due) + a.lead

    # -- the microphone ------------------------------------------------------------------------
    async def mic_on(self) -> None:
        await self.send({"type": "mic", "on": True, "sample_rate": MIC_RATE})
        self._mic = asyncio.create_task(self._stream_mic())

    def say(self, pcm: np.ndarray) -> asyncio.Future:
        """Queue an utterance (float32 at 16 kHz); resolves to (speech start, speech end) client times."""
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        self._utterances.put_nowait((pcm, done))
        return done

    async def _stream_mic(self) -> None:
        rng = np.random.default_rng(abs(hash(self.name)) % 2**32)
        step = int(MIC_CHUNK_S * MIC_RATE)
        t_next = time.perf_counter()
        current: tuple[np.ndarray, asyncio.Future, float, float] | None = None
        pos = 0
        while True:
            if current is None and not self._utterances.empty():
                pcm, done = self._utterances.get_nowait()
                span = sound_span(pcm, MIC_RATE) or (0.0, len(pcm) / MIC_RATE)
                current, pos = (pcm, done, span[0], span[1]), 0
            chunk = (HISS_LEVEL * rng.standard_normal(step)).astype(np.float32)
            if current is not None:
                pcm, done, s0, s1 = current
                piece = pcm[pos:pos + step]
                chunk[:len(piece)] += piece
                pos += step
                if pos >= len(pcm):  # a chunk sent at T holds what the microphone heard in [T - 0.1 s, T]
                    t0 = t_next - (pos - step) / MIC_RATE - MIC_CHUNK_S
                    done.set_result((t0 + s0, t0 + s1))
                    current = None
            await asyncio.sleep(max(0.0, t_next - time.perf_counter()))
            await self.ws.send((np.clip(chunk, -1, 1) * 32767).astype("<i2").tobytes())
            t_next += MIC_CHUNK_S

    async def close(self) -> None:
        if self._mic is not None:
            self._mic.cancel()
        await self.ws.close()
        self._reader.cancel()
