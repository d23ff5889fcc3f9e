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


# Named framings of the avatar (RenderConfig.camera). Each gives the vertical span to fill, in
# metres, from landmarks of the avatar (so any body size frames the same way), and a field of view.
CAMERA_PRESETS: tuple[str, ...] = ("portrait", "upper_body", "full_body")


def camera_preset(
    name: str,
    width: int,
    height: int,
    *,
    eye: np.ndarray,
    head_top: float,
    pelvis: float,
    shoulder_width: float = 0.36,
) -> Camera:
    """A front camera framing the avatar: "portrait" (head and shoulders), "upper_body" (from the
    hips up) or "full_body". `eye` is the midpoint of the eyes (x, y, z), `head_top` and `pelvis`
    heights in metres (Y up, the avatar faces +Z)."""
    eye = np.asarray(eye, np.float64)
    if name == "portrait":
        bottom, top, fov, half_w = eye[1] - 0.40, head_top + 0.08, 22.0, 0.5 * shoulder_width + 0.10
    elif name == "upper_body":
        bottom, top, fov, half_w = pelvis - 0.08, head_top + 0.08, 26.0, 0.5 * shoulder_width + 0.25
    elif name == "full_body":
        bottom, top, fov, half_w = -0.06, head_top + 0.08, 30.0, 0.5 * shoulder_width + 0.3
    else:
        raise ValueError(f"unknown camera preset {name!r}; choose one of {', '.join(CAMERA_PRESETS)}")
    span = top - bottom
    tan_y = np.tan(np.radians(fov) / 2)
    tan_x = tan_y * width / height
    dist = max(0.5 * span / tan_y, half_w / tan_x)
    target = np.array([0.0, 0.5 * (top + bottom), eye[2]])
    return Camera.look_at(target + np.array([0.0, 0.0, dist]), target, width, height, fov_y_deg=fov)
