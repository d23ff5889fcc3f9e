"""The embedded procedural Body Animator: idle, gestures, blending, streaming features."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from mio.body.base import BodyBackend, BodyPose, BodySession
from mio.body.gestures import DEFAULT_GESTURE, GESTURES, match_gesture
from mio.body.humanml3d import joints_to_features
from mio.body.procedural import ProceduralBody
from mio.body.skeleton import JOINT_INDEX as J
from mio.core.config import BodyConfig
from mio.core.layouts import BODY_FPS, HUMANML3D

START = 1.0  # s, when gestures are prompted in these tests


def run(
    prompt: str | None = None, *, seconds: float = 5.0, seed: int = 0, fps: float = BODY_FPS
) -> np.ndarray:
    """Joints (T, 22, 3) sampled at `fps`, with `prompt` set at START."""
    session = ProceduralBody(BodyConfig()).new_session(seed)
    out = []
    for i in range(int(seconds * fps)):
        t = i / fps
        if prompt is not None and abs(t - START) < 1e-9:
            session.set_prompt(prompt, t)
        out.append(session.frame(t).joints)
    return np.stack(out)


@pytest.fixture(scope="module")
def idle() -> np.ndarray:
    return run(None, seconds=12.0)


def test_backend_and_pose_contract() -> None:
    backend = ProceduralBody(BodyConfig(seed=3))
    assert isinstance(backend, BodyBackend)
    session = backend.new_session(0)
    assert isinstance(session, BodySession)
    pose = session.frame(0.0)
    assert isinstance(pose, BodyPose)
    assert pose.features.shape == (263,) and pose.joints.shape == (22, 3)
    HUMANML3D.check(pose.features)
    assert np.all(np.isfinite(pose.joints))


def test_idle_breathes_and_shifts_but_stays_put(idle: np.ndarray) -> None:
    motion = np.ptp(idle, axis=0).max(axis=-1)  # (22,) range of each joint over 12 s
    upper = [
        J[n]
        for n in (
            "spine3",
            "neck",
            "head",
            "left_collar",
            "right_collar",
            "left_shoulder",
            "right_shoulder",
            "left_wrist",
            "right_wrist",
        )
    ]
    assert np.all(motion[upper] > 0.005)  # alive
    assert np.all(motion < 0.08)  # but small
    # Breathing: the chest rises and falls a few times over 12 s.
    chest = idle[:, J["spine3"], 2] - idle[:, 0, 2]
    crossings = np.sum(np.diff(np.sign(chest - chest.mean())) != 0)
    assert 2 <= crossings <= 20
    # Stands in place with planted feet, upright, arms relaxed at the sides.
    assert np.abs(idle[:, 0, [0, 2]]).max() < 0.05
    feet = [J["left_ankle"], J["right_ankle"], J["left_foot"], J["right_foot"]]
    assert np.ptp(idle[:, feet], axis=0).max() < 1e-3
    assert abs(idle[:, feet, 1].min()) < 1e-3
    assert 1.45 < idle[:, J["head"], 1].mean() < 1.6
    for side in ("left", "right"):
        assert np.all(idle[:, J[f"{side}_wrist"], 1] < idle[:, J[f"{side}_shoulder"], 1] - 0.35)
        assert np.all(np.abs(idle[:, J[f"{side}_wrist"], 0]) < 0.35)


def hold_window(prompt: str) -> slice:
    """Native frame indices where `prompt`'s gesture (set at START, seed 0) is at full weight."""
    session = ProceduralBody().new_session(0)
    for i in range(int(START * BODY_FPS)):
        session.frame(i / BODY_FPS)
    session.set_prompt(prompt, START)
    name, start, fade, duration = session.layers[-1]
    assert name is not None
    hold_start = start + max(fade, GESTURES[name].attack)
    return slice(int(hold_start * BODY_FPS) + 1, int((hold_start + GESTURES[name].hold) * BODY_FPS))


def test_wave_raises_the_right_wrist_above_the_shoulder(idle: np.ndarray) -> None:
    j = run("Wave hello")[hold_window("Wave hello")]
    assert np.all(j[:, J["right_wrist"], 1] > j[:, J["right_shoulder"], 1] + 0.1)
    assert np.ptp(j[:, J["right_wrist"], 0]) > 0.08  # waving side to side
    assert np.all(j[:, J["left_wrist"], 1] < j[:, J["left_shoulder"], 1] - 0.3)


