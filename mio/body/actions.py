"""The actions of the procedural motion library (mio.body.motionlib): 40 labelled actions on the
22-joint HumanML3D skeleton, each a pose function of time and a `Style`, with text labels in several
phrasings (the last one held out for the test split).

- locomotion (walk forward/backward/in a circle, sidestep, run, jog, turns), gestures (wave, point,
  nod, shake head, bow, clap, shrug, talking hands, ...), whole body (jump, crouch, squat, kick,
  punch, dance, stretch) and idle.
- Every performance draws a `Style` (amplitude, tempo, speed, hand), so clips of one action vary.

Poses are built in the heading frame (the body's facing, Y up) on the rest skeleton with
`mio.body.gestures.Rig`; legs either follow a gait cycle (locomotion) or stay planted by two-bone
IK (everything else); heading and root position are integrated from each action's velocities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mio.body.gestures import GESTURES, Rig
from mio.body.skeleton import (
    JOINT_INDEX,
    REST_JOINTS,
    REST_OFFSETS,
    qeuler,
)

J = JOINT_INDEX
LEGS = (  # side, hip, knee, ankle, toe
    (1, J["left_hip"], J["left_knee"], J["left_ankle"], J["left_foot"]),
    (-1, J["right_hip"], J["right_knee"], J["right_ankle"], J["right_foot"]),
)
THIGH = float(np.linalg.norm(REST_OFFSETS[J["left_knee"]]))
SHIN = float(np.linalg.norm(REST_OFFSETS[J["left_ankle"]]))
STAND_Y = float(REST_JOINTS[0, 1]) - 0.015  # pelvis height with soft knees
ANKLE_SPOT = REST_JOINTS[J["left_ankle"]] - REST_JOINTS[0] * np.array([1.0, 0.0, 1.0])  # left, heading frame
CROSSFADE = (0.4, 0.8)  # s, range of transition lengths between actions


@dataclass(frozen=True)
class Style:
    """Per-performance randomness: drawn once per action instance."""

    amplitude: float = 1.0  # scales joint excursions
    tempo: float = 1.0  # scales frequencies
    speed: float = 1.0  # scales travel speeds
    phase: float = 0.0  # radians
    hand: int = -1  # -1 right, +1 left (for actions that leave the side open)

    @staticmethod
    def draw(rng: np.random.Generator) -> Style:
        return Style(float(rng.uniform(0.8, 1.2)), float(rng.uniform(0.85, 1.15)),
                     float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.0, 2 * np.pi)),
                     int(rng.choice([-1, 1])))


@dataclass
class Pose:
    """An action's pose in the heading frame plus the velocities that move the heading frame."""

    rig: Rig  # root = pelvis position relative to the ground point under the body, quats local
    forward: float = 0.0  # m/s along the heading
    lateral: float = 0.0  # m/s to the character's left
    yaw_rate: float = 0.0  # rad/s, + turns left
    lift: float = 0.0  # m the whole body is off the ground (jumps)
    planted: bool = True  # legs by IK to the ankle spots (else the action posed them)


PoseFn = Callable[[float, Style, np.ndarray, np.ndarray], Pose]


@dataclass(frozen=True)
class Action:
    name: str
    labels: tuple[str, ...]  # phrasings; the last one is held out for the test split
    pose: PoseFn  # (tau seconds, style, idle root, idle quats) -> Pose
    min_seconds: float = 2.0  # shortest sensible performance

    @property
    def train_labels(self) -> tuple[str, ...]:
        return self.labels[:-1]

    @property
    def test_labels(self) -> tuple[str, ...]:
        return self.labels[-1:]


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def _rig(root: np.ndarray, quats: np.ndarray) -> Rig:
    return Rig(root, quats)


