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

    def to_dict(self) -> dict:
        """JSON-ready, in the camera-file format of `mio render --camera-file` (OpenGL convention)."""
        return {"width": int(self.width), "height": int(self.height), "fx": float(self.fx), "fy": float(self.fy),
                "cx": float(self.cx), "cy": float(self.cy), "R": np.asarray(self.R).tolist(),
                "t": np.asarray(self.t).tolist(), "near": float(self.near), "far": float(self.far)}

    @staticmethod
    def from_dict(d: dict) -> Camera:
        """The inverse of `to_dict`; `near` and `far` are optional."""
        clip = {k: float(d[k]) for k in ("near", "far") if k in d}
        return Camera(fx=float(d["fx"]), fy=float(d["fy"]), cx=float(d["cx"]), cy=float(d["cy"]),
                      width=int(d["width"]), height=int(d["height"]), R=np.asarray(d["R"], np.float32).reshape(3, 3),
                      t=np.asarray(d["t"], np.float32).reshape(3), **clip)

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


def _rot_y(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _rot_x(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def orbit(camera: Camera, target, azimuth_deg: float, elevation_deg: float = 0.0) -> Camera:
    """`camera` carried round the vertical axis through `target` by `azimuth_deg` (positive: towards
    the avatar's left, +X) and raised by `elevation_deg`; intrinsics unchanged. The orbited camera
    sees a world point p as the original sees Q^T (p - c) + c, Q = Ry(az) Rx(-el):
    R' = R Q^T, t' = t + R (c - Q^T c)."""
    c = np.asarray(target, np.float64)
    Q = _rot_y(azimuth_deg) @ _rot_x(-elevation_deg)
    R = np.asarray(camera.R, np.float64)
    t = np.asarray(camera.t, np.float64)
    R2 = R @ Q.T
    t2 = t + R @ (c - Q.T @ c)
    return Camera(fx=camera.fx, fy=camera.fy, cx=camera.cx, cy=camera.cy, width=camera.width, height=camera.height,
                  R=R2.astype(np.float32), t=t2.astype(np.float32), near=camera.near, far=camera.far)


def from_opencv(K, R, t, width: int, height: int) -> Camera:
    """A camera from OpenCV-convention intrinsics K (3x3, pixels, origin top-left, y down) and
    world-to-camera extrinsics R (3x3), t (3,) (camera looks down +Z). Mio's world is metres, Y up."""
    K = np.asarray(K, np.float64)
    flip = np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes (x right, y down, z forward) -> OpenGL
    return Camera(fx=float(K[0, 0]), fy=float(K[1, 1]), cx=float(K[0, 2]), cy=float(height - K[1, 2]),
                  width=int(width), height=int(height),
                  R=(flip @ np.asarray(R, np.float64)).astype(np.float32),
                  t=(flip @ np.asarray(t, np.float64).reshape(3)).astype(np.float32))


def camera_center(camera: Camera) -> np.ndarray:
    """The camera's position in world coordinates, -R^T t."""
    return -np.asarray(camera.R, np.float64).T @ np.asarray(camera.t, np.float64)


def project(camera: Camera, points: np.ndarray) -> np.ndarray:
    """World points (N, 3) -> (N, 2) pixel coordinates (x right, y down from the top-left corner,
    pixel centres at +0.5) as the renderer draws them; points behind the camera get NaN."""
    p = np.asarray(points, np.float64) @ np.asarray(camera.R, np.float64).T + np.asarray(camera.t, np.float64)
    z = -p[:, 2]  # depth in front of the camera (it looks down its -Z)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = camera.cx + camera.fx * p[:, 0] / z
        y = camera.height - (camera.cy + camera.fy * p[:, 1] / z)
    out = np.stack([x, y], axis=1)
    out[z <= 0] = np.nan
    return out
