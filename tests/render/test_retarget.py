"""Retargeting on a small synthetic rig (no anny needed): rotations, facing and the rest pose."""

import numpy as np
import pytest

from mio.core.errors import InputError
from mio.core.layouts import HUMANML3D_JOINT_NAMES
from mio.render.retarget import (
    REFERENCE_BONES,
    Retargeter,
    Rig,
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    rotation_between,
    skinning_matrices,
)


def test_rotation_helpers_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        r = rng.normal(size=3)
        r *= rng.uniform(0.1, 3.0) / np.linalg.norm(r)
        np.testing.assert_allclose(matrix_to_axis_angle(axis_angle_to_matrix(r)), r, atol=1e-6)
        a, b = rng.normal(size=3), rng.normal(size=3)
        R = rotation_between(a, b)
        np.testing.assert_allclose(R @ (a / np.linalg.norm(a)), b / np.linalg.norm(b), atol=1e-9)
    R = rotation_between(np.array([0, 1.0, 0]), np.array([0, -1.0, 0]))  # opposite directions
    np.testing.assert_allclose(R @ [0, 1.0, 0], [0, -1.0, 0], atol=1e-9)


def _toy_rig() -> Rig:
    """The bones the retargeter uses, at plausible rest positions (A-pose arms)."""
    pos = {
        "root": (0, 0.9, 0),
        "upperleg01.L": (0.1, 0.88, 0),
        "lowerleg01.L": (0.12, 0.48, 0.02),
        "foot.L": (0.14, 0.08, 0),
        "toe3-1.L": (0.15, 0.02, 0.13),
        "spine04": (0, 0.97, 0),
        "spine03": (0, 1.03, 0),
        "spine02": (0, 1.1, 0),
        "spine01": (0, 1.22, 0),
        "clavicle.L": (0.03, 1.33, 0.02),
        "upperarm01.L": (0.17, 1.3, 0),
        "lowerarm01.L": (0.33, 1.1, 0),
        "wrist.L": (0.45, 0.98, 0.05),
        "neck01": (0, 1.38, 0),
        "neck02": (0, 1.42, 0),
        "head": (0, 1.48, 0.03),
        "eye.L": (0.03, 1.55, 0.1),
    }
    names, parents, heads = [], [], []
    tree = [
        ("root", None),
        ("upperleg01.L", "root"),
        ("lowerleg01.L", "upperleg01.L"),
        ("foot.L", "lowerleg01.L"),
        ("toe3-1.L", "foot.L"),
        ("upperleg01.R", "root"),
        ("lowerleg01.R", "upperleg01.R"),
        ("foot.R", "lowerleg01.R"),
        ("toe3-1.R", "foot.R"),
        ("spine04", "root"),
        ("spine03", "spine04"),
        ("spine02", "spine03"),
        ("spine01", "spine02"),
        ("clavicle.L", "spine01"),
        ("upperarm01.L", "clavicle.L"),
        ("lowerarm01.L", "upperarm01.L"),
        ("wrist.L", "lowerarm01.L"),
        ("clavicle.R", "spine01"),
        ("upperarm01.R", "clavicle.R"),
        ("lowerarm01.R", "upperarm01.R"),
        ("wrist.R", "lowerarm01.R"),
        ("neck01", "spine01"),
        ("neck02", "neck01"),
        ("head", "neck02"),
        ("eye.L", "head"),
        ("eye.R", "head"),
    ]
    for name, parent in tree:
        base = name.replace(".R", ".L")
        x, y, z = pos[base]
        names.append(name)
        parents.append(-1 if parent is None else names.index(parent))
        heads.append((-x if name.endswith(".R") else x, y, z))
    return Rig(tuple(names), np.array(parents), np.array(heads, dtype=np.float64))


def _posed_heads(rig: Rig, joints):
    M = skinning_matrices(rig, Retargeter(rig)(joints))
    return np.einsum("bij,bj->bi", M[:, :3, :3], rig.heads) + M[:, :3, 3]


def test_reference_joints_give_identity_torso_and_rest_limbs():
    rig = _toy_rig()
    ref = np.stack([rig.heads[rig.index(REFERENCE_BONES[n])] for n in HUMANML3D_JOINT_NAMES])
    np.testing.assert_allclose(_posed_heads(rig, ref), rig.heads, atol=1e-6)


def test_rest_pose_hangs_the_arms_down():
    rig = _toy_rig()
    heads = _posed_heads(rig, None)
    for side in "LR":
        shoulder, wrist = heads[rig.index(f"upperarm01.{side}")], heads[rig.index(f"wrist.{side}")]
        assert shoulder[1] - wrist[1] > 0.3  # well below the shoulder, not an A/T-pose
        assert abs(wrist[0]) < 0.35


def test_raised_arm_and_turned_body_follow_the_joints():
    rig = _toy_rig()
    ref = np.stack([rig.heads[rig.index(REFERENCE_BONES[n])] for n in HUMANML3D_JOINT_NAMES])
    j = ref.copy()
    names = list(HUMANML3D_JOINT_NAMES)
    s, e, w = names.index("left_shoulder"), names.index("left_elbow"), names.index("left_wrist")
    j[e] = j[s] + [0, 0.25, 0]
    j[w] = j[e] + [0, 0.25, 0]
    heads = _posed_heads(rig, j)
    assert heads[rig.index("wrist.L"), 1] > heads[rig.index("head"), 1]  # hand above the head
    # A quarter turn of the whole skeleton about Y turns the avatar with it.
    R = axis_angle_to_matrix(np.array([0, np.pi / 2, 0]))
    heads = _posed_heads(rig, ref @ R.T)
    np.testing.assert_allclose(heads, rig.heads @ R.T, atol=1e-5)


def test_bad_joints_are_refused():
    rig = _toy_rig()
    with pytest.raises(InputError, match="shape"):
        Retargeter(rig)(np.zeros((21, 3)))
    bad = np.zeros((22, 3))
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        Retargeter(rig)(bad)


def test_batched_rotation_helpers_match_the_single_ones():
    from mio.render.retarget import axis_angles_to_matrices, rotations_between

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    a[3], b[3] = [0, 1.0, 0], [0, -2.0, 0]  # opposite directions
    b[4] = a[4] * 3  # same direction
    R = rotations_between(a, b)
    for k in range(len(a)):
        np.testing.assert_allclose(R[k], rotation_between(a[k], b[k]), atol=1e-9)
    r = rng.normal(size=(10, 3))
    r[0] = 0.0
    M = axis_angles_to_matrices(r)
    for k in range(len(r)):
        np.testing.assert_allclose(M[k], axis_angle_to_matrix(r[k]), atol=1e-12)