def _gait(rig: Rig, phase: float, hip_amp: float, knee_amp: float, arm_amp: float, bob: float) -> None:
    """One gait cycle: legs swing in antiphase, knees flex in swing, arms counter-swing."""
    for side, hip, knee, ankle, _ in LEGS:
        ph = phase if side == 1 else phase + np.pi
        swing = np.sin(ph)  # + leg forward
        flex = max(0.0, np.cos(ph)) ** 1.5  # knee flexes while the leg swings forward
        hip_x = -hip_amp * swing - 0.3 * knee_amp * flex
        knee_x = 0.08 + knee_amp * flex + 0.15 * knee_amp * max(0.0, -swing)
        rig.quats[hip] = qeuler(hip_x, 0.0, 0.0)
        rig.quats[knee] = qeuler(knee_x, 0.0, 0.0)
        rig.quats[ankle] = qeuler(-(hip_x + knee_x) * 0.8, 0.0, 0.0)
    for side in (1, -1):
        ph = phase if side == 1 else phase + np.pi
        sh = J["left_shoulder"] if side == 1 else J["right_shoulder"]
        el = J["left_elbow"] if side == 1 else J["right_elbow"]
        rig.turn(sh, x=arm_amp * np.sin(ph))
        rig.turn(el, x=-0.25 - 0.6 * arm_amp * max(0.0, -np.sin(ph)))
    rig.turn(J["spine3"], y=0.25 * arm_amp * np.sin(phase))
    rig.shift(dy=-bob * np.cos(2 * phase) - bob)


def _locomotion(hz: float, stride: float, hip: float, knee: float, arm: float, bob: float,
                direction: float = 1.0, lean: float = 0.0, lateral: float = 0.0, yaw: float = 0.0) -> PoseFn:
    def pose(tau: float, s: Style, root: np.ndarray, quats: np.ndarray) -> Pose:
        rig = _rig(root, quats)
        f = hz * s.tempo
        phase = direction * 2 * np.pi * f * tau + s.phase
        rig.turn(0, x=lean)
        rig.turn(J["spine3"], x=-0.5 * lean)
        if lateral:
            _sidestep(rig, phase, s.amplitude)
        else:
            _gait(rig, phase, hip * s.amplitude, knee * s.amplitude, arm * s.amplitude, bob)
        speed = direction * stride * f * s.amplitude * s.speed
        return Pose(rig, forward=0.0 if lateral else speed, lateral=lateral * 0.45 * f * s.speed,
                    yaw_rate=yaw * s.speed, planted=False)

    return pose


def _sidestep(rig: Rig, phase: float, amp: float) -> None:
    """Legs open and close sideways (hip roll), a small bob."""
    open_ = 0.5 - 0.5 * np.cos(phase)
    lift = max(0.0, np.sin(phase))
    for side, hip, knee, ankle, _ in LEGS:
        roll = -side * 0.16 * amp * open_  # + z rolls toward the right: left leg out is -z
        rig.quats[hip] = qeuler(-0.12 * lift, 0.0, roll)
        rig.quats[knee] = qeuler(0.08 + 0.25 * lift, 0.0, 0.0)
        rig.quats[ankle] = qeuler(-0.05, 0.0, -roll)
    rig.shift(dy=-0.02 * open_)


def _planted(fn: Callable[[Rig, float, Style], None]) -> PoseFn:
    """An upper-body / whole-body action with the feet planted."""

    def pose(tau: float, s: Style, root: np.ndarray, quats: np.ndarray) -> Pose:
        rig = _rig(root, quats)
        fn(rig, tau, s)
        return Pose(rig)

    return pose


def _gesture(name: str, mirror: bool = False) -> PoseFn:
    """One of the embedded gestures (`mio.body.gestures`), played continuously (mirrored: left hand)."""
    g = GESTURES[name]

    def fn(rig: Rig, tau: float, s: Style) -> None:
        from mio.body.gestures import Variation

        g.pose(rig, tau, Variation(s.amplitude, s.tempo, s.phase))

    pose = _planted(fn)
    return _mirrored(pose) if mirror else pose


_MIRROR_PAIRS = [(1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21)]
_MIRROR_PERM = np.arange(22)
for _a, _b in _MIRROR_PAIRS:
    _MIRROR_PERM[_a], _MIRROR_PERM[_b] = _b, _a


