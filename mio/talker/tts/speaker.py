"""Speaker embeddings for Kodama-TTS: Resemblyzer (256-d), the offline stand-in for CAM++ (paper §2.2.2).

The paper projects a CAM++ speaker embedding into the LM's hidden space and prepends it before the
audio tokens; it also filters training data by intra-utterance speaker similarity (WavLM-Large).
Resemblyzer's GE2E d-vector (256-d, L2-normalised) serves both jobs here. Its first call in a new
environment JIT-compiles for ~20 s.
"""

from __future__ import annotations

import numpy as np

from mio.core.errors import BackendError, InputError

SPEAKER_DIM = 256
ENCODER_RATE = 16000
MIN_SECONDS = 0.5  # shorter clips give meaningless embeddings


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0


class SpeakerEncoder:
    """`embed(wav, sr) -> (256,)` float32, unit norm; `consistency(wav, sr)` in [-1, 1]."""

    dim = SPEAKER_DIM

    def __init__(self) -> None:
        try:
            from resemblyzer import VoiceEncoder
        except ImportError as e:
            raise BackendError(f"speaker embeddings need `pip install resemblyzer 'setuptools<81'` ({e})") from e
        self.encoder = VoiceEncoder(device="cpu", verbose=False)

    def _prepare(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        from resemblyzer import preprocess_wav

        x = np.asarray(wav, dtype=np.float32).reshape(-1)
        if x.size < MIN_SECONDS * sample_rate:
            raise InputError(f"speaker reference is too short ({x.size / sample_rate:.2f} s < {MIN_SECONDS} s)")
        if not np.all(np.isfinite(x)):
            raise InputError("speaker reference contains NaN/inf samples")
        y = preprocess_wav(x, source_sr=sample_rate)  # 16 kHz, volume-normalised, long silences trimmed
        if y.size < MIN_SECONDS * ENCODER_RATE:  # VAD removed nearly everything: keep the raw clip
            y = _resample16(x, sample_rate)
        return y.astype(np.float32)

    def embed(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.analyze(wav, sample_rate)[0]

    def consistency(self, wav: np.ndarray, sample_rate: int) -> float:
        return self.analyze(wav, sample_rate)[1]

    def analyze(self, wav: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
        """(utterance embedding (256,), intra-utterance speaker similarity) from one encoder pass.

        Resemblyzer embeds 1.6 s windows and averages them; the consistency is the cosine between
        the mean embedding of the first half of the windows and that of the second half (1.0 when
        the clip is too short to have two windows)."""
        embed, partials, _ = self.encoder.embed_utterance(self._prepare(wav, sample_rate), return_partials=True)
        partials = np.asarray(partials, dtype=np.float32)  # (n, 256), unit rows
        if len(partials) < 2:
            return np.asarray(embed, dtype=np.float32), 1.0
        half = len(partials) // 2
        return np.asarray(embed, dtype=np.float32), _cosine(partials[:half].mean(0), partials[half:].mean(0))


def _resample16(x: np.ndarray, sample_rate: int) -> np.ndarray:
    from mio.audio import resample

    return resample(x, sample_rate, ENCODER_RATE)
