"""Reading audio files the user hands over, with the checks a file from anywhere needs.

    x, sr = read_audio("speech.wav")     # float32 mono in [-1, 1], its own sample rate

One-line `InputError`s for a missing file, a folder, a file that is not audio, a sample rate
outside MIN_RATE..MAX_RATE (a 1 Hz header would make one second of samples last hours), no
samples, NaN or infinite samples, and more than `max_seconds` (checked from the header, before
anything is decoded). A WAV whose header announces more data than the file holds (a cut-off
download or recording) is read as far as it goes, with a one-line warning saying how much is
missing, instead of silently encoding a fraction of it.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np

from mio.core.errors import InputError

MIN_RATE, MAX_RATE = 8_000, 192_000  # Hz; telephone speech to studio masters
MAX_SECONDS = 600.0  # one file; longer recordings are split by the user
MAX_CHANNELS = 64


def warn(message: str) -> None:
    print(f"mio: warning: {message}", file=sys.stderr, flush=True)


def _wav_shortfall(path: Path) -> tuple[int, int] | None:
    """(announced, present) bytes of a RIFF/WAVE file's data chunk when the file is cut short."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"data":
                    present = path.stat().st_size - f.tell()
                    # 0 and 0xFFFFFFFF mean "unknown length" (streamed writers); not a truncation
                    return (size, present) if 0 < size < 0xFFFFFFFF and present < size else None
                f.seek(size + (size & 1), 1)
    except OSError:
        return None


def read_audio(path: str | Path, *, max_seconds: float = MAX_SECONDS, what: str = "audio file") -> tuple[np.ndarray, int]:
    """(float32 mono samples, sample rate) of any soundfile-readable file, checked."""
    import soundfile as sf

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        raise InputError(f"{what} {path} does not exist")
    try:
        info = sf.info(str(path))
    except Exception as e:  # noqa: BLE001 - libsndfile raises RuntimeError/LibsndfileError/TypeError
        raise InputError(f"cannot read {path} as audio ({' '.join(str(e).split()) or type(e).__name__})") from None
    sr = int(info.samplerate)
    if not MIN_RATE <= sr <= MAX_RATE:
        raise InputError(f"{path}: sample rate {sr} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    if not 0 < info.channels <= MAX_CHANNELS:
        raise InputError(f"{path}: {info.channels} channels; at most {MAX_CHANNELS}")
    if info.frames > max_seconds * sr:
        raise InputError(f"{path} is {info.frames / sr:.0f} s long; the limit is {max_seconds:.0f} s per file")
    try:
        x, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001 - as above
        raise InputError(f"cannot read {path} as audio ({' '.join(str(e).split()) or type(e).__name__})") from None
    if x.shape[0] == 0:
        raise InputError(f"{path} holds no samples")
    x = x.mean(axis=1)
    if not np.all(np.isfinite(x)):
        raise InputError(f"{path} holds NaN or infinite samples")
    cut = _wav_shortfall(path)
    if cut is not None:
        announced, present = cut
        bytes_per_second = sr * info.channels * max(1, _sample_bytes(info.subtype))
        warn(f"{path} is truncated: its header announces {announced / bytes_per_second:.2f} s of audio, "
             f"the file holds {len(x) / sr:.2f} s; using what is there")
    return x.astype(np.float32, copy=False), sr


def _sample_bytes(subtype: str) -> int:
    return {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
            "ULAW": 1, "ALAW": 1}.get(subtype, 2)
