"""Moving face and body parameter tracks for benchmarks, demos and AvatarDiT's synthetic training clips.

`talking_face` / `waving_body` are the fixed live-session-like motion `mio bench render` times;
`random_face` / `random_body` draw smooth random motion from a seed (different every clip);
`retime` puts a track on another frame rate, `follow` keeps a body's pelvis over the origin.
"""

from __future__ import annotations

import numpy as np

from mio.core.layouts import ARKIT52, HUMANML3D_JOINT_NAMES, blendshape_index

LEGS = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
        "left_foot", "right_foot")


def talking_face(frames: int, fps: float = 25.0, phase: float = 0.0, amount: float = 1.0) -> np.ndarray:
    """(frames, 61) arkit52: talking jaw, blinks every ~3 s, glances, a slow smile, small nods."""
    t = np.arange(frames) / fps + phase
    f = np.zeros((frames, ARKIT52.dim))

    def put(name: str, value: np.ndarray) -> None:
        f[:, blendshape_index(name)] = np.clip(value * amount, 0.0, 1.0)

    put("jawOpen", 0.25 + 0.25 * np.sin(2 * np.pi * 3.1 * t) + 0.1 * np.sin(2 * np.pi * 5.3 * t))
    put("mouthFunnel", 0.2 + 0.2 * np.sin(2 * np.pi * 1.7 * t))
    blink = np.clip(1.0 - np.abs((t % 3.0) - 0.12) / 0.12, 0.0, 1.0)  # a 0.24 s blink every 3 s
    put("eyeBlinkLeft", blink)
    put("eyeBlinkRight", blink)
    smile = 0.3 + 0.3 * np.sin(2 * np.pi * 0.2 * t)
    put("mouthSmileLeft", smile)
    put("mouthSmileRight", smile)
    put("browInnerUp", 0.2 + 0.2 * np.sin(2 * np.pi * 0.5 * t))
    glance = np.sin(2 * np.pi * 0.3 * t)
    put("eyeLookOutLeft", glance)
    put("eyeLookInRight", glance)
    put("eyeLookInLeft", -glance)
    put("eyeLookOutRight", -glance)
    f[:, ARKIT52.slice("head")] = amount * np.stack(
        [0.08 * np.sin(2 * np.pi * 0.7 * t), 0.15 * np.sin(2 * np.pi * 0.25 * t), 0.03 * np.sin(2 * np.pi * 0.4 * t)],
        axis=1,
    )
    return f


def waving_body(rest: np.ndarray, frames: int, fps: float = 25.0, phase: float = 0.0) -> np.ndarray:
    """(frames, 22, 3) HumanML3D joints from `rest` (22, 3): the left arm raised and waving, the
    torso swaying."""
    names = list(HUMANML3D_JOINT_NAMES)
    s, e, w = (names.index(n) for n in ("left_shoulder", "left_elbow", "left_wrist"))
    upper = float(np.linalg.norm(rest[e] - rest[s]))
    lower = float(np.linalg.norm(rest[w] - rest[e]))
    t = np.arange(frames) / fps + phase
    out = np.repeat(np.asarray(rest, np.float64)[None], frames, axis=0)
    upper_body = [i for i, n in enumerate(names) if n not in LEGS]
    for k, tk in enumerate(t):
        raise_ = 0.5 + 0.5 * np.sin(2 * np.pi * 0.15 * tk)  # the arm goes up and down again
        elbow_dir = np.array([0.6, -1.0 + 1.3 * raise_, 0.25])
        wave = 0.6 * np.sin(2 * np.pi * 1.5 * tk)  # forearm swing, radians
        wrist_dir = np.array([np.sin(wave), -1.0 + 2.0 * raise_ * np.cos(wave), 0.3])
        out[k, e] = rest[s] + upper * elbow_dir / np.linalg.norm(elbow_dir)
        out[k, w] = out[k, e] + lower * wrist_dir / np.linalg.norm(wrist_dir)
        sway = 0.02 * np.sin(2 * np.pi * 0.3 * tk)  # upper body leans sideways over the hips
        out[k, upper_body, 0] += sway * (out[k, upper_body, 1] - rest[0, 1]) / 0.5
    return out


def random_face(frames: int, rng: np.random.Generator, fps: float = 25.0) -> np.ndarray:
    """(frames, 61) arkit52: the talking face at a random phase and strength, plus one random
    expression (a few blendshapes) fading in and a random head/gaze offset."""
    f = talking_face(frames, fps, phase=float(rng.uniform(0, 30)), amount=float(rng.uniform(0.3, 1.2)))
    ramp = np.clip(np.arange(frames) / max(frames - 1, 1) * rng.uniform(0.5, 2.0), 0, 1)[:, None]
    extra = np.zeros(52)
    extra[rng.choice(52, size=4, replace=False)] = rng.uniform(0.2, 0.9, size=4)
    f[:, :52] = np.clip(f[:, :52] + ramp * extra, 0.0, 1.0)
    f[:, 52:55] += rng.normal(0, 0.08, 3)
    gaze = rng.normal(0, 0.1, 3) * np.array([1, 1, 0])
    f[:, ARKIT52.slice("eye_left")] += gaze
    f[:, ARKIT52.slice("eye_right")] += gaze
    return f


def random_body(rest: np.ndarray, frames: int, rng: np.random.Generator, fps: float = 25.0) -> np.ndarray:
    """(frames, 22, 3): the waving body at a random phase, or standing still (one clip in three)."""
    if rng.uniform() < 1 / 3:
        return np.repeat(np.asarray(rest, np.float64)[None], frames, axis=0)
    return waving_body(rest, frames, fps, phase=float(rng.uniform(0, 30)))


def retime(values: np.ndarray, fps: float, n_out: int, fps_out: float) -> np.ndarray:
    """Linear interpolation of a (T, ...) track onto n_out frames at fps_out (held at the ends)."""
    t = np.arange(n_out) / fps_out * fps
    i0 = np.clip(np.floor(t).astype(int), 0, len(values) - 1)
    i1 = np.clip(i0 + 1, 0, len(values) - 1)
    w = np.clip(t - i0, 0.0, 1.0).reshape(-1, *([1] * (values.ndim - 1)))
    return values[i0] * (1 - w) + values[i1] * w


def follow(joints: np.ndarray) -> np.ndarray:
    """Keep the pelvis over the origin horizontally (the camera follows the character)."""
    out = joints.copy()
    out[:, :, [0, 2]] -= joints[:, :1, [0, 2]]
    return out
