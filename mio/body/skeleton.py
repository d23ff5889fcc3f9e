"""The 22-joint SMPL-like skeleton of HumanML3D: rest pose, rotations, forward kinematics.

Conventions (the ones HumanML3D uses, and the contract with the renderer's retargeting):
metres, Y up, the character faces +Z, so its left side is +X; joints in SMPL order
(`HUMANML3D_JOINT_NAMES`), tree given by `HUMANML3D_PARENTS`; floor at y = 0.

Quaternions are (w, x, y, z), as in HumanML3D. A rotation q acts on a vector by q v q*.
Products compose right-to-left: qmul(a, b) rotates by b first, then by a.

Why these few numpy functions and not scipy's `Rotation` (which the BVH reader does use, for its
Euler channels): the animator and HumanML3D's features work on arrays of any leading shape
(frames x joints x 4) in HumanML3D's (w, x, y, z) order, while `Rotation` holds a flat batch in
(x, y, z, w) order; every call here would reshape, reorder and build an object per frame and joint
group, on the 25 fps path. The conversions are checked against `Rotation` in tests/body.

Two forward-kinematics conventions live in the project:
- `forward_kinematics` here is the ordinary hierarchical one the animator poses with: the
  local rotation of joint j turns the bones to j's children, and world rotations accumulate
  down the tree (G_j = G_parent(j) L_j).
- `mio.body.humanml3d` has HumanML3D's own chain convention used by its 6-D rotation feature.
"""

from __future__ import annotations

import numpy as np

from mio.core.layouts import HUMANML3D_JOINT_NAMES, HUMANML3D_JOINTS, HUMANML3D_PARENTS

PARENTS = np.asarray(HUMANML3D_PARENTS, dtype=np.int64)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(HUMANML3D_JOINT_NAMES)}
_EPS = 1e-9

# ---------------------------------------------------------------------------------------------
# Quaternion and rotation utilities (numpy, any leading batch shape)
# ---------------------------------------------------------------------------------------------

QUAT_IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def qnormalize(q: np.ndarray) -> np.ndarray:
    return q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), _EPS)


def qinv(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion (its conjugate)."""
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b, broadcasting over leading dims. (..., 4)"""
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        axis=-1,
    )


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis, broadcasting (np.cross is slow on small arrays)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack((a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0), axis=-1)


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4), broadcasting."""
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * cross(u, v)
    return v + w * t + cross(u, t)


def qbetween(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The shortest-arc rotation taking direction u to direction v. (..., 3) -> (..., 4)

    Unlike the textbook formula this stays defined when u and v are opposite: it then turns
    by pi about an axis perpendicular to u.
    """
    u, v = np.broadcast_arrays(np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64))
    nu = np.linalg.norm(u, axis=-1, keepdims=True)
    nv = np.linalg.norm(v, axis=-1, keepdims=True)
    w = nu * nv + np.sum(u * v, axis=-1, keepdims=True)
    axis = cross(u, v)
    q = np.concatenate([w, axis], axis=-1)
    opposite = w[..., 0] <= 1e-9 * np.maximum(nu[..., 0] * nv[..., 0], _EPS)
    if np.any(opposite):
        uo = u[opposite]
        # Any axis perpendicular to u: cross with the coordinate axis u is least aligned with.
        helper = np.eye(3)[np.argmin(np.abs(uo), axis=-1)]
        perp = cross(uo, helper)
        perp /= np.linalg.norm(perp, axis=-1, keepdims=True)
        q[opposite] = np.concatenate([np.zeros((len(uo), 1)), perp], axis=-1)
    return qnormalize(q)


def qfrom_axis_angle(axis: np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    """Quaternion turning by `angle` radians about `axis` (need not be unit). (..., 4)"""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), _EPS)
    half = 0.5 * np.asarray(angle, dtype=np.float64)[..., None]
    return np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)


def qeuler(
    x: float | np.ndarray = 0.0, y: float | np.ndarray = 0.0, z: float | np.ndarray = 0.0
) -> np.ndarray:
    """Rotation by z about Z, then y about Y, then x about X, in radians (applied as Rx Ry Rz).

    Body-frame meaning with this skeleton's axes: x pitches forward (+) / back, y turns to the
    character's left (+), z rolls toward the character's right side (+) for a joint above.
    """
    cx, sx = np.cos(0.5 * np.asarray(x, dtype=np.float64)), np.sin(0.5 * np.asarray(x, dtype=np.float64))
    cy, sy = np.cos(0.5 * np.asarray(y, dtype=np.float64)), np.sin(0.5 * np.asarray(y, dtype=np.float64))
    cz, sz = np.cos(0.5 * np.asarray(z, dtype=np.float64)), np.sin(0.5 * np.asarray(z, dtype=np.float64))
    # (qx qy) = (cx cy, sx cy, cx sy, sx sy), then times qz = (cz, 0, 0, sz), written out.
    w1, x1, y1, z1 = cx * cy, sx * cy, cx * sy, sx * sy
    return np.stack((w1 * cz - z1 * sz, x1 * cz + y1 * sz, y1 * cz - x1 * sz, w1 * sz + z1 * cz), axis=-1)


