"""Fake backends for pipeline tests: deterministic, instant, no model files.

They implement the real interfaces (Voice, FaceBackend, BodyBackend, Renderer, ChatLLM) so the
runtime's logic (ordering, interruption, timing) is tested without loading models.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator

import numpy as np

from mio.body.base import BodyBackend, BodyPose, BodySession
from mio.core.frames import AudioChunk, Emotion, Segment, UserAudio
from mio.core.layouts import ARKIT52, HUMANML3D, blendshape_index
from mio.face.base import FaceBackend, FaceSession
from mio.render.base import Renderer
from mio.talker.base import Speech, Voice
from mio.thinker.llm.base import ChatLLM
from mio.thinker.memory.embed import HashEmbedder


class FakeLLM(ChatLLM):
    """Streams a fixed reply word by word, with an optional delay per piece."""

    def __init__(self, reply: str | list[str] = "Hello there, friend. I am Mio! How are you today?",
                 delay: float = 0.0) -> None:
        self.replies = [reply] if isinstance(reply, str) else list(reply)  # one per call; the last repeats
        self.reply, self.delay = self.replies[0], delay
        self.calls: list[list[dict[str, str]]] = []
        self.sessions: list[str | None] = []  # the session of each call
        self.forgotten: list[str] = []
        self.warmed = 0

    def stream(self, messages, max_tokens, temperature, *, session=None) -> Iterator[str]:
        self.calls.append(messages)
        self.sessions.append(session)
        reply = self.replies[min(len(self.calls) - 1, len(self.replies) - 1)]
        for i, word in enumerate(reply.split(" ")):
            if self.delay:
                time.sleep(self.delay)
            yield word if i == 0 else " " + word

    def warm(self, messages, *, session=None) -> None:
        self.warmed += 1

    def forget(self, session: str) -> None:
        self.forgotten.append(session)


class FakeVoice(Voice):
    """0.1 s of a 200 Hz tone per word, with evenly spaced word timings."""

    name = "fake"
    sample_rate = 24000

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.texts: list[str] = []

    def synthesize(self, text: str, emotion: Emotion | None = None) -> Speech:
        if self.delay:
            time.sleep(self.delay)
        self.texts.append(text)
        words = text.split()
        n = int(0.1 * self.sample_rate) * max(1, len(words))
        t = np.arange(n) / self.sample_rate
        samples = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
        segs = tuple(Segment(w, 0.1 * i, 0.1 * (i + 1)) for i, w in enumerate(words))
        return Speech(samples, self.sample_rate, words=segs)


class FakeFaceSession(FaceSession):
    layout = ARKIT52

    def __init__(self) -> None:
        self.agent: list[AudioChunk] = []
        self.user: list[UserAudio] = []
        self.emotions: list[tuple[Emotion, float]] = []
        self.interrupted_at: list[float] = []

    def push_agent_audio(self, chunk: AudioChunk) -> None:
        self.agent.append(chunk)

    def push_user_audio(self, chunk: UserAudio) -> None:
        self.user.append(chunk)

    def set_emotion(self, emotion: Emotion, t: float) -> None:
        self.emotions.append((emotion, t))

    def interrupt(self, t: float) -> None:
        self.interrupted_at.append(t)
        self.agent = [c for c in self.agent if c.pts < t]

    def frame(self, t: float) -> np.ndarray:
        v = ARKIT52.zeros()
        speaking = any(c.pts <= t < c.end for c in self.agent)
        v[blendshape_index("jawOpen")] = 0.6 if speaking else 0.0
        return v


class FakeFace(FaceBackend):
    def __init__(self) -> None:
        super().__init__("arkit52")
        self.sessions: list[FakeFaceSession] = []

    def new_session(self, seed: int = 0) -> FakeFaceSession:
        s = FakeFaceSession()
        self.sessions.append(s)
        return s


class FakeBodySession(BodySession):
    def __init__(self) -> None:
        self.prompts: list[tuple[str | None, float]] = []

    def set_prompt(self, prompt: str | None, t: float) -> None:
        self.prompts.append((prompt, t))

    def frame(self, t: float) -> BodyPose:
        return BodyPose(features=HUMANML3D.zeros(), joints=np.zeros((22, 3), np.float32))


class FakeBody(BodyBackend):
    def __init__(self) -> None:
        self.sessions: list[FakeBodySession] = []

    def new_session(self, seed: int = 0) -> FakeBodySession:
        s = FakeBodySession()
        self.sessions.append(s)
        return s


class FakeRenderer(Renderer):
    """A 16x16 image whose brightness is the jawOpen value; records its thread."""

    width = height = 16

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.threads: set[int] = set()
        self.calls = 0

    def render(self, face, joints, camera=None) -> np.ndarray:
        self.threads.add(threading.get_ident())
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        level = int(255 * float(face[blendshape_index("jawOpen")]))
        return np.full((16, 16, 3), level, np.uint8)


def fake_models(reply: str | None = None, llm_delay: float = 0.0, voice_delay: float = 0.0, render_delay: float = 0.0):
    """A `Models` object with fake backends (bypasses loading)."""
    from mio.core.config import MioConfig
    from mio.runtime.session import Models, RenderWorker
    from mio.thinker.persona import load_character
    from mio.thinker.thinker import Thinker

    m = Models.__new__(Models)
    m.config = MioConfig()
    m.character = load_character("mio")
    m.load_times = {}
    thinker_cfg = dataclasses.replace(m.config.thinker, memory_dir=":memory:", embedder="hash")
    m.thinker = Thinker(thinker_cfg, llm=FakeLLM(reply or FakeLLM().reply, delay=llm_delay), embedder=HashEmbedder())
    m.voice = FakeVoice(delay=voice_delay)
    m.face = FakeFace()
    m.body = FakeBody()
    m.renderer = RenderWorker(lambda: FakeRenderer(delay=render_delay))
    m.asr = None
    from mio.talker.stream_asr import EnergyFrameVAD

    m.vad = EnergyFrameVAD()  # a tone is "speech" to the energy VAD (Silero wants a real voice)
    return m
