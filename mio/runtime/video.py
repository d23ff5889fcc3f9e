"""The pipeline stages of one session, video side: FrameClock -> Face -> Body -> Render. The frame clock
ticks every video frame that is due (live: on the wall clock, skipping frames when the stages behind
fall back; offline: the frames of the media that exists); each tick gets the face, then the body,
then the picture. Before it: listening (mio.runtime.listening), Thinker and Talker (mio.runtime.processors).
"""

from __future__ import annotations

import asyncio
import collections
import math
import threading
import time
from collections.abc import AsyncIterator

import numpy as np

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
    Tick,
    UserAudio,
    VideoFrame,
)
from mio.core.layouts import VIDEO_FPS
from mio.runtime.pipeline import Processor
from mio.runtime.stats import Stats

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