def qfix(q: np.ndarray) -> np.ndarray:
    """Flip signs along axis 0 (time) so consecutive quaternions lie in one hemisphere."""
    out = q.copy()
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = (np.cumsum(dots < 0, axis=0) % 2).astype(bool)
    out[1:][flips] *= -1
    return out


def qslerp(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation along the shorter arc, a at t=0, b at t=1. (..., 4)"""
    t = np.asarray(t, dtype=np.float64)
    if t.ndim < a.ndim:
        t = t[..., None]
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0.0, -b, b)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-6
    safe = np.where(near, 1.0, sin_theta)
    wa = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    wb = np.where(near, t, np.sin(t * theta) / safe)
    return qnormalize(wa * a + wb * b)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) -> (..., 3, 3); the matrix acts on column vectors."""
    q = qnormalize(q)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    m = np.stack(
        (
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ),
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) quaternions with w >= 0 (Shepperd's method)."""
    m = np.asarray(m, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Four candidate |components|; pick the largest for numerical stability.
    cands = np.stack(
        (1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), axis=-1
    )
    best = np.argmax(cands, axis=-1)
    s = 2.0 * np.sqrt(np.maximum(np.take_along_axis(cands, best[..., None], axis=-1)[..., 0], _EPS))
    q = np.empty(m.shape[:-2] + (4,))
    r21, r12 = m[..., 2, 1], m[..., 1, 2]
    r02, r20 = m[..., 0, 2], m[..., 2, 0]
    r10, r01 = m[..., 1, 0], m[..., 0, 1]
    options = (
        np.stack((0.25 * s, (r21 - r12) / s, (r02 - r20) / s, (r10 - r01) / s), axis=-1),
        np.stack(((r21 - r12) / s, 0.25 * s, (r01 + r10) / s, (r02 + r20) / s), axis=-1),
        np.stack(((r02 - r20) / s, (r01 + r10) / s, 0.25 * s, (r12 + r21) / s), axis=-1),
        np.stack(((r10 - r01) / s, (r02 + r20) / s, (r12 + r21) / s, 0.25 * s), axis=-1),
    )
    for k, opt in enumerate(options):
        sel = best == k
        q[sel] = opt[sel]
    q = np.where(q[..., :1] < 0, -q, q)
    return qnormalize(q)


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    """Continuous 6-D rotation (Zhou et al. 2019) as HumanML3D stores it: the first two columns
    of the rotation matrix, concatenated. (..., 4) -> (..., 6)"""
    m = quat_to_matrix(q)
    return np.concatenate([m[..., 0], m[..., 1]], axis=-1)


def cont6d_to_matrix(d6: np.ndarray) -> np.ndarray:
    """Gram-Schmidt the two stored columns back into a rotation matrix. (..., 6) -> (..., 3, 3)"""
    x = d6[..., 0:3]
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), _EPS)
    z = cross(x, d6[..., 3:6])
    z = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), _EPS)
    y = cross(z, x)
    return np.stack([x, y, z], axis=-1)


def cont6d_to_quat(d6: np.ndarray) -> np.ndarray:
    return matrix_to_quat(cont6d_to_matrix(d6))


# ---------------------------------------------------------------------------------------------
# Rest pose
# ---------------------------------------------------------------------------------------------


def _build_rest_joints() -> np.ndarray:
    """SMPL-neutral-like joint positions, arms hanging relaxed at the sides (not a T-pose).

    Torso and legs follow the SMPL neutral template's joint regressor output (about 1.68 m
    stature); the arms are the template's bone lengths turned down. Shifted so the toes
    (`left_foot`/`right_foot`) rest on y = 0 and the pelvis is over the origin.
    """
    j = np.zeros((HUMANML3D_JOINTS, 3))
    # Left side is +X; right-side joints mirror the left ones.
    j[0] = (0.000, -0.223, 0.028)  # pelvis
    j[1] = (0.069, -0.314, 0.024)  # left_hip
    j[3] = (0.000, -0.109, 0.000)  # spine1
    j[4] = (0.104, -0.693, 0.016)  # left_knee
    j[6] = (0.000, 0.025, 0.028)  # spine2
    j[7] = (0.089, -1.088, -0.027)  # left_ankle
    j[9] = (0.000, 0.084, 0.028)  # spine3
    j[10] = (0.119, -1.143, 0.095)  # left_foot (toes)
    j[12] = (0.000, 0.296, -0.007)  # neck
    j[13] = (0.077, 0.191, -0.009)  # left_collar
    j[15] = (0.000, 0.368, 0.045)  # head
    j[16] = (0.174, 0.225, -0.017)  # left_shoulder
    upper_arm, forearm = 0.264, 0.249
    down_out = np.array([np.sin(np.radians(7.0)), -np.cos(np.radians(7.0)), 0.0])
    j[18] = j[16] + upper_arm * down_out  # left_elbow
    fore_dir = np.array([np.sin(np.radians(5.0)), -np.cos(np.radians(5.0)), 0.06])
    j[20] = j[18] + forearm * fore_dir / np.linalg.norm(fore_dir)  # left_wrist
    mirror = np.array([-1.0, 1.0, 1.0])
    for left, right in ((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21)):
        j[right] = j[left] * mirror
    j[:, 1] -= j[10, 1]
    j[:, [0, 2]] -= j[0, [0, 2]]
    return j


