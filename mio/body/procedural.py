"""The embedded Body Animator: procedural idle + text-prompted gestures, streaming at 20 fps.

No model, no weights: a standing character that breathes, shifts its weight and glances
around (the §4.3 "stand" prompt), and performs gestures the Thinker names in short prompts
(`mio.body.gestures`). Everything is posed in local joint rotations on the SMPL-like skeleton
(`mio.body.skeleton`) and blended in rotation space, so switching prompts mid-gesture never
pops: each new prompt starts a layer that slerps in from whatever is playing over
`crossfade` seconds. Feet stay planted (two-bone leg IK to fixed ankle spots).

Native frames are made at 20 fps (`BODY_FPS`) in order; `frame(t)` slerps between the two
native frames around t and attaches the HumanML3D feature of the nearest native frame, from
the streaming feature encoder. Joints are in the stage frame (metres, Y up, facing +Z, floor
y = 0, standing over the origin); features are in HumanML3D's canonical frame of the session's
first frame (which here differs from the stage by the idle sway at t = 0, a few mm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mio.body.base import BodyBackend, BodyPose, BodySession, frame_position
from mio.body.gestures import GESTURES, Gesture, Rig, Variation, match_gesture, smootherstep
from mio.body.humanml3d import StreamingFeatureEncoder
from mio.body.skeleton import (
    JOINT_INDEX,
    REST_JOINTS,
    REST_OFFSETS,
    aim_local,
    forward_kinematics,
    qeuler,
    qinv,
    qmul,
    qrot,
    qslerp,
    two_bone_ik,
)
from mio.core.config import BodyConfig
from mio.core.layouts import BODY_FPS, HUMANML3D_JOINTS

J = JOINT_INDEX
GESTURE_CROSSFADE = 0.3  # s, shortest blend into a new gesture (its attack, if longer)
IDLE_CROSSFADE = 0.5  # s, shortest blend back to idle when the prompt is cleared mid-gesture
MAX_BLEND_SPEED = 2.0  # m/s, crossfades last long enough that no joint outruns this (hands ~2-3 m/s)
KNEE_BEND_DROP = 0.015  # m the pelvis sits below its straight-leg height, so knees stay soft
_LEGS = (  # hip, knee, ankle, toe
    (J["left_hip"], J["left_knee"], J["left_ankle"], J["left_foot"]),
    (J["right_hip"], J["right_knee"], J["right_ankle"], J["right_foot"]),
)


def _blend(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], w: float
) -> tuple[np.ndarray, np.ndarray]:
    """Crossfade two poses (root position, local quats): lerp the root, slerp every joint."""
    if w <= 0.0:
        return a
    if w >= 1.0:
        return b
    return a[0] + w * (b[0] - a[0]), qslerp(a[1], b[1], w)


class _Noise:
    """Smooth deterministic noise in about [-1, 1]: a few incommensurate sinusoids."""

    def __init__(self, rng: np.random.Generator, hz: tuple[float, float], n: int = 3) -> None:
        self.freq = rng.uniform(*hz, size=n)
        self.phase = rng.uniform(0.0, 2.0 * np.pi, size=n)
        self.amp = rng.uniform(0.5, 1.0, size=n)
        self.amp /= self.amp.sum()

    def __call__(self, t: float) -> float:
        return float(np.dot(self.amp, np.sin(2.0 * np.pi * self.freq * t + self.phase)))


class IdleMotion:
    """Standing idle: breathing, weight shifts, small head drift, relaxed arms (not a T-pose)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.breath_hz = rng.uniform(0.22, 0.28)  # ~14 breaths a minute
        self.breath_phase = rng.uniform(0.0, 2.0 * np.pi)
        self.breath_depth = _Noise(rng, (0.02, 0.05))
        self.weight = _Noise(rng, (0.05, 0.12))  # slow side-to-side weight shift
        self.yaw = _Noise(rng, (0.03, 0.08))
        self.head_yaw = _Noise(rng, (0.05, 0.15))
        self.head_pitch = _Noise(rng, (0.05, 0.15))
        self.arms = _Noise(rng, (0.08, 0.2))
        self.root_height = REST_JOINTS[0, 1] - KNEE_BEND_DROP

    def pose(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(root position (3,), local quaternions (22, 4)) at time t."""
        breath = np.sin(2.0 * np.pi * self.breath_hz * t + self.breath_phase)
        breath *= 1.0 + 0.25 * self.breath_depth(t)
        inhale = 0.5 + 0.5 * breath
        shift = self.weight(t)
        arm = self.arms(t)
        euler = np.zeros((HUMANML3D_JOINTS, 3))  # (x pitch, y yaw, z roll) per joint
        euler[0] = (0.0, 0.035 * self.yaw(t), -0.025 * shift)  # pelvis drops on the unloaded side
        euler[J["spine1"]] = (0.0, 0.0, 0.015 * shift)
        euler[J["spine2"]] = (-0.012 * breath, 0.0, 0.010 * shift)
        euler[J["spine3"]] = (-0.020 * breath, -0.02 * self.yaw(t), 0.008 * shift)
        euler[J["neck"]] = (
            0.025 * breath + 0.04 * self.head_pitch(t),
            0.07 * self.head_yaw(t),
            -0.01 * shift,
        )
        euler[J["head"]] = (0.02 * self.head_pitch(t), 0.04 * self.head_yaw(t), 0.0)
        euler[J["left_collar"]] = (0.0, 0.0, 0.035 * inhale)  # shoulders rise on the in-breath
        euler[J["right_collar"]] = (0.0, 0.0, -0.035 * inhale)
        # Relaxed arms: a little out from the body and forward, elbows softly bent.
        euler[J["left_shoulder"]] = (-0.06 - 0.02 * arm, 0.0, 0.06 + 0.015 * inhale)
        euler[J["right_shoulder"]] = (-0.06 + 0.02 * arm, 0.0, -0.06 - 0.015 * inhale)
        euler[J["left_elbow"]] = (-0.22 - 0.04 * arm, 0.0, 0.0)
        euler[J["right_elbow"]] = (-0.22 + 0.04 * arm, 0.0, 0.0)
        quats = qeuler(euler[:, 0], euler[:, 1], euler[:, 2])
        root = np.array([0.02 * shift, self.root_height + 0.003 * breath - 0.004 * abs(shift), 0.0])
        return root, quats


@dataclass
class _Layer:
    """One prompt's motion: idle (gesture None) or a gesture started at `start`."""

    gesture: Gesture | None
    start: float  # s, session time the layer begins
    fade: float  # s, crossfade in from the layers below
    variation: Variation

    @property
    def duration(self) -> float:
        """Seconds from start until the gesture is back at idle (0 for idle)."""
        if self.gesture is None:
            return 0.0
        return max(self.fade, self.gesture.attack) + self.gesture.hold + self.gesture.release

    def weight(self, t: float) -> float:
        return 1.0 if self.fade <= 0.0 else smootherstep((t - self.start) / self.fade)

    def pose(self, t: float, idle: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if self.gesture is None:
            return idle
        tau = t - self.start
        env = self.gesture.envelope(tau, attack=max(self.fade, self.gesture.attack))
        if env <= 0.0:
            return idle
        rig = Rig(*idle)
        self.gesture.pose(rig, tau, self.variation)
        return _blend(idle, (rig.root, rig.quats), env)


@dataclass
class _Native:
    root: np.ndarray  # (3,)
    quats: np.ndarray  # (22, 4)
    joints: np.ndarray  # (22, 3) float32
    features: np.ndarray | None = None  # (263,) float32, known once the next frame exists


class ProceduralBodySession(BodySession):
    """Per-conversation state: prompt layers, the native-frame cache, the feature encoder."""

    def __init__(self, seed: int = 0, fps: float = BODY_FPS) -> None:
        self.fps = fps
        self._rng = np.random.default_rng(seed)
        self._idle = IdleMotion(self._rng)
        self._layers: list[_Layer] = [_Layer(None, 0.0, 0.0, Variation())]
        self._frames: dict[int, _Native] = {}
        self._next = 0  # index of the next native frame to make
        self._encoder = StreamingFeatureEncoder(floor_height=0.0)
        self._last_t = 0.0
        self._ankles = REST_JOINTS[[leg[2] for leg in _LEGS]]  # planted ankle spots (2, 3)

    # ---- BodySession ----

    def set_prompt(self, prompt: str | None, t: float) -> None:
        """Start the motion `prompt` names at time t (or the first native frame not yet made).

        Gestures play once (attack, hold, release) and the body returns to idle."""
        name = match_gesture(prompt)
        start = max(float(t), self._next / self.fps)
        v = Variation(
            amplitude=float(self._rng.uniform(0.9, 1.1)),
            tempo=float(self._rng.uniform(0.92, 1.08)),
            phase=float(self._rng.uniform(0.0, 2.0 * np.pi)),
        )
        gesture = None if name is None else GESTURES[name]
        fade = IDLE_CROSSFADE if gesture is None else max(GESTURE_CROSSFADE, gesture.attack)
        # A smootherstep crossfade along a path of length L peaks at 1.875 L / fade: stretch the
        # fade for far poses. L is measured along the slerp path to the gesture's full pose.
        peak = 0.0 if gesture is None else gesture.attack
        target = _Layer(gesture, 0.0, 0.0, v).pose(peak, self._idle.pose(start + peak))
        current = self._layer_pose(start)
        steps = [_blend(current, target, w) for w in np.linspace(0.0, 1.0, 6)]
        path = np.stack([forward_kinematics(q, r) for r, q in steps])  # (6, 22, 3)
        length = float(np.linalg.norm(np.diff(path, axis=0), axis=-1).sum(axis=0).max())
        fade = max(fade, 1.875 * length / MAX_BLEND_SPEED)
        self._layers.append(_Layer(gesture, start, fade, v))

    @property
    def layers(self) -> list[tuple[str | None, float, float, float]]:
        """(gesture or None, start, crossfade seconds, duration) of the active prompt layers."""
        return [(x.gesture.name if x.gesture else None, x.start, x.fade, x.duration) for x in self._layers]

    def frame(self, t: float) -> BodyPose:
        t, k, frac = frame_position(t, self._last_t, self.fps)
        self._last_t = t
        nearest = k if frac < 0.5 else k + 1
        self._make_until(max(k + 1, nearest + 1))  # features of `nearest` need the frame after it
        a, b = self._frames[k], self._frames[k + 1]
        if frac < 1e-9:
            joints = a.joints
        else:
            root = a.root + frac * (b.root - a.root)
            joints = forward_kinematics(qslerp(a.quats, b.quats, frac), root).astype(np.float32)
        features = self._frames[nearest].features
        assert features is not None
        self._forget_before(k)
        return BodyPose(features=features, joints=joints)

    # ---- native frames ----

    @property
    def active_gesture(self) -> str | None:
        """The gesture of the newest layer that has begun by the last native frame, if still playing."""
        t = max(self._next - 1, 0) / self.fps
        for layer in reversed(self._layers):
            if layer.start <= t:
                if layer.gesture is None or t - layer.start >= layer.duration:
                    return None
                return layer.gesture.name
        return None

    def _make_until(self, index: int) -> None:
        while self._next <= index:
            i = self._next
            root, quats = self._pose_at(i / self.fps)
            joints = forward_kinematics(quats, root).astype(np.float32)
            self._frames[i] = _Native(root, quats, joints)
            feat = self._encoder.push(joints)
            if feat is not None:
                self._frames[i - 1].features = feat
            self._next += 1

    def _forget_before(self, index: int) -> None:
        for i in [i for i in self._frames if i < index]:
            del self._frames[i]

    def _pose_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        # Drop layers fully covered by a later one that has finished fading in.
        for i in range(len(self._layers) - 1, 0, -1):
            if self._layers[i].weight(t) >= 1.0:
                del self._layers[:i]
                break
        root, quats = self._layer_pose(t)
        quats = quats.copy()
        self._plant_feet(root, quats)
        return root, quats

    def _layer_pose(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The prompt layers blended bottom-up (before the feet are planted)."""
        idle = self._idle.pose(t)
        pose = self._layers[0].pose(t, idle)
        for layer in self._layers[1:]:
            w = layer.weight(t)
            if w > 0.0:
                pose = _blend(pose, layer.pose(t, idle), w)
        return pose

    def _plant_feet(self, root: np.ndarray, quats: np.ndarray) -> None:
        """Leg IK: knees bend forward so the ankles stay on their spots, toes point ahead."""
        pelvis = quats[0]
        forward = qrot(pelvis, np.array([0.0, 0.0, 1.0]))
        for (hip, knee, ankle, toe), goal in zip(_LEGS, self._ankles, strict=True):
            hip_pos = root + qrot(pelvis, REST_OFFSETS[hip])
            thigh, shin = np.linalg.norm(REST_OFFSETS[knee]), np.linalg.norm(REST_OFFSETS[ankle])
            knee_pos, ankle_pos = two_bone_ik(hip_pos, goal, float(thigh), float(shin), forward)
            quats[hip] = aim_local(pelvis, REST_OFFSETS[knee], knee_pos - hip_pos)
            hip_global = qmul(pelvis, quats[hip])  # the hip joint's rotation carries the knee
            quats[knee] = aim_local(hip_global, REST_OFFSETS[ankle], ankle_pos - knee_pos)
            knee_global = qmul(hip_global, quats[knee])
            quats[ankle] = qinv(knee_global)  # foot flat and facing +Z in the world
            quats[toe] = np.array([1.0, 0.0, 0.0, 0.0])


class ProceduralBody(BodyBackend):
    """Embedded Body Animator backend (no weights): `ProceduralBody(BodyConfig())`."""

    def __init__(self, config: BodyConfig | None = None) -> None:
        self.config = config or BodyConfig()

    def new_session(self, seed: int | None = None) -> ProceduralBodySession:
        return ProceduralBodySession(self.config.seed if seed is None else seed)


__all__ = ["IdleMotion", "ProceduralBody", "ProceduralBodySession", "GESTURE_CROSSFADE", "IDLE_CROSSFADE"]
