"""Skeleton, rotation utilities and forward kinematics (mio.body.skeleton)."""

from __future__ import annotations

import numpy as np
import pytest

from mio.body import skeleton as sk
from mio.core.layouts import HUMANML3D, HUMANML3D_JOINTS, HUMANML3D_PARENTS

J = sk.JOINT_INDEX


def random_quats(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return sk.qnormalize(rng.normal(size=shape + (4,)))


def test_humanml3d_layout_sizes() -> None:
    sizes = dict(HUMANML3D.parts)
    assert HUMANML3D.dim == 263
    assert sizes == {
        "root_rot_vel": 1,
        "root_lin_vel": 2,
        "root_y": 1,
        "ric": 63,
        "rot6d": 126,
        "local_vel": 66,
        "foot_contact": 4,
    }
    assert HUMANML3D.slice("ric") == slice(4, 67)
    assert HUMANML3D.slice("rot6d") == slice(67, 193)
    assert HUMANML3D.slice("foot_contact") == slice(259, 263)
    assert len(HUMANML3D_PARENTS) == HUMANML3D_JOINTS == 22


def test_rest_pose_is_a_standing_person() -> None:
    rest = sk.forward_kinematics(sk.rest_pose_quats(), sk.REST_JOINTS[0])
    np.testing.assert_allclose(rest, sk.REST_JOINTS, atol=1e-12)
    assert rest[:, 1].min() == pytest.approx(0.0, abs=1e-9)  # toes on the floor
    assert rest[J["left_foot"], 1] == pytest.approx(0.0, abs=1e-9)
    assert 1.45 < rest[J["head"], 1] < 1.6
    stature = rest[J["head"], 1] + sk.HEAD_TOP_ABOVE_HEAD_JOINT
    assert 1.6 < stature < 1.8
    assert 0.85 < rest[0, 1] < 1.0
    np.testing.assert_allclose(rest[0, [0, 2]], 0.0, atol=1e-12)
    # Left is +X, facing +Z (toes ahead of ankles), Y up.
    assert rest[J["left_hip"], 0] > 0 > rest[J["right_hip"], 0]
    assert rest[J["left_foot"], 2] > rest[J["left_ankle"], 2]
    assert rest[J["head"], 1] > rest[J["neck"], 1] > rest[J["spine3"], 1] > rest[0, 1]
    # Arms hang at the sides, not a T-pose.
    for side in ("left", "right"):
        assert rest[J[f"{side}_wrist"], 1] < rest[J[f"{side}_shoulder"], 1] - 0.4
        assert abs(rest[J[f"{side}_wrist"], 0]) < 0.3


def test_quaternion_ops_agree_with_matrices() -> None:
    rng = np.random.default_rng(0)
    a, b = random_quats(rng, 50), random_quats(rng, 50)
    v = rng.normal(size=(50, 3))
    ma, mb = sk.quat_to_matrix(a), sk.quat_to_matrix(b)
    np.testing.assert_allclose(sk.quat_to_matrix(sk.qmul(a, b)), ma @ mb, atol=1e-12)
    np.testing.assert_allclose(sk.qrot(a, v), np.einsum("nij,nj->ni", ma, v), atol=1e-12)
    np.testing.assert_allclose(sk.qrot(sk.qinv(a), sk.qrot(a, v)), v, atol=1e-12)
    back = sk.matrix_to_quat(ma)
    np.testing.assert_allclose(np.abs(np.sum(back * a, axis=-1)), 1.0, atol=1e-10)
    np.testing.assert_allclose(sk.cont6d_to_matrix(sk.quat_to_cont6d(a)), ma, atol=1e-10)
    np.testing.assert_allclose(sk.cross(v, v[::-1]), np.cross(v, v[::-1]), atol=1e-12)


def test_qbetween_including_opposite_directions() -> None:
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=(100, 3)), rng.normal(size=(100, 3))
    q = sk.qbetween(u, v)
    np.testing.assert_allclose(
        sk.qrot(q, u / np.linalg.norm(u, axis=-1, keepdims=True)),
        v / np.linalg.norm(v, axis=-1, keepdims=True),
        atol=1e-10,
    )
    for d in (np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0]), np.array([0.3, 0.2, -0.9])):
        q = sk.qbetween(d, -d)
        assert np.all(np.isfinite(q))
        np.testing.assert_allclose(sk.qrot(q, d), -d, atol=1e-10)


