"""BVH export (and import, for checking) of HumanML3D motion on the 22-joint skeleton (§4.1).

    write_bvh("walk.bvh", features)            # features (T, 263) at 20 fps
    joints = read_bvh_joints("walk.bvh")       # (T, 22, 3) metres, for round-trip checks

HumanML3D stores joint positions; BVH wants a bone hierarchy with fixed offsets and per-joint
rotations. We recover joint positions (`features_to_joints`), take each bone's length as its
median over the clip, lay the bones along the rest pose's directions (`skeleton.REST_OFFSETS`,
arms down, not a T-pose), and solve the world rotation of every joint from where its children
are: the pelvis and the chest (spine3), which have several children, from a full frame (up
the spine, across the hips / collars); single-child joints by the shortest arc from where the
parent carries the bone (minimal twist); leaf joints keep their parent's rotation. FK of the
file reproduces the joint positions up to bone-length variation of generated motion.

Units: centimetres by default (what Blender, Maya and MotionBuilder expect from mocap BVH);
Y up, the character faces +Z. Euler channels are "Zrotation Yrotation Xrotation" in degrees:
a joint's local matrix is Rz Ry Rx applied to column vectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mio.body.humanml3d import features_to_joints
from mio.body.skeleton import (
    PARENTS,
    REST_JOINTS,
    REST_OFFSETS,
    matrix_to_quat,
    qbetween,
    qinv,
    qmul,
    qrot,
    quat_to_matrix,
)
from mio.core.layouts import BODY_FPS, HUMANML3D, HUMANML3D_JOINT_NAMES, HUMANML3D_JOINTS

CHANNELS = ("Zrotation", "Yrotation", "Xrotation")
CM_PER_M = 100.0
CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(c for c in range(HUMANML3D_JOINTS) if PARENTS[c] == j) for j in range(HUMANML3D_JOINTS)
)


def _dfs(j: int = 0) -> tuple[int, ...]:
    return (j,) + tuple(k for c in CHILDREN[j] for k in _dfs(c))


DFS_ORDER = _dfs()  # the order joints appear in the file (channels follow it)
# Joints with several children get a full frame: (joint, up child, (left, right) joints across).
_FRAMED = {0: (3, (1, 2)), 9: (12, (13, 14))}  # pelvis: spine1, hips; spine3: neck, collars


def _frame(up: np.ndarray, across: np.ndarray) -> np.ndarray:
    """Orthonormal frame (..., 3, 3), columns (x across, y up, z = x cross y ... forward)."""
    y = up / np.linalg.norm(up, axis=-1, keepdims=True)
    x = across - np.sum(across * y, axis=-1, keepdims=True) * y
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def joints_to_local_rotations(joints: np.ndarray) -> np.ndarray:
    """Local rotations (T, 22, 4) of the rest skeleton that point its bones along `joints` (T, 22, 3).

    Row 0 is the pelvis' world rotation; identity everywhere is `REST_JOINTS`' pose."""
    t = len(joints)
    glob = np.zeros((t, HUMANML3D_JOINTS, 4))
    for j in range(HUMANML3D_JOINTS):  # parents precede children
        p = PARENTS[j]
        parent = glob[:, p] if p >= 0 else np.tile([1.0, 0.0, 0.0, 0.0], (t, 1))
        if j in _FRAMED:
            up, (left, right) = _FRAMED[j]
            cur = _frame(joints[:, up] - joints[:, j], joints[:, left] - joints[:, right])  # (T, 3, 3)
            rest = _frame(REST_JOINTS[up] - REST_JOINTS[j], REST_JOINTS[left] - REST_JOINTS[right])
            glob[:, j] = matrix_to_quat(cur @ rest.T)
        elif len(CHILDREN[j]) == 1:
            c = CHILDREN[j][0]
            carried = qrot(parent, np.broadcast_to(REST_OFFSETS[c], (t, 3)))  # bone as the parent holds it
            glob[:, j] = qmul(qbetween(carried, joints[:, c] - joints[:, j]), parent)
        else:  # leaf: follows its parent
            glob[:, j] = parent
    local = glob.copy()
    local[:, 1:] = qmul(qinv(glob[:, PARENTS[1:]]), glob[:, 1:])
    return local


def _euler_zyx(m: np.ndarray) -> np.ndarray:
    """Angles (z, y, x) in degrees with m = Rz Ry Rx. (..., 3, 3) -> (..., 3)"""
    y = np.arcsin(np.clip(-m[..., 2, 0], -1.0, 1.0))
    x = np.arctan2(m[..., 2, 1], m[..., 2, 2])
    z = np.arctan2(m[..., 1, 0], m[..., 0, 0])
    gimbal = np.abs(m[..., 2, 0]) > 1.0 - 1e-9  # y = +-90 deg: put all of the turn into z
    z = np.where(gimbal, np.arctan2(-m[..., 0, 1], m[..., 1, 1]), z)
    x = np.where(gimbal, 0.0, x)
    return np.degrees(np.stack([z, y, x], axis=-1))


def _matrix_zyx(angles: np.ndarray) -> np.ndarray:
    """Inverse of `_euler_zyx`: (..., 3) degrees (z, y, x) -> (..., 3, 3)."""
    z, y, x = np.radians(angles[..., 0]), np.radians(angles[..., 1]), np.radians(angles[..., 2])
    cz, sz, cy, sy, cx, sx = np.cos(z), np.sin(z), np.cos(y), np.sin(y), np.cos(x), np.sin(x)
    return np.stack(
        [
            np.stack([cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx], -1),
            np.stack([sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx], -1),
            np.stack([-sy, cy * sx, cy * cx], -1),
        ],
        -2,
    )


def _hierarchy(offsets: np.ndarray, scale: float) -> list[str]:
    lines = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        kind = "ROOT" if j == 0 else "JOINT"
        o = offsets[j] * scale if j else np.zeros(3)
        lines.append(f"{pad}{kind} {HUMANML3D_JOINT_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        if j == 0:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition {' '.join(CHANNELS)}")
        else:
            lines.append(f"{pad}  CHANNELS 3 {' '.join(CHANNELS)}")
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


def write_bvh_joints(path: str | Path, joints: np.ndarray, fps: float = BODY_FPS, *, scale: float = CM_PER_M) -> Path:
    """Write joint positions (T, 22, 3) in metres as a BVH file; returns the path."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (HUMANML3D_JOINTS, 3) or len(joints) == 0:
        raise ValueError(f"expected joints of shape (T>0, {HUMANML3D_JOINTS}, 3), got {joints.shape}")
    if not np.all(np.isfinite(joints)):
        raise ValueError("joint positions contain NaN or inf")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    lengths = np.median(np.linalg.norm(joints[:, 1:] - joints[:, PARENTS[1:]], axis=-1), axis=0)  # (21,)
    directions = REST_OFFSETS[1:] / np.linalg.norm(REST_OFFSETS[1:], axis=-1, keepdims=True)
    offsets = np.concatenate([np.zeros((1, 3)), directions * lengths[:, None]])
    local = joints_to_local_rotations(joints)  # (T, 22, 4)
    angles = _euler_zyx(quat_to_matrix(local))[:, list(DFS_ORDER)]  # (T, 22, 3) in file order
    rows = np.concatenate([joints[:, 0] * scale, angles.reshape(len(joints), -1)], axis=1)
    lines = _hierarchy(offsets, scale)
    lines += ["MOTION", f"Frames: {len(joints)}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [" ".join(f"{v:.5f}" for v in row) for row in rows]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_bvh(path: str | Path, features: np.ndarray, fps: float = BODY_FPS, *, scale: float = CM_PER_M) -> Path:
    """Write HumanML3D features (T, 263) as a BVH file of the 22-joint skeleton; returns the path."""
    features = HUMANML3D.check(np.asarray(features, dtype=np.float32))
    return write_bvh_joints(path, features_to_joints(features), fps, scale=scale)


def read_bvh_joints(path: str | Path) -> tuple[np.ndarray, float]:
    """Joint positions (T, 22, 3) in the file's units / 100 (metres for our files) and the fps.

    Reads files this module writes (joint names and channel order as above)."""
    text = Path(path).read_text().split("\n")
    names: list[str] = []
    offsets: list[np.ndarray] = []
    parents: list[int] = []
    stack: list[int] = []
    i = 0
    while not text[i].strip().startswith("MOTION"):
        tok = text[i].split()
        if tok and tok[0] in ("ROOT", "JOINT"):
            names.append(tok[1])
            parents.append(stack[-1] if stack else -1)
        elif tok and tok[0] == "End":
            names.append("")  # end site placeholder
            parents.append(stack[-1])
        elif tok and tok[0] == "{":
            stack.append(len(names) - 1)
        elif tok and tok[0] == "}":
            stack.pop()
        elif tok and tok[0] == "OFFSET":
            offsets.append(np.array([float(v) for v in tok[1:4]]))
        i += 1
    fps = 1.0 / float(text[i + 2].split(":")[1])
    data = np.array([[float(v) for v in line.split()] for line in text[i + 3 :] if line.strip()])
    order = [n for n in names if n]  # file (depth-first) order of the joints
    if sorted(order) != sorted(HUMANML3D_JOINT_NAMES):
        raise ValueError(f"{path}: not a 22-joint HumanML3D BVH")
    file_index = [order.index(n) for n in HUMANML3D_JOINT_NAMES]  # SMPL order -> column block
    off = np.stack([offsets[names.index(n)] for n in HUMANML3D_JOINT_NAMES]) / CM_PER_M
    root = data[:, :3] / CM_PER_M
    rot = _matrix_zyx(data[:, 3:].reshape(len(data), HUMANML3D_JOINTS, 3)[:, file_index])  # (T, 22, 3, 3)
    pos = np.zeros((len(data), HUMANML3D_JOINTS, 3))
    glob = np.zeros_like(rot)
    pos[:, 0], glob[:, 0] = root, rot[:, 0]
    for j in range(1, HUMANML3D_JOINTS):
        p = PARENTS[j]
        glob[:, j] = glob[:, p] @ rot[:, j]
        pos[:, j] = pos[:, p] + glob[:, p] @ off[j]
    return pos, fps


__all__ = ["joints_to_local_rotations", "read_bvh_joints", "write_bvh", "write_bvh_joints"]
