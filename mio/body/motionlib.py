"""A procedural motion library on the 22-joint HumanML3D skeleton: the training data of the
embedded FloodDiffusion (§4) and its evaluator, in place of HumanML3D / BABEL (not available offline).

    clip = render_sequence([("walk", 3.0), ("wave_right", 2.5)], rng)   # one BABEL-like sequence
    data = make_split("train", n=800, seed=0)                           # list[MotionSample]

- `ACTIONS` (mio.body.actions): 40 labelled actions, each with text labels in several phrasings.
  The last phrasing of each action is held out for the test split, so the text side is evaluated
  on wording the model never saw.
- `render_sequence` plays actions one after another with smooth crossfades in rotation space
  (transitions, as in BABEL's multi-action sequences); the per-frame prompt is the label of the
  action whose crossfade has begun.

Joints go through `joints_to_features` to the 263-D features (§4.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mio.body.actions import ACTIONS, ANKLE_SPOT, CROSSFADE, LEGS, SHIN, THIGH, Style, ramp
from mio.body.humanml3d import align_joints, joints_to_features
from mio.body.procedural import IdleMotion
from mio.body.skeleton import (
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
from mio.core.layouts import BODY_FPS

# ---------------------------------------------------------------------------------------------
# Rendering sequences
# ---------------------------------------------------------------------------------------------


@dataclass
class Segment:
    action: str
    text: str
    start: int  # frame where the prompt begins (the crossfade into it starts here)
    end: int  # frame where the next prompt begins
    alternatives: tuple[str, ...] = ()  # other descriptions of the same span (HumanML3D has several)


@dataclass
class MotionSample:
    features: np.ndarray  # (T, 263) float32
    joints: np.ndarray  # (T, 22, 3) float32, aligned like the features
    segments: list[Segment] = field(default_factory=list)

    def prompt_ids(self) -> np.ndarray:
        """(T,) index into `segments` of the prompt active at each frame."""
        ids = np.zeros(len(self.features), np.int64)
        for i, s in enumerate(self.segments):
            ids[s.start:] = i
        return ids


def _plant(quats: np.ndarray, root: np.ndarray, sides: tuple[int, ...]) -> None:
    pelvis = quats[0]
    forward = qrot(pelvis, np.array([0.0, 0.0, 1.0]))
    for side, hip, knee, ankle, toe in LEGS:
        if side not in sides:
            continue
        goal = ANKLE_SPOT * np.array([side, 1.0, 1.0])
        hip_pos = root + qrot(pelvis, REST_OFFSETS[hip])
        knee_pos, ankle_pos = two_bone_ik(hip_pos, goal, THIGH, SHIN, forward)
        quats[hip] = aim_local(pelvis, REST_OFFSETS[knee], knee_pos - hip_pos)
        hip_global = qmul(pelvis, quats[hip])
        quats[knee] = aim_local(hip_global, REST_OFFSETS[ankle], ankle_pos - knee_pos)
        quats[ankle] = qinv(qmul(hip_global, quats[knee]))  # foot flat, facing ahead
        quats[toe] = np.array([1.0, 0.0, 0.0, 0.0])


def _blend(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], w: float):
    return a[0] + w * (b[0] - a[0]), qslerp(a[1], b[1], w)


def render_sequence(
    plan: list[tuple[str, float]], rng: np.random.Generator, *, fps: float = BODY_FPS,
    texts: list[str] | None = None, split: str = "train",
) -> MotionSample:
    """Play `plan` [(action, seconds), ...] with crossfades; features (T, 263) + joints + segments.

    Each action's prompt text is drawn from the split's phrasings unless `texts` gives them."""
    idle = IdleMotion(rng)
    n = [max(2, int(round(sec * fps))) for _, sec in plan]
    starts = np.concatenate([[0], np.cumsum(n)])[:-1]
    total = int(sum(n)) + 1  # +1: features need the next frame
    styles = [Style.draw(rng) for _ in plan]
    fades = [float(rng.uniform(*CROSSFADE)) for _ in plan]
    segs = []
    for i, (name, _) in enumerate(plan):
        a = ACTIONS[name]
        pool = texts[i] if texts else rng.choice(a.train_labels if split == "train" else a.test_labels)
        segs.append(Segment(name, str(pool), int(starts[i]), int(starts[i] + n[i])))
    heading, ground = 0.0, np.zeros(3)
    joints = np.zeros((total, 22, 3))
    for f in range(total):
        t = f / fps
        base = idle.pose(t)
        i = int(np.searchsorted(starts, f, side="right") - 1)
        cur = _eval(plan, i, t - starts[i] / fps, styles, base)
        if i > 0 and (t - starts[i] / fps) < fades[i]:
            prev = _eval(plan, i - 1, t - starts[i - 1] / fps, styles, base)
            w = ramp(t - starts[i] / fps, fades[i])
            pose = _blend(prev[0], cur[0], w)
            vel = prev[1] + w * (cur[1] - prev[1])
        else:
            pose, vel = cur
        root, quats = pose
        fwd, lat, yaw_rate, lift = vel
        q = quats.copy()
        yaw_q = qeuler(0.0, heading, 0.0)
        q[0] = qmul(yaw_q, q[0])
        world_root = ground + qrot(yaw_q, root) + np.array([0.0, lift, 0.0])
        joints[f] = forward_kinematics(q, world_root)
        # integrate the heading frame
        ground = ground + qrot(yaw_q, np.array([lat, 0.0, fwd])) / fps
        heading += yaw_rate / fps
    feats = joints_to_features(joints)
    aligned = align_joints(joints)[:-1].astype(np.float32)
    return MotionSample(feats, aligned, segs)


def _eval(plan, i, tau, styles, base):
    a = ACTIONS[plan[i][0]]
    p = a.pose(tau, styles[i], base[0].copy(), base[1].copy())
    root, quats = p.rig.root.copy(), p.rig.quats.copy()
    if p.planted:
        _plant(quats, root, (1, -1))
    elif a.name == "kick":
        _plant(quats, root, (-styles[i].hand,))
    return (root, quats), np.array([p.forward, p.lateral, p.yaw_rate, p.lift])


def random_plan(rng: np.random.Generator, n_actions: int, *, seconds: tuple[float, float] = (2.5, 5.0),
                names: list[str] | None = None) -> list[tuple[str, float]]:
    """A BABEL-like plan: `n_actions` random actions (no immediate repeats) with durations."""
    pool = names or list(ACTIONS)
    plan: list[tuple[str, float]] = []
    for _ in range(n_actions):
        choices = [a for a in pool if not plan or a != plan[-1][0]]
        name = str(rng.choice(choices))
        lo = max(seconds[0], ACTIONS[name].min_seconds)
        plan.append((name, float(rng.uniform(lo, max(lo, seconds[1])))))
    return plan


def make_split(split: str, n: int, *, seed: int = 0, offset: int = 0, actions: tuple[int, int] = (1, 4),
               seconds: tuple[float, float] = (2.5, 5.0)) -> list[MotionSample]:
    """Sequences offset..offset+n-1 of a split: random multi-prompt plans (train / test use disjoint
    seeds and phrasings)."""
    base = {"train": 0, "test": 1_000_003}[split]
    out = []
    for i in range(offset, offset + n):
        rng = np.random.default_rng(base + seed * 7919 + i)
        plan = random_plan(rng, int(rng.integers(actions[0], actions[1] + 1)), seconds=seconds)
        out.append(render_sequence(plan, rng, split=split))
    return out


__all__ = ["MotionSample", "Segment", "make_split", "random_plan", "render_sequence"]