def test_nod_and_head_shake_move_the_head(idle: np.ndarray) -> None:
    w = hold_window("nods in agreement")
    nod = run("nods in agreement")[w]
    dip = idle[w, J["head"], 1] - nod[:, J["head"], 1]
    assert dip.max() > 0.015 and (nod[:, J["head"], 2] - idle[w, J["head"], 2]).max() > 0.035
    w = hold_window("shakes her head")
    shake = run("shakes her head")[w]
    side = shake[:, J["head"], 0] - shake[:, J["neck"], 0]
    assert side.max() > 0.015 and side.min() < -0.015


def test_bow_lowers_the_head(idle: np.ndarray) -> None:
    w = hold_window("bow politely")
    bow = run("bow politely")[w]
    assert (idle[w, J["head"], 1] - bow[:, J["head"], 1]).min() > 0.08
    assert np.ptp(bow[:, [J["left_ankle"], J["right_ankle"]]], axis=0).max() < 2e-3  # feet stay


def test_shrug_raises_the_shoulders(idle: np.ndarray) -> None:
    w = hold_window("shrug")
    shrug = run("shrug")[w]
    for s in ("left_shoulder", "right_shoulder"):
        assert (shrug[:, J[s], 1] - idle[w, J[s], 1]).min() > 0.02


def test_point_extends_the_right_arm_forward() -> None:
    j = run("points at the map")[hold_window("points at the map")]
    reach = j[:, J["right_wrist"]] - j[:, J["right_shoulder"]]
    assert np.all(reach[:, 2] > 0.4) and np.all(np.abs(reach[:, 1]) < 0.15)


def test_open_arms_spread_both_hands() -> None:
    j = run("opens his arms in welcome")[hold_window("opens his arms in welcome")]
    assert np.all(j[:, J["left_wrist"], 0] > 0.45) and np.all(j[:, J["right_wrist"], 0] < -0.45)
    assert np.all(j[:, [J["left_wrist"], J["right_wrist"]], 2] > 0.1)


def test_beat_moves_the_hands_in_front() -> None:
    j = run("talking with her hands")[hold_window("talking with her hands")]
    assert np.all(j[:, J["right_wrist"], 2] > 0.15)
    assert np.ptp(j[:, J["right_wrist"], 1]) > 0.03


def test_think_brings_a_hand_to_the_chin() -> None:
    j = run("thinks for a moment")[hold_window("thinks for a moment")]
    assert np.linalg.norm(j[:, J["right_wrist"]] - j[:, J["head"]], axis=-1).max() < 0.25


def test_clap_brings_the_hands_together_repeatedly() -> None:
    j = run("claps")[hold_window("claps")]
    gap = np.linalg.norm(j[:, J["left_wrist"]] - j[:, J["right_wrist"]], axis=-1)
    assert gap.min() < 0.08 and gap.max() > 0.2
    assert np.all(j[:, J["right_wrist"], 2] > 0.15)


def test_hand_on_chest() -> None:
    j = run("puts a hand on her chest")[hold_window("puts a hand on her chest")]
    chest_front = j[:, J["spine3"]] + np.array([0.0, 0.0, 0.12])
    assert np.linalg.norm(j[:, J["right_wrist"]] - chest_front, axis=-1).max() < 0.12


@pytest.mark.parametrize("name", sorted(GESTURES))
def test_every_gesture_returns_to_idle(name: str, idle: np.ndarray) -> None:
    prompt = name.replace("_", " ")
    window = hold_window(prompt)
    end = window.stop / BODY_FPS + GESTURES[name].release
    j = run(prompt, seconds=end + 1.0)
    after = int(np.ceil((end + 0.05) * BODY_FPS))
    np.testing.assert_allclose(j[after:], idle[after : len(j)], atol=1e-5)
    assert np.abs(j[window] - idle[window]).max() > 0.015  # it did something


def test_prompt_matching() -> None:
    cases = {
        "wave": "wave",
        "Waves hello!": "wave",
        "say hi": "wave",
        "NOD": "nod",
        "nodding slowly": "nod",
        "shakes his head no": "head_shake",
        "head shake": "head_shake",
        "bows deeply": "bow",
        "shrugs": "shrug",
        "I don't know": "shrug",
        "point to the left": "point",
        "opens her arms wide": "open_arms",
        "welcome gesture": "open_arms",
        "thinking": "think",
        "hand to chin": "think",
        "clapping": "clap",
        "applauds": "clap",
        "hand on heart": "hand_on_chest",
        "puts a hand over his chest": "hand_on_chest",
        "explains": "beat",
        "nod then wave": "nod",
    }
    for prompt, name in cases.items():
        assert match_gesture(prompt) == name, prompt
    for prompt in (None, "", "   ", "stand", "idle", "stand still and listen"):
        assert match_gesture(prompt) is None
    assert match_gesture("does a backflip") == DEFAULT_GESTURE == "beat"


