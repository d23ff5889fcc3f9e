"""HumanML3D 263-D features (paper §4.1): joints <-> features, offline and streaming."""

from __future__ import annotations

import numpy as np
import pytest

from mio.body import humanml3d as h
from mio.body import skeleton as sk
from mio.core.layouts import BODY_FPS, HUMANML3D

J = sk.JOINT_INDEX
S = {name: HUMANML3D.slice(name) for name, _ in HUMANML3D.parts}


def synthetic_motion(
    seed: int = 0, frames: int = 80, *, yaw_rate: float = 1.3, speed: float = 0.6
) -> np.ndarray:
    """A person swinging every joint while walking a curve and turning past 180 degrees. (T,22,3)"""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / BODY_FPS
    q = sk.rest_pose_quats(frames)
    for j in range(1, 22):
        axis = rng.normal(size=3)
        q[:, j] = sk.qfrom_axis_angle(axis, 0.35 * np.sin(rng.uniform(1, 4) * t + rng.uniform(0, 6)))
    yaw = yaw_rate * t + 0.5
    q[:, 0] = sk.qmul(
        sk.qfrom_axis_angle(np.array([0.0, 1.0, 0.0]), yaw),
        sk.qfrom_axis_angle(np.array([1.0, 0.0, 0.0]), 0.1 * np.sin(3 * t)),
    )
    heading = np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], -1)
    root = np.cumsum(heading * speed / BODY_FPS, axis=0) + np.array([1.5, 0.95, -2.0])
    root[:, 1] += 0.03 * np.sin(6 * t)
    return sk.forward_kinematics(q, root)


def reference_ik(joints: np.ndarray) -> np.ndarray:
    """HumanML3D's IK loop written out step by step (accumulating along each chain)."""
    forward = h.facing_direction(joints, dataset_quirk=True)
    root = sk.qbetween(forward, np.array([0.0, 0.0, 1.0]))
    root[0] = (1.0, 0.0, 0.0, 0.0)
    out = np.zeros(joints.shape[:-1] + (4,))
    out[:, 0] = root
    for chain in h.T2M_KINEMATIC_CHAIN:
        acc = root
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            turn = sk.qbetween(h.T2M_RAW_OFFSETS[b], joints[:, b] - joints[:, a])
            local = sk.qmul(sk.qinv(acc), turn)
            out[:, b] = local
            acc = sk.qmul(acc, local)
    return out


def test_features_shape_and_dtype() -> None:
    joints = synthetic_motion()
    f = h.joints_to_features(joints)
    assert f.shape == (len(joints) - 1, 263) and f.dtype == np.float32
    HUMANML3D.check(f)
    assert set(np.unique(f[:, S["foot_contact"]])) <= {0.0, 1.0}


@pytest.mark.parametrize("sigma", [0.0, h.DATASET_FORWARD_SIGMA])
def test_round_trip_recovers_the_aligned_joints(sigma: float) -> None:
    joints = synthetic_motion(seed=3)
    f = h.joints_to_features(joints, forward_sigma=sigma)
    aligned = h.align_joints(joints)
    np.testing.assert_allclose(h.features_to_joints(f), aligned[:-1], atol=2e-5)
    # The rot6d part alone, with the clip's bone lengths, gives the same joints (recover_from_rot).
    rebuilt = h.features_to_joints_from_rot(f, h.t2m_offsets(aligned[0]))
    np.testing.assert_allclose(rebuilt, aligned[:-1], atol=2e-5)


def test_alignment_is_canonical() -> None:
    aligned = h.align_joints(synthetic_motion(seed=4))
    assert aligned[..., 1].min() == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(aligned[0, 0, [0, 2]], 0.0, atol=1e-12)
    np.testing.assert_allclose(
        h.facing_direction(aligned[0], dataset_quirk=False), [0.0, 0.0, 1.0], atol=1e-9
    )


def test_features_do_not_depend_on_where_the_clip_is_in_the_world() -> None:
    joints = synthetic_motion(seed=5)
    turn = sk.qfrom_axis_angle(np.array([0.0, 1.0, 0.0]), 2.2)
    moved = sk.qrot(turn, joints) + np.array([4.0, 0.3, -7.0])
    np.testing.assert_allclose(h.joints_to_features(moved), h.joints_to_features(joints), atol=2e-5)


