"""Voice shaping: one natural engine, several distinct speakers (pitch, formants, tilt, intonation).

A `VoiceShape` says how a character's voice departs from the engine's own speaker:

- `pitch`: F0 shift in semitones (F0 x 2^(pitch/12));
- `formant`: spectral-envelope scale alpha; the envelope at frequency f moves to alpha*f, so
  alpha < 1 lowers the formants (a longer vocal tract: a larger, deeper-sounding speaker) and
  alpha > 1 raises them. This is the linear vocal-tract-length warp of VTLN;
- `tilt`: spectral tilt in dB per octave above 500 Hz (+ brighter, pressed, louder effort;
  - softer, darker), the main acoustic correlate of vocal effort;
- `intonation`: scale of the F0 excursions around the clause's median (log F0), <1 flatter
  (placid), >1 livelier;
- `speed`: tempo factor (>1 faster), given to the engine's own duration control.

Two ways to apply a shape, both keeping the clause's length and timing:

1. Inside hibari's harmonic-plus-noise synthesiser (`shape_hibari_frames`): the network predicts,
   per 12.5 ms frame, an explicit F0 and log-magnitude envelopes of its harmonic, noise and
   free-phase branches on 601 bins (20 Hz apart). Scaling F0 and warping/tilting those envelopes
   before `hibari.dsp.synth` is exact source-filter control at no extra cost, with nothing to
   estimate. Frame count (hence duration and every word time) is unchanged.
2. For any other engine's waveform (`world_shift`): WORLD analysis (Harvest F0, CheapTrick envelope,
   D4C aperiodicity; pyworld) with the same F0 scaling and envelope warp, and resynthesis. Costs
   ~0.15-0.25 x real time on this CPU (Harvest dominates), so the embedded cast keeps it off the
   live path; the output has the input's length exactly (speed 1), or 1/speed of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mio.core.errors import BackendError

TILT_KNEE_HZ = 500.0  # tilt is applied above this frequency; formant 1 and voicing below are kept
HIBARI_BIN_HZ = 20.0  # hibari.dsp: n_fft 1200 at 24 kHz
VOICED_F0 = 40.0  # hibari.dsp.pulses treats frames with F0 below this as unvoiced
VOICED_MARGIN = 1.1
WORLD_FRAME_MS = 5.0
WORLD_F0_RATE = 16000  # Harvest runs on a 16 kHz copy: ~1.5x faster, same F0 track for speech
WORLD_F0_RANGE = (55.0, 500.0)


@dataclass(frozen=True)
class VoiceShape:
    pitch: float = 0.0  # semitones
    formant: float = 1.0  # spectral-envelope scale (<1 deeper/larger, >1 smaller)
    tilt: float = 0.0  # dB per octave above 500 Hz
    intonation: float = 1.0  # F0 excursion scale around the median
    speed: float = 1.0  # tempo (>1 faster)

    @property
    def changes_source(self) -> bool:
        """True when the waveform itself must be reshaped (speed alone is the engine's own control)."""
        return self.pitch != 0.0 or self.formant != 1.0 or self.tilt != 0.0 or self.intonation != 1.0

    def f0_factor(self, emotion_pitch: float = 1.0) -> float:
        return float(2.0 ** (self.pitch / 12.0) * emotion_pitch)


def warp_frequency(env: np.ndarray, alpha: float, axis: int) -> np.ndarray:
    """Linear frequency warp of envelopes sampled on a uniform bin grid: out(f) = env(f / alpha).

    Bins read beyond the top (alpha < 1) repeat the last bin, which holds the near-silent top band."""
    if alpha == 1.0:
        return env
    n = env.shape[axis]
    src = np.clip(np.arange(n, dtype=np.float64) / alpha, 0.0, n - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (src - i0).astype(env.dtype)
    shape = [1] * env.ndim
    shape[axis] = n
    w = w.reshape(shape)
    return np.take(env, i0, axis=axis) * (1 - w) + np.take(env, i1, axis=axis) * w


def tilt_log_gain(n_bins: int, bin_hz: float, db_per_octave: float) -> np.ndarray:
    """(n_bins,) natural-log magnitude gain: 0 below the knee, db_per_octave per octave above it."""
    f = np.arange(n_bins, dtype=np.float64) * bin_hz
    octaves = np.log2(np.maximum(f, TILT_KNEE_HZ) / TILT_KNEE_HZ)
    return (db_per_octave / 20.0 * math.log(10.0) * octaves).astype(np.float32)


def reshape_f0(f0: np.ndarray, factor: float, intonation: float, voiced_min: float) -> np.ndarray:
    """F0 x factor, with log-F0 excursions around the voiced median scaled by `intonation`.
    Unvoiced frames (below `voiced_min`) stay as they are, so voicing decisions never change."""
    out = np.asarray(f0, dtype=np.float64).copy()
    voiced = out > voiced_min
    if not voiced.any():
        return out.astype(f0.dtype)
    lf = np.log(out[voiced])
    if intonation != 1.0:
        centre = float(np.median(lf))
        lf = centre + intonation * (lf - centre)
    # a voiced frame stays voiced: a deep shift must not push onsets below the voicing threshold
    out[voiced] = np.maximum(np.exp(lf) * factor, voiced_min * VOICED_MARGIN)
    return out.astype(f0.dtype)


def shape_hibari_frames(
    outputs: tuple[np.ndarray, ...], shape: VoiceShape, emotion_pitch: float = 1.0
) -> tuple[np.ndarray, ...]:
    """hibari's network outputs (lh, th, ln, lr, phi, f0; envelopes [601, F], f0 [F]) reshaped.

    lh/ln/lr are log-magnitude envelopes (harmonic filter, noise, free-phase branch): they are
    warped along frequency; th/phi (phases) are kept, since warping phases smears the transients
    the free-phase branch carries (measured: DNSMOS P.808 3.27 with phases kept vs 3.10 warped).
    Tilt goes to the harmonic and free-phase branches (the voiced energy), not to the noise floor."""
    lh, th, ln, lr, phi, f0 = outputs
    if shape.formant != 1.0:
        lh, ln, lr = (warp_frequency(a, shape.formant, axis=0) for a in (lh, ln, lr))
    if shape.tilt != 0.0:
        g = tilt_log_gain(lh.shape[0], HIBARI_BIN_HZ, shape.tilt)[:, None]
        lh, lr = lh + g, lr + g
    f0 = reshape_f0(f0, shape.f0_factor(emotion_pitch), shape.intonation, VOICED_F0)
    return lh, th, ln, lr, phi, f0


def world_shift(samples: np.ndarray, sample_rate: int, shape: VoiceShape, emotion_pitch: float = 1.0,
                speed: float = 1.0) -> np.ndarray:
    """Reshape any speech waveform with WORLD (analysis -> F0/envelope change -> synthesis).

    `speed` (>1 faster) re-times the frames uniformly, so word times scale by exactly 1/speed.
    At speed 1 the output has the input's length."""
    try:
        import pyworld
    except ImportError as e:
        raise BackendError(f"pitch/formant shifts of this voice need `pip install pyworld` ({e})") from e
    from mio.audio import resample

    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    x16 = resample(x.astype(np.float32), sample_rate, WORLD_F0_RATE).astype(np.float64)
    f0, t = pyworld.harvest(x16, WORLD_F0_RATE, f0_floor=WORLD_F0_RANGE[0], f0_ceil=WORLD_F0_RANGE[1],
                            frame_period=WORLD_FRAME_MS)
    f0 = pyworld.stonemask(x, f0, t, sample_rate)  # refine on the full-rate signal
    sp = pyworld.cheaptrick(x, f0, t, sample_rate)  # (frames, bins) power envelope
    ap = pyworld.d4c(x, f0, t, sample_rate)
    bin_hz = sample_rate / (2.0 * (sp.shape[1] - 1))
    if shape.formant != 1.0:
        sp = warp_frequency(sp, shape.formant, axis=1)
        ap = warp_frequency(ap, shape.formant, axis=1)
    if shape.tilt != 0.0:
        sp = sp * np.exp(2.0 * tilt_log_gain(sp.shape[1], bin_hz, shape.tilt).astype(np.float64))[None, :]
    f0 = reshape_f0(f0, shape.f0_factor(emotion_pitch), shape.intonation, 0.0)
    y = pyworld.synthesize(np.ascontiguousarray(f0), np.ascontiguousarray(sp), np.ascontiguousarray(ap),
                           sample_rate, WORLD_FRAME_MS / speed)
    n = int(round(len(x) / speed))
    y = y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))
    return y.astype(np.float32)
