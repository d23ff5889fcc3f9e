"""The Renderer interface (§5): face parameters + body joints + camera -> an RGB frame."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from mio.render.camera import Camera


class Renderer(ABC):
    width: int
    height: int

    @abstractmethod
    def render(self, face: np.ndarray, joints: np.ndarray | None, camera: Camera | None = None) -> np.ndarray:
        """face: (61,) arkit52 values; joints: (22, 3) HumanML3D joints or None (rest pose).
        Returns (height, width, 3) uint8 RGB."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release GL contexts and other resources."""
