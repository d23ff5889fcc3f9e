"""Offline conversations on the media clock: scripted turns in, an MP4 (and timings) out.

Used by `mio demo`, `mio say` and `mio chat --record`. Frames carry media time, so the file is
the same however fast the machine is; wall-clock timings are recorded beside it. With `output`
the recording streams to that file as the conversation goes (nothing under its name until
`close()` completes it; `close(save=False)` or a crash leaves nothing); without it the frames are
kept in memory (`keep=True`, for tests) or not at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mio.core.frames import Frame, PlanChunk, UserText
from mio.runtime.session import Models, Session
from mio.runtime.transports.mp4 import MediaRecorder


@dataclass
class TurnResult:
    user: str  # what the user said (typed, or the ASR transcript of their voice)
    reply: str  # what the avatar said
    ttfa: float | None  # wall seconds: user turn complete -> first reply audio
    ttfv: float | None  # wall seconds: user turn complete -> first reply video frame


@dataclass
class OfflineConversation:
    models: Models
    lead_in: float = 0.6  # seconds of idle avatar before the first turn
    user_pause: float = 0.4  # silence before each user utterance
    on_clause: Callable[[PlanChunk], None] | None = None
    turns: list[TurnResult] = field(default_factory=list)
    output: str | None = None  # .mp4 or .wav to stream the recording to
    keep: bool = True  # without `output`: keep the frames in memory (False: record nothing)

    def __post_init__(self) -> None:
        fps = self.models.config.fps
        self.recorder: MediaRecorder | None = (MediaRecorder(self.output, fps=fps) if self.output is not None
                                               else MediaRecorder(fps=fps) if self.keep else None)
        self.session = Session(self.models, realtime=False, on_frame=self._on_frame)
        self._reply: list[str] = []
        self._user_text: str = ""

    async def _on_frame(self, frame: Frame) -> None:
        if self.recorder is not None:
            self.recorder.add(frame)
        if isinstance(frame, PlanChunk):
            self._reply.append(frame.text)
            if self.on_clause is not None:
                self.on_clause(frame)
        elif isinstance(frame, UserText):
            self._user_text = frame.text

    async def start(self) -> None:
        await self.session.start()
        self.session.clock.advance_to(self.lead_in)

    async def say_text(self, text: str) -> TurnResult:
        self._reply, self._user_text = [], text
        await self.session.send_text(text)
        return await self._finish()

    async def say_audio(self, samples: np.ndarray, sample_rate: int, chunk_s: float = 0.2) -> TurnResult:
        """The user speaks: audio goes in as a stream of chunks (the listening face sees it),
        then ASR turns it into the user's text at the end of the utterance."""
        self._reply, self._user_text = [], ""
        t = self.session.clock.now() + self.user_pause
        step = int(chunk_s * sample_rate)
        for k in range(0, len(samples), step):
            last = k + step >= len(samples)
            await self.session.send_user_audio(samples[k : k + step], sample_rate, pts=t + k / sample_rate,
                                               end_of_turn=last)
        return await self._finish()

    async def _finish(self) -> TurnResult:
        await self.session.wait_turn()
        await asyncio.sleep(0)  # let the last frames of the turn reach the recorder
        timing = self.session.timings[-1]
        result = TurnResult(
            user=self._user_text,
            reply=" ".join(self._reply),
            ttfa=None if timing.first_audio is None else timing.first_audio - timing.t_input,
            ttfv=None if timing.first_video is None else timing.first_video - timing.t_input,
        )
        self.turns.append(result)
        return result

    async def close(self, path: str | None = None, *, save: bool = True) -> None:
        """End the session and complete the recording (`output`, or `path` for a recording kept
        in memory). `save=False`, or an error while closing, deletes a streamed recording."""
        streaming = self.recorder is not None and self.recorder.path is not None
        try:
            if save:
                await self.session.close()
            else:  # an error or a signal: stop at once instead of draining the pipeline
                await self.session.abort()
        except BaseException:
            if streaming:
                self.recorder.abort()
            raise
        if streaming:
            self.recorder.finish() if save else self.recorder.abort()
        elif path is not None and save and self.recorder is not None:
            self.recorder.write(path)
