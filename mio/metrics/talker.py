"""Talker metrics (§7.1, Tables 1-2): STOI, PESQ-NB/WB, SIM, WER/CER, DNSMOS, UTMOS.

Reference-based metrics (STOI, PESQ, SIM) compare a reconstruction with its original; the others
(DNSMOS, UTMOS, WER/CER through an ASR transcript) judge synthesised speech alone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mio.audio import resample
from mio.metrics.networks import load_onnx

PESQ_RATES = {"nb": 8000, "wb": 16000}  # ITU-T P.862 narrowband / P.862.2 wideband
STOI_RATE = 10000  # pystoi resamples internally to 10 kHz
DNSMOS_RATE = 16000
UTMOS_RATE = 16000


def _mono(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size == 0 or not np.isfinite(a).all():
        raise ValueError(f"{what} must be a non-empty finite mono signal, got shape {a.shape}")
    return a


def _resample64(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """mio.audio.resample in float64: the metrics' reference implementations expect doubles."""
    return resample(np.asarray(x, dtype=np.float64), sr_in, sr_out, dtype=np.float64)


def _aligned(ref: np.ndarray, deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(ref), len(deg))
    return ref[:n], deg[:n]


def stoi(reference: np.ndarray, degraded: np.ndarray, sample_rate: int, extended: bool = False) -> float:
    """Short-Time Objective Intelligibility in [0, 1] (Taal et al. 2011), via `pystoi`."""
    from pystoi import stoi as _stoi

    ref, deg = _aligned(_mono(reference, "reference"), _mono(degraded, "degraded"))
    return float(_stoi(ref, deg, sample_rate, extended=extended))


def pesq(reference: np.ndarray, degraded: np.ndarray, sample_rate: int, mode: str = "wb") -> float:
    """PESQ MOS-LQO: mode "nb" (P.862, 8 kHz, range -0.5..4.5) or "wb" (P.862.2, 16 kHz, ..4.64)."""
    from pesq import pesq as _pesq

    if mode not in PESQ_RATES:
        raise ValueError(f"PESQ mode must be one of {sorted(PESQ_RATES)}, got {mode!r}")
    rate = PESQ_RATES[mode]
    ref = _resample64(_mono(reference, "reference"), sample_rate, rate)
    deg = _resample64(_mono(degraded, "degraded"), sample_rate, rate)
    ref, deg = _aligned(ref, deg)
    return float(_pesq(rate, ref, deg, mode))


EmbedFn = Callable[[np.ndarray, int], np.ndarray]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise ValueError("cosine similarity of a zero vector is undefined")
    return float(a @ b / (na * nb))


def speaker_similarity(reference: np.ndarray, other: np.ndarray, sample_rate: int, embed: EmbedFn) -> float:
    """SIM: cosine similarity of speaker embeddings (the paper: WavLM-Large; any `embed(x, sr)` here)."""
    return cosine(embed(_mono(reference, "reference"), sample_rate), embed(_mono(other, "other"), sample_rate))


_PUNCT = re.compile(r"[^\w\s']|_")


def normalize_text(text: str) -> str:
    """Lower case, NFKC, punctuation dropped, whitespace collapsed (Whisper-style basic normaliser)."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = _PUNCT.sub(" ", t)
    return " ".join(t.split())


def wer(reference: str | list[str], hypothesis: str | list[str]) -> float:
    """Word error rate (S + D + I) / N over normalised text; can exceed 1 (Table 2: 317.5 %)."""
    import jiwer

    refs = [reference] if isinstance(reference, str) else list(reference)
    hyps = [hypothesis] if isinstance(hypothesis, str) else list(hypothesis)
    refs, hyps = [normalize_text(r) for r in refs], [normalize_text(h) for h in hyps]
    if not any(refs):
        raise ValueError("WER needs a non-empty reference")
    return float(jiwer.wer(refs, hyps))


def cer(reference: str | list[str], hypothesis: str | list[str]) -> float:
    """Character error rate over normalised text with spaces removed (as for Chinese/Japanese)."""
    import jiwer

    refs = [reference] if isinstance(reference, str) else list(reference)
    hyps = [hypothesis] if isinstance(hypothesis, str) else list(hypothesis)
    refs = [normalize_text(r).replace(" ", "") for r in refs]
    hyps = [normalize_text(h).replace(" ", "") for h in hyps]
    if not any(refs):
        raise ValueError("CER needs a non-empty reference")
    return float(jiwer.cer(refs, hyps))


def dnsmos(samples: np.ndarray, sample_rate: int) -> dict[str, float]:
    """DNSMOS P.835 (SIG, BAK, OVRL) and P.808 MOS from the ONNX models inside `speechmos`.

    The paper's single DNSMOS figure is taken as OVRL (the usual choice in TTS papers)."""
    from speechmos import dnsmos as _dnsmos

    x = _resample64(_mono(samples, "samples"), sample_rate, DNSMOS_RATE)
    peak = float(np.max(np.abs(x)))
    if peak > 1.0:  # speechmos expects [-1, 1]
        x = x / peak
    r = _dnsmos.run(x.astype(np.float32), DNSMOS_RATE)
    return {k: float(r[k]) for k in ("ovrl_mos", "sig_mos", "bak_mos", "p808_mos")}


def utmos(samples: np.ndarray, sample_rate: int, model: str | Path | Callable[[np.ndarray], float]) -> float:
    """UTMOS (Saeki et al. 2022) predicted MOS in [1, 5] from a model the user gives.

    `model`: an ONNX file taking a (1, T) float32 waveform at 16 kHz and returning the score
    (as the exported UTMOS22 strong learner does), or any callable doing the same."""
    x = _resample64(_mono(samples, "samples"), sample_rate, UTMOS_RATE).astype(np.float32)
    fn = model if callable(model) else onnx_mos(load_onnx(model, "UTMOS", 1))
    return float(fn(x))


def onnx_mos(m: Callable[..., np.ndarray]) -> Callable[[np.ndarray], float]:
    """A MOS network (ONNX, (1, T) float32 at 16 kHz -> score) as a callable for `utmos`."""
    return lambda x: float(np.asarray(m(x[None, :])).ravel()[0])
