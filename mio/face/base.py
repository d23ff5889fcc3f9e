"""The Face Animator interface (§3): dual-track audio -> face parameters, speaking *and* listening.

A backend loads its weights once (`__init__`) and makes one `FaceSession` per conversation; the
session holds all streaming state. The runtime feeds it the agent's speech (with phone timings)
and the user's microphone audio as they arrive, and asks for frames at increasing times.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from mio.audio import check_samples
from mio.core.errors import InputError
from mio.core.frames import AudioChunk, Emotion, UserAudio
from mio.core.layouts import LAYOUTS, Layout

MAX_CHUNK_SECONDS = 120.0  # longer audio chunks are refused (a clause is seconds long)


def chunk_samples(chunk: AudioChunk | UserAudio, what: str) -> np.ndarray:
    """A pushed chunk's samples as float32 mono, checked (mio.audio.check_samples), with a finite pts."""
    x = check_samples(chunk.samples, chunk.sample_rate, what=what, max_seconds=MAX_CHUNK_SECONDS)
    pts = chunk.pts
    if isinstance(pts, bool) or not isinstance(pts, int | float | np.floating | np.integer) or not math.isfinite(float(pts)):
        raise InputError(f"{what} pts must be a finite number of seconds, got {pts!r}")
    return x


class FaceSession(ABC):
    layout: Layout

    @abstractmethod
    def push_agent_audio(self, chunk: AudioChunk) -> None:
        """The avatar's own speech, placed at chunk.pts on the session clock."""

    @abstractmethod
    def push_user_audio(self, chunk: UserAudio) -> None:
        """The user's audio (the second track, §3.1), placed at chunk.pts."""

    @abstractmethod
    def set_emotion(self, emotion: Emotion, t: float) -> None:
        """The emotion of the plan clause that starts at time t."""

    @abstractmethod
    def interrupt(self, t: float) -> None:
        """The avatar stopped speaking at t (barge-in): forget agent audio after t."""

    @abstractmethod
    def frame(self, t: float) -> np.ndarray:
        """Face parameters at time t (seconds); called with non-decreasing t. Shape (layout.dim,)."""


class FaceBackend(ABC):
    def __init__(self, layout: str = "arkit52") -> None:
        self.layout = LAYOUTS[layout]

    @abstractmethod
    def new_session(self, seed: int = 0) -> FaceSession:
        """Per-conversation state; weights stay shared."""
