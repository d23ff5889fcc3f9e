"""HumanML3D motion -> BVH.

Writing: HumanML3D stores joint positions; BVH wants a hierarchy with fixed offsets and per-joint
rotations. Each bone's offset has the motion's own length (its median over the clip) along the
rest pose's direction (`skeleton.REST_OFFSETS`, arms down); the pelvis' and chest's children (hips,
spine, neck, collars) keep where the performer has them in the pelvis/chest frame (their median
there). World rotations come from where the children are: the pelvis and spine3 from a full
frame (up the spine, across the hips / collars), single-child joints by the shortest arc from
where the parent carries the bone (minimal twist), leaf joints keep their parent's. For a rigid
skeleton (imported mocap, the procedural library) FK of the file then gives every joint back
(to float precision); a joint that FK would still miss by more than `POSITION_TOLERANCE_M` (bone
lengths of generated motion drift from frame to frame) also gets position channels, so FK of
every written file reproduces the joints within 0.1 mm, toes on the floor where the motion has them.

Output files: centimetres (what Blender, Maya and MotionBuilder expect from mocap BVH), Y up, the
character faces +Z; channels "Zrotation Yrotation Xrotation" in degrees (local matrix Rz Ry Rx).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mio.body.bvh.file import CM_PER_M
from mio.body.humanml3d import features_to_joints
from mio.body.skeleton import (
    PARENTS,
    REST_JOINTS,
    REST_OFFSETS,
    qbetween,
    qinv,
    qmul,
    qrot,
)
from mio.core.layouts import BODY_FPS, HUMANML3D, HUMANML3D_JOINT_NAMES, HUMANML3D_JOINTS

POSITION_TOLERANCE_M = 1e-4  # the writer adds position channels where rotation-only FK misses by more
OUT_CHANNELS = ("Zrotation", "Yrotation", "Xrotation")
OUT_POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")

CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(c for c in range(HUMANML3D_JOINTS) if PARENTS[c] == j) for j in range(HUMANML3D_JOINTS)
)


def _dfs(j: int = 0) -> tuple[int, ...]:
    return (j,) + tuple(k for c in CHILDREN[j] for k in _dfs(c))


DFS_ORDER = _dfs()  # the order joints appear in a written file (channels follow it)
# Joints with several children get a full frame: {joint: (up joints, (left, right) pairs across)},
# first choices first (see `frame_spec`): pelvis from spine1 and the hips, spine3 from the neck and the collars.
_FRAME_CHOICES = {0: ((3, 6, 9), ((1, 2), (4, 5))), 9: ((12, 15), ((13, 14), (16, 17)))}
MIN_FRAME_SPAN_M = 0.01  # points closer than this do not define a direction


def _frame(up: np.ndarray, across: np.ndarray) -> np.ndarray:
    """Orthonormal frame (..., 3, 3), columns (x across, y up, z = x cross y ... forward)."""
    y = up / np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-12)
    x = across - np.sum(across * y, axis=-1, keepdims=True) * y
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def frame_spec(joints: np.ndarray) -> dict[int, tuple[int, tuple[int, int]]]:
    """For the pelvis and spine3 (several children): the joint up the spine and the (left, right)
    pair across that build their frame: the first choice whose points stand apart in the clip
    (the hips, else the knees; the collars, else the shoulders, for rigs whose collars start at
    one point). (T, 22, 3) -> {joint: (up, (left, right))}"""
    def apart(a: int, b: int) -> bool:
        return float(np.median(np.linalg.norm(joints[:, a] - joints[:, b], axis=-1))) > MIN_FRAME_SPAN_M

    spec = {}
    for j, (ups, pairs) in _FRAME_CHOICES.items():
        up = next((u for u in ups if apart(u, j)), ups[0])
        spec[j] = (up, next((lr for lr in pairs if apart(*lr)), pairs[0]))
    return spec


def _joint_frame(points: np.ndarray, j: int, spec: dict[int, tuple[int, tuple[int, int]]]) -> np.ndarray:
    """The pelvis' or spine3's frame (..., 22, 3) -> (..., 3, 3)."""
    up, (left, right) = spec[j]
    return _frame(points[..., up, :] - points[..., j, :], points[..., left, :] - points[..., right, :])


_REST_SPEC = {j: (ups[0], pairs[0]) for j, (ups, pairs) in _FRAME_CHOICES.items()}
_REST_FRAMES = {j: _joint_frame(REST_JOINTS, j, _REST_SPEC) for j in _FRAME_CHOICES}  # (3, 3) each


def skeleton_offsets(joints: np.ndarray) -> np.ndarray:
    """Bone offsets (22, 3) in metres for a BVH of `joints` (T, 22, 3): each bone's median length
    along the rest direction; the pelvis' and spine3's children where the performer has them in
    that joint's frame (their median there), put in the rest pose's frame. Row 0 is zero."""
    lengths = np.median(np.linalg.norm(joints[:, 1:] - joints[:, PARENTS[1:]], axis=-1), axis=0)  # (21,)
    directions = REST_OFFSETS[1:] / np.linalg.norm(REST_OFFSETS[1:], axis=-1, keepdims=True)
    offsets = np.concatenate([np.zeros((1, 3)), directions * lengths[:, None]])
    spec = frame_spec(joints)
    for j in _FRAME_CHOICES:
        frame = _joint_frame(joints, j, spec)  # (T, 3, 3)
        for c in CHILDREN[j]:
            in_frame = np.einsum("tba,tb->ta", frame, joints[:, c] - joints[:, j])  # frame^T (x_c - x_j)
            offsets[c] = _REST_FRAMES[j] @ np.median(in_frame, axis=0)
    return offsets


def joints_to_local_rotations(joints: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """Local rotations (T, 22, 4) (w, x, y, z) of the skeleton with `skeleton_offsets(joints)`
    (pass them as `offsets` if already computed) that point its bones along `joints` (T, 22, 3).
    Row 0 is the pelvis' world rotation; identity everywhere is the rest pose (arms down)."""
    offsets = skeleton_offsets(joints) if offsets is None else offsets
    spec = frame_spec(joints)
    t = len(joints)
    glob = np.zeros((t, HUMANML3D_JOINTS, 4))
    for j in range(HUMANML3D_JOINTS):  # parents precede children
        p = PARENTS[j]
        parent = glob[:, p] if p >= 0 else np.tile([1.0, 0.0, 0.0, 0.0], (t, 1))
        if j in _FRAME_CHOICES:  # the rest frame onto this frame: its children's offsets land where they are
            m = _joint_frame(joints, j, spec) @ _REST_FRAMES[j].T  # (T, 3, 3)
            glob[:, j] = np.roll(Rotation.from_matrix(m).as_quat(), 1, axis=-1)  # scipy xyzw -> wxyz
        elif len(CHILDREN[j]) == 1:
            c = CHILDREN[j][0]
            carried = qrot(parent, np.broadcast_to(offsets[c], (t, 3)))  # the bone as the parent holds it
            glob[:, j] = qmul(qbetween(carried, joints[:, c] - joints[:, j]), parent)
        else:  # leaf: follows its parent
            glob[:, j] = parent
    local = glob.copy()
    local[:, 1:] = qmul(qinv(glob[:, PARENTS[1:]]), glob[:, 1:])
    return local


