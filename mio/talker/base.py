"""The Talker interface: text (one clause) -> speech with word/phone timings.

A voice backend implements `synthesize`; the runtime's TalkerProcessor calls it per clause off
the event loop and stamps presentation times. Timings are seconds from the start of the clause.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from mio.core.frames import Emotion, Segment


@dataclass
class Speech:
    samples: np.ndarray  # (N,) float32 mono in [-1, 1]
    sample_rate: int
    words: tuple[Segment, ...] = ()
    phones: tuple[Segment, ...] = ()

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


class Voice(ABC):
    """A text-to-speech backend. Weights load in __init__ (once per process) and are shared."""

    name: str = "voice"
    sample_rate: int = 24000

    @abstractmethod
    def synthesize(self, text: str, emotion: Emotion | None = None) -> Speech:
        """Speak one clause. Returns audio at `self.sample_rate` with timings when known."""

    def warm(self) -> None:
        """Run one short synthesis so the first real clause does not pay for lazy start-up
        (ONNX session set-up, the aligner's decoder and dictionary: ~2.5 s on first use)."""
        self.synthesize("Hello there.")
