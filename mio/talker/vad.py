"""Energy-based voice activity detection for live microphone audio (the fallback of mio.talker.stream_asr).

The browser streams mono PCM continuously; only utterances should reach the session (the ASR
stage transcribes everything it buffered at the user's end of turn, so silence must not pile up).
`EnergyVAD` cuts the stream into utterances:

- 30 ms frames; a frame is voiced when its level is `margin_db` above a tracked noise floor and
  above `min_level_db` (so a quiet room's hiss never counts as speech);
- an utterance starts after `onset_ms` of voiced frames and carries `preroll_ms` of the audio
  before it (the soft start of the first word);
- it ends after `hangover_ms` without a voiced frame, or when it reaches `max_utterance_s`.

webrtcvad is not installed in the embedded environment; this needs nothing beyond numpy.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class VADConfig:
    sample_rate: int = 16000  # the browser resamples its microphone to this rate
    frame_ms: int = 30
    margin_db: float = 12.0  # voiced = this far above the noise floor ...
    min_level_db: float = -42.0  # ... and above this absolute level (dBFS; speech is ~-30..-15)
    floor_db: float = -70.0  # the noise floor never drops below this (digital silence is -inf)
    onset_ms: int = 150  # voiced time before an utterance is declared (ignores clicks)
    hangover_ms: int = 700  # silence that ends an utterance (a pause between words is shorter)
    preroll_ms: int = 300  # audio kept from before the onset
    max_utterance_s: float = 20.0  # a longer utterance is cut into turns of this length


@dataclass(frozen=True)
class VADEvent:
    """`start` (an utterance begins), `audio` (utterance samples, in order) or `end`."""

    kind: str
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


class EnergyVAD:
    def __init__(self, config: VADConfig | None = None) -> None:
        self.config = c = config or VADConfig()
        self.frame = c.sample_rate * c.frame_ms // 1000
        self.noise_db = -60.0
        self.in_speech = False
        self.speech_frames = 0  # frames since the utterance started
        self._voiced_run = 0
        self._silent_run = 0
        self._rest = np.zeros(0, np.float32)
        self._preroll: collections.deque[np.ndarray] = collections.deque(
            maxlen=max(1, (c.preroll_ms + c.onset_ms) // c.frame_ms))

    @staticmethod
    def level_db(frame: np.ndarray) -> float:
        rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64))))
        return 20.0 * np.log10(max(rms, 1e-6))

    def _voiced(self, db: float) -> bool:
        return db > max(self.noise_db + self.config.margin_db, self.config.min_level_db)

    def _track_noise(self, db: float) -> None:
        # Falls fast to a quieter level, rises slowly (speech must not become the floor).
        rate = 0.3 if db < self.noise_db else 0.01
        self.noise_db = max(self.config.floor_db, self.noise_db + rate * (db - self.noise_db))

    def push(self, samples: np.ndarray) -> list[VADEvent]:
        """Feed float32 mono samples at `config.sample_rate`; returns the utterance events they held,
        consecutive audio merged into one event."""
        c, out = self.config, []
        pending: list[np.ndarray] = []

        def flush() -> None:
            if pending:
                out.append(VADEvent("audio", np.concatenate(pending)))
                pending.clear()

        buf = np.concatenate([self._rest, np.asarray(samples, np.float32)])
        n = len(buf) // self.frame
        self._rest = buf[n * self.frame:]
        onset = max(1, c.onset_ms // c.frame_ms)
        hangover = max(1, c.hangover_ms // c.frame_ms)
        max_frames = int(c.max_utterance_s * 1000 / c.frame_ms)
        for i in range(n):
            frame = buf[i * self.frame:(i + 1) * self.frame]
            db = self.level_db(frame)
            voiced = self._voiced(db)
            if not self.in_speech:
                self._preroll.append(frame)
                self._voiced_run = self._voiced_run + 1 if voiced else 0
                if not voiced:
                    self._track_noise(db)
                if self._voiced_run >= onset:
                    self.in_speech = True
                    out.append(VADEvent("start"))
                    pending.extend(self._preroll)
                    self._preroll.clear()
                    self.speech_frames = self._voiced_run
                    self._silent_run = 0
                continue
            pending.append(frame)
            self.speech_frames += 1
            self._silent_run = 0 if voiced else self._silent_run + 1
            if self._silent_run >= hangover or self.speech_frames >= max_frames:
                self.in_speech = False
                self._voiced_run = 0
                self.speech_frames = 0
                flush()
                out.append(VADEvent("end"))
        flush()
        return out
