"""The two audio tracks of the procedural face (§3.1's dual-track input): the agent's own speech (a
loudness envelope per chunk, with the Talker's phone timings) and the user's microphone audio,
voice-activity tracked as it arrives so the face knows when the user speaks and pauses.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from mio.audio import rms_envelope
from mio.face import visemes as V
from mio.face.expression import HOP, FaceTuning, gaussian_smooth, smoothstep

# ---------------------------------------------------------------- agent speech track


@dataclass
class AgentChunk:
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


def phone_arrays(starts: np.ndarray, ends: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    d = np.clip(ends - starts, 0.03, 0.3)
    centers = 0.5 * (starts + ends)
    w_attack = 0.6 * d + 0.04  # look-ahead: a phone starts shaping the lips before it sounds
    w_release = 0.5 * d + 0.03
    alpha = V.VISEME_DOMINANCE[rows]
    return centers, w_attack, w_release, alpha


# ---------------------------------------------------------------- user (listening) track


class UserTrack:
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
        self.level.append(gaussian_smooth(level.astype(np.float32), 8.0))

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
            return smoothstep((t - s) / 0.4)
        return 1.0 - smoothstep((t - e) / 1.5)

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
