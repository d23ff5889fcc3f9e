"""Where the outfit's borders are: smooth fields over the rest pose, in the body's own landmarks.

Each border (the hairline, the beard's edge, a neckline, a sleeve end, a collar, a coat's opening, a
hem, a shoe top, a button) is the zero level of a field defined here - from the eyes, ears, lips,
neck and arm bones (`Body`, `Face`, `Frame`), so it fits every phenotype; mio.render.outfit cuts the
mesh along them and colours, layers and walls the regions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mio.render.looks import Look
from mio.render.seams import Mesh

COAT_BELOW_HIP = 0.075  # a coat's hem: this far below the hip joint (above the crotch: the legs part below it)
HEAD_BONES = ("head", "eye", "jaw", "tongue", "special", "oris", "levator", "orbicularis", "temporalis", "risorius")

@dataclass(frozen=True)
class Body:
    """The rig's rest joints (world frame, metres), and the landmarks dressing measures on the mesh."""

    bone_names: list[str]
    bone_heads: np.ndarray  # (B, 3)

    def joint(self, name: str) -> np.ndarray:
        return self.bone_heads[self.bone_names.index(name)]

    def group(self, weights: np.ndarray, *prefixes: str) -> np.ndarray:
        """(V,) summed skinning weight of the bones whose names start with `prefixes`."""
        cols = [i for i, n in enumerate(self.bone_names) if n.startswith(prefixes)]
        return weights[:, cols].sum(1)

    @property
    def eye_mid(self) -> np.ndarray:
        return 0.5 * (self.joint("eye.L") + self.joint("eye.R"))


@dataclass(frozen=True)
class Face:
    """Face landmarks measured on the rest mesh, relative to the eyes' midpoint."""

    ears: np.ndarray  # (2, 3) centres, left then right
    ear_radius: float
    nose_y: float  # height of the nose tip
    lips_top: float  # top and bottom of the lips (the MakeHuman lips mask)
    lips_bottom: float
    lips_front: float  # depth of the lips' front
    lips_half_width: float
    chin_y: float  # bottom of the chin
    crown_y: float  # top of the head


def measure_face(mesh: Mesh, body: Body) -> Face:
    rel = mesh.attrs["pos"] - body.eye_mid
    ear = mesh.attrs["ears"] > 0.5
    ears = np.stack([rel[ear & (rel[:, 0] > 0)].mean(0), rel[ear & (rel[:, 0] < 0)].mean(0)])
    radius = float(np.percentile(np.linalg.norm(rel[ear] - ears[(rel[ear, 0] < 0).astype(int)], axis=1), 95))
    head = body.group(mesh.attrs["weights"], *HEAD_BONES) > 0.5
    lips = (mesh.attrs["lips"] > 0.5) & head
    lips_front = float(rel[lips, 2].max())
    lip_front = lips & (rel[:, 2] > lips_front - 0.012)
    mid = np.abs(rel[:, 0]) < 0.008
    nose = mid & head & (rel[:, 1] < 0) & (rel[:, 1] > rel[lips, 1].max())
    chin = mid & head & (rel[:, 2] > lips_front - 0.035) & (rel[:, 1] < rel[lips, 1].min())
    return Face(
        ears=ears,
        ear_radius=radius,
        nose_y=float(rel[nose][np.argmax(rel[nose, 2]), 1]),
        lips_top=float(rel[lip_front, 1].max()),
        lips_bottom=float(rel[lip_front, 1].min()),
        lips_front=lips_front,
        lips_half_width=float(np.abs(rel[lip_front, 0]).max()),
        chin_y=float(rel[chin, 1].min()),
        crown_y=float(rel[head, 1].max()),
    )


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def smooth_noise(pos: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """(V,) smooth value noise in [-1, 1] over rest positions (a sum of random plane waves):
    deterministic, so a look always bakes the same."""
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(12, 3))
    k *= (2 * np.pi / scale) / np.linalg.norm(k, axis=1, keepdims=True) * rng.uniform(0.6, 1.6, (12, 1))
    phase = rng.uniform(0, 2 * np.pi, 12)
    return np.sin(pos @ k.T + phase).sum(1) / np.sqrt(12 / 2)


# ---------------------------------------------------------------------------------------------
# Fields: each is positive inside its region (metres, roughly: distances to the border)
# ---------------------------------------------------------------------------------------------


