"""Sessions: shared weights (`Models`, loaded once per process) and per-conversation state (`Session`).

Following the load -> create_context -> handle -> destroy_context life of OpenAvatarChat's
handlers: `Models` holds every backend's weights; each `Session` makes its own conversation
memory, face/body streaming state, clock and pipeline, so sessions never see each other's state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from mio.audio import check_samples
from mio.core import registry
from mio.core.clock import MediaClock, SessionClock, WallClock
from mio.core.config import MioConfig
from mio.core.frames import (
    AudioChunk,
    EndOfStream,
    EndOfTurn,
    ErrorFrame,
    Frame,
    Interrupt,
    UserAudio,
    UserSpeech,
    UserText,
    VideoFrame,
)
from mio.runtime.cast import look_spec, voice_spec
from mio.runtime.listening import ASRProcessor, SpeechEvent
from mio.runtime.pipeline import Pipeline
from mio.runtime.processors import TalkerProcessor, ThinkerProcessor
from mio.runtime.render_process import RenderProcess, create_renderer
from mio.runtime.stats import Stats
from mio.runtime.video import BodyProcessor, FaceProcessor, FrameClock, RenderProcessor
from mio.talker.asr import asr_context
from mio.talker.voices.bank import shared_bank
from mio.thinker.persona import Character, load_character
from mio.thinker.thinker import Thinker

MAX_USER_AUDIO_S = 60.0
USER_AUDIO_RATES = (8000, 48000)  # Hz a client may send the microphone at


class RenderWorker:
    """Owns the renderer on one dedicated thread: a GL context stays on the thread that made it."""

    def __init__(self, factory: Callable[[], object]) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mio-render")
        self.renderer = self._pool.submit(factory).result()

    def add_look(self, spec: str | dict) -> str:
        return self._pool.submit(self.renderer.add_look, spec).result()

    def render(self, face, joints, camera=None, look: str | None = None) -> np.ndarray:
        if look is None:  # the default look: also for renderers of one look
            return self._pool.submit(self.renderer.render, face, joints, camera).result()
        return self._pool.submit(self.renderer.render, face, joints, camera, look).result()

    @property
    def default_look(self) -> str:
        return self.renderer.default_look

    @property
    def width(self) -> int:
        return self.renderer.width

    @property
    def height(self) -> int:
        return self.renderer.height

    def close(self) -> None:
        self._pool.submit(self.renderer.close).result()
        self._pool.shutdown()


def _warmed(voice):
    voice.warm()
    return voice


class Models:
    """Every backend's weights, loaded once per process and shared by all sessions."""

    def __init__(self, config: MioConfig, *, asr: bool = False, progress: Callable[[str], None] | None = None,
                 character: Character | None = None) -> None:
        self.config = config
        self.character = character or load_character(config.character)
        say = progress or (lambda msg: None)
        self.load_times: dict[str, float] = {}

        def timed(name: str, fn: Callable[[], object]) -> object:
            say(f"loading {name} ...")
            t0 = time.perf_counter()
            obj = fn()
            self.load_times[name] = round(time.perf_counter() - t0, 3)
            return obj

        cfg = config
        self.thinker: Thinker = timed(f"thinker ({cfg.thinker.backend})", lambda: Thinker(cfg.thinker))
        # Voices: engines loaded once per process and shared; each character's card picks one (cast.py)
        self.voices = shared_bank(cfg.talker)
        self._look_names: dict[str, str | None] = {}
        spec = voice_spec(self.character, cfg.talker)
        self.voice = timed(f"talker ({(spec or self.voices.default_spec).describe()})", lambda: self.voices.get(spec))
        self.face = timed(f"face ({cfg.face.backend})", lambda: registry.create("face", cfg.face.backend, cfg.face))
        self.body = timed(f"body ({cfg.body.backend})", lambda: registry.create("body", cfg.body.backend, cfg.body))
        where = "own process" if cfg.render.process else "thread"
        self.renderer = timed(f"renderer ({cfg.render.backend}, {where})", self._start_renderer)
        self.asr = None
        if asr:
            from mio.talker.asr import WhisperASR

            self.asr = timed("asr (whisper tiny.en)", lambda: _warmed(WhisperASR()))
        from mio.talker.stream_asr import load_vad

        self.vad = timed("vad (silero)", load_vad)  # segments the microphone, with or without ASR

    def _start_renderer(self) -> RenderProcess | RenderWorker:
        rcfg = self.config.render
        spec = look_spec(self.character, rcfg)
        if rcfg.process:
            return RenderProcess(rcfg.backend, rcfg, spec)
        return RenderWorker(functools.partial(create_renderer, rcfg.backend, rcfg, spec))

    # -- the cast: a session only picks what is loaded here ------------------------------
    def voice_for(self, character: Character):
        """The character's voice (its card's, unless the user chose talker.backend/voice), shared."""
        return self.voices.get(voice_spec(character, self.config.talker))

    def look_for(self, character: Character) -> str | None:
        """The name of the character's look in the renderer (None: the renderer's default look)."""
        spec = look_spec(character, self.config.render)
        if spec is None or not hasattr(self.renderer, "add_look"):  # one-look renderers (parameter streams)
            return None
        key = json.dumps(spec, sort_keys=True)
        if key not in self._look_names:
            self._look_names[key] = self.renderer.add_look(spec)  # built or loaded once per process
        return self._look_names[key]

    def prepare(self, characters, progress: Callable[[str], None] | None = None) -> None:
        """Load every voice and look these characters use, so that starting a session only picks."""
        say = progress or (lambda msg: None)
        for ch in characters:
            t0 = time.perf_counter()
            self.voice_for(ch)
            self.look_for(ch)
            say(f"cast: {ch.name} ready ({time.perf_counter() - t0:.1f} s)")

    def close(self) -> None:
        self.renderer.close()


