"""What every embedded voice shares: text checks, emotion prosody, resampling and timings.

A backend implements `_render(text, prosody) -> (samples, rate)`; `EmbeddedVoice.synthesize`
does the rest: validates the clause, turns the emotion into speed/pitch factors, resamples to
`TalkerConfig.sample_rate` (24 kHz) and adds word/phone timings (pocketsphinx forced alignment,
or an estimate when `TalkerConfig.align` is off or alignment fails).

`synthesize_shaped(text, emotion, shape)` speaks with a character's `VoiceShape` (pitch, formant,
tilt, intonation, speed; see shape.py) on the same loaded engine: a backend that can shape its own
synthesis (hibari) overrides `_render_shaped`; for the others the rendered waveform goes through
the WORLD shift. The voice bank (bank.py) gives each character such a shaped view of one engine.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mio.audio import resample
from mio.core.config import TalkerConfig
from mio.core.emotions import resolve as resolve_emotion
from mio.core.errors import BackendError, ConfigError
from mio.core.frames import Emotion
from mio.talker.align import Aligner, Timings, align, estimate_timings
from mio.talker.base import Speech, Voice
from mio.talker.text import Lexicon, clean_text
from mio.talker.voices.shape import VoiceShape, world_shift

MIN_SPEED, MAX_SPEED = 0.5, 2.0
PEAK_LIMIT = 0.97  # shaped speech louder than this (a bright tilt) is scaled down, not clipped


@dataclass(frozen=True)
class Prosody:
    speed: float = 1.0  # tempo factor (>1 faster); multiplies TalkerConfig.speed
    pitch: float = 1.0  # F0 factor (>1 higher); engines that cannot shift pitch ignore it


# Prosody at intensity 1; intensity scales the deviation from 1 (neutral = no change). Modest on
# purpose: the voices are trained on neutral read speech and degrade when pushed far.
EMOTION_PROSODY: dict[str, Prosody] = {
    "neutral": Prosody(1.0, 1.0),
    "happy": Prosody(1.06, 1.08),
    "excited": Prosody(1.12, 1.12),
    "surprised": Prosody(1.06, 1.12),
    "sad": Prosody(0.88, 0.93),
    "angry": Prosody(1.06, 0.97),
    "fear": Prosody(1.1, 1.06),
    "thinking": Prosody(0.92, 0.98),
    "curious": Prosody(1.0, 1.05),
    "calm": Prosody(0.94, 0.98),
    "concerned": Prosody(0.93, 0.97),
    "disgust": Prosody(0.95, 0.96),
}


def emotion_prosody(emotion: Emotion | None) -> Prosody:
    """Speed/pitch factors for an emotion (labels and synonyms as the face uses them)."""
    if emotion is None:
        return Prosody()
    label, intensity = resolve_emotion(emotion)
    p = EMOTION_PROSODY.get(label, EMOTION_PROSODY["neutral"])
    return Prosody(1.0 + (p.speed - 1.0) * intensity, 1.0 + (p.pitch - 1.0) * intensity)


class EmbeddedVoice(Voice):
    """Template for the embedded backends. Subclasses load their engine in __init__ and render."""

    name = "embedded"

    def __init__(self, config: TalkerConfig | None = None) -> None:
        self.config = config or TalkerConfig()
        speed = float(self.config.speed)
        if not (math.isfinite(speed) and MIN_SPEED <= speed <= MAX_SPEED):
            raise ConfigError(
                f"talker.speed must be in [{MIN_SPEED}, {MAX_SPEED}], got {self.config.speed!r}"
            )
        if not isinstance(self.config.sample_rate, int) or not 8000 <= self.config.sample_rate <= 96000:
            raise ConfigError(
                f"talker.sample_rate must be an int in [8000, 96000], got {self.config.sample_rate!r}"
            )
        self.sample_rate = self.config.sample_rate

    @abstractmethod
    def _render(self, text: str, prosody: Prosody) -> tuple[np.ndarray, int]:
        """Engine audio for one clean clause: (float32 samples, their sample rate)."""

    def _render_shaped(self, text: str, prosody: Prosody, shape: VoiceShape) -> tuple[np.ndarray, int]:
        """Engine audio with the shape applied. Default: render, then the WORLD shift (speed is
        already in `prosody`, the engine's own duration control)."""
        samples, rate = self._render(text, prosody)
        if not shape.changes_source:
            return samples, rate
        return world_shift(np.asarray(samples, np.float32).reshape(-1), rate, shape, prosody.pitch), rate

    def synthesize(self, text: str, emotion: Emotion | None = None) -> Speech:
        return self.synthesize_shaped(text, emotion, VoiceShape(speed=self.config.speed))

    def synthesize_shaped(self, text: str, emotion: Emotion | None, shape: VoiceShape) -> Speech:
        """Speak one clause as `shape` says (its speed replaces `TalkerConfig.speed`)."""
        text = clean_text(text)
        p = emotion_prosody(emotion)
        prosody = Prosody(min(max(p.speed * shape.speed, MIN_SPEED), MAX_SPEED), p.pitch)
        samples, rate = self._render_shaped(text, prosody, shape) if shape.changes_source else self._render(text, prosody)
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if samples.size == 0 or not np.any(samples):
            raise BackendError(f"the {self.name} voice produced no audio for {text[:60]!r}")
        if not np.all(np.isfinite(samples)):
            raise BackendError(f"the {self.name} voice produced NaN/inf samples for {text[:60]!r}")
        if shape.changes_source:
            peak = float(np.max(np.abs(samples)))
            if peak > PEAK_LIMIT:
                samples = samples * np.float32(PEAK_LIMIT / peak)
        out = np.clip(resample(samples, rate, self.sample_rate), -1.0, 1.0)
        timings = self.timings(out, text)
        return Speech(samples=out, sample_rate=self.sample_rate, words=timings.words, phones=timings.phones)

    def synthesize_pieces(self, text: str, emotion: Emotion | None = None,
                          shape: VoiceShape | None = None) -> Iterator[tuple[Speech, str, bool]]:
        """Speak one clause in pieces, each handed out as soon as it exists: (speech, its words,
        last?). Engines that can decode a clause's first words alone (piper) give two pieces;
        the others, and shapes that reshape the waveform, one."""
        shape = shape if shape is not None else VoiceShape(speed=self.config.speed)
        render = getattr(self, "render_pieces", None)
        if render is None or shape.changes_source:
            text = clean_text(text)
            yield self.synthesize_shaped(text, emotion, shape), text, True
            return
        text = clean_text(text)
        p = emotion_prosody(emotion)
        prosody = Prosody(min(max(p.speed * shape.speed, MIN_SPEED), MAX_SPEED), p.pitch)
        for piece in render(text, prosody):
            samples = np.asarray(piece.samples, dtype=np.float32).reshape(-1)
            if samples.size == 0 or not np.all(np.isfinite(samples)):
                raise BackendError(f"the {self.name} voice produced no audio for {piece.text[:60]!r}")
            out = np.clip(resample(samples, self.engine_rate, self.sample_rate), -1.0, 1.0)
            timings = piece.timings or EmbeddedVoice.timings(self, out, piece.text)
            yield Speech(samples=out, sample_rate=self.sample_rate, words=timings.words,
                         phones=timings.phones), piece.text, piece.last

    def pronounce(self, word: str) -> list[str]:
        """ARPABET phones of one word as this voice reads it (for words CMUdict lacks).
        Default: espeak-ng's reading, which is what Piper and espeak-ng say."""
        return Lexicon.shared().phones(word)

    def warm(self) -> None:
        """The warm-up clause, and the aligner even when that clause did not need it: a voice with
        timings of its own (piper) falls back to it on the first clause its timings do not match
        ("I am Captain Nemo,"), and that clause waited 0.4 s for the dictionary (the first turn of
        `mio bench pipeline`: 0.5 s from first clause to first audio, later turns 0.1 s)."""
        super().warm()
        if self.config.align:
            Aligner.shared()

    def timings(self, samples: np.ndarray, text: str) -> Timings:
        if self.config.align:
            return align(samples, self.sample_rate, text, self.pronounce)
        return estimate_timings(samples, self.sample_rate, text, self.pronounce)
