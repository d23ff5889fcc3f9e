"""The embedded Face Animator: a procedural, dual-track (speaking + listening) ARKit face.

It stands in for UniLS (§3) on a 2-core CPU. Like UniLS it is driven by two audio tracks: the
agent's own speech (with the Talker's phone timings) and the user's microphone audio, so the
face moves while speaking *and* while listening, never freezing into a "zombie face" (§3.1).

What drives what (all in the `arkit52` layout, blendshapes in [0,1], rotations in radians):

- mouth    phones -> visemes (mio.face.visemes) blended with Cohen-Massaro coarticulation:
           each phone i has a dominance D_i(t) = a_i exp(-(|t - c_i| / w_i)^1.5), with a wider
           window before its centre (anticipation / look-ahead) than after (release), and the
           mouth is sum_i D_i T_i / (sum_i D_i + D_rest). Lip closures (P B M) dominate, so they
           close the lips whatever the neighbours. Opening shapes (jaw, lips down/up) follow the
           loudness envelope. Without phones the jaw follows the envelope alone.
- eyes     blinks every 2-6 s (~150 ms), extra blinks at sentence ends; saccades between
           fixations, fixational tremor, gaze aversion at the start of some clauses, attentive
           gaze while the user speaks.
- head     slow multi-sine micro-motion and breathing; more motion while speaking (envelope);
           nods on stressed words; small nods at the user's pauses while listening.
- emotion  label + intensity -> brows / smile / squint / frown targets and a head bias, eased in.
- listening  the user's audio is voice-activity tracked as it arrives; when the user pauses
           after speaking the face nods and sometimes smiles or raises its brows (backchannel);
           during user speech it tilts its head and holds an attentive gaze.

`frame(t)` is a pure function of the pushed inputs and t (randomness is pre-drawn from the
session seed in time order), so a session is deterministic for a seed whatever the frame rate.

Rotation convention (head and eyes, axis-angle in a Y-up, Z-forward head frame, x = avatar's
left): +x pitches the face/gaze down (a nod), +y turns it to the avatar's left, +z rolls it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

from mio.audio import ENVELOPE_HOP, rms_envelope
from mio.core.config import FaceConfig
from mio.core.emotions import resolve as resolve_emotion
from mio.core.errors import ConfigError, InputError
from mio.core.frames import AudioChunk, Emotion, UserAudio
from mio.core.layouts import ARKIT52, blendshape_index
from mio.face import visemes as V
from mio.face.base import FaceBackend, FaceSession, chunk_samples

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


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def _bump(tau: float, rise: float, hold: float, fall: float) -> float:
    """0 -> 1 -> 0: smooth rise, hold, smooth fall (tau seconds since the start)."""
    if tau <= 0.0 or tau >= rise + hold + fall:
        return 0.0
    if tau < rise:
        return _smoothstep(tau / rise)
    if tau < rise + hold:
        return 1.0
    return 1.0 - _smoothstep((tau - rise - hold) / fall)


def _nod(tau: float, duration: float) -> float:
    """A nod: the head dips and comes back (a raised-cosine pulse of pitch) over `duration` seconds."""
    if tau <= 0.0 or tau >= duration:
        return 0.0
    return math.sin(math.pi * tau / duration) ** 2


def _gaussian_smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    if len(x) == 0:
        return x
    r = int(3 * sigma_frames) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_frames) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, r, mode="edge"), k, mode="valid").astype(np.float32)


# ---------------------------------------------------------------- agent speech track


@dataclass
class _AgentChunk:
    start: float
    end: float
    env: np.ndarray  # (n,) loudness, 1 = loud speech, Gaussian-smoothed 20 ms (fine) ...
    env_slow: np.ndarray  # (n,) ... and 150 ms (head motion)
    centers: np.ndarray  # (P,) phone centres, absolute seconds
    w_attack: np.ndarray  # (P,) dominance widths before the centre (anticipation)
    w_release: np.ndarray  # (P,) ... and after it
    alpha: np.ndarray  # (P,) dominance magnitudes
    rows: np.ndarray  # (P,) viseme rows of VISEME_TARGETS
    has_phones: bool

    def env_at(self, t: float, slow: bool = False) -> float:
        env = self.env_slow if slow else self.env
        i = (t - self.start) / HOP
        if i < 0 or i >= len(env) - 1 or t >= self.end:
            return 0.0
        k = int(i)
        f = i - k
        return float(env[k] * (1 - f) + env[k + 1] * f)


def _phone_arrays(starts: np.ndarray, ends: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    d = np.clip(ends - starts, 0.03, 0.3)
    centers = 0.5 * (starts + ends)
    w_attack = 0.6 * d + 0.04  # look-ahead: a phone starts shaping the lips before it sounds
    w_release = 0.5 * d + 0.03
    alpha = V.VISEME_DOMINANCE[rows]
    return centers, w_attack, w_release, alpha


# ---------------------------------------------------------------- user (listening) track


class _UserTrack:
    """Streaming voice-activity tracking of the user's audio: speech spans and pause events."""

    def __init__(self, tuning: FaceTuning) -> None:
        self.tuning = tuning
        self.floor = 1e-3  # running noise floor (RMS)
        self.in_speech = False
        self.last_voiced = -1e9  # time of the last voiced frame
        self.utterance_voiced = 0.0  # voiced seconds since the last backchannel
        self.next_time: float | None = None  # where the next pushed frame is expected
        self.spans: list[list[float]] = []  # [start, end] of speech, merged
        self.pauses: list[float] = []  # times at which a pause after speech was detected
        self.long_talk: list[float] = []  # mid-speech "mm-hm" moments during long user turns
        self.moments: list[tuple[float, str]] = []  # both, in time order: ("pause" | "long")
        self.run_start = -1e9  # start of the current uninterrupted stretch of speech
        self.level_t: list[float] = []  # chunk start times ...
        self.level: list[np.ndarray] = []  # ... and their smoothed loudness (0..1), for lookup

    def push(self, x: np.ndarray, sample_rate: int, pts: float) -> None:
        rms = rms_envelope(x, sample_rate)
        times = pts + HOP * np.arange(len(rms))
        if self.next_time is not None and pts > self.next_time + 2 * HOP:
            # a gap in the user's audio counts as silence (up to 2 s of it matters)
            gap = np.arange(self.next_time, min(pts, self.next_time + 2.0), HOP)
            self._run(gap, np.zeros(len(gap), bool))
        floors = np.empty(len(rms), np.float32)
        f = self.floor
        for i, r in enumerate(rms.tolist()):  # noise floor: drops at once to quieter frames, rises ~20 %/s
            f = max(1e-4, min(f * 1.002, r))
            floors[i] = f
        self.floor = f
        voiced = rms > np.maximum(0.006, 4.0 * floors)  # 12 dB over the floor, and not near-silent
        self._run(times, voiced)
        self.next_time = pts + len(x) / sample_rate
        level = np.clip(rms / 0.1, 0, 1.5)
        self.level_t.append(pts)
        self.level.append(_gaussian_smooth(level.astype(np.float32), 8.0))

    def _run(self, times: np.ndarray, voiced: np.ndarray) -> None:
        tu = self.tuning
        for t, v in zip(times.tolist(), voiced.tolist(), strict=True):
            if v:
                if not self.in_speech:
                    self.in_speech = True
                    if self.spans and t - self.spans[-1][1] < 0.25:
                        self.spans[-1][1] = t  # short gap: same span
                    else:
                        self.spans.append([t, t])
                    if t - self.last_voiced > 0.25:
                        self.run_start = t
                self.spans[-1][1] = t + HOP
                self.last_voiced = t
                self.utterance_voiced += HOP
                if t - self.run_start > 3.0 and (not self.long_talk or t - self.long_talk[-1] > 3.0):
                    self.long_talk.append(t)  # a long user turn: acknowledge it mid-way
                    self.moments.append((t, "long"))
            elif self.in_speech and t - self.last_voiced > 0.2:
                self.in_speech = False
            if (
                not self.in_speech
                and self.utterance_voiced >= tu.min_user_speech
                and t - self.last_voiced >= tu.pause_after_speech
            ):
                self.pauses.append(t)
                self.moments.append((t, "pause"))
                self.utterance_voiced = 0.0

    def speaking_weight(self, t: float) -> float:
        """1 while the user speaks, easing to 0 over 1.5 s after they stop; 0 before they start."""
        i = bisect.bisect_right(self.spans, [t, math.inf]) - 1
        if i < 0:
            return 0.0
        s, e = self.spans[i]
        if t <= e:
            return _smoothstep((t - s) / 0.4)
        return 1.0 - _smoothstep((t - e) / 1.5)

    def level_at(self, t: float) -> float:
        i = bisect.bisect_right(self.level_t, t) - 1
        if i < 0:
            return 0.0
        k = int((t - self.level_t[i]) / HOP)
        lv = self.level[i]
        return float(lv[k]) if k < len(lv) else 0.0

    def prune(self, before: float) -> None:
        while len(self.level_t) > 1 and self.level_t[1] < before:
            self.level_t.pop(0)
            self.level.pop(0)
        while len(self.spans) > 1 and self.spans[1][1] < before:
            self.spans.pop(0)