def _hierarchy(offsets: np.ndarray, root_offset: np.ndarray, positioned: set[int], scale: float) -> list[str]:
    lines = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        o = (root_offset if j == 0 else offsets[j]) * scale
        lines.append(f"{pad}{'ROOT' if j == 0 else 'JOINT'} {HUMANML3D_JOINT_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        channels = (OUT_POSITION_CHANNELS if j == 0 or j in positioned else ()) + OUT_CHANNELS
        lines.append(f"{pad}  CHANNELS {len(channels)} {' '.join(channels)}")
        for c in CHILDREN[j]:
            emit(c, depth + 1)
        if not CHILDREN[j]:  # End Site: a short stub along the bone into this leaf
            tip = offsets[j] / max(float(np.linalg.norm(offsets[j])), 1e-9) * 0.05 * scale
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {tip[0]:.6f} {tip[1]:.6f} {tip[2]:.6f}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    emit(0, 0)
    return lines


ANGLE_DECIMALS = 5  # degrees; 1e-5 deg turns a 1 m lever by 0.2 micrometres
POSITION_DECIMALS = 5  # file units (cm): 0.1 micrometre


def _euler_rows(local: np.ndarray) -> np.ndarray:
    """Local quaternions (T, 22, 4) wxyz -> ZYX Euler degrees (T, 22, 3), continuous in time, rounded."""
    rot = Rotation.from_quat(np.roll(local.reshape(-1, 4), -1, axis=-1))
    with warnings.catch_warnings():  # gimbal lock: scipy picks one of the equal decompositions
        warnings.simplefilter("ignore", UserWarning)
        angles = rot.as_euler("ZYX", degrees=True).reshape(local.shape[:-1] + (3,))
    angles = np.degrees(np.unwrap(np.radians(angles), axis=0))  # no 359 -> -359 jumps between frames
    return np.round(angles, ANGLE_DECIMALS)


def bvh_channels(joints: np.ndarray, *, exact: bool = True, scale: float = CM_PER_M
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, set[int], float]:
    """What a BVH of `joints` (T, 22, 3) metres holds: offsets (22, 3) m, Euler angles (T, 22, 3),
    translations (T, 22, 3) m (used by the root and the `positioned` joints), and the largest
    distance between FK of the file and `joints` (m)."""
    offsets = skeleton_offsets(joints)
    local = joints_to_local_rotations(joints, offsets)
    angles = _euler_rows(local)
    mats = Rotation.from_euler("ZYX", angles.reshape(-1, 3), degrees=True).as_matrix().reshape(angles.shape + (3,))
    t = len(joints)
    trans = np.broadcast_to(offsets, (t, HUMANML3D_JOINTS, 3)).copy()
    trans[:, 0] = np.round(joints[:, 0] * scale, POSITION_DECIMALS) / scale
    glob = np.empty((t, HUMANML3D_JOINTS, 3, 3))
    pos = np.empty((t, HUMANML3D_JOINTS, 3))
    glob[:, 0], pos[:, 0] = mats[:, 0], trans[:, 0]
    positioned: set[int] = set()
    for j in range(1, HUMANML3D_JOINTS):  # FK of what the file will say, parents first
        p = PARENTS[j]
        fk = pos[:, p] + np.einsum("tab,b->ta", glob[:, p], offsets[j])
        if exact and np.max(np.linalg.norm(fk - joints[:, j], axis=-1)) > POSITION_TOLERANCE_M:
            positioned.add(j)  # this joint's own translation per frame, in its parent's frame
            local_t = np.einsum("tba,tb->ta", glob[:, p], joints[:, j] - pos[:, p])
            trans[:, j] = np.round(local_t * scale, POSITION_DECIMALS) / scale
            fk = pos[:, p] + np.einsum("tab,tb->ta", glob[:, p], trans[:, j])
        pos[:, j] = fk
        glob[:, j] = glob[:, p] @ mats[:, j]
    error = float(np.max(np.linalg.norm(pos - joints, axis=-1)))
    return offsets, angles, trans, positioned, error


def write_bvh_joints(path: str | Path, joints: np.ndarray, fps: float = BODY_FPS, *, scale: float = CM_PER_M,
                     exact: bool = True) -> Path:
    """Write joint positions (T, 22, 3) in metres as a BVH of the 22-joint skeleton; returns the path.

    exact=True adds position channels to the joints that rotations alone would miss by more than
    `POSITION_TOLERANCE_M`; exact=False writes rotations only (bone lengths fixed at their medians)."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (HUMANML3D_JOINTS, 3) or len(joints) == 0:
        raise ValueError(f"expected joints of shape (T>0, {HUMANML3D_JOINTS}, 3), got {joints.shape}")
    if not np.all(np.isfinite(joints)):
        raise ValueError("joint positions contain NaN or inf")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    offsets, angles, trans, positioned, _ = bvh_channels(joints, exact=exact, scale=scale)
    # The rest pose (all rotations zero) stands on the floor: the root's OFFSET lifts it there.
    rest = np.zeros((HUMANML3D_JOINTS, 3))
    for j in range(1, HUMANML3D_JOINTS):
        rest[j] = rest[PARENTS[j]] + offsets[j]
    root_offset = np.array([0.0, -rest[:, 1].min(), 0.0])
    t = len(joints)
    blocks = []
    for j in DFS_ORDER:
        if j == 0 or j in positioned:
            blocks.append(trans[:, j] * scale)
        blocks.append(angles[:, j])
    rows = np.concatenate(blocks, axis=1)
    lines = _hierarchy(offsets, root_offset, positioned, scale)
    lines += ["MOTION", f"Frames: {t}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [" ".join(f"{v:.5f}" for v in row) for row in rows]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bvh(path: str | Path, features: np.ndarray, fps: float = BODY_FPS, *, scale: float = CM_PER_M,
              exact: bool = True) -> Path:
    """Write HumanML3D features (T, 263) as a BVH of the 22-joint skeleton; returns the path."""
    features = HUMANML3D.check(np.asarray(features, dtype=np.float32))
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or inf")
    return write_bvh_joints(path, features_to_joints(features), fps, scale=scale, exact=exact)
