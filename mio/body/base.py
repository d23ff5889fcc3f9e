"""The Body Animator interface (§4): a stream of text instructions -> body motion.

One `BodySession` per conversation holds the streaming state. The runtime sets the active
prompt (a gesture from the Thinker's plan, or None for the idle "stand" prompt of §4.3) at a
time, and asks for poses at increasing times; the session interpolates its native 20 fps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass
class BodyPose:
    features: np.ndarray  # (263,) HumanML3D feature of the nearest native frame
    joints: np.ndarray  # (22, 3) joint positions, metres, Y up, facing +Z (HumanML3D convention)


class BodySession(ABC):
    @abstractmethod
    def set_prompt(self, prompt: str | None, t: float) -> None:
        """From time t, move as `prompt` says (None: idle/stand)."""

    @abstractmethod
    def frame(self, t: float) -> BodyPose:
        """The pose at time t (seconds); called with non-decreasing t."""


def frame_position(t: float, last_t: float, fps: float) -> tuple[float, int, float]:
    """(t, k, frac) for a body frame request: t clamped to be >= 0 and non-decreasing (a late or
    jittered earlier t gets the latest pose rather than an exception that would stall a live
    pipeline), and its place between native frames k and k + 1 at `fps`."""
    t = max(float(t), 0.0, last_t)
    x = t * fps
    k = int(np.floor(x))
    return t, k, x - k


class BodyBackend(ABC):
    @abstractmethod
    def new_session(self, seed: int = 0) -> BodySession:
        """Per-conversation state; weights stay shared."""