def hair_field(rel: np.ndarray, face: Face, head_w: np.ndarray, look: Look) -> np.ndarray:
    """The scalp above a hairline that runs, by the angle round the head's vertical axis, from the
    forehead back over the temples, down in front of the ears (sideburns), round the ears, to the nape."""
    centre = np.array([0.0, 0.0, float(face.ears[:, 2].mean()) + 0.012])
    angle = np.degrees(np.arctan2(np.abs(rel[:, 0]), rel[:, 2] - centre[2]))  # 0 front, ~95 the ears, 180 back
    sideburn = face.ears[0, 1] + 0.012
    nape = -0.07 - look.hair_length
    line = look.hairline + look.hair_recession * smoothstep(12.0, 42.0, angle)
    line = line + (sideburn - line) * smoothstep(50.0, 72.0, angle)
    line = line + (nape - line) * smoothstep(100.0, 135.0, angle)
    ear = np.min(np.linalg.norm(rel[:, None] - face.ears[None], axis=2), axis=1) - (face.ear_radius + 0.006)
    return np.minimum.reduce([rel[:, 1] - line, ear, head_w - 0.3])


def beard_field(rel: np.ndarray, face: Face, head_w: np.ndarray, lips: np.ndarray, mouth: np.ndarray,
                kind: str) -> np.ndarray:
    """A beard: cheeks below a line from the sideburns to the nose, round the mouth (lips excluded)
    and under the jaw; or only a moustache between the nose and the upper lip."""
    ax = np.abs(rel[:, 0])
    zc = float(face.ears[:, 2].mean())
    under_nose = face.nose_y - 0.35 * (face.nose_y - face.lips_top)
    no_lips = np.minimum(0.35 - lips, 0.5 - mouth) * 0.05  # lip mask units -> ~metres
    if kind == "moustache":
        w = face.lips_half_width + 0.006
        top = under_nose + 0.004 * smoothstep(0.0, w, ax)
        return np.minimum.reduce([
            top - rel[:, 1],
            rel[:, 1] - (face.lips_top - 0.004 - 0.012 * smoothstep(0.6 * w, w, ax)),
            w - ax,
            rel[:, 2] - (face.lips_front - 0.03),
            no_lips,
            head_w - 0.5,
        ])
    # the cheek line: from the sideburn (the ear's middle) down across the cheek to the mouth's corner;
    # over the mouth, the moustache up to below the nose
    corner = face.lips_half_width + 0.004
    cheek = face.lips_top + 0.004 + (face.ears[0, 1] + 0.006 - face.lips_top) * smoothstep(corner, 0.068, ax)
    cheek = np.maximum(cheek, np.where(ax < corner + 0.004, under_nose, -1.0))
    jaw_back = zc + 0.022  # in front of the ears
    # under the jaw: down to a line from below the ears to the throat
    neck_line = face.chin_y - 0.02 - 0.02 * smoothstep(zc + 0.02, face.lips_front, rel[:, 2])
    return np.minimum.reduce([
        cheek - rel[:, 1],
        rel[:, 2] - jaw_back,
        rel[:, 1] - neck_line,
        no_lips,
        head_w - 0.3,
    ])


@dataclass(frozen=True)
class Frame:
    """The torso's landmarks dressing uses."""

    neck: np.ndarray  # neck01 joint: the base of the neck
    neck_top: np.ndarray  # neck03
    neck_r: float  # the neck's radius
    waist: float  # height of a trouser waistband
    hip: float  # height of a coat's hem
    arms: tuple[np.ndarray, np.ndarray]  # (4, 3) shoulder, elbow, wrist, fingertips; left, right


def torso_frame(mesh: Mesh, body: Body) -> Frame:
    pos = mesh.attrs["pos"]
    n1, n3 = body.joint("neck01"), body.joint("neck03")
    n2 = body.joint("neck02")
    band = np.abs(pos[:, 1] - n2[1]) < 0.01
    r = np.hypot(pos[band, 0] - n2[0], pos[band, 2] - n2[2])
    neck_r = float(np.percentile(r[r < 0.12], 50))
    arms = []
    for s in ("L", "R"):
        sh, el, wr = (body.joint(f"{b}.{s}") for b in ("upperarm01", "lowerarm01", "wrist"))
        tip = wr + 0.19 * (wr - el) / np.linalg.norm(wr - el)
        arms.append(np.stack([sh, el, wr, tip]))
    return Frame(neck=n1, neck_top=n3, neck_r=neck_r, waist=float(body.joint("spine04")[1] + 0.01),
                 hip=float(body.joint("root")[1] - COAT_BELOW_HIP), arms=(arms[0], arms[1]))