def _mirror_pose(p: Pose) -> Pose:
    """Left-right mirror (x -> -x): swap sides, negate the y and z parts of every quaternion."""
    q = p.rig.quats[_MIRROR_PERM] * np.array([1.0, 1.0, -1.0, -1.0])
    root = p.rig.root * np.array([-1.0, 1.0, 1.0])
    return Pose(Rig(root, q), p.forward, -p.lateral, -p.yaw_rate, p.lift, p.planted)


def _mirrored(fn: PoseFn) -> PoseFn:
    def pose(tau: float, s: Style, root: np.ndarray, quats: np.ndarray) -> Pose:
        mq = quats[_MIRROR_PERM] * np.array([1.0, 1.0, -1.0, -1.0])
        return _mirror_pose(fn(tau, s, root * np.array([-1.0, 1.0, 1.0]), mq))

    return pose


def _osc(tau: float, hz: float, s: Style, phase: float = 0.0) -> float:
    return float(np.sin(2 * np.pi * hz * s.tempo * tau + phase))


def ramp(tau: float, seconds: float) -> float:
    x = min(max(tau / seconds, 0.0), 1.0)
    return x * x * (3 - 2 * x)


# ---------------------------------------------------------------------------------------------
# Actions beyond the embedded gestures
# ---------------------------------------------------------------------------------------------


def _wave_both(rig: Rig, tau: float, s: Style) -> None:
    for side in (1, -1):
        sway = 0.09 * s.amplitude * _osc(tau, 2.0, s, 0.0 if side == 1 else np.pi)
        rig.reach(side, (side * 0.22 + sway, 0.32, 0.08), (side * 1.0, -0.6, -0.3))


def _raise_arms(rig: Rig, tau: float, s: Style) -> None:
    up = 0.45 + 0.05 * _osc(tau, 0.5, s)
    for side in (1, -1):
        rig.reach(side, (side * 0.12, up * s.amplitude, 0.05), (side * 1.0, 0.0, -0.3))
    rig.turn(J["neck"], x=-0.15)


def _raise_hand(rig: Rig, tau: float, s: Style) -> None:
    rig.reach(s.hand, (s.hand * 0.10, 0.48 * s.amplitude, 0.10), (s.hand * 1.0, 0.0, -0.3))


def _point_side(side: int) -> Callable[[Rig, float, Style], None]:
    def fn(rig: Rig, tau: float, s: Style) -> None:
        rig.turn(J["spine3"], y=0.15 * side)
        rig.turn(J["neck"], y=0.3 * side)
        rig.reach(side, (side * 0.55, 0.05 * s.amplitude, 0.12), (0.0, -1.0, -0.3))

    return fn


def _look_around(rig: Rig, tau: float, s: Style) -> None:
    rig.turn(J["neck"], y=0.6 * s.amplitude * _osc(tau, 0.35, s), x=-0.05)
    rig.turn(J["spine3"], y=0.2 * s.amplitude * _osc(tau, 0.35, s))


def _arms_crossed(rig: Rig, tau: float, s: Style) -> None:
    rig.reach(1, (-0.20, -0.25, 0.20), (0.8, -0.6, -0.5))
    rig.reach(-1, (0.20, -0.22, 0.24), (-0.8, -0.6, -0.5))
    rig.turn(J["neck"], y=0.1 * _osc(tau, 0.3, s))


def _hands_on_hips(rig: Rig, tau: float, s: Style) -> None:
    for side in (1, -1):
        rig.reach(side, (side * 0.17, -0.02, 0.02), (side * 1.0, 0.0, -0.5), anchor="pelvis", frame="pelvis")
    rig.turn(J["spine3"], x=-0.05, y=0.08 * _osc(tau, 0.4, s))


def _punch(rig: Rig, tau: float, s: Style) -> None:
    hz = 1.2 * s.tempo
    for side in (1, -1):
        ph = 2 * np.pi * hz * tau + (0.0 if side == -1 else np.pi)
        out = max(0.0, np.sin(ph)) ** 2
        rig.reach(side, (side * -0.05, -0.02, 0.18 + 0.35 * s.amplitude * out), (side * 1.0, -1.0, -0.2))
    rig.turn(J["spine3"], y=0.25 * np.sin(2 * np.pi * hz * tau))
    rig.turn(0, x=0.05)


