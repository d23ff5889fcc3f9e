"""Prosodic features p_t of the user's voice (§6.2.1, Eq. 19): pitch, intensity, jitter, from the waveform.

Pitch is found per 40 ms frame (10 ms hop) by normalised autocorrelation in 70-400 Hz, with parabolic
interpolation of the peak; a frame is voiced when its autocorrelation peak is strong and its energy is
above the noise floor. Intensity is the RMS level in dBFS. Jitter is the local period perturbation
measured on consecutive voiced frames (|T_i - T_(i-1)| / mean T): a frame-level estimate, coarser than
Praat's cycle-to-cycle jitter but computed from the waveform alone with numpy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from mio.core.errors import InputError

F0_MIN, F0_MAX = 70.0, 400.0  # Hz: the range of speaking voices
FRAME_S, HOP_S = 0.040, 0.010
VOICING_THRESHOLD = 0.45  # normalised autocorrelation peak above which a frame is voiced
SILENCE_DB = -45.0  # frames quieter than this (dBFS) are silence


@dataclass(frozen=True)
class Prosody:
    """p_t: one utterance's prosodic vector."""

    pitch_hz: float  # median F0 of voiced frames (0 when nothing is voiced)
    pitch_range_st: float  # spread of F0 in semitones (std), i.e. how lively the intonation is
    intensity_db: float  # mean RMS level of non-silent frames, dBFS
    jitter: float  # local period perturbation, 0..1 (typical healthy speech ~0.005-0.02 per cycle)
    voiced_ratio: float  # voiced frames / non-silent frames
    duration_s: float

    def vector(self) -> np.ndarray:
        return np.array([self.pitch_hz, self.pitch_range_st, self.intensity_db, self.jitter, self.voiced_ratio,
                         self.duration_s], np.float32)

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def _frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    n = 1 + max(0, (len(x) - size) // hop)
    idx = np.arange(size)[None, :] + hop * np.arange(n)[:, None]
    return x[idx]  # (n_frames, size)


def frame_pitch(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame F0 (Hz, 0 if unvoiced), voicing strength and RMS level (dBFS)."""
    size, hop = int(FRAME_S * sample_rate), int(HOP_S * sample_rate)
    if len(x) < size:
        x = np.pad(x, (0, size - len(x)))
    fr = _frames(x.astype(np.float64), size, hop)
    fr = fr - fr.mean(axis=1, keepdims=True)
    rms = np.sqrt((fr**2).mean(axis=1)) + 1e-12
    level = 20 * np.log10(rms)
    window = fr * np.hanning(size)[None, :]
    spec = np.fft.rfft(window, n=2 * size, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :size]  # (n_frames, size) autocorrelation
    ac = ac / (ac[:, :1] + 1e-12)
    lo, hi = int(sample_rate / F0_MAX), min(size - 2, int(sample_rate / F0_MIN))
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    peak = ac[np.arange(len(ac)), lag]
    # Parabolic interpolation around the peak for a sub-sample period.
    a, b, c = ac[np.arange(len(ac)), lag - 1], peak, ac[np.arange(len(ac)), lag + 1]
    denom = a - 2 * b + c
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    period = (lag + np.clip(shift, -1, 1)) / sample_rate
    voiced = (peak > VOICING_THRESHOLD) & (level > SILENCE_DB)
    f0 = np.where(voiced, 1.0 / period, 0.0)
    return f0, peak, level


def prosody(samples: np.ndarray, sample_rate: int) -> Prosody:
    """p_t of one utterance (mono float PCM)."""
    x = np.asarray(samples, np.float64)
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"prosody needs mono, non-empty audio; got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("audio contains NaN or infinite samples")
    f0, _, level = frame_pitch(x, sample_rate)
    loud = level > SILENCE_DB
    voiced = f0 > 0
    intensity = float(level[loud].mean()) if loud.any() else float(level.max())
    if voiced.sum() >= 2:
        pitch = float(np.median(f0[voiced]))
        st = 12 * np.log2(f0[voiced] / pitch)
        periods = np.zeros_like(f0)
        periods[voiced] = 1.0 / f0[voiced]
        # Jitter on runs of consecutive voiced frames only (a gap is not a perturbation).
        pairs = voiced[1:] & voiced[:-1]
        diffs = np.abs(np.diff(periods))[pairs]
        jitter = float(diffs.mean() / periods[voiced].mean()) if diffs.size else 0.0
        spread = float(st.std())
    else:
        pitch, spread, jitter = 0.0, 0.0, 0.0
    return Prosody(pitch_hz=pitch, pitch_range_st=spread, intensity_db=intensity, jitter=jitter,
                   voiced_ratio=float(voiced.sum() / max(1, loud.sum())), duration_s=len(x) / sample_rate)