def arm_coordinate(pos: np.ndarray, arm_w: np.ndarray, frame: Frame) -> np.ndarray:
    """(V,) where along its arm a vertex lies: 0 shoulder, 1 elbow, 2 wrist, 3 fingertips; -1 off the
    arms. Its level sets are planes across the arm: sleeve ends are round."""
    t = np.full(len(pos), -1.0)
    for chain, side in zip(frame.arms, (pos[:, 0] > 0, pos[:, 0] < 0), strict=True):
        best = np.full(len(pos), np.inf)
        tt = np.zeros(len(pos))
        for k in range(3):
            a, b = chain[k], chain[k + 1]
            u = np.clip((pos - a) @ (b - a) / ((b - a) @ (b - a)), 0.0, 1.0)
            d = np.linalg.norm(pos - (a + u[:, None] * (b - a)), axis=1)
            closer = d < best
            best[closer], tt[closer] = d[closer], k + u[closer]
        on = side & (arm_w > 0.5)
        t[on] = tt[on]
    return t


def _neck_axis(pos: np.ndarray, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """(V,) horizontal distance from the neck's axis, and (V,) how far in front of it (signed)."""
    a, b = frame.neck, frame.neck_top
    s = np.clip((pos[:, 1] - a[1]) / (b[1] - a[1]), -1.0, 2.0)
    cx, cz = a[0] + s * (b[0] - a[0]), a[2] + s * (b[2] - a[2])
    return np.hypot(pos[:, 0] - cx, pos[:, 2] - cz), pos[:, 2] - cz


def top_field(pos: np.ndarray, t_arm: np.ndarray, head_w: np.ndarray, frame: Frame, look: Look) -> np.ndarray:
    """The upper garment: below its neckline (a crew neck, or a collar up the neck), above its hem,
    down the arms to its sleeve ends."""
    r, front = _neck_axis(pos, frame)
    y = pos[:, 1] - frame.neck[1]
    f_front = smoothstep(0.0, frame.neck_r, front)
    if look.top == "tshirt":  # crew neck: off a cylinder round the neck, lower in front
        neckline = np.maximum(r - (frame.neck_r + 0.022), (-0.022 - 0.035 * f_front) - y)
        neckline = np.minimum(neckline, 0.03 - y)
    else:  # a collar up the neck, lower in front
        neckline = (0.045 - 0.025 * f_front) - y
    hem = (pos[:, 1] - (frame.hip if look.top == "coat" else frame.waist - 0.012))
    hem = np.where(t_arm >= 0, 1.0, hem)
    sleeve_end = {"short": 0.42, "long": 1.95, "rolled": 1.28}[look.sleeves]
    sleeve = np.where(t_arm >= 0, (sleeve_end - t_arm) * 0.25, 1.0)  # arm units -> ~metres
    return np.minimum.reduce([neckline, hem, sleeve, 0.5 - head_w])


def opening_field(pos: np.ndarray, frame: Frame, depth: float, spread: float = 0.45) -> np.ndarray:
    """A V at the front of the neck: its point `depth` below the neck's base, opening upwards."""
    _, front = _neck_axis(pos, frame)
    y = pos[:, 1] - (frame.neck[1] - depth)
    return np.minimum(y * spread - np.abs(pos[:, 0]), front - 0.5 * frame.neck_r)


def trousers_field(pos: np.ndarray, t_arm: np.ndarray, frame: Frame) -> np.ndarray:
    return np.where(t_arm >= 0, -1.0, frame.waist - pos[:, 1])


def shoes_field(pos: np.ndarray, t_arm: np.ndarray, look: Look) -> np.ndarray:
    return np.where(t_arm >= 0, -1.0, look.shoe_height - pos[:, 1])


BUTTON_RADIUS = 0.0085
BUTTON_HEIGHT = 0.0035


def button_centres(pos: np.ndarray, on: np.ndarray, frame: Frame, look: Look) -> list[int]:
    """The vertices (among `on`) buttons sit on, down the front of the garment: two rows on a double-breasted coat
    (one without a shirt collar showing), else one."""
    _, front = _neck_axis(pos, frame)
    top = frame.neck[1] - (0.13 if look.top == "coat" and look.collar is None else 0.26 if look.top == "coat" else 0.10)
    bottom = (frame.hip if look.top == "coat" else frame.waist) + 0.05
    xs = (-0.055, 0.055) if look.top == "coat" and look.collar is None else (0.0,)
    out = []
    for x in xs:
        for y in np.linspace(top, bottom, 5 if len(xs) == 2 else 4):
            near = on & (front > 0) & (np.abs(pos[:, 0] - x) < 0.02) & (np.abs(pos[:, 1] - y) < 0.02)
            if near.any():
                out.append(int(np.flatnonzero(near)[np.argmax(pos[near, 2])]))
    return out


CHECK_PERIOD = 0.09  # metres: a buffalo check's squares are half this


def check_lines(coord: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Parallel borders every CHECK_PERIOD / 2 along `coord` (V,), only inside a garment."""
    return np.where(inside, np.sin(2 * np.pi * coord / CHECK_PERIOD) * CHECK_PERIOD / (2 * np.pi), 1.0)