def _stretch(rig: Rig, tau: float, s: Style) -> None:
    lean = 0.25 * s.amplitude * _osc(tau, 0.3, s)
    rig.turn(J["spine2"], z=lean)
    rig.turn(J["spine3"], z=lean)
    for side in (1, -1):
        rig.reach(side, (side * 0.05, 0.52, 0.0), (side * 1.0, 0.0, -0.3))


def _dance(rig: Rig, tau: float, s: Style) -> None:
    beat = _osc(tau, 1.0, s, s.phase)
    rig.shift(dx=0.04 * beat, dy=-0.03 * abs(beat))
    rig.turn(0, z=0.08 * beat)
    rig.turn(J["spine3"], z=-0.15 * beat)
    for side in (1, -1):
        up = 0.15 + 0.2 * s.amplitude * max(0.0, side * beat)
        rig.reach(side, (side * 0.35, up, 0.15), (side * 1.0, -0.5, -0.3))


def _crouch(depth: float, hz: float) -> Callable[[Rig, float, Style], None]:
    """Squat down (hz = 0: hold low; hz > 0: repeated squats)."""

    def fn(rig: Rig, tau: float, s: Style) -> None:
        d = ramp(tau, 0.6) if hz == 0 else 0.5 - 0.5 * np.cos(2 * np.pi * hz * s.tempo * tau)
        d *= depth * s.amplitude
        rig.shift(dy=-d, dz=-0.35 * d)
        rig.turn(0, x=0.9 * d)
        rig.turn(J["spine3"], x=-0.3 * d)
        rig.turn(J["neck"], x=-0.4 * d)
        for side in (1, -1):
            rig.reach(side, (side * 0.2, -0.35 + 0.3 * d, 0.25 + 0.3 * d), (side * 1.0, -0.5, -0.5))

    return fn


def _kick(rig: Rig, tau: float, s: Style) -> None:
    ph = (tau * 0.7 * s.tempo) % 1.0
    k = np.sin(np.pi * min(ph / 0.6, 1.0)) if ph < 0.6 else 0.0
    side = s.hand
    hip, knee = (J["left_hip"], J["left_knee"]) if side == 1 else (J["right_hip"], J["right_knee"])
    rig.turn(0, x=-0.1 * k)
    rig.quats[hip] = qeuler(-1.1 * s.amplitude * k, 0.0, 0.0)
    chamber = max(0.0, np.sin(2 * np.pi * ph / 0.6)) if ph < 0.6 else 0.0  # bend, then snap straight
    rig.quats[knee] = qeuler(0.9 * chamber, 0.0, 0.0)
    for sd in (1, -1):
        rig.reach(sd, (sd * 0.3, -0.2, 0.1), (sd * 1.0, -0.5, -0.5))


def _kick_pose(tau: float, s: Style, root: np.ndarray, quats: np.ndarray) -> Pose:
    rig = _rig(root, quats)
    _kick(rig, tau, s)
    p = Pose(rig)
    p.planted = False  # the kicking leg is posed; the support leg is planted in `_finish`
    return p


def _jump(forward: float) -> PoseFn:
    """Prepare (crouch), take off, fly (a parabola), land, recover; once every `cycle` seconds."""
    cycle, prep, flight = 1.8, 0.45, 0.4

    def pose(tau: float, s: Style, root: np.ndarray, quats: np.ndarray) -> Pose:
        rig = _rig(root, quats)
        c = (tau * s.tempo) % cycle
        crouch, lift, arm_up = 0.0, 0.0, 0.0
        if c < prep:  # dip and push off: knees bend, then extend by take-off
            crouch = np.sin(np.pi * c / prep)
        elif c < prep + flight:
            u = (c - prep) / flight
            lift = 4 * 0.22 * s.amplitude * u * (1 - u)
            arm_up = np.sin(np.pi * u)
        elif c < prep + flight + 0.5:  # absorb the landing
            crouch = 0.8 * np.sin(np.pi * (c - prep - flight) / 0.5)
        d = 0.16 * crouch
        rig.shift(dy=-d, dz=-0.3 * d)
        rig.turn(0, x=0.9 * d)
        for sh in (J["left_shoulder"], J["right_shoulder"]):
            rig.turn(sh, x=(0.6 * crouch - 1.2 * arm_up) * s.amplitude)
        in_air = prep <= c < prep + flight
        speed = forward * s.speed / (flight / s.tempo) if in_air else 0.0
        return Pose(rig, forward=speed, lift=lift)

    return pose


