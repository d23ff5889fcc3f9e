"""The frozen audio encoder of UniLS (§3.2), offline stand-in: a log-mel front end at the face rate.

The paper attends to frozen wav2vec 2.0 features. Neither wav2vec nor a hub download is available
here, and the whisper-tiny encoder costs far more than the <= 5 ms per 40 ms frame budget on two
cores (a 30 s pad per call), so the encoder is a fixed, parameter-free log-mel filterbank: 16 kHz
audio, 32 ms Hann windows every 10 ms, `n_mels` triangular mel bands, the four 10 ms hops of one
40 ms face frame stacked into one vector. It is "frozen" trivially (no weights); the learned
projections that read it belong to the stage-2 cross-attention layers.

Frame n of the face (25 fps) covers [n/25, (n+1)/25) s and reads hops 4n..4n+3, each a window
centred in its own 10 ms, so features of frame n depend on audio up to (n+1)/25 + 11 ms only (and from n/25 - 11 ms):
streaming needs no more look-ahead than that.
"""

from __future__ import annotations

import math

import numpy as np

from mio.audio import mel_filterbank, resample

SAMPLE_RATE = 16000
HOP = 160  # 10 ms
WIN = 512  # 32 ms
HOPS_PER_FRAME = 4  # 40 ms face frame (25 fps)
FRAME_SAMPLES = HOP * HOPS_PER_FRAME
FMIN, FMAX = 60.0, 7600.0  # Hz: the mel bands cover speech, not the DC hum or the Nyquist edge


def to_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    return resample(np.asarray(samples, np.float32).reshape(-1), int(sample_rate), SAMPLE_RATE)


SILENCE = -8.0  # the feature value of digital silence (log10 of the mel floor)
LEAD = (WIN - HOP) // 2  # samples before frame 0 that its first window reads (windows are centred on hops)


def log_mel_padded(x: np.ndarray, n_frames: int, n_mels: int = 32) -> np.ndarray:
    """Features of frames 0..n_frames-1 from audio that starts LEAD samples *before* frame 0.

    (N,) -> (n_frames, HOPS_PER_FRAME * n_mels); audio missing at the end counts as silence."""
    n_hops = n_frames * HOPS_PER_FRAME
    need = (n_hops - 1) * HOP + WIN
    buf = np.zeros(need, np.float32)
    a = np.asarray(x, np.float32)[:need]
    buf[: len(a)] = a
    idx = np.arange(n_hops)[:, None] * HOP + np.arange(WIN)[None, :]  # (H, WIN)
    frames = buf[idx] * np.hanning(WIN).astype(np.float32)  # (H, WIN)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (H, WIN/2+1)
    mel = power @ mel_filterbank(SAMPLE_RATE, WIN, n_mels, fmin=FMIN, fmax=FMAX).T  # (H, n_mels)
    logmel = np.log10(np.maximum(mel, 10.0**SILENCE)).astype(np.float32)
    return logmel.reshape(n_frames, HOPS_PER_FRAME * n_mels)


def log_mel_frames(audio16k: np.ndarray, n_frames: int, n_mels: int = 32) -> np.ndarray:
    """Face-rate features of audio that starts at frame 0 (silence before it)."""
    return log_mel_padded(np.concatenate([np.zeros(LEAD, np.float32), np.asarray(audio16k, np.float32)]),
                          n_frames, n_mels)


def track_features(samples: np.ndarray, sample_rate: int, n_frames: int | None = None,
                   n_mels: int = 32) -> np.ndarray:
    """A whole track at any rate -> (T, feat) face-rate features (T from its length unless given)."""
    x = to_16k(samples, sample_rate)
    if n_frames is None:
        n_frames = int(math.ceil(len(x) / FRAME_SAMPLES))
    return log_mel_frames(x, n_frames, n_mels)


def voice_activity(samples: np.ndarray, sample_rate: int, n_frames: int, dilate: int = 5) -> np.ndarray:
    """Speaking mask at the face rate (T,) bool: frame RMS above 8% of the 95th percentile, widened by
    `dilate` frames on each side so the short closures inside a sentence stay "speaking"."""
    x = to_16k(samples, sample_rate)
    padded = np.zeros(n_frames * FRAME_SAMPLES, np.float32)
    padded[: min(len(x), len(padded))] = x[: len(padded)]
    rms = np.sqrt((padded.reshape(n_frames, FRAME_SAMPLES) ** 2).mean(axis=1))
    ref = float(np.percentile(rms, 95)) if n_frames else 0.0
    voiced = rms > max(0.08 * ref, 1e-4)
    if dilate > 0 and n_frames:
        k = np.ones(2 * dilate + 1)
        voiced = np.convolve(voiced.astype(float), k, mode="same") > 0
    return voiced
