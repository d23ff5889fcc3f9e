"""`face.backend=unils`: the UniLS Face Animator (§3) behind the runtime's FaceBackend interface.

The avatar is speaker A of Eq. 6: its own track is the Talker's speech (pushed ahead of playback),
its other track the user's microphone audio, so it moves its lips while speaking and keeps
listening behaviour (blinks, nods, gaze) while the user talks or nobody does. Frames come from
`UniLSStream` in chunks (tiny: 10 frames = 0.4 s), generated when the first frame of a chunk is
requested; speech that arrives for a time whose frames were generated but not yet shown makes
those frames be generated again, so late audio is never missed.

UniLS is driven by audio only (as in the paper): phone timings and the plan's emotion labels,
which the procedural face uses, are not inputs of this model.
"""

from __future__ import annotations

import math

import numpy as np

from mio.core.config import FaceConfig
from mio.core.errors import BackendError, ConfigError, InputError
from mio.core.frames import AudioChunk, Emotion, UserAudio
from mio.core.layouts import FACE_FPS, LAYOUTS
from mio.face.base import FaceBackend, FaceSession, chunk_samples
from mio.face.unils.model import UniLS
from mio.face.unils.streaming import UniLSStream

PRUNE_EVERY = 250  # frames between prunes of old frames and audio


class UniLSSession(FaceSession):
    def __init__(self, model: UniLS, seed: int, style: int = 0) -> None:
        self.layout = LAYOUTS[model.cfg.layout]
        self.stream = UniLSStream(model, [style], seed=seed)
        self.shown = -1  # the latest frame index returned by frame()

    def _keep_shown(self, n: int) -> None:
        """Frames from n on will be generated again (new audio for them), except those already shown."""
        self.stream.truncate(max(n, self.shown + 1))

    def push_agent_audio(self, chunk: AudioChunk) -> None:
        x = chunk_samples(chunk, "agent audio")
        self.stream.tracks[0].add(x, int(chunk.sample_rate), float(chunk.pts))
        # frames of the chunk that ends after the audio starts read it (own audio up to the chunk end)
        self._keep_shown(math.floor(float(chunk.pts) * FACE_FPS) - self.stream.cfg.chunk + 1)

    def push_user_audio(self, chunk: UserAudio) -> None:
        x = chunk_samples(chunk, "user audio")
        # heard from the next chunk on (Eq. 6 reads the other track strictly in the past): frames already
        # generated stay, which keeps a live microphone (a chunk every few ms) from forcing regeneration
        self.stream.other_tracks[0].add(x, int(chunk.sample_rate), float(chunk.pts))

    def set_emotion(self, emotion: Emotion, t: float) -> None:
        if not math.isfinite(float(t)):
            raise InputError(f"emotion time must be finite, got {t!r}")
        # UniLS is audio-driven (Eq. 9); emotion shows only through the voice's prosody.

    def interrupt(self, t: float) -> None:
        t = float(t)
        if not math.isfinite(t):
            raise InputError(f"interrupt time must be finite, got {t!r}")
        self.stream.tracks[0].clear_after(t)
        self._keep_shown(math.floor(t * FACE_FPS) - self.stream.cfg.chunk + 1)

    def frame(self, t: float) -> np.ndarray:
        t = float(t)
        if not math.isfinite(t) or t < 0:
            raise InputError(f"frame time must be a finite, non-negative number of seconds, got {t!r}")
        n = max(int(round(t * FACE_FPS)), self.shown, self.stream.offset)
        self.stream.skip_to(n)
        frames = self.stream.generate_until(n + 1)
        self.shown = n
        if n % PRUNE_EVERY == 0:
            self.stream.prune(n)
        return frames[0, n - self.stream.offset].copy()


class UniLSFace(FaceBackend):
    """Loads a UniLS checkpoint once (face.checkpoint, None = the embedded unils-tiny) for every session."""

    def __init__(self, config: FaceConfig | None = None, *, model: UniLS | None = None) -> None:
        config = config or FaceConfig(backend="unils")
        if model is None:
            path = config.checkpoint or UniLS.embedded
            if config.checkpoint is None and not (UniLS.embedded / "model.safetensors").is_file():
                raise BackendError(f"the embedded UniLS checkpoint is missing ({UniLS.embedded}); train one with "
                                   "`mio train face` (see docs/face.md) and set face.checkpoint")
            model = UniLS.from_pretrained(path)
        if model.gen is None:
            raise BackendError(f"{config.checkpoint or UniLS.embedded} is a VQ-VAE only (stage vq); UniLS needs a generator")
        if model.cfg.layout != config.layout:
            raise ConfigError(f"the UniLS checkpoint drives layout {model.cfg.layout!r}, but face.layout is "
                              f"{config.layout!r}")
        super().__init__(config.layout)
        self.config, self.model = config, model

    def new_session(self, seed: int = 0) -> UniLSSession:
        return UniLSSession(self.model, seed=(int(self.config.seed) * 1_000_003 + int(seed)) & 0x7FFFFFFF)
