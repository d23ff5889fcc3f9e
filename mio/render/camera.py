"""Pinhole camera: intrinsics (fx, fy, cx, cy, width, height) + world-to-camera extrinsics (R, t)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Camera:
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    R: np.ndarray = field(default_factory=lambda: np.eye(3, dtype=np.float32))  # world -> camera rotation
    t: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.float32))  # world -> camera translation
    near: float = 0.05
    far: float = 20.0

    @staticmethod
    def look_at(eye, target, width: int, height: int, fov_y_deg: float = 30.0, up=(0.0, 1.0, 0.0)) -> Camera:
        """A camera at `eye` looking at `target` (world coords, Y up). Camera looks down its -Z (OpenGL)."""
        eye = np.asarray(eye, np.float64)
        target = np.asarray(target, np.float64)
        f = target - eye
        f /= np.linalg.norm(f)
        r = np.cross(f, np.asarray(up, np.float64))
        r /= np.linalg.norm(r)
        u = np.cross(r, f)
        R = np.stack([r, u, -f]).astype(np.float32)  # rows: camera axes in world coords
        t = (-R @ eye).astype(np.float32)
        fy = 0.5 * height / np.tan(np.radians(fov_y_deg) / 2)
        return Camera(fx=fy, fy=fy, cx=width / 2, cy=height / 2, width=width, height=height, R=R, t=t)

    def view_matrix(self) -> np.ndarray:
        m = np.eye(4, dtype=np.float32)
        m[:3, :3] = self.R
        m[:3, 3] = self.t
        return m

    def projection_matrix(self) -> np.ndarray:
        """OpenGL clip matrix from the intrinsics (pixel centre convention, y up in NDC)."""
        w, h, n, f = self.width, self.height, self.near, self.far
        p = np.zeros((4, 4), dtype=np.float32)
        p[0, 0] = 2 * self.fx / w
        p[1, 1] = 2 * self.fy / h
        p[0, 2] = 1 - 2 * self.cx / w
        p[1, 2] = 2 * self.cy / h - 1
        p[2, 2] = -(f + n) / (f - n)
        p[2, 3] = -2 * f * n / (f - n)
        p[3, 2] = -1
        return p