# ---------------------------------------------------------------- the session


@dataclass(order=True)
class _Event:
    t: float
    kind: str = field(compare=False)  # "nod" | "blink" | "smile" | "brow" | "avert"
    amp: float = field(compare=False, default=1.0)
    dur: float = field(compare=False, default=0.4)
    yaw: float = field(compare=False, default=0.0)
    pitch: float = field(compare=False, default=0.0)
    agent: bool = field(compare=False, default=True)  # tied to the agent's speech (dropped on interrupt)


class ProceduralSession(FaceSession):
    """Per-conversation state of the procedural face. See the module docstring."""

    def __init__(self, seed: int, tuning: FaceTuning) -> None:
        self.layout = ARKIT52
        self.seed = int(seed)
        self.tuning = tuning
        self.agent: list[_AgentChunk] = []
        self.user = _UserTrack(tuning)
        self.events: list[_Event] = []  # speech-linked nods, brow flashes, gaze aversions, extra blinks
        self._n_agent = 0  # chunks seen (seeds each chunk's own random draws)
        self._n_user_events = 0  # user pauses already turned into backchannel events
        self._emotion_keys: list[tuple[float, np.ndarray, np.ndarray]] = []  # (t, start, target) packed
        self._last_t = -math.inf
        # Spontaneous blinks and saccades: drawn lazily, in time order, from their own streams.
        self._blink_rng = np.random.default_rng([self.seed, 2])
        self._blinks: list[float] = [float(self._blink_rng.uniform(0.3, tuning.blink_interval[0]))]
        self._sacc_rng = np.random.default_rng([self.seed, 3])
        self._fix_t: list[float] = [-1e9, 0.0]
        self._fix_xy: list[tuple[float, float]] = [(0.0, 0.0), self._draw_fixation()]
        noise = np.random.default_rng([self.seed, 4])
        # head sway: 3 sines per axis, 0.05-0.45 Hz; eye tremor: 2 sines per axis, 1.5-4 Hz
        self._head_f = noise.uniform(0.05, 0.45, (3, 3))
        self._head_p = noise.uniform(0, 2 * np.pi, (3, 3))
        self._head_a = noise.uniform(0.5, 1.0, (3, 3))
        self._head_a /= self._head_a.sum(axis=1, keepdims=True)
        self._tremor_f = noise.uniform(1.5, 4.0, (2, 2))
        self._tremor_p = noise.uniform(0, 2 * np.pi, (2, 2))
        self._breath_p = float(noise.uniform(0, 2 * np.pi))

    # ------------------------------------------------------------ inputs

    def push_agent_audio(self, chunk: AudioChunk) -> None:
        x = chunk_samples(chunk, "agent audio")
        t0 = float(chunk.pts)
        sr = int(chunk.sample_rate)
        dur = len(x) / sr
        rng = np.random.default_rng([self.seed, 1, self._n_agent])
        self._n_agent += 1
        rms = rms_envelope(x, sr)
        ref = float(np.percentile(rms, 95)) if len(rms) else 0.0
        env = np.clip(rms / max(ref, 1e-4), 0, 1.5) if ref > 1e-4 else np.zeros_like(rms)
        phones = [p for p in chunk.phones if self._check_segment(p, dur, "phone")]
        words = [w for w in chunk.words if self._check_segment(w, dur, "word")]
        starts = np.array([t0 + p.start for p in phones], np.float64)
        ends = np.array([t0 + p.end for p in phones], np.float64)
        rows = np.array([V.viseme_index(p.label) for p in phones], np.int64)
        order = np.argsort(0.5 * (starts + ends), kind="stable")
        centers, wa, wr, alpha = _phone_arrays(starts[order], ends[order], rows[order])
        self.agent.append(
            _AgentChunk(
                start=t0,
                end=t0 + dur,
                env=_gaussian_smooth(env, 2.0),
                env_slow=_gaussian_smooth(env, 15.0),
                centers=centers,
                w_attack=wa,
                w_release=wr,
                alpha=alpha,
                rows=rows[order],
                has_phones=len(phones) > 0,
            )
        )
        self.agent.sort(key=lambda c: c.start)
        if chunk.emotion.label.strip().lower() != "neutral":
            self.set_emotion(chunk.emotion, t0)
        self._speech_events(chunk, words, env, t0, dur, rng)

    @staticmethod
    def _check_segment(seg: object, dur: float, what: str) -> bool:
        start, end = getattr(seg, "start", None), getattr(seg, "end", None)
        if not isinstance(start, (int, float)) or not isinstance(end, (int, float)):
            raise InputError(f"agent audio {what} timings must be numbers, got {seg!r}")
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise InputError(f"agent audio {what} {seg!r} has non-finite or reversed times")
        return start < dur + 0.5  # timings far beyond the audio are ignored

    def _speech_events(
        self, chunk: AudioChunk, words: list, env: np.ndarray, t0: float, dur: float, rng: np.random.Generator
    ) -> None:
        """Nods and brow flashes on stressed words, blinks at sentence ends, gaze aversion at the start."""
        tu = self.tuning
        if rng.random() < 0.55:  # speakers often look away as they start a clause
            side = 1.0 if rng.random() < 0.5 else -1.0
            self._add(
                _Event(
                    t0 + 0.05,
                    "avert",
                    dur=float(rng.uniform(0.5, 1.2)),
                    yaw=side * float(rng.uniform(0.1, 0.2)),
                    pitch=-float(rng.uniform(0.02, 0.1)),
                )
            )
        # stressed moments: content words that are loud, else envelope peaks
        candidates: list[tuple[float, float]] = []  # (time, loudness)
        if words:
            for w in words:
                label = w.label.strip(".,!?;:'\"").lower()
                if len(label) < 3 or label in FUNCTION_WORDS:
                    continue
                a, b = int(w.start / HOP), max(int(w.end / HOP), int(w.start / HOP) + 1)
                loud = float(env[a:b].mean()) if a < len(env) else 0.0
                candidates.append((t0 + w.start, loud))
        else:
            slow = _gaussian_smooth(env, 10.0)
            peaks = (
                np.flatnonzero((slow[1:-1] > slow[:-2]) & (slow[1:-1] >= slow[2:]) & (slow[1:-1] > 0.5)) + 1
            )
            candidates = [(t0 + p * HOP - 0.1, float(slow[p])) for p in peaks]
        if candidates:
            ref = float(np.median([c[1] for c in candidates]))
            last = -math.inf
            for t, loud in candidates:
                if loud >= 0.9 * ref and t - last > 0.9 and rng.random() < 0.75:
                    self._add(
                        _Event(
                            t - 0.05,
                            "nod",
                            amp=tu.nod_speaking * float(rng.uniform(0.6, 1.2)),
                            dur=float(rng.uniform(0.3, 0.45)),
                        )
                    )
                    if rng.random() < 0.35:
                        self._add(_Event(t - 0.05, "brow", amp=float(rng.uniform(0.15, 0.3)), dur=0.5))
                    last = t
        # blinks at sentence ends (inside the clause) and at its end
        ends = _sentence_end_times(chunk.text, words)
        for t in ends:
            if rng.random() < 0.7:
                self._add(_Event(t0 + t + 0.05, "blink"))
        if rng.random() < 0.8:
            self._add(_Event(t0 + dur + float(rng.uniform(0.0, 0.2)), "blink"))

    def _add(self, ev: _Event) -> None:
        bisect.insort(self.events, ev)

    def push_user_audio(self, chunk: UserAudio) -> None:
        x = chunk_samples(chunk, "user audio")
        self.user.push(x, int(chunk.sample_rate), float(chunk.pts))
        self._backchannels()

    def _backchannels(self) -> None:
        """Turn newly detected user pauses (and long turns) into nods, smiles and brow raises."""
        tu = self.tuning
        for t, kind in self.user.moments[self._n_user_events :]:
            rng = np.random.default_rng([self.seed, 7, self._n_user_events])
            self._n_user_events += 1
            delay = float(rng.uniform(0.05, 0.25))
            if kind == "long":
                self._add(_Event(t + delay, "nod", amp=0.5 * tu.nod_listening, dur=0.45, agent=False))
                continue
            double = rng.random() < 0.3
            self._add(
                _Event(
                    t + delay,
                    "nod",
                    amp=tu.nod_listening * float(rng.uniform(0.7, 1.1)),
                    dur=0.5,
                    agent=False,
                )
            )
            if double:
                self._add(_Event(t + delay + 0.5, "nod", amp=0.6 * tu.nod_listening, dur=0.4, agent=False))
            r = rng.random()
            if r < 0.35:
                self._add(_Event(t + delay, "smile", amp=float(rng.uniform(0.25, 0.4)), dur=1.4, agent=False))
            elif r < 0.6:
                self._add(_Event(t + delay, "brow", amp=float(rng.uniform(0.25, 0.4)), dur=0.9, agent=False))
            if rng.random() < 0.4:
                self._add(_Event(t + delay + 0.1, "blink", agent=False))

    def set_emotion(self, emotion: Emotion, t: float) -> None:
        if not math.isfinite(float(t)):
            raise InputError(f"emotion time must be finite, got {t!r}")
        blend, head, gaze = expression_of(emotion)
        target = np.concatenate([blend, head, gaze]).astype(np.float32)  # (57,)
        keys = [(k[0], k[2]) for k in self._emotion_keys] + [(float(t), target)]
        keys.sort(key=lambda k: k[0])
        self._emotion_keys = []
        for kt, tgt in keys:  # each key eases from wherever the face was at its time
            self._emotion_keys.append((kt, self._emotion_at(kt), tgt))

    def interrupt(self, t: float) -> None:
        t = float(t)
        if not math.isfinite(t):
            raise InputError(f"interrupt time must be finite, got {t!r}")
        kept: list[_AgentChunk] = []
        for c in self.agent:
            if c.start >= t:
                continue
            if c.end > t:
                n = max(0, int((t - c.start) / HOP))
                c.env, c.env_slow = c.env[:n].copy(), c.env_slow[:n].copy()
                if c.has_phones:  # keep phones centred before the cut, then close the lips right at it
                    keep = c.centers < t
                    sil = _phone_arrays(np.array([t]), np.array([t + 0.2]), np.array([V.SILENCE]))
                    c.centers = np.concatenate([c.centers[keep], sil[0]])
                    c.w_attack = np.concatenate([c.w_attack[keep], sil[1]])
                    c.w_release = np.concatenate([c.w_release[keep], sil[2]])
                    c.alpha = np.concatenate([c.alpha[keep], sil[3]])
                    c.rows = np.concatenate([c.rows[keep], [V.SILENCE]])
                c.end = t
            kept.append(c)
        self.agent = kept
        self.events = [e for e in self.events if e.t < t or not e.agent]
        self._add(_Event(t + 0.1, "blink", agent=False))

    # ------------------------------------------------------------ output

    def frame(self, t: float) -> np.ndarray:
        t = float(t)
        if not math.isfinite(t):
            raise InputError(f"frame time must be finite, got {t!r}")
        if t > self._last_t + 5.0:
            self._prune(t - 10.0)
            self._last_t = t
        tu = self.tuning
        out = np.zeros(ARKIT52.dim, dtype=np.float32)
        blend = out[:NB]

        # emotion (eased), then speech on top
        emo = self._emotion_at(t)
        blend += emo[:NB]
        head = emo[NB : NB + 3].astype(np.float64).copy()
        gaze_bias = emo[NB + 3 : NB + 5].astype(np.float64)

        mouth, speaking, env_slow = self._mouth(t)
        rounding = float(mouth[ROUND].max())
        blend[SMILE] *= 1.0 - 0.7 * min(rounding / 0.5, 1.0)  # a smile gives way to rounded lips
        blend += mouth
        # listening state
        listen = self.user.speaking_weight(t)
        user_level = self.user.level_at(t - 0.15)  # the listener reacts a little late

        # events: nods, brow flashes, smiles, gaze aversion, extra blinks
        nod = 0.0
        avert_yaw = avert_pitch = 0.0
        blink = self._blink_at(t)
        lo = bisect.bisect_left(self.events, _Event(t - 3.0, ""))
        for ev in self.events[lo:]:
            if ev.t > t:
                break
            tau = t - ev.t
            if ev.kind == "nod":
                nod += ev.amp * _nod(tau, ev.dur)
            elif ev.kind == "brow":
                b = ev.amp * _bump(tau, 0.12, ev.dur - 0.3, 0.18)
                blend[_B("browInnerUp")] += b
                blend[_B("browOuterUpLeft")] += 0.7 * b
                blend[_B("browOuterUpRight")] += 0.7 * b
            elif ev.kind == "smile":
                s = ev.amp * _bump(tau, 0.25, ev.dur - 0.6, 0.35)
                blend[SMILE] += s
                blend[_B("cheekSquintLeft")] += 0.5 * s
                blend[_B("cheekSquintRight")] += 0.5 * s
            elif ev.kind == "avert":
                a = _bump(tau, 0.08, ev.dur, 0.25)
                avert_yaw += ev.yaw * a
                avert_pitch += ev.pitch * a
            elif ev.kind == "blink":
                blink = max(blink, self._blink_profile(tau))

        # head: sway (+ more while speaking or while the user talks), breathing, nods, tilt when listening
        amp = np.asarray(tu.head_noise) * (1.0 + 1.5 * env_slow + 0.4 * listen + 0.6 * listen * user_level)
        sway = (self._head_a * np.sin(2 * np.pi * self._head_f * t + self._head_p)).sum(axis=1)  # (3,)
        head += amp * sway
        head[0] += 0.004 * math.sin(2 * np.pi * 0.25 * t + self._breath_p) + nod
        head[2] += 0.035 * listen  # attentive head tilt while the user speaks
        head[0] += 0.012 * listen  # ... and a slight lean forward/down
        head[1] += 0.3 * avert_yaw  # the head follows a gaze aversion a little

        # eyes: fixations with saccades (narrower while listening), tremor, aversion, emotion bias
        fx, fy = self._fixation_at(t)
        spread = 1.0 - 0.6 * listen
        pitch = spread * fx + avert_pitch + gaze_bias[0]
        yaw = spread * fy + avert_yaw + gaze_bias[1]
        tremor = 0.003 * np.sin(2 * np.pi * self._tremor_f * t + self._tremor_p).sum(axis=1)
        pitch += tremor[0] - 0.3 * nod  # the eyes stay on target while the head nods
        yaw += tremor[1]
        pitch += 0.02 * blink  # the eyes roll down slightly during a blink
        out[EYE_L] = (pitch, yaw, 0.0)
        out[EYE_R] = (pitch, yaw, 0.0)
        g = tu.gaze_blendshape_gain
        blend[LOOK_UP] += g * max(-pitch, 0.0)
        blend[LOOK_DOWN] += g * max(pitch, 0.0)
        blend[LOOK_LEFTWARD] += g * max(yaw, 0.0)
        blend[LOOK_RIGHTWARD] += g * max(-yaw, 0.0)
        blend[BLINK_L] += blink
        blend[BLINK_R] += 0.97 * blink
        out[HEAD] = head
        np.clip(blend, 0.0, 1.0, out=blend)
        np.clip(out[NB:], -MAX_ROT, MAX_ROT, out=out[NB:])
        return out

    def frames(self, times: np.ndarray) -> np.ndarray:
        """Frames at many times (non-decreasing). (T,) -> (T, 61)"""
        return np.stack([self.frame(float(t)) for t in np.asarray(times)]) if len(times) else ARKIT52.zeros(0)

    # ------------------------------------------------------------ internals

    def _mouth(self, t: float) -> tuple[np.ndarray, float, float]:
        """Mouth blendshapes from the agent's speech at t, plus (speaking 0/1, slow loudness)."""
        num = np.zeros(NB, np.float64)
        den = self.tuning.rest_dominance
        closure = 0.0
        env_fast = env_slow = 0.0
        env_only = 0.0
        speaking = 0.0
        for c in self.agent:
            if t < c.start - 0.5 or t > c.end + 0.5:
                continue
            env_fast = max(env_fast, c.env_at(t))
            env_slow = max(env_slow, c.env_at(t, slow=True))
            if c.start <= t < c.end:
                speaking = 1.0
            if not c.has_phones:
                env_only = max(env_only, c.env_at(t))
                continue
            lo = np.searchsorted(c.centers, t - 0.5)
            hi = np.searchsorted(c.centers, t + 0.5)
            if lo == hi:
                continue
            tau = t - c.centers[lo:hi]
            w = np.where(tau < 0, c.w_attack[lo:hi], c.w_release[lo:hi])
            d = c.alpha[lo:hi] * np.exp(-((np.abs(tau) / w) ** 1.5))  # Cohen-Massaro dominance
            rows = c.rows[lo:hi]
            num += d @ V.VISEME_TARGETS[rows]
            den += float(d.sum())
            closure += float(d[rows == V.VISEMES.index("PP")].sum())
        mouth = (num / den).astype(np.float32)
        gain = min(max(0.5 + 0.7 * env_fast, 0.4), 1.3)  # louder speech opens the mouth wider
        mouth[V.OPENING_MASK] *= gain
        # lips sealed on P/B/M even with the jaw slightly open (ARKit mouthClose rides on jawOpen)
        mouth[CLOSE] = max(mouth[CLOSE], mouth[JAW] * min(closure / den, 1.0))
        if env_only > 0:  # no phones: the envelope drives the jaw
            e = min(env_only, 1.3)
            mouth[JAW] = max(mouth[JAW], 0.5 * e**0.9)
            for name, k in (
                ("mouthLowerDownLeft", 0.25),
                ("mouthLowerDownRight", 0.25),
                ("mouthStretchLeft", 0.1),
                ("mouthStretchRight", 0.1),
                ("mouthFunnel", 0.08),
            ):
                mouth[_B(name)] = max(mouth[_B(name)], k * e)
            if e < 0.12 and env_slow > 0.25:  # short closures between syllables
                mouth[PRESS] = np.maximum(mouth[PRESS], 0.2)
        return mouth, speaking, env_slow

    def _emotion_at(self, t: float) -> np.ndarray:
        keys = self._emotion_keys
        i = bisect.bisect_right([k[0] for k in keys], t) - 1
        if i < 0:
            return np.zeros(NB + 5, np.float32)
        kt, start, target = keys[i]
        s = _smoothstep((t - kt) / self.tuning.emotion_ease)
        return (start + (target - start) * s).astype(np.float32)

    def _blink_profile(self, tau: float) -> float:
        tu = self.tuning
        return _bump(tau, tu.blink_close, tu.blink_hold, tu.blink_open)

    def _blink_at(self, t: float) -> float:
        lo, hi = self.tuning.blink_interval
        while self._blinks[-1] < t + 1.0:
            self._blinks.append(self._blinks[-1] + float(self._blink_rng.uniform(lo, hi)))
            if self._blink_rng.random() < 0.1:  # an occasional double blink
                self._blinks.append(self._blinks[-1] + 0.3)
        i = bisect.bisect_right(self._blinks, t) - 1
        value = 0.0
        for k in (i - 1, i):
            if k >= 0:
                value = max(value, self._blink_profile(t - self._blinks[k]))
        return value

    def _draw_fixation(self) -> tuple[float, float]:
        r = self.tuning.gaze_range * math.sqrt(float(self._sacc_rng.random()))
        a = float(self._sacc_rng.uniform(0, 2 * np.pi))
        return (0.5 * r * math.sin(a), r * math.cos(a))  # gaze wanders more sideways than up/down

    def _fixation_at(self, t: float) -> tuple[float, float]:
        lo, hi = self.tuning.fixation
        while self._fix_t[-1] < t + 1.0:
            self._fix_t.append(self._fix_t[-1] + float(self._sacc_rng.uniform(lo, hi)))
            # micro-saccades (small) are more common than gaze shifts
            if self._sacc_rng.random() < 0.5:
                px, py = self._fix_xy[-1]
                self._fix_xy.append(
                    (px + float(self._sacc_rng.normal(0, 0.01)), py + float(self._sacc_rng.normal(0, 0.015)))
                )
            else:
                self._fix_xy.append(self._draw_fixation())
        i = bisect.bisect_right(self._fix_t, t) - 1
        s = _smoothstep((t - self._fix_t[i]) / self.tuning.saccade_time)
        (ax, ay), (bx, by) = self._fix_xy[i - 1], self._fix_xy[i]
        return (ax + (bx - ax) * s, ay + (by - ay) * s)

    def _prune(self, before: float) -> None:
        self.agent = [c for c in self.agent if c.end + 1.0 >= before]
        lo = bisect.bisect_left(self.events, _Event(before - 5.0, ""))
        del self.events[:lo]
        self.user.prune(before)
        n = bisect.bisect_right(self._blinks, before) - 2
        if n > 0:
            del self._blinks[:n]
        n = bisect.bisect_right(self._fix_t, before) - 2
        if n > 0:
            del self._fix_t[:n]
            del self._fix_xy[:n]
        if len(self._emotion_keys) > 1:
            i = bisect.bisect_right([k[0] for k in self._emotion_keys], before) - 1
            if i > 0:
                del self._emotion_keys[:i]


