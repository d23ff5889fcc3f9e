"""Procedural gestures for the embedded Body Animator, and the matcher from the Thinker's
short text prompts ("waves hello", "nods slowly") to them.

A gesture is a pose function: given the idle pose of the moment (as a `Rig`) and the time since
the gesture started, it turns joints and places hands by two-bone IK; `ProceduralBody` blends
idle -> that pose with the gesture's attack / hold / release envelope.

Body frame used below (the skeleton's): +X is the character's left, +Y up, +Z forward. Angles
in radians. `Rig.turn(j, x, y, z)`: x pitches forward, y turns left, z rolls the part above
toward the character's right (see `skeleton.qeuler`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mio.body.skeleton import (
    JOINT_INDEX,
    REST_OFFSETS,
    aim_local,
    forward_kinematics,
    qeuler,
    qmul,
    qrot,
    two_bone_ik,
)

J = JOINT_INDEX
_ARM = {  # side -> (collar, shoulder, elbow, wrist); side +1 = left (+X), -1 = right
    1: (J["left_collar"], J["left_shoulder"], J["left_elbow"], J["left_wrist"]),
    -1: (J["right_collar"], J["right_shoulder"], J["right_elbow"], J["right_wrist"]),
}
UPPER_ARM = float(np.linalg.norm(REST_OFFSETS[J["left_elbow"]]))
FOREARM = float(np.linalg.norm(REST_OFFSETS[J["left_wrist"]]))


class Rig:
    """A mutable pose (root position + local quaternions) with posing helpers."""

    def __init__(self, root: np.ndarray, quats: np.ndarray) -> None:
        self.root = root.copy()
        self.quats = quats.copy()
        self._fk: tuple[np.ndarray, np.ndarray] | None = None

    def turn(self, joint: int, x: float = 0.0, y: float = 0.0, z: float = 0.0) -> None:
        """Compose an extra local rotation onto `joint` (applied in its own frame)."""
        self.quats[joint] = qmul(self.quats[joint], qeuler(x, y, z))
        self._fk = None

    def shift(self, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0) -> None:
        self.root = self.root + np.array([dx, dy, dz])
        self._fk = None

    def fk(self) -> tuple[np.ndarray, np.ndarray]:
        """(joint positions (22,3), world rotations (22,4)) of the current pose.

        `reach` leaves the cache in place: it only reads torso and head joints, which placing
        an arm does not move (the reached arm's elbow and wrist are then stale until a turn)."""
        if self._fk is None:
            self._fk = forward_kinematics(self.quats, self.root, return_global=True)  # type: ignore[assignment]
        return self._fk  # type: ignore[return-value]

    def reach(
        self,
        side: int,
        target: tuple[float, float, float],
        pole: tuple[float, float, float],
        *,
        anchor: str = "shoulder",
        frame: str = "spine3",
    ) -> None:
        """Put the `side` wrist at `target` (metres, in the `frame` joint's axes, from the
        `anchor`: "shoulder" of that side or any joint name), elbow bending toward `pole`."""
        pos, glob = self.fk()  # torso, head and the collars are all reach needs (see fk)
        collar, shoulder, elbow, wrist = _ARM[side]
        rot = glob[J[frame]]
        origin = pos[shoulder] if anchor == "shoulder" else pos[J[anchor]]
        goal = origin + qrot(rot, np.asarray(target, dtype=np.float64))
        elbow_pos, wrist_pos = two_bone_ik(
            pos[shoulder], goal, UPPER_ARM, FOREARM, qrot(rot, np.asarray(pole, dtype=np.float64))
        )
        self.quats[shoulder] = aim_local(glob[collar], REST_OFFSETS[elbow], elbow_pos - pos[shoulder])
        upper = qmul(glob[collar], self.quats[shoulder])
        self.quats[elbow] = aim_local(upper, REST_OFFSETS[wrist], wrist_pos - elbow_pos)


@dataclass(frozen=True)
class Variation:
    """Per-performance randomness, drawn once when the gesture starts (deterministic per seed)."""

    amplitude: float = 1.0  # scales the gesture's motion
    tempo: float = 1.0  # scales oscillation frequencies
    phase: float = 0.0  # radians, for the beat pattern


PoseFn = Callable[[Rig, float, Variation], None]


@dataclass(frozen=True)
class Gesture:
    name: str
    attack: float  # s, blend idle -> gesture
    hold: float  # s, at full weight
    release: float  # s, blend back to idle
    pose: PoseFn
    patterns: tuple[str, ...]  # regexes, matched case-insensitively against the prompt

    @property
    def duration(self) -> float:
        return self.attack + self.hold + self.release

    def envelope(self, tau: float, attack: float | None = None) -> float:
        """Weight of the gesture over idle `tau` s after its start: 1 through attack and hold,
        then a smooth fall. The attack itself is the layer crossfade in `ProceduralBody`, which
        blends from whatever was playing (idle or another gesture), not from idle; it may run
        longer than `self.attack` (`attack`) when the pose is far away, delaying the release."""
        if tau < 0.0:
            return 0.0
        tau -= (self.attack if attack is None else attack) + self.hold
        if tau < 0.0:
            return 1.0
        if tau < self.release:
            return smootherstep(1.0 - tau / self.release)
        return 0.0


def smootherstep(x: float) -> float:
    """0 -> 1 with zero velocity and acceleration at both ends (no jerk spike when blends start)."""
    x = min(max(x, 0.0), 1.0)
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def _osc(tau: float, hz: float, v: Variation) -> float:
    return float(np.sin(2.0 * np.pi * hz * v.tempo * tau))


# ---------------------------------------------------------------------------------------------
# The gestures. Targets for the right hand have x < 0 (the right side is -X).
# ---------------------------------------------------------------------------------------------


def _wave(rig: Rig, tau: float, v: Variation) -> None:
    rig.turn(J["spine3"], z=0.04, y=-0.04)
    rig.turn(J["neck"], z=-0.06)
    side_to_side = 0.09 * v.amplitude * _osc(tau, 2.2, v)
    rig.reach(-1, (-0.22 + side_to_side, 0.30, 0.10), (-1.0, -0.6, -0.3))


def _nod(rig: Rig, tau: float, v: Variation) -> None:
    down = 0.5 - 0.5 * np.cos(2.0 * np.pi * 1.7 * v.tempo * tau)  # 0 -> 1 -> 0, twice a second-ish
    rig.turn(J["spine3"], x=0.07 * v.amplitude * down)
    rig.turn(J["neck"], x=0.35 * v.amplitude * down)
    rig.turn(J["head"], x=0.10 * v.amplitude * down)


def _head_shake(rig: Rig, tau: float, v: Variation) -> None:
    side = _osc(tau, 2.0, v)
    rig.turn(J["neck"], y=0.40 * v.amplitude * side, x=0.05)
    rig.turn(J["head"], y=0.20 * v.amplitude * side)


def _bow(rig: Rig, tau: float, v: Variation) -> None:
    a = v.amplitude
    rig.turn(0, x=0.30 * a)  # hinge at the hips; legs are re-solved to stay planted
    rig.shift(dz=-0.06 * a, dy=-0.01)
    for joint, angle in (("spine1", 0.12), ("spine2", 0.10), ("spine3", 0.08), ("neck", 0.12)):
        rig.turn(J[joint], x=angle * a)
    for side in (1, -1):  # hands slide down the front of the thighs
        rig.reach(side, (side * 0.09, -0.42, 0.24), (side * 0.3, 0.0, -1.0), anchor="pelvis", frame="pelvis")


def _shrug(rig: Rig, tau: float, v: Variation) -> None:
    a = v.amplitude
    rig.turn(J["left_collar"], z=0.30 * a)
    rig.turn(J["right_collar"], z=-0.30 * a)
    rig.turn(J["neck"], z=0.12 * a, x=-0.05)
    for side in (1, -1):
        rig.reach(side, (side * 0.24, -0.36, 0.22), (side * 0.4, -0.3, -1.0))


def _point(rig: Rig, tau: float, v: Variation) -> None:
    rig.turn(J["spine3"], y=-0.08)
    rig.turn(J["neck"], y=-0.12, x=-0.03)
    rig.reach(-1, (-0.12, 0.04, 0.50), (-0.3, -1.0, 0.0))


def _open_arms(rig: Rig, tau: float, v: Variation) -> None:
    a = v.amplitude
    rig.turn(J["spine3"], x=-0.07 * a)
    rig.turn(J["neck"], x=-0.05 * a)
    for side in (1, -1):
        rig.reach(side, (side * 0.40 * a, -0.22, 0.30), (side * 0.2, -1.0, -0.5))


def _beat(rig: Rig, tau: float, v: Variation) -> None:
    """Talking hands: both hands in front of the belly, the right marking beats at ~2 Hz."""
    a = v.amplitude
    hz = 2.1 * v.tempo
    # A sharp down-stroke per beat: the positive lobe of a sine, squared.
    beat = max(0.0, float(np.sin(2.0 * np.pi * hz * tau + v.phase))) ** 2
    sway = float(np.sin(2.0 * np.pi * 0.45 * tau + v.phase))
    rig.turn(J["spine3"], x=0.02 * beat, y=0.05 * sway)
    rig.turn(J["neck"], x=0.05 * beat)
    rig.reach(-1, (0.05 + 0.03 * sway, -0.30 - 0.07 * a * beat, 0.30), (-0.6, -0.6, -0.6))
    left_beat = max(0.0, float(np.sin(2.0 * np.pi * hz * tau + v.phase - 0.7))) ** 2
    rig.reach(1, (-0.05 + 0.03 * sway, -0.34 - 0.04 * a * left_beat, 0.26), (0.6, -0.6, -0.6))


def _think(rig: Rig, tau: float, v: Variation) -> None:
    rig.turn(J["neck"], x=0.10, z=-0.08, y=0.08)
    # Right hand at the chin: the wrist sits below and in front of the chin.
    rig.reach(-1, (0.0, -0.15, 0.14), (-0.2, -1.0, 0.3), anchor="head", frame="neck")
    # Left forearm across the belly, supporting the right elbow.
    rig.reach(1, (-0.22, -0.33, 0.22), (0.4, -0.5, -0.6))


def _clap(rig: Rig, tau: float, v: Variation) -> None:
    apart = 0.5 + 0.5 * float(np.cos(2.0 * np.pi * 2.4 * v.tempo * tau))  # 1 open .. 0 together
    gap = 0.05 + 0.24 * v.amplitude * apart  # wrists never closer than 5 cm (the palms)
    for side in (1, -1):
        rig.reach(side, (side * gap / 2, 0.06, 0.30), (side * 1.0, -0.6, -0.4), anchor="spine3")


def _hand_on_chest(rig: Rig, tau: float, v: Variation) -> None:
    rig.turn(J["spine3"], x=0.03)
    rig.turn(J["neck"], x=0.10 * v.amplitude)
    # Right palm over the heart (left of the sternum); the wrist sits a hand-width to the right.
    rig.reach(-1, (-0.03, 0.02, 0.15), (-1.0, -1.0, -0.2), anchor="spine3")


_W = r"\w*"  # any word ending: wave / waves / waving / waved
# fmt: off
GESTURES: dict[str, Gesture] = {
    g.name: g
    for g in (
        Gesture("wave", 0.6, 1.6, 0.7, _wave,
                (rf"\bwav{_W}", r"\bhello\b", r"\bhi\b", r"\bhey\b", r"\bbye\b", rf"\bgoodbye{_W}",
                 rf"\bgreet{_W}", r"\bsay(s)? hi\b")),
        Gesture("head_shake", 0.2, 1.2, 0.35, _head_shake,
                (rf"\bshak{_W}\s+(\w+\s+)?head\b", rf"\bhead\s*shak{_W}", rf"\bdisagree{_W}", r"\bno\b",
                 rf"\brefus{_W}", r"\bden(y|ies|ied|ying)\b")),
        Gesture("nod", 0.2, 1.2, 0.3, _nod,
                (rf"\bnod{_W}", rf"\bagree{_W}", r"\byes\b", rf"\baffirm{_W}", rf"\backnowledg{_W}")),
        Gesture("bow", 0.6, 0.8, 0.7, _bow,
                (r"\bbow(s|ed|ing)?\b", rf"\bcurts{_W}", r"\bthank", rf"\brespectful{_W}")),
        Gesture("shrug", 0.35, 0.8, 0.5, _shrug,
                (rf"\bshrug{_W}", r"\bdon'?t know\b", r"\bdunno\b", r"\bnot sure\b", r"\bunsure\b",
                 rf"\buncertain{_W}", r"\bwhatever\b")),
        Gesture("hand_on_chest", 0.6, 1.4, 0.6, _hand_on_chest,
                (r"\bhands?\s+(on|over|to)\s+(\w+\s+)?(chest|heart)\b", r"\bheart\b", rf"\bsincer{_W}",
                 r"\bgrateful\b", r"\btouched\b", rf"\bpledg{_W}", r"\bchest\b")),
        Gesture("point", 0.55, 1.2, 0.6, _point,
                (rf"\bpoint{_W}", rf"\bindicat{_W}", r"\bover there\b", r"\bthat way\b")),
        Gesture("open_arms", 0.6, 1.2, 0.7, _open_arms,
                (r"\bopen(s|ing)?\s+(\w+\s+)?arms\b", r"\barms\s+(wide\s+)?open\b", rf"\bwelcom{_W}",
                 rf"\bembrac{_W}", r"\bspread(s|ing)?\s+(\w+\s+)?arms\b", r"\barms wide\b", rf"\bhug{_W}",
                 rf"\binvit{_W}", rf"\bpresent{_W}", r"\bta-?da\b")),
        Gesture("think", 0.6, 1.6, 0.7, _think,
                (rf"\bthink{_W}", rf"\bthought{_W}", rf"\bponder{_W}", r"\bhm+\b", rf"\bconsider{_W}",
                 rf"\bwonder{_W}", rf"\bcontemplat{_W}", r"\bchin\b", rf"\bpuzzl{_W}")),
        Gesture("clap", 0.5, 1.6, 0.5, _clap,
                (rf"\bclap{_W}", rf"\bapplau{_W}", rf"\bcheer{_W}", rf"\bcelebrat{_W}", r"\bbravo\b")),
        Gesture("beat", 0.4, 2.4, 0.5, _beat,
                (r"\bbeats?\b", rf"\btalk{_W}", rf"\bspeak{_W}", rf"\bexplain{_W}", rf"\bgestur{_W}",
                 rf"\bemphasi{_W}", rf"\bconversation{_W}", rf"\bdescrib{_W}")),
    )
}
DEFAULT_GESTURE = "beat"  # what an unrecognised prompt gets: generic talking hands
IDLE_PATTERNS = (rf"\bstand{_W}", r"\bidle\b", rf"\brest{_W}", rf"\brelax{_W}", rf"\blisten{_W}",
                 r"\bstill\b", r"\bneutral\b", rf"\bwait{_W}", rf"\bcalm{_W}")
# fmt: on

_COMPILED = {name: [re.compile(p, re.IGNORECASE) for p in g.patterns] for name, g in GESTURES.items()}
_IDLE = [re.compile(p, re.IGNORECASE) for p in IDLE_PATTERNS]


def match_gesture(prompt: str | None) -> str | None:
    """The gesture a prompt asks for: the one mentioned first; None for idle ("stand", empty);
    `DEFAULT_GESTURE` when nothing is recognised."""
    if prompt is None or not prompt.strip():
        return None
    best: tuple[int, int, str] | None = None  # (start, -length, name)
    for name, patterns in _COMPILED.items():
        for pat in patterns:
            m = pat.search(prompt)
            if m and (best is None or (m.start(), -(m.end() - m.start())) < best[:2]):
                best = (m.start(), -(m.end() - m.start()), name)
    if best is not None:
        return best[2]
    if any(p.search(prompt) for p in _IDLE):
        return None
    return DEFAULT_GESTURE