REST_JOINTS: np.ndarray = _build_rest_joints()
"""(22, 3) rest joint positions, metres, Y up, facing +Z, toes on y = 0, arms down."""

REST_OFFSETS: np.ndarray = np.concatenate(
    [REST_JOINTS[:1], REST_JOINTS[1:] - REST_JOINTS[PARENTS[1:]]], axis=0
)
"""(22, 3) offset of each joint from its parent in the rest pose (row 0: the root position)."""

HEAD_TOP_ABOVE_HEAD_JOINT = 0.16
"""Metres from the `head` joint (skull base) up to the crown, for stature estimates."""


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(..., 22, 3) -> (..., 22) length of the bone ending at each joint (0 for the root)."""
    lengths = np.linalg.norm(joints[..., 1:, :] - joints[..., PARENTS[1:], :], axis=-1)
    return np.concatenate([np.zeros(lengths.shape[:-1] + (1,)), lengths], axis=-1)


# ---------------------------------------------------------------------------------------------
# Forward kinematics (hierarchical, SMPL convention)
# ---------------------------------------------------------------------------------------------


def forward_kinematics(
    local_quats: np.ndarray,
    root_pos: np.ndarray,
    offsets: np.ndarray = REST_OFFSETS,
    *,
    return_global: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Joint positions from local rotations.

    local_quats (..., 22, 4): rotation of each joint relative to its parent (row 0: the root's
    world rotation); identity everywhere gives the rest pose. root_pos (..., 3): pelvis position.
    offsets (22, 3): rest offsets from the parent. Returns joints (..., 22, 3), and the world
    rotations (..., 22, 4) too when `return_global`.
    """
    local = quat_to_matrix(np.asarray(local_quats, dtype=np.float64))  # (..., 22, 3, 3)
    lead = local.shape[:-3]
    glob = np.empty(local.shape)
    pos = np.empty(lead + (HUMANML3D_JOINTS, 3))
    glob[..., 0, :, :] = local[..., 0, :, :]
    pos[..., 0, :] = root_pos
    for j in range(1, HUMANML3D_JOINTS):  # parents precede children in SMPL order
        p = PARENTS[j]
        glob[..., j, :, :] = glob[..., p, :, :] @ local[..., j, :, :]
        pos[..., j, :] = pos[..., p, :] + glob[..., p, :, :] @ offsets[j]
    if return_global:
        return pos, matrix_to_quat(glob)
    return pos


def rest_pose_quats(*lead: int) -> np.ndarray:
    """Identity local rotations, shape (*lead, 22, 4)."""
    q = np.zeros(lead + (HUMANML3D_JOINTS, 4))
    q[..., 0] = 1.0
    return q


def two_bone_ik(
    base: np.ndarray, target: np.ndarray, len_a: float, len_b: float, pole: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Place the middle joint of a two-bone limb (shoulder-elbow-wrist, hip-knee-ankle).

    Returns (middle joint position, end position): the end reaches `target` if it can (else
    the limb points straight at it), and the middle joint bends toward the `pole` direction.
    Law of cosines on the triangle base-middle-end.
    """
    d_vec = target - base
    d = float(np.linalg.norm(d_vec))
    u = d_vec / max(d, _EPS)
    d = float(np.clip(d, abs(len_a - len_b) + 1e-4, len_a + len_b - 1e-4))
    cos_a = (len_a * len_a + d * d - len_b * len_b) / (2.0 * len_a * d)
    sin_a = np.sqrt(max(0.0, 1.0 - cos_a * cos_a))
    n = pole - np.dot(pole, u) * u
    nn = np.linalg.norm(n)
    if nn < 1e-6:  # pole parallel to the limb: bend along any perpendicular
        n = cross(u, np.array([1.0, 0.0, 0.0]))
        nn = np.linalg.norm(n)
    n = n / nn
    middle = base + len_a * (cos_a * u + sin_a * n)
    end = base + d * u
    return middle, end


def aim_local(parent_global: np.ndarray, rest_offset: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Local rotation of a joint so that its bone with rest offset `rest_offset` points along
    world `direction`, turning the least from where the parent carries it (minimal twist).

    The world turn is qbetween(G_p o, d) = G_p qbetween(o, G_p^-1 d) G_p^-1, so the local
    rotation L = G_p^-1 (turn G_p) is just qbetween(o, G_p^-1 d).
    """
    return qbetween(rest_offset, qrot(qinv(parent_global), direction))