def _sentence_end_times(text: str, words: list) -> list[float]:
    """End times (chunk-relative) of words that close a sentence inside the clause's text."""
    import re

    tokens = list(re.finditer(r"[^\W_]+(?:['’][^\W_]+)*(?:[.,]\d+)*", text or ""))
    if not words or len(tokens) != len(words):
        return []
    out = []
    for m, w in zip(tokens[:-1], words[:-1], strict=True):
        if re.match(r"[\"”’)\]]*[.!?…]", text[m.end() : m.end() + 3]):
            out.append(float(w.end))
    return out


class ProceduralFace(FaceBackend):
    """The embedded Face Animator backend (layout `arkit52`); no weights, per-session state only."""

    def __init__(self, config: FaceConfig | None = None, *, tuning: FaceTuning | None = None) -> None:
        config = config or FaceConfig()
        if config.layout != ARKIT52.name:
            raise ConfigError(
                f"the procedural face drives ARKit blendshapes: face.layout must be "
                f"{ARKIT52.name!r}, got {config.layout!r}"
            )
        super().__init__(config.layout)
        self.config = config
        self.tuning = tuning or FaceTuning()

    def new_session(self, seed: int = 0) -> ProceduralSession:
        return ProceduralSession(
            seed=(int(self.config.seed) * 1_000_003 + int(seed)) & 0x7FFFFFFF, tuning=self.tuning
        )
