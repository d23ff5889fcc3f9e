"""The HumanML3D 263-D body feature (paper §4.1; Guo et al. 2022), both directions, offline and streaming.

Per frame t (features exist for frames 0..T-2 of a T-frame joint clip, since velocities look
one frame ahead), in `HUMANML3D` layout order:

    root_rot_vel  1      half the yaw turned from t to t+1 (arcsin of the y part of r_{t+1} r_t^-1)
    root_lin_vel  2      root displacement t -> t+1 in the root frame of t+1, xz
    root_y        1      pelvis height above the floor
    ric           21x3   joints 1..21 relative to the root's xz, turned into the root frame
    rot6d         21x6   6-D rotations (first two matrix columns) from HumanML3D's chain IK
    local_vel     22x3   joint displacement t -> t+1 in the root frame of t
    foot_contact  4      left ankle, left toe, right ankle, right toe: 1 when the squared
                         displacement per frame is below the threshold (and height below its own)

The pipeline is HumanML3D's `process_file`: put the lowest joint on the floor, move frame 0's
root over the origin, turn frame 0 to face +Z, then measure the root's facing per frame and
express everything in that root frame. We keep three of its quirks so features match the
released dataset: (1) the per-frame facing in its IK sums the hip vector left-minus-right with
the shoulder vector right-minus-left (a swapped unpack in the original; the shoulders are
wider, so it still faces forward, dominated by the shoulders); (2) frame 0's root rotation is
forced to identity; (3) the foot-height thresholds (3.0 m, 2.0 m) that never bind. One bug we
fix: the yaw velocity quaternion is put in the w >= 0 hemisphere before the arcsin, so turns
across +-180 degrees no longer flip sign.

The dataset smooths the facing with a Gaussian over 20 frames (`forward_sigma=20`), which looks
ahead; the default here is 0 (causal), which the streaming classes match exactly. `floor_height`
None means the dataset's choice (the lowest joint over the whole clip, also a look-ahead); the
streaming encoder uses frame 0's lowest joint unless given a floor.
"""

from __future__ import annotations

import numpy as np

from mio.body.skeleton import (
    PARENTS,
    cont6d_to_quat,
    cross,
    qbetween,
    qinv,
    qmul,
    qrot,
    quat_to_cont6d,
)
from mio.core.layouts import HUMANML3D, HUMANML3D_JOINTS

