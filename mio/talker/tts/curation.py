"""Training-data curation for Kodama-TTS fine-tuning (paper §2.2.2).

The paper keeps expressive speech and drops low-quality samples by DNSMOS and audiobox PQ, and drops
samples with low intra-utterance speaker similarity (WavLM-Large). Here: DNSMOS from `speechmos`
(ONNX models in the wheel) and the Resemblyzer similarity of the two halves of the utterance;
audiobox PQ has no offline stand-in and is left out. Each verdict says why a sample was dropped.

Which DNSMOS: the P.835 model (SIG/BAK/OVRL) runs on raw 9 s windows and took 4-5 s per window on
this shared CPU (speechmos also tiles a 7 s clip to 15 s = 7 windows), i.e. hours for the corpus.
The filter therefore uses DNSMOS P.808 (the same package's overall-quality model on a log-mel, one
9.01 s window per utterance, ~0.3 s); `mio bench tts` reports the P.835 OVRL as the paper does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

QualityFn = Callable[[np.ndarray, int], float]  # (wav, sr) -> DNSMOS OVRL
ConsistencyFn = Callable[[np.ndarray, int], float]  # (wav, sr) -> intra-utterance speaker similarity


@dataclass(frozen=True)
class CurationConfig:
    min_dnsmos: float = 3.0  # DNSMOS P.808 below this is dropped (clean read speech: ~3.2-4.0)
    min_consistency: float = 0.7  # half-vs-half speaker similarity below this is dropped
    min_seconds: float = 0.8  # too short to learn from
    max_seconds: float = 20.0  # too long for the sequence budget
    max_peak: float = 0.999  # clipped recordings are dropped (peak at full scale)


@dataclass
class Verdict:
    keep: bool
    seconds: float
    dnsmos: float | None = None
    consistency: float | None = None
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


class DnsmosP808:
    """DNSMOS P.808 MOS of one 9.01 s window (short clips are tiled to fill it, as speechmos does)."""

    rate = 16000
    window = 144160  # 9.01 s at 16 kHz: the model's input length

    def __init__(self) -> None:
        import importlib.util
        from pathlib import Path

        import onnxruntime as ort

        spec = importlib.util.find_spec("speechmos")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("speechmos is not installed")
        path = Path(list(spec.submodule_search_locations)[0]) / "dnsmos_models" / "model_v8.onnx"
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1  # many threads only fight on 2 shared cores
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def __call__(self, wav: np.ndarray, sample_rate: int) -> float:
        import librosa

        from mio.audio import resample

        x = resample(np.asarray(wav, np.float32).reshape(-1), sample_rate, self.rate)
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        if peak > 1.0:
            x = x / peak
        x = np.tile(x, int(np.ceil(self.window / max(1, x.size))))[: self.window]
        mel = librosa.feature.melspectrogram(y=x[:-160], sr=self.rate, n_fft=321, hop_length=160, n_mels=120)
        feats = ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T.astype(np.float32)  # (frames, 120)
        return float(self.session.run(None, {"input_1": feats[None]})[0][0][0])


_P808: DnsmosP808 | None = None


def dnsmos_p808(wav: np.ndarray, sample_rate: int) -> float:
    global _P808
    if _P808 is None:
        _P808 = DnsmosP808()
    return _P808(wav, sample_rate)


def judge(wav: np.ndarray, sample_rate: int, cfg: CurationConfig, *, quality: QualityFn | None,
          consistency: ConsistencyFn | None) -> Verdict:
    """Keep or drop one utterance; cheap checks first, the models only when they can change the answer."""
    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    seconds = x.size / float(sample_rate)
    if x.size == 0 or not np.all(np.isfinite(x)):
        return Verdict(False, seconds, reason="empty or non-finite audio")
    if seconds < cfg.min_seconds or seconds > cfg.max_seconds:
        return Verdict(False, seconds, reason=f"duration {seconds:.2f} s outside [{cfg.min_seconds}, {cfg.max_seconds}]")
    if float(np.max(np.abs(x))) >= cfg.max_peak:
        return Verdict(False, seconds, reason="clipped")
    v = Verdict(True, seconds)
    if quality is not None:
        v.dnsmos = float(quality(x, sample_rate))
        if v.dnsmos < cfg.min_dnsmos:
            v.keep, v.reason = False, f"DNSMOS {v.dnsmos:.2f} < {cfg.min_dnsmos}"
            return v
    if consistency is not None:
        v.consistency = float(consistency(x, sample_rate))
        if v.consistency < cfg.min_consistency:
            v.keep, v.reason = False, f"speaker consistency {v.consistency:.2f} < {cfg.min_consistency}"
    return v


def summarize(verdicts: Iterable[Verdict]) -> dict:
    """Counts and reasons, for the training log / README."""
    vs = list(verdicts)
    kept = [v for v in vs if v.keep]
    reasons: dict[str, int] = {}
    for v in vs:
        if not v.keep:
            key = v.reason.split(" ")[0] if v.reason else "?"
            reasons[key] = reasons.get(key, 0) + 1
    scores = [v.dnsmos for v in vs if v.dnsmos is not None]
    cons = [v.consistency for v in vs if v.consistency is not None]
    return {
        "total": len(vs),
        "kept": len(kept),
        "dropped": reasons,
        "kept_seconds": round(sum(v.seconds for v in kept), 1),
        "dnsmos_median": float(np.median(scores)) if scores else None,
        "consistency_median": float(np.median(cons)) if cons else None,
    }