def test_vectorised_ik_equals_the_chain_loop() -> None:
    pos = h.align_joints(synthetic_motion(seed=6))
    np.testing.assert_allclose(h.t2m_inverse_kinematics(pos), reference_ik(pos), atol=1e-10)


def test_root_velocity_conventions() -> None:
    """Walking straight along +Z at 1 m/s while turning left at w rad/frame."""
    frames, w = 30, 0.05
    q = sk.rest_pose_quats(frames)
    q[:, 0] = sk.qfrom_axis_angle(np.array([0.0, 1.0, 0.0]), w * np.arange(frames))
    root = np.zeros((frames, 3))
    root[:, 1] = 0.92
    joints = sk.forward_kinematics(q, root)
    f = h.joints_to_features(joints)
    # HumanML3D stores half the yaw step, negative for a left (+Y) turn (it is the world->root turn).
    np.testing.assert_allclose(f[:, S["root_rot_vel"]], -w / 2, atol=1e-6)
    np.testing.assert_allclose(f[:, S["root_lin_vel"]], 0.0, atol=1e-6)
    np.testing.assert_allclose(f[:, S["root_y"]], 0.92, atol=1e-6)
    straight = sk.forward_kinematics(
        sk.rest_pose_quats(frames),
        np.stack([np.zeros(frames), np.full(frames, 0.92), np.arange(frames) / BODY_FPS], -1),
    )
    f = h.joints_to_features(straight)
    np.testing.assert_allclose(f[:, S["root_lin_vel"]], [[0.0, 1.0 / BODY_FPS]] * (frames - 1), atol=1e-6)
    np.testing.assert_allclose(f[:, S["root_rot_vel"]], 0.0, atol=1e-7)


def test_foot_contacts() -> None:
    frames = 20
    still = sk.forward_kinematics(sk.rest_pose_quats(frames), np.tile(sk.REST_JOINTS[0], (frames, 1)))
    assert np.all(h.joints_to_features(still)[:, S["foot_contact"]] == 1.0)
    kicking = still.copy()
    kicking[:, [J["left_ankle"], J["left_foot"]], 2] += 0.1 * np.arange(frames)[:, None]  # 2 m/s
    contact = h.joints_to_features(kicking)[:, S["foot_contact"]]
    assert np.all(contact[:, :2] == 0.0) and np.all(contact[:, 2:] == 1.0)


def test_streaming_encoder_equals_offline() -> None:
    joints = synthetic_motion(seed=7)
    enc = h.StreamingFeatureEncoder()
    outs = [enc.push(frame) for frame in joints]
    assert outs[0] is None
    offline = h.joints_to_features(joints, floor_height=float(joints[0, :, 1].min()))
    np.testing.assert_allclose(np.stack(outs[1:]), offline, atol=1e-6)
    enc = h.StreamingFeatureEncoder(floor_height=0.0)
    outs = [enc.push(frame) for frame in joints]
    np.testing.assert_allclose(np.stack(outs[1:]), h.joints_to_features(joints, floor_height=0.0), atol=1e-6)
    enc.reset()
    assert enc.push(joints[0]) is None


def test_streaming_decoder_equals_offline() -> None:
    f = h.joints_to_features(synthetic_motion(seed=8))
    dec = h.StreamingFeatureDecoder()
    streamed = np.stack([dec.push(frame) for frame in f])
    np.testing.assert_allclose(streamed, h.features_to_joints(f), atol=1e-9)
    dec.reset()
    np.testing.assert_allclose(dec.push(f[0]), h.features_to_joints(f[:1])[0], atol=1e-9)


def test_uniform_skeleton_sets_bone_lengths() -> None:
    joints = synthetic_motion(seed=9)
    same = h.uniform_skeleton(joints, h.t2m_offsets(joints[0]))
    np.testing.assert_allclose(same, joints, atol=1e-9)
    target = h.t2m_offsets(joints[0]) * 1.1
    bigger = h.uniform_skeleton(joints, target)
    np.testing.assert_allclose(
        sk.bone_lengths(bigger),
        np.broadcast_to(sk.bone_lengths(joints[0]) * 1.1, (len(joints), 22)),
        atol=1e-9,
    )


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        h.joints_to_features(np.zeros((10, 21, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        h.joints_to_features(sk.REST_JOINTS[None])
    bad = synthetic_motion()
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        h.joints_to_features(bad)
    with pytest.raises(ValueError, match="263"):
        h.features_to_joints(np.zeros((5, 262)))
