"""The Renderer interface (§5): face parameters + body joints + camera -> an RGB frame."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from mio.render.camera import Camera


class Renderer(ABC):
    width: int
    height: int

    @abstractmethod
    def render(self, face: np.ndarray, joints: np.ndarray | None, camera: Camera | None = None,
               look: str | None = None) -> np.ndarray:
        """face: (61,) arkit52 values; joints: (22, 3) HumanML3D joints or None (rest pose); look: a
        name `add_look` returned (None: the renderer's default look).
        Returns (height, width, 3) uint8 RGB."""

    def add_look(self, spec: str | dict) -> str:
        """Prepare a look (a preset name or a character pack's avatar mapping) once; returns its
        name. Adding the same look again is a no-op that returns the same name. A renderer that
        draws one appearance only refuses."""
        from mio.core.errors import BackendError

        raise BackendError(f"the {type(self).__name__} renderer draws one look; it cannot add {spec!r}")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release GL contexts and other resources."""
