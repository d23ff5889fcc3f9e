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

import numpy as np

from mio.audio import rms_envelope
from mio.core.config import FaceConfig
from mio.core.errors import ConfigError, InputError
from mio.core.frames import AudioChunk, Emotion, UserAudio
from mio.core.layouts import ARKIT52, blendshape_index
from mio.face import visemes as V
from mio.face.audio_tracks import AgentChunk, UserTrack, phone_arrays
from mio.face.base import FaceBackend, FaceSession, chunk_samples
from mio.face.events import Event, speech_events
from mio.face.expression import (
    BLINK_L,
    BLINK_R,
    CLOSE,
    EYE_L,
    EYE_R,
    HEAD,
    HOP,
    JAW,
    LOOK_DOWN,
    LOOK_LEFTWARD,
    LOOK_RIGHTWARD,
    LOOK_UP,
    MAX_ROT,
    NB,
    PRESS,
    ROUND,
    SMILE,
    FaceTuning,
    bump,
    expression_of,
    gaussian_smooth,
    nod_pulse,
    smoothstep,
)

# ---------------------------------------------------------------- the session


class ProceduralSession(FaceSession):
    """Per-conversation state of the procedural face. See the module docstring."""

    def __init__(self, seed: int, tuning: FaceTuning) -> None:
        self.layout = ARKIT52
        self.seed = int(seed)
        self.tuning = tuning
        self.agent: list[AgentChunk] = []
        self.user = UserTrack(tuning)
        self.events: list[Event] = []  # speech-linked nods, brow flashes, gaze aversions, extra blinks
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
        centers, wa, wr, alpha = phone_arrays(starts[order], ends[order], rows[order])
        self.agent.append(
            AgentChunk(
                start=t0,
                end=t0 + dur,
                env=gaussian_smooth(env, 2.0),
                env_slow=gaussian_smooth(env, 15.0),
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
        for ev in speech_events(chunk, words, env, t0, dur, rng, self.tuning):
            self._add(ev)

    @staticmethod
    def _check_segment(seg: object, dur: float, what: str) -> bool:
        start, end = getattr(seg, "start", None), getattr(seg, "end", None)
        if not isinstance(start, (int, float)) or not isinstance(end, (int, float)):
            raise InputError(f"agent audio {what} timings must be numbers, got {seg!r}")
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise InputError(f"agent audio {what} {seg!r} has non-finite or reversed times")
        return start < dur + 0.5  # timings far beyond the audio are ignored

    def _add(self, ev: Event) -> None:
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
                self._add(Event(t + delay, "nod", amp=0.5 * tu.nod_listening, dur=0.45, agent=False))
                continue
            double = rng.random() < 0.3
            self._add(
                Event(
                    t + delay,
                    "nod",
                    amp=tu.nod_listening * float(rng.uniform(0.7, 1.1)),
                    dur=0.5,
                    agent=False,
                )
            )
            if double:
                self._add(Event(t + delay + 0.5, "nod", amp=0.6 * tu.nod_listening, dur=0.4, agent=False))
            r = rng.random()
            if r < 0.35:
                self._add(Event(t + delay, "smile", amp=float(rng.uniform(0.25, 0.4)), dur=1.4, agent=False))
            elif r < 0.6:
                self._add(Event(t + delay, "brow", amp=float(rng.uniform(0.25, 0.4)), dur=0.9, agent=False))
            if rng.random() < 0.4:
                self._add(Event(t + delay + 0.1, "blink", agent=False))

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
        kept: list[AgentChunk] = []
        for c in self.agent:
            if c.start >= t:
                continue
            if c.end > t:
                n = max(0, int((t - c.start) / HOP))
                c.env, c.env_slow = c.env[:n].copy(), c.env_slow[:n].copy()
                if c.has_phones:  # keep phones centred before the cut, then close the lips right at it
                    keep = c.centers < t
                    sil = phone_arrays(np.array([t]), np.array([t + 0.2]), np.array([V.SILENCE]))
                    c.centers = np.concatenate([c.centers[keep], sil[0]])
                    c.w_attack = np.concatenate([c.w_attack[keep], sil[1]])
                    c.w_release = np.concatenate([c.w_release[keep], sil[2]])
                    c.alpha = np.concatenate([c.alpha[keep], sil[3]])
                    c.rows = np.concatenate([c.rows[keep], [V.SILENCE]])
                c.end = t
            kept.append(c)
        self.agent = kept
        self.events = [e for e in self.events if e.t < t or not e.agent]
        self._add(Event(t + 0.1, "blink", agent=False))

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
        lo = bisect.bisect_left(self.events, Event(t - 3.0, ""))
        for ev in self.events[lo:]:
            if ev.t > t:
                break
            tau = t - ev.t
            if ev.kind == "nod":
                nod += ev.amp * nod_pulse(tau, ev.dur)
            elif ev.kind == "brow":
                b = ev.amp * bump(tau, 0.12, ev.dur - 0.3, 0.18)
                blend[blendshape_index("browInnerUp")] += b
                blend[blendshape_index("browOuterUpLeft")] += 0.7 * b
                blend[blendshape_index("browOuterUpRight")] += 0.7 * b
            elif ev.kind == "smile":
                s = ev.amp * bump(tau, 0.25, ev.dur - 0.6, 0.35)
                blend[SMILE] += s
                blend[blendshape_index("cheekSquintLeft")] += 0.5 * s
                blend[blendshape_index("cheekSquintRight")] += 0.5 * s
            elif ev.kind == "avert":
                a = bump(tau, 0.08, ev.dur, 0.25)
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
                mouth[blendshape_index(name)] = max(mouth[blendshape_index(name)], k * e)
            if e < 0.12 and env_slow > 0.25:  # short closures between syllables
                mouth[PRESS] = np.maximum(mouth[PRESS], 0.2)
        return mouth, speaking, env_slow

    def _emotion_at(self, t: float) -> np.ndarray:
        keys = self._emotion_keys
        i = bisect.bisect_right([k[0] for k in keys], t) - 1
        if i < 0:
            return np.zeros(NB + 5, np.float32)
        kt, start, target = keys[i]
        s = smoothstep((t - kt) / self.tuning.emotion_ease)
        return (start + (target - start) * s).astype(np.float32)

    def _blink_profile(self, tau: float) -> float:
        tu = self.tuning
        return bump(tau, tu.blink_close, tu.blink_hold, tu.blink_open)

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
        s = smoothstep((t - self._fix_t[i]) / self.tuning.saccade_time)
        (ax, ay), (bx, by) = self._fix_xy[i - 1], self._fix_xy[i]
        return (ax + (bx - ax) * s, ay + (by - ay) * s)

    def _prune(self, before: float) -> None:
        self.agent = [c for c in self.agent if c.end + 1.0 >= before]
        lo = bisect.bisect_left(self.events, Event(before - 5.0, ""))
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