@dataclass
class TurnTiming:
    t_input: float  # wall time the user's turn was complete
    first_audio: float | None = None  # wall time of the reply's first AudioChunk
    first_audio_pts: float | None = None
    first_video: float | None = None  # wall time of the first VideoFrame at/after first_audio_pts


class Session:
    """One conversation: its own memory, streaming state, clock and pipeline over shared `Models`."""

    _ids = itertools.count(1)

    def __init__(self, models: Models, *, realtime: bool = False, user_id: str = "guest",
                 on_frame: Callable[[Frame], Awaitable[None]] | None = None, seed: int | None = None,
                 trajectory=None, remember: bool = True) -> None:
        """`remember` False: the user's lines are not kept in episodic memory (mio.server: an
        anonymous visitor, whom no later session can be)."""
        self.models = models
        self.id = f"s{next(self._ids)}-{uuid.uuid4().hex[:6]}"
        self.user_id = user_id
        self.clock: SessionClock = WallClock() if realtime else MediaClock()
        self.stats = Stats()
        self.conversation = models.thinker.new_conversation(models.character, user_id=user_id, session_id=self.id,
                                                            remember=remember)
        # Self-evolution (§6.2.1): a mio.thinker.evolve.trajectory.TrajectoryLog records turns and reactions.
        self.trajectory = trajectory.begin(self.id, user_id, models.config.character) if trajectory is not None else None
        seed = models.config.seed if seed is None else seed
        self.face = models.face.new_session(seed)
        self.body = models.body.new_session(seed)
        self.on_frame = on_frame
        self.timings: list[TurnTiming] = []
        self.errors: list[str] = []
        self._spoken: list[AudioChunk] = []  # this turn's audio, for what-was-heard on barge-in
        self._turn_done = asyncio.Event()
        self._turn_done.set()
        procs = []
        self.thinker_stage = ThinkerProcessor(models.thinker, self.conversation, self.stats)
        talker = TalkerProcessor(models.voice_for(models.character), self.clock, self.stats)
        if models.asr is not None or realtime:  # live: the endpointer also serves voice barge-in
            preempt = realtime and models.config.asr.preemptive
            procs.append(ASRProcessor(models.asr, self.stats, context=asr_context(models.character), clock=self.clock,
                                      vad=getattr(models, "vad", None), endpoint=models.config.asr, on_event=self._on_speech,
                                      avatar_has_floor=self.has_floor,
                                      on_speculate=self._speculate if preempt else None,
                                      on_discard=self.thinker_stage.discard))
            self.thinker_stage.on_speculative_clause = talker.prepare
        procs += [
            self.thinker_stage,
            talker,
            FrameClock(self.clock, self.stats, fps=models.config.fps),
            FaceProcessor(self.face, self.clock, self.stats),
            BodyProcessor(self.body, self.clock, self.stats),
            RenderProcessor(models.renderer, self.stats, look=models.look_for(models.character)),
        ]
        self.pipeline = Pipeline(procs, self._output)

    # -- output side --------------------------------------------------------------------
    async def _output(self, frame: Frame) -> None:
        now = time.perf_counter()
        timing = self.timings[-1] if self.timings else None
        if self.trajectory is not None:
            self.trajectory.observe(frame)
        if isinstance(frame, AudioChunk):
            self._spoken.append(frame)
            if timing is not None and timing.first_audio is None:
                timing.first_audio, timing.first_audio_pts = now, frame.pts
        elif isinstance(frame, VideoFrame):
            if timing and timing.first_audio_pts is not None and timing.first_video is None \
                    and frame.pts >= timing.first_audio_pts - 1e-6:
                timing.first_video = now
        elif isinstance(frame, EndOfTurn) and frame.role == "assistant":
            self._turn_done.set()
        elif isinstance(frame, ErrorFrame):
            self.errors.append(frame.message)
            if self.timings:
                self._turn_done.set()
        if self.on_frame is not None:
            await self.on_frame(frame)

    def heard_text(self, t: float) -> str:
        """The words of this turn's speech that had started playing before session time t."""
        words: list[str] = []
        for chunk in self._spoken:
            if chunk.pts >= t:
                break
            if chunk.end <= t:
                words.append(chunk.text)
            elif chunk.words:
                words += [w.label for w in chunk.words if chunk.pts + w.start < t]
            else:  # no timings: assume words are evenly spread
                split = chunk.text.split()
                words += split[: int(len(split) * (t - chunk.pts) / chunk.duration)]
        return " ".join(words)

    # -- input side ---------------------------------------------------------------------
    async def start(self) -> None:
        await self.pipeline.start()

    async def send_text(self, text: str) -> None:
        """The user typed `text`. Barges in if the avatar is still talking."""
        text = self.models.thinker.check_input(text)
        self.thinker_stage.discard()  # a reply begun on the user's speech is not this one
        if not self._turn_done.is_set() or self.speaking():
            await self.interrupt()
        self._begin_turn()
        await self.pipeline.put(UserText(text=text, user_id=self.user_id, session_id=self.id, pts=self.clock.now()))

    async def send_user_audio(self, samples: np.ndarray, sample_rate: int, pts: float | None = None,
                              end_of_turn: bool = False) -> None:
        samples = check_audio(samples, sample_rate)
        if self.trajectory is not None:
            self.trajectory.user_audio(samples, sample_rate)
        t = self.clock.now() if pts is None else pts
        if isinstance(self.clock, MediaClock):
            self.clock.advance_to(t)
        await self.pipeline.put(UserAudio(samples=samples, sample_rate=sample_rate, session_id=self.id, pts=t))
        if end_of_turn:
            if not self.clock.realtime:  # live, the ASR stage begins the turn when it has a transcript
                self._begin_turn()
            await self.pipeline.put(EndOfTurn(turn_id=0, role="user", session_id=self.id,
                                              pts=t + len(samples) / sample_rate))

    def _begin_turn(self, t_input: float | None = None) -> None:
        self._spoken = []
        self._turn_done.clear()
        self.timings.append(TurnTiming(t_input=time.perf_counter() if t_input is None else t_input))

    def _speculate(self, text: str) -> None:
        """The user paused and said `text`: start the reply now; it goes out if the turn ends here."""
        self.thinker_stage.speculate(text, self.id)

    def has_floor(self) -> bool:
        """The avatar is answering or still speaking (a "yeah" now is a backchannel)."""
        return not self._turn_done.is_set() or self.speaking()

    async def _on_speech(self, event: SpeechEvent) -> None:
        """The ASR stage heard the user: barge in, begin a spoken turn, tell the transport."""
        if event.kind == "barge" and self.has_floor():
            await self.interrupt()
        elif event.kind == "end" and event.turn:
            if self.has_floor():  # a short "Stop." ends the reply as well as a long sentence
                await self.interrupt()
            self._begin_turn(t_input=event.speech_end_wall)  # spoken turns count from the end of speech
        if self.on_frame is not None:
            await self.on_frame(UserSpeech(event=event.kind, text=event.text, turn=event.turn,
                                           session_id=self.id, pts=event.speech_end_pts or self.clock.now()))

    def speaking(self) -> bool:
        """True while this turn's scheduled speech has not finished playing."""
        return bool(self._spoken) and self._spoken[-1].end > self.clock.now()

    async def interrupt(self) -> Interrupt:
        frame = Interrupt(session_id=self.id, pts=self.clock.now(), heard_text=self.heard_text(self.clock.now()))
        await self.pipeline.put(frame)
        self._turn_done.set()
        return frame

    async def wait_turn(self, timeout: float = 120.0) -> None:
        await asyncio.wait_for(self._turn_done.wait(), timeout)

    async def close(self) -> None:
        try:
            await self.pipeline.put(EndOfStream(session_id=self.id, pts=self.clock.now()))
            await asyncio.wait_for(self.pipeline.wait(), 60)
        finally:
            await self.pipeline.stop()
            self.models.thinker.forget(self.conversation)
            if self.trajectory is not None:
                self.trajectory.close()

    async def abort(self) -> None:
        """Stop now, without draining (the client left): cut the reply in flight, then cancel
        every stage. Model work already inside a worker thread ends there and is discarded; the
        Thinker stops at its next clause."""
        self._turn_done.set()
        await self.pipeline.put(Interrupt(session_id=self.id, pts=self.clock.now(), reason="closed"))
        await self.pipeline.stop()
        self.models.thinker.forget(self.conversation)


def check_audio(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """A client's microphone audio as the session takes it (mio.audio.check_samples with the session's
    limits): mono PCM at 8-48 kHz, finite, not empty, at most MAX_USER_AUDIO_S per chunk, clipped."""
    return check_samples(samples, sample_rate, what="audio", rates=USER_AUDIO_RATES, max_seconds=MAX_USER_AUDIO_S,
                         empty=False, clip=True)
