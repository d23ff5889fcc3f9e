"""The procedural face's vocabulary: its tuning knobs, the blendshape groups it moves, emotions as
targets (brows / smile / squint / frown and a head bias) and the small signal shapes it is made of
(ease-in/out, bumps, nods, smoothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mio.audio import ENVELOPE_HOP
from mio.core.emotions import resolve as resolve_emotion
from mio.core.frames import Emotion
from mio.core.layouts import ARKIT52, blendshape_index

_B = blendshape_index
NB = 52
HOP = ENVELOPE_HOP  # envelope / VAD frame (s)
MAX_ROT = 0.5  # rad, clamp on every rotation component

# Blendshape indices used below.
JAW, CLOSE = _B("jawOpen"), _B("mouthClose")
BLINK_L, BLINK_R = _B("eyeBlinkLeft"), _B("eyeBlinkRight")
SMILE = np.array([_B("mouthSmileLeft"), _B("mouthSmileRight")])
ROUND = np.array([_B("mouthPucker"), _B("mouthFunnel")])
PRESS = np.array([_B("mouthPressLeft"), _B("mouthPressRight")])
LOOK_UP = np.array([_B("eyeLookUpLeft"), _B("eyeLookUpRight")])
LOOK_DOWN = np.array([_B("eyeLookDownLeft"), _B("eyeLookDownRight")])
# +yaw (to the avatar's left): the left eye looks out, the right eye looks in.
LOOK_LEFTWARD = np.array([_B("eyeLookOutLeft"), _B("eyeLookInRight")])
LOOK_RIGHTWARD = np.array([_B("eyeLookInLeft"), _B("eyeLookOutRight")])
HEAD, EYE_L, EYE_R = ARKIT52.slice("head"), ARKIT52.slice("eye_left"), ARKIT52.slice("eye_right")

FUNCTION_WORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been am i you he she it we "
    "they me him her us them my your his its our their this that these those there here then than so not no "
    "do does did have has had will would can could shall should may might must just very too also".split()
)


@dataclass(frozen=True)
class FaceTuning:
    """Timing and amplitude knobs of the procedural face (defaults from the blink/gaze/nod literature)."""

    blink_interval: tuple[float, float] = (2.0, 6.0)  # s between spontaneous blinks (uniform)
    blink_close: float = 0.05  # s to close the lids
    blink_hold: float = 0.03  # s fully closed
    blink_open: float = 0.08  # s to reopen (total ~160 ms)
    fixation: tuple[float, float] = (0.5, 2.5)  # s between saccades
    saccade_time: float = 0.045  # s for the eye to travel to a new fixation
    gaze_range: float = 0.12  # rad, radius of idle fixations
    rest_dominance: float = 0.08  # D_rest: pulls the mouth to neutral between phones
    nod_speaking: float = 0.035  # rad, nod on a stressed word
    nod_listening: float = 0.05  # rad, backchannel nod at a user pause
    head_noise: tuple[float, float, float] = (0.015, 0.022, 0.01)  # rad, idle pitch/yaw/roll sway
    pause_after_speech: float = 0.35  # s of user silence that counts as a pause
    min_user_speech: float = 0.5  # s of user speech before a pause earns a backchannel
    emotion_ease: float = 0.6  # s to blend into a new emotion
    gaze_blendshape_gain: float = 2.0  # eyeLook* weight per radian of gaze (lids follow the eyes)



# ---------------------------------------------------------------- emotions


def _shape(**weights: float) -> np.ndarray:
    v = np.zeros(NB, dtype=np.float32)
    for name, w in weights.items():
        v[_B(name)] = w
    return v


@dataclass(frozen=True)
class Expression:
    blend: np.ndarray  # (52,) at intensity 1
    head: tuple[float, float, float] = (0.0, 0.0, 0.0)  # rad pitch/yaw/roll bias
    gaze: tuple[float, float] = (0.0, 0.0)  # rad pitch/yaw bias


# fmt: off
EXPRESSIONS: dict[str, Expression] = {
    "neutral": Expression(_shape()),
    "happy": Expression(
        _shape(mouthSmileLeft=0.55, mouthSmileRight=0.55, cheekSquintLeft=0.35, cheekSquintRight=0.35,
               eyeSquintLeft=0.2, eyeSquintRight=0.2, browOuterUpLeft=0.08, browOuterUpRight=0.08),
        head=(-0.02, 0.0, 0.0)),
    "sad": Expression(
        _shape(browInnerUp=0.55, mouthFrownLeft=0.4, mouthFrownRight=0.4, mouthShrugLower=0.2,
               mouthPressLeft=0.1, mouthPressRight=0.1, eyeSquintLeft=0.1, eyeSquintRight=0.1),
        head=(0.06, 0.0, 0.0), gaze=(0.08, 0.0)),
    "angry": Expression(
        _shape(browDownLeft=0.6, browDownRight=0.6, eyeSquintLeft=0.3, eyeSquintRight=0.3, noseSneerLeft=0.25,
               noseSneerRight=0.25, mouthPressLeft=0.25, mouthPressRight=0.25, mouthFrownLeft=0.2,
               mouthFrownRight=0.2, jawForward=0.1),
        head=(0.03, 0.0, 0.0)),
    "surprised": Expression(
        _shape(browInnerUp=0.6, browOuterUpLeft=0.6, browOuterUpRight=0.6, eyeWideLeft=0.55, eyeWideRight=0.55,
               jawOpen=0.15),
        head=(-0.04, 0.0, 0.0)),
    "thinking": Expression(
        _shape(browDownLeft=0.3, browOuterUpRight=0.3, browInnerUp=0.15, mouthPressLeft=0.2, mouthLeft=0.15,
               eyeSquintLeft=0.15, eyeSquintRight=0.15),
        head=(-0.01, 0.04, 0.06), gaze=(-0.12, 0.1)),
    "curious": Expression(
        _shape(browInnerUp=0.35, browOuterUpLeft=0.35, browOuterUpRight=0.35, eyeWideLeft=0.15, eyeWideRight=0.15,
               mouthSmileLeft=0.1, mouthSmileRight=0.1),
        head=(-0.01, 0.0, 0.07)),
    "fear": Expression(
        _shape(browInnerUp=0.6, browOuterUpLeft=0.2, browOuterUpRight=0.2, eyeWideLeft=0.5, eyeWideRight=0.5,
               mouthStretchLeft=0.35, mouthStretchRight=0.35),
        head=(0.02, 0.0, 0.0)),
    "disgust": Expression(
        _shape(noseSneerLeft=0.55, noseSneerRight=0.55, mouthUpperUpLeft=0.35, mouthUpperUpRight=0.35,
               browDownLeft=0.3, browDownRight=0.3, eyeSquintLeft=0.25, eyeSquintRight=0.25),
        head=(0.0, -0.03, 0.0)),
}
EXPRESSIONS["excited"] = Expression(
    EXPRESSIONS["happy"].blend * 1.2 + _shape(eyeWideLeft=0.2, eyeWideRight=0.2, browOuterUpLeft=0.2,
                                              browOuterUpRight=0.2), head=(-0.03, 0.0, 0.0))
EXPRESSIONS["calm"] = Expression(EXPRESSIONS["happy"].blend * 0.35)
EXPRESSIONS["concerned"] = Expression(EXPRESSIONS["sad"].blend * 0.6 + _shape(browInnerUp=0.2), head=(0.03, 0.0, 0.03))

# fmt: on


def expression_of(emotion: Emotion) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blendshapes (52,), head bias (3,), gaze bias (2,)) for an emotion; unknown labels are neutral."""
    label, intensity = resolve_emotion(emotion)
    expr = EXPRESSIONS.get(label, EXPRESSIONS["neutral"])
    return (
        np.clip(expr.blend * intensity, 0, 1),
        np.array(expr.head, np.float32) * intensity,
        np.array(expr.gaze, np.float32) * intensity,
    )



# ---------------------------------------------------------------- small signal helpers


def smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def bump(tau: float, rise: float, hold: float, fall: float) -> float:
    """0 -> 1 -> 0: smooth rise, hold, smooth fall (tau seconds since the start)."""
    if tau <= 0.0 or tau >= rise + hold + fall:
        return 0.0
    if tau < rise:
        return smoothstep(tau / rise)
    if tau < rise + hold:
        return 1.0
    return 1.0 - smoothstep((tau - rise - hold) / fall)


def nod_pulse(tau: float, duration: float) -> float:
    """A nod: the head dips and comes back (a raised-cosine pulse of pitch) over `duration` seconds."""
    if tau <= 0.0 or tau >= duration:
        return 0.0
    return math.sin(math.pi * tau / duration) ** 2


def gaussian_smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    if len(x) == 0:
        return x
    r = int(3 * sigma_frames) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_frames) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, r, mode="edge"), k, mode="valid").astype(np.float32)