def _turn(yaw_rad: float, seconds: float) -> PoseFn:
    """Turn in place by `yaw_rad` over `seconds` with small steps, then stand."""

    def pose(tau: float, s: Style, root: np.ndarray, quats: np.ndarray) -> Pose:
        rig = _rig(root, quats)
        dur = seconds / s.tempo
        if tau < dur:
            env = np.sin(np.pi * tau / dur)
            _gait(rig, 2 * np.pi * 1.6 * tau, 0.12 * env, 0.35 * env, 0.05 * env, 0.005 * env)
            rate = yaw_rad / dur * (np.pi / 2) * np.sin(np.pi * tau / dur)  # smooth speed, same total
            return Pose(rig, yaw_rate=rate, planted=False)
        return Pose(rig)

    return pose


def _idle(tau: float, s: Style, root: np.ndarray, quats: np.ndarray) -> Pose:
    return Pose(_rig(root, quats))


# fmt: off
ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("idle", ("stand still", "stand", "idle standing", "remain standing and relax",
                    "stay still in place"), _idle),
    Action("walk", ("walk forward", "a person walks forward", "walking straight ahead",
                    "go forward at a normal pace", "stroll forwards"),
           _locomotion(0.95, 1.25, 0.38, 0.75, 0.35, 0.012)),
    Action("walk_back", ("walk backward", "a person walks backwards", "step back slowly",
                         "move backwards"), _locomotion(0.8, 0.9, 0.3, 0.6, 0.2, 0.01, direction=-1.0)),
    Action("walk_circle", ("walk in a circle", "walks around in a circle", "walk while turning left",
                           "circle around"), _locomotion(0.9, 1.1, 0.35, 0.7, 0.3, 0.012, yaw=0.7)),
    Action("walk_turn_right", ("walk and turn right", "walks curving to the right",
                               "walk in a clockwise circle", "walk while turning right"),
           _locomotion(0.9, 1.1, 0.35, 0.7, 0.3, 0.012, yaw=-0.7)),
    Action("sidestep_left", ("sidestep to the left", "step sideways to the left", "shuffle left",
                             "move left sideways"), _locomotion(1.0, 0.0, 0, 0, 0, 0, lateral=1.0)),
    Action("sidestep_right", ("sidestep to the right", "step sideways to the right", "shuffle right",
                              "move right sideways"), _locomotion(1.0, 0.0, 0, 0, 0, 0, lateral=-1.0)),
    Action("run", ("run forward", "a person runs", "running fast", "sprint ahead", "jog quickly forward"),
           _locomotion(1.45, 1.9, 0.6, 1.3, 0.7, 0.03, lean=0.15)),
    Action("jog_in_place", ("jog in place", "running on the spot", "jogging without moving",
                            "run in place"), _locomotion(1.5, 0.0, 0.35, 1.2, 0.6, 0.025)),
    Action("turn_left", ("turn left", "turn to the left", "rotate ninety degrees left", "face left"),
           _turn(np.pi / 2, 1.2)),
    Action("turn_right", ("turn right", "turn to the right", "rotate ninety degrees right", "face right"),
           _turn(-np.pi / 2, 1.2)),
    Action("turn_around", ("turn around", "turn back", "spin around to face behind", "about face"),
           _turn(np.pi, 1.8)),
    Action("wave_right", ("wave with the right hand", "wave hello", "waves his right hand",
                          "say hi by waving", "greet with a wave"), _gesture("wave")),
    Action("wave_left", ("wave with the left hand", "waves the left hand", "left hand waving",
                         "wave goodbye with the left hand"), _gesture("wave", mirror=True)),
    Action("wave_both", ("wave both hands", "waving with both arms", "wave both arms overhead",
                         "two handed wave"), _planted(_wave_both)),
    Action("point_forward", ("point forward", "point ahead with the right hand", "points at something",
                             "indicate something in front"), _gesture("point")),
    Action("point_left", ("point to the left", "points left with the left arm", "indicate the left",
                          "point sideways left"), _planted(_point_side(1))),
    Action("point_right", ("point to the right", "points right with the right arm",
                           "indicate the right side", "point sideways right"), _planted(_point_side(-1))),
    Action("nod", ("nod", "nod the head", "nods yes", "agree by nodding", "nodding in agreement"),
           _gesture("nod")),
    Action("shake_head", ("shake the head", "shakes head no", "disagree", "head shaking"),
           _gesture("head_shake")),
    Action("bow", ("bow", "take a bow", "bows politely", "bend forward to bow", "a respectful bow"),
           _gesture("bow")),
    Action("clap", ("clap", "clap hands", "applaud", "clapping the hands", "give a round of applause"),
           _gesture("clap")),
    Action("shrug", ("shrug", "shrug the shoulders", "shrugs, not sure", "i don't know shrug"),
           _gesture("shrug")),
    Action("talk", ("talk with hand gestures", "gesture while talking", "explain something with the hands",
                    "speaking and gesturing", "conversational hand movements"), _gesture("beat")),
    Action("open_arms", ("open the arms", "spread the arms wide", "welcome with open arms",
                         "arms open in welcome"), _gesture("open_arms")),
    Action("think", ("think", "hand on the chin thinking", "ponder", "thinking pose with a hand to the chin"),
           _gesture("think")),
    Action("hand_on_chest", ("hand on the chest", "put a hand over the heart", "hand on heart",
                             "touch the chest with the right hand"), _gesture("hand_on_chest")),
    Action("raise_arms", ("raise both arms", "arms up in the air", "lift both hands up", "hands up"),
           _planted(_raise_arms)),
    Action("raise_hand", ("raise a hand", "raise one hand", "lift an arm", "put a hand up"),
           _planted(_raise_hand)),
    Action("look_around", ("look around", "looks left and right", "turn the head to look around",
                           "glance around"), _planted(_look_around)),
    Action("arms_crossed", ("cross the arms", "arms folded", "stand with arms crossed", "fold the arms"),
           _planted(_arms_crossed)),
    Action("hands_on_hips", ("hands on hips", "put hands on the hips", "stand akimbo",
                             "rest the hands on the hips"), _planted(_hands_on_hips)),
    Action("punch", ("punch", "box", "throw punches", "punching forward", "boxing"), _planted(_punch)),
    Action("stretch", ("stretch", "stretch the arms overhead", "reach up and stretch", "side stretch"),
           _planted(_stretch)),
    Action("dance", ("dance", "dancing", "dance to the music", "sway and dance", "groove"), _planted(_dance)),
    Action("crouch", ("crouch", "crouch down", "squat low and stay", "get down low"), _planted(_crouch(0.3, 0.0))),
    Action("squat", ("do squats", "squat up and down", "knee bends", "squatting exercise"),
           _planted(_crouch(0.32, 0.4))),
    Action("jump", ("jump", "jump in place", "jumps up", "hop up and down", "leap upwards"), _jump(0.0)),
    Action("jump_forward", ("jump forward", "leap forward", "jumps ahead", "long jump"), _jump(0.5)),
    Action("kick", ("kick", "kick with a leg", "kicks forward", "a front kick"), _kick_pose),
)}
# fmt: on
REST_ACTION = "idle"  # the §4.3 "stand" prompt


def labels(split: str) -> list[tuple[str, str]]:
    """(action name, text) pairs of a split ("train": all but the last phrasing; "test": the last)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return [(a.name, t) for a in ACTIONS.values() for t in (a.train_labels if split == "train" else a.test_labels)]


__all__ = ["ACTIONS", "REST_ACTION", "Action", "Style", "labels"]