# HumanML3D's raw bone directions (t2m_raw_offsets): the reference each IK rotation turns from.
# fmt: off
T2M_RAW_OFFSETS = np.array(
    [
        [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0],
        [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1],
        [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
    ],
    dtype=np.float64,
)
# Its kinematic chains (t2m_kinematic_chain): right leg, left leg, spine+head, right arm, left arm.
T2M_KINEMATIC_CHAIN: tuple[tuple[int, ...], ...] = (
    (0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21), (9, 13, 16, 18, 20),
)
# fmt: on


def _chain_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bone of the chains: child joint, parent joint, and the position (in this bone list)
    of the previous bone of the same chain (-1 when the chain starts: it turns from the root)."""
    child, parent, prev = [], [], []
    for chain in T2M_KINEMATIC_CHAIN:
        for k in range(1, len(chain)):
            child.append(chain[k])
            parent.append(chain[k - 1])
            prev.append(len(child) - 2 if k > 1 else -1)
    return np.array(child), np.array(parent), np.array(prev)


_IK_CHILD, _IK_PARENT, _IK_PREV = _chain_tables()
FACE_JOINTS = (2, 1, 17, 16)  # right hip, left hip, right shoulder, left shoulder
FOOT_LEFT = (7, 10)  # left ankle, left toe
FOOT_RIGHT = (8, 11)
FEET_VEL_THRESHOLD = 0.002  # squared metres per frame (20 fps): about 0.9 m/s
FEET_HEIGHT_THRESHOLD = (3.0, 2.0)  # ankle, toe: the dataset's values (they never bind)
DATASET_FORWARD_SIGMA = 20.0  # frames; HumanML3D's facing smoothing (non-causal)

_Y = np.array([0.0, 1.0, 0.0])
_Z = np.array([0.0, 0.0, 1.0])
_S = {name: HUMANML3D.slice(name) for name, _ in HUMANML3D.parts}


# ---------------------------------------------------------------------------------------------
# HumanML3D's chain-convention skeleton (IK / FK used by the rot6d part)
# ---------------------------------------------------------------------------------------------


def t2m_offsets(joints: np.ndarray) -> np.ndarray:
    """Bone offsets in HumanML3D's convention: raw direction x bone length of one frame. (22,3)"""
    lengths = np.linalg.norm(joints[1:] - joints[PARENTS[1:]], axis=-1)
    out = T2M_RAW_OFFSETS.copy()
    out[1:] *= lengths[:, None]
    return out


def facing_direction(joints: np.ndarray, *, dataset_quirk: bool) -> np.ndarray:
    """Unit horizontal forward direction per frame from hips and shoulders. (..., 22, 3) -> (..., 3)

    dataset_quirk=True reproduces the IK's swapped hip vector (see module doc); False is the
    plain (right - left) hips + shoulders that `process_file` uses for the initial alignment.
    """
    r_hip, l_hip, r_sdr, l_sdr = FACE_JOINTS
    hips = (
        joints[..., l_hip, :] - joints[..., r_hip, :]
        if dataset_quirk
        else joints[..., r_hip, :] - joints[..., l_hip, :]
    )
    across = hips + joints[..., r_sdr, :] - joints[..., l_sdr, :]
    across = across / np.linalg.norm(across, axis=-1, keepdims=True)
    forward = cross(_Y, across)
    return forward / np.linalg.norm(forward, axis=-1, keepdims=True)


def _gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(x, sigma, axis=0, mode="nearest")


def t2m_inverse_kinematics(
    joints: np.ndarray, *, forward_sigma: float = 0.0, first_frame_identity: bool = True
) -> np.ndarray:
    """Per-joint rotations in HumanML3D's chain convention. (T, 22, 3) -> (T, 22, 4)

    Row 0 is the root's facing rotation (world -> facing +Z). Along each chain the rotation of
    joint c turns its raw offset direction onto the actual bone parent->c, relative to the
    accumulated rotation of the chain so far; every chain restarts from the root rotation.
    """
    forward = facing_direction(joints, dataset_quirk=True)
    if forward_sigma > 0:
        forward = _gaussian_smooth(forward, forward_sigma)
        forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    root_quat = qbetween(forward, _Z)
    if first_frame_identity:
        root_quat[0] = (1.0, 0.0, 0.0, 0.0)
    # Along a chain the accumulated rotation after joint c is exactly turn_c (acc * acc^-1 turn_c),
    # so every local rotation is turn_prev^-1 turn_c, computed for all bones at once.
    turns = qbetween(T2M_RAW_OFFSETS[_IK_CHILD], joints[:, _IK_CHILD] - joints[:, _IK_PARENT])  # (T, 21, 4)
    prev = np.where((_IK_PREV >= 0)[:, None], turns[:, np.maximum(_IK_PREV, 0)], root_quat[:, None])
    quats = np.empty(joints.shape[:-1] + (4,))
    quats[:, 0] = root_quat
    quats[:, _IK_CHILD] = qmul(qinv(prev), turns)
    return quats


def t2m_forward_kinematics(quats: np.ndarray, root_pos: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Inverse of `t2m_inverse_kinematics` given bone offsets (`t2m_offsets`). -> (..., 22, 3)"""
    joints = np.zeros(quats.shape[:-1] + (3,))
    joints[..., 0, :] = root_pos
    for chain in T2M_KINEMATIC_CHAIN:
        acc = quats[..., 0, :]
        for parent, child in zip(chain[:-1], chain[1:], strict=True):
            acc = qmul(acc, quats[..., child, :])
            joints[..., child, :] = qrot(acc, offsets[child]) + joints[..., parent, :]
    return joints


def uniform_skeleton(joints: np.ndarray, target_offsets: np.ndarray) -> np.ndarray:
    """HumanML3D's retarget onto a reference skeleton before feature extraction. (T,22,3)

    Root positions scale by the ratio of right-leg lengths (knee + shin); bone directions are
    kept and bone lengths replaced by `target_offsets` (a `t2m_offsets` result).
    """
    src = t2m_offsets(joints[0])
    leg = lambda off: np.abs(off[5]).max() + np.abs(off[8]).max()  # noqa: E731
    scale = leg(target_offsets) / leg(src)
    quats = t2m_inverse_kinematics(joints)
    return t2m_forward_kinematics(quats, joints[:, 0] * scale, target_offsets)


# ---------------------------------------------------------------------------------------------
# joints -> features
# ---------------------------------------------------------------------------------------------


def _canonical_transform(first: np.ndarray, floor_height: float) -> tuple[np.ndarray, np.ndarray]:
    """Offset to add and quaternion to apply that put frame 0 on the floor, over the origin, facing +Z."""
    shift = np.array([-first[0, 0], -floor_height, -first[0, 2]])
    forward = facing_direction(first + shift, dataset_quirk=False)
    return shift, qbetween(forward, _Z)


def _features_from_aligned(pos: np.ndarray, quats: np.ndarray, feet_threshold: float) -> np.ndarray:
    """Core of `process_file` on aligned joints (T,22,3) and their IK quats (T,22,4) -> (T-1, 263)."""
    n = len(pos) - 1
    r_rot = quats[:, 0]  # (T, 4) world -> root frame
    # Root linear velocity in the root frame of the next frame; yaw velocity as a quaternion.
    lin_vel = qrot(r_rot[1:], pos[1:, 0] - pos[:-1, 0])  # (T-1, 3)
    rot_vel_q = qmul(r_rot[1:], qinv(r_rot[:-1]))  # (T-1, 4)
    rot_vel_q = np.where(rot_vel_q[:, :1] < 0, -rot_vel_q, rot_vel_q)  # same rotation, w >= 0
    # Root-invariant positions: subtract root xz, turn into the root frame.
    ric = pos.copy()
    ric[..., 0] -= pos[:, 0:1, 0]
    ric[..., 2] -= pos[:, 0:1, 2]
    ric = qrot(r_rot[:, None], ric)  # (T, 22, 3)
    local_vel = qrot(r_rot[:-1, None], pos[1:] - pos[:-1])  # (T-1, 22, 3)
    # Foot contacts: slow (squared step below threshold) and low.
    step2 = np.sum((pos[1:] - pos[:-1]) ** 2, axis=-1)  # (T-1, 22)
    heights = np.array(FEET_HEIGHT_THRESHOLD)
    contacts = [
        (step2[:, list(ids)] < feet_threshold) & (pos[:-1, list(ids), 1] < heights)
        for ids in (FOOT_LEFT, FOOT_RIGHT)
    ]
    out = np.empty((n, HUMANML3D.dim))
    out[:, _S["root_rot_vel"]] = np.arcsin(np.clip(rot_vel_q[:, 2:3], -1.0, 1.0))
    out[:, _S["root_lin_vel"]] = lin_vel[:, [0, 2]]
    out[:, _S["root_y"]] = ric[:-1, 0, 1:2]
    out[:, _S["ric"]] = ric[:-1, 1:].reshape(n, -1)
    out[:, _S["rot6d"]] = quat_to_cont6d(quats[:-1, 1:]).reshape(n, -1)
    out[:, _S["local_vel"]] = local_vel.reshape(n, -1)
    out[:, _S["foot_contact"]] = np.concatenate(contacts, axis=-1).astype(np.float64)
    return out


def align_joints(joints: np.ndarray, *, floor_height: float | None = None) -> np.ndarray:
    """The canonical frame features live in: floor at y=0, frame-0 root over the origin,
    frame 0 facing +Z. (T,22,3) -> (T,22,3); `features_to_joints` recovers exactly this."""
    joints = _check_joints(joints)
    floor = float(joints[..., 1].min()) if floor_height is None else float(floor_height)
    shift, q_init = _canonical_transform(joints[0], floor)
    return qrot(q_init, joints + shift)


def joints_to_features(
    joints: np.ndarray,
    *,
    floor_height: float | None = None,
    forward_sigma: float = 0.0,
    feet_threshold: float = FEET_VEL_THRESHOLD,
) -> np.ndarray:
    """HumanML3D features of a joint clip (§4.1). (T, 22, 3) at 20 fps -> (T-1, 263) float32.

    floor_height: None = the lowest joint of the clip (the dataset's choice).
    forward_sigma: Gaussian smoothing of the facing in frames (the dataset used 20; 0 is causal).
    """
    joints = _check_joints(joints)
    if len(joints) < 2:
        raise ValueError(f"need at least 2 frames of joints to form velocities, got {len(joints)}")
    pos = align_joints(joints, floor_height=floor_height)
    quats = t2m_inverse_kinematics(pos, forward_sigma=forward_sigma)
    return _features_from_aligned(pos, quats, feet_threshold).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# features -> joints
# ---------------------------------------------------------------------------------------------


def _yaw_quat(half_angle: np.ndarray) -> np.ndarray:
    """(cos a, 0, sin a, 0): the root rotation HumanML3D rebuilds from its accumulated angle."""
    q = np.zeros(half_angle.shape + (4,))
    q[..., 0] = np.cos(half_angle)
    q[..., 2] = np.sin(half_angle)
    return q


def recover_root(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root rotation (T,4) and position (T,3) by integrating the velocities (recover_root_rot_pos)."""
    f = HUMANML3D.check(features).astype(np.float64)
    half = np.zeros(len(f))
    half[1:] = np.cumsum(f[:-1, _S["root_rot_vel"]][:, 0])
    r_rot = _yaw_quat(half)
    step = np.zeros((len(f), 3))
    step[1:, [0, 2]] = f[:-1, _S["root_lin_vel"]]
    step = qrot(qinv(r_rot), step)  # root frame of t -> world
    r_pos = np.cumsum(step, axis=0)
    r_pos[:, 1] = f[:, _S["root_y"]][:, 0]
    return r_rot, r_pos


def features_to_joints(features: np.ndarray) -> np.ndarray:
    """Joint positions from HumanML3D features (recover_from_ric). (T, 263) -> (T, 22, 3)"""
    f = HUMANML3D.check(features).astype(np.float64)
    r_rot, r_pos = recover_root(f)
    ric = f[:, _S["ric"]].reshape(len(f), HUMANML3D_JOINTS - 1, 3)
    return _place_ric(ric, r_rot, r_pos)


def _place_ric(ric: np.ndarray, r_rot: np.ndarray, r_pos: np.ndarray) -> np.ndarray:
    world = qrot(qinv(r_rot)[:, None], ric)
    world[..., 0] += r_pos[:, None, 0]
    world[..., 2] += r_pos[:, None, 2]
    return np.concatenate([r_pos[:, None], world], axis=1)


def features_to_rotations(features: np.ndarray) -> np.ndarray:
    """Chain-convention joint rotations (T, 22, 4) from the rot6d part; row 0 is the recovered
    root facing. Use with `t2m_forward_kinematics` (recover_from_rot)."""
    f = HUMANML3D.check(features).astype(np.float64)
    r_rot, _ = recover_root(f)
    rot = cont6d_to_quat(f[:, _S["rot6d"]].reshape(len(f), HUMANML3D_JOINTS - 1, 6))
    return np.concatenate([r_rot[:, None], rot], axis=1)


def features_to_joints_from_rot(features: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Joint positions from the rot6d part and bone offsets (recover_from_rot). (T, 22, 3)"""
    _, r_pos = recover_root(features)
    return t2m_forward_kinematics(features_to_rotations(features), r_pos, offsets)


# ---------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------


class StreamingFeatureEncoder:
    """Joint frames in, HumanML3D feature frames out, one frame late (velocities need frame t+1).

    Equal to `joints_to_features(all_frames, floor_height=f, forward_sigma=0)`, where f is the
    floor given here or, if None, frame 0's lowest joint.
    """

    def __init__(
        self, *, floor_height: float | None = None, feet_threshold: float = FEET_VEL_THRESHOLD
    ) -> None:
        self.floor_height = floor_height
        self.feet_threshold = feet_threshold
        self.reset()

    def reset(self) -> None:
        self._shift: np.ndarray | None = None
        self._q_init: np.ndarray | None = None
        self._prev_pos: np.ndarray | None = None  # (1, 22, 3) aligned
        self._prev_quats: np.ndarray | None = None  # (1, 22, 4)

    def push(self, joints: np.ndarray) -> np.ndarray | None:
        """Add joint frame t (22, 3); returns the feature of frame t-1 (263,), None for t = 0."""
        j = _check_joints(np.asarray(joints)[None])
        first = self._shift is None
        if first:
            floor = float(j[0, :, 1].min()) if self.floor_height is None else float(self.floor_height)
            self._shift, self._q_init = _canonical_transform(j[0], floor)
        pos = qrot(self._q_init, j + self._shift)
        quats = t2m_inverse_kinematics(pos, first_frame_identity=first)
        out = None
        if not first:
            both_pos = np.concatenate([self._prev_pos, pos])
            both_q = np.concatenate([self._prev_quats, quats])
            out = _features_from_aligned(both_pos, both_q, self.feet_threshold)[0].astype(np.float32)
        self._prev_pos, self._prev_quats = pos, quats
        return out


class StreamingFeatureDecoder:
    """HumanML3D feature frames in, joint frames out, no delay; equal to `features_to_joints`."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._half = 0.0  # accumulated half yaw of the root
        self._root_xz = np.zeros(3)
        self._prev: np.ndarray | None = None

    def push(self, features: np.ndarray) -> np.ndarray:
        """Feature frame t (263,) -> joints of frame t (22, 3)."""
        f = HUMANML3D.check(np.asarray(features)[None]).astype(np.float64)[0]
        if self._prev is not None:
            self._half = self._half + self._prev[_S["root_rot_vel"]][0]
            step = np.zeros(3)
            step[[0, 2]] = self._prev[_S["root_lin_vel"]]
            r = _yaw_quat(np.array(self._half))
            self._root_xz = self._root_xz + qrot(qinv(r), step)
        r_rot = _yaw_quat(np.array([self._half]))
        r_pos = self._root_xz.copy()[None]
        r_pos[0, 1] = f[_S["root_y"]][0]
        self._prev = f
        ric = f[_S["ric"]].reshape(1, HUMANML3D_JOINTS - 1, 3)
        return _place_ric(ric, r_rot, r_pos)[0]


def _check_joints(joints: np.ndarray) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (HUMANML3D_JOINTS, 3):
        raise ValueError(f"expected joints of shape (T, {HUMANML3D_JOINTS}, 3), got {joints.shape}")
    if not np.all(np.isfinite(joints)):
        raise ValueError("joint positions contain NaN or inf")
    return joints


__all__ = [
    "DATASET_FORWARD_SIGMA",
    "StreamingFeatureDecoder",
    "StreamingFeatureEncoder",
    "T2M_KINEMATIC_CHAIN",
    "T2M_RAW_OFFSETS",
    "align_joints",
    "facing_direction",
    "features_to_joints",
    "features_to_joints_from_rot",
    "features_to_rotations",
    "joints_to_features",
    "recover_root",
    "t2m_forward_kinematics",
    "t2m_inverse_kinematics",
    "t2m_offsets",
    "uniform_skeleton",
]