def test_slerp_and_euler() -> None:
    a = sk.qfrom_axis_angle(np.array([0.0, 1.0, 0.0]), 0.2)
    b = sk.qfrom_axis_angle(np.array([0.0, 1.0, 0.0]), 1.0)
    np.testing.assert_allclose(sk.qslerp(a, b, 0.0), a, atol=1e-12)
    np.testing.assert_allclose(sk.qslerp(a, b, 1.0), b, atol=1e-12)
    mid = sk.qfrom_axis_angle(np.array([0.0, 1.0, 0.0]), 0.6)
    np.testing.assert_allclose(sk.qslerp(a, b, 0.5), mid, atol=1e-12)
    np.testing.assert_allclose(sk.qslerp(a, -b, 0.5), mid, atol=1e-12)  # shorter arc for either sign
    x, y, z = 0.3, -0.7, 1.1
    composed = sk.qmul(
        sk.qfrom_axis_angle(np.array([1.0, 0.0, 0.0]), x),
        sk.qmul(
            sk.qfrom_axis_angle(np.array([0.0, 1.0, 0.0]), y),
            sk.qfrom_axis_angle(np.array([0.0, 0.0, 1.0]), z),
        ),
    )
    np.testing.assert_allclose(sk.qeuler(x, y, z), composed, atol=1e-12)
    # qeuler's documented body-frame meanings.
    up, fwd = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    assert sk.qrot(sk.qeuler(x=0.3), up)[2] > 0  # pitch forward tips the part above forward
    assert sk.qrot(sk.qeuler(y=0.3), fwd)[0] > 0  # turning left points forward toward +X
    assert sk.qrot(sk.qeuler(z=0.3), up)[0] < 0  # rolling right tips the part above toward -X


def test_forward_kinematics_keeps_bone_lengths_and_batches() -> None:
    rng = np.random.default_rng(2)
    quats = random_quats(rng, 7, 22)
    root = rng.normal(size=(7, 3))
    joints = sk.forward_kinematics(quats, root)
    np.testing.assert_allclose(
        sk.bone_lengths(joints), np.broadcast_to(sk.bone_lengths(sk.REST_JOINTS), (7, 22)), atol=1e-12
    )
    one = sk.forward_kinematics(quats[3], root[3])
    np.testing.assert_allclose(one, joints[3], atol=1e-12)
    _, glob = sk.forward_kinematics(quats[3], root[3], return_global=True)
    np.testing.assert_allclose(np.abs(np.sum(glob[0] * quats[3, 0])), 1.0, atol=1e-10)
    # Turning the left shoulder moves only the left arm below it.
    q = sk.rest_pose_quats()
    q[J["left_shoulder"]] = sk.qeuler(z=1.0)
    moved = np.linalg.norm(sk.forward_kinematics(q, sk.REST_JOINTS[0]) - sk.REST_JOINTS, axis=-1) > 1e-9
    assert set(np.flatnonzero(moved)) == {J["left_elbow"], J["left_wrist"]}


def test_two_bone_ik_and_aim() -> None:
    base, target = np.zeros(3), np.array([0.2, 0.3, 0.1])
    mid, end = sk.two_bone_ik(base, target, 0.3, 0.25, np.array([0.0, -1.0, 0.0]))
    np.testing.assert_allclose(end, target, atol=1e-9)
    assert np.linalg.norm(mid - base) == pytest.approx(0.3)
    assert np.linalg.norm(end - mid) == pytest.approx(0.25)
    far = np.array([2.0, 0.0, 0.0])  # out of reach: the limb points straight at it
    mid, end = sk.two_bone_ik(base, far, 0.3, 0.25, np.array([0.0, -1.0, 0.0]))
    assert np.linalg.norm(end) == pytest.approx(0.55, abs=1e-3) and end[0] > 0.549
    parent = sk.qeuler(x=0.4, y=-0.2)
    d = np.array([0.1, 0.5, 0.7])
    local = sk.aim_local(parent, np.array([0.0, -0.3, 0.0]), d)
    got = sk.qrot(sk.qmul(parent, local), np.array([0.0, -0.3, 0.0]))
    np.testing.assert_allclose(got / 0.3, d / np.linalg.norm(d), atol=1e-10)


def test_quaternion_helpers_agree_with_scipy_rotation() -> None:
    """The batched (w, x, y, z) helpers do what scipy's Rotation (x, y, z, w) does."""
    from scipy.spatial.transform import Rotation, Slerp

    rng = np.random.default_rng(7)
    a, b = random_quats(rng, 3, 22), random_quats(rng, 3, 22)
    v = rng.normal(size=(3, 22, 3))

    def R(q: np.ndarray) -> Rotation:
        return Rotation.from_quat(q.reshape(-1, 4)[:, [1, 2, 3, 0]])

    assert np.allclose(sk.qrot(a, v).reshape(-1, 3), R(a).apply(v.reshape(-1, 3)))
    assert np.allclose(sk.quat_to_matrix(sk.qmul(a, b)).reshape(-1, 3, 3), (R(a) * R(b)).as_matrix())
    assert np.allclose(sk.quat_to_matrix(sk.qinv(a)).reshape(-1, 3, 3), R(a).inv().as_matrix())
    x, y, z = rng.uniform(-1.5, 1.5, size=(3, 50))
    assert np.allclose(sk.quat_to_matrix(sk.qeuler(x, y, z)), Rotation.from_euler("XYZ", np.stack([x, y, z], -1)).as_matrix())
    t = 0.3
    for qa, qb in zip(a.reshape(-1, 4)[:10], b.reshape(-1, 4)[:10], strict=True):
        want = Slerp([0, 1], R(np.stack([qa, qb])))([t]).as_matrix()[0]
        assert np.allclose(sk.quat_to_matrix(sk.qslerp(qa, qb, t)), want)