def test_unknown_prompt_plays_the_beat_gesture() -> None:
    session = ProceduralBody().new_session(0)
    session.frame(0.0)
    session.set_prompt("juggles three flaming torches", 0.05)
    session.frame(0.5)
    assert session.active_gesture == "beat"
    np.testing.assert_allclose(
        run("juggles three flaming torches", seconds=3.0), run("beat", seconds=3.0), atol=1e-12
    )


SWITCHES = [
    ("wave", "clap"),
    ("wave", None),
    ("think", "wave"),
    ("bow", "point"),
    ("clap", "open arms"),
    ("shrug", "think"),
    ("nod", "bow"),
    ("open arms", "hand on chest"),
    ("point", "shake head"),
]


@functools.cache
def play(first: str | None, second: str | None, switch: float | None, fps: float) -> np.ndarray:
    session = ProceduralBody().new_session(2)
    frames = []
    for i in range(int(4.0 * fps)):
        t = i / fps
        if abs(t - START) < 1e-9:
            session.set_prompt(first, t)
        if switch is not None and abs(t - switch) < 0.5 / fps and t >= switch:
            session.set_prompt(second, t)
        frames.append(session.frame(t).joints)
    return np.stack(frames)


@pytest.mark.parametrize(("first", "second"), SWITCHES)
@pytest.mark.parametrize("fps", [BODY_FPS, 25.0])
def test_switching_mid_gesture_does_not_pop(first: str, second: str | None, fps: float) -> None:
    switch = START + 0.7  # mid attack or hold of the first gesture
    switched = play(first, second, switch, fps)
    step = np.linalg.norm(np.diff(switched, axis=0), axis=-1).max(axis=-1)  # (T-1,) metres per frame
    assert step.max() * fps < 3.2  # no joint faster than ~3 m/s (fast hands): nothing teleports
    # Continuity: around the switch, no joint accelerates harder than either gesture does by itself.
    accel = lambda j: np.linalg.norm(np.diff(j, n=2, axis=0), axis=-1).max(axis=-1)  # noqa: E731
    k = int(np.ceil(switch * fps))  # first frame after the switch
    around = slice(k - 3, k + 3)
    alone = max(accel(play(first, None, None, fps)).max(), accel(play(second, None, None, fps)).max())
    assert accel(switched)[around].max() <= alone + 0.005


def test_deterministic_per_seed() -> None:
    def script(seed: int) -> tuple[np.ndarray, np.ndarray]:
        session = ProceduralBody().new_session(seed)
        joints, feats = [], []
        for i in range(80):
            t = i / 25.0
            if i == 10:
                session.set_prompt("wave", t)
            if i == 40:
                session.set_prompt("something unexpected", t)
            pose = session.frame(t)
            joints.append(pose.joints)
            feats.append(pose.features)
        return np.stack(joints), np.stack(feats)

    a, b, c = script(5), script(5), script(6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.abs(a[0] - c[0]).max() > 1e-3


def test_features_are_the_streaming_humanml3d_features_of_the_native_frames() -> None:
    session = ProceduralBody().new_session(1)
    poses = []
    for k in range(60):
        if k == 5:
            session.set_prompt("clap", k / BODY_FPS)
        poses.append(session.frame(k / BODY_FPS))
    joints = np.stack([p.joints for p in poses])
    offline = joints_to_features(joints, floor_height=0.0)
    np.testing.assert_allclose(np.stack([p.features for p in poses[:-1]]), offline, atol=1e-5)


def test_frames_between_native_frames_are_interpolated() -> None:
    session = ProceduralBody().new_session(0)
    session.set_prompt("wave", 0.0)
    a = session.frame(1.0).joints
    mid = session.frame(1.025).joints
    b = session.frame(1.05).joints
    assert np.linalg.norm(mid - (a + b) / 2, axis=-1).max() < 0.01
    np.testing.assert_array_equal(session.frame(0.5).joints, b)  # earlier t: the latest pose
