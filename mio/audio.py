"""Audio utilities, one home for each: reading files, checking samples, resampling, envelopes, mel.

    x, sr = read_audio("speech.wav")                 # float32 mono in [-1, 1], its own sample rate
    x = check_samples(chunk, 16000, what="user audio")   # the checks any samples from outside need
    y = resample(x, 24000, 16000)                    # polyphase (scipy), any integer rates
    env = rms_envelope(x, 16000)                     # RMS in 20 ms windows every 10 ms
    fb = mel_filterbank(16000, 512, 32, fmin=60.0, fmax=7600.0)   # librosa's triangular filters

`read_audio` gives

one-line `InputError`s for a missing file, a folder, a file that is not audio, a sample rate
outside MIN_RATE..MAX_RATE (a 1 Hz header would make one second of samples last hours), no
samples, NaN or infinite samples, and more than `max_seconds` (checked from the header, before
anything is decoded). A WAV whose header announces more data than the file holds (a cut-off
download or recording) is read as far as it goes, with a one-line warning saying how much is
missing, instead of silently encoding a fraction of it.
"""

from __future__ import annotations

import logging
import math
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np

from mio.core.errors import InputError

log = logging.getLogger(__name__)

MIN_RATE, MAX_RATE = 8_000, 192_000  # Hz; telephone speech to studio masters
MAX_SECONDS = 600.0  # one file; longer recordings are split by the user
MAX_CHANNELS = 64


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
        log.warning(f"{path} is truncated: its header announces {announced / bytes_per_second:.2f} s of audio, "
             f"the file holds {len(x) / sr:.2f} s; using what is there")
    return x.astype(np.float32, copy=False), sr


def read_media_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Any audio file PyAV reads (wav, flac, mp3, the audio of a video) -> (mono float32, rate), with
    the checks of `read_audio` (rate and length from the header, before decoding; NaN; empty)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise InputError(f"audio file {path} does not exist")
    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise InputError(f"{path} has no audio stream")
            st = c.streams.audio[0]
            rate = int(st.rate)
            if not MIN_RATE <= rate <= MAX_RATE:  # before decoding: a 1 Hz header would last for hours
                raise InputError(f"{path}: sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
            if c.duration is not None and c.duration / av.time_base > MAX_SECONDS:  # from the header
                raise InputError(f"{path} is {c.duration / av.time_base:.0f} s long; the limit is "
                                 f"{MAX_SECONDS:.0f} s per file")
            res = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts = [f.to_ndarray().reshape(-1) for fr in c.decode(st) for f in res.resample(fr)]
            parts += [f.to_ndarray().reshape(-1) for f in res.resample(None)]
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - PyAV raises many types
        raise InputError(f"cannot read audio {path}: {' '.join(str(e).split()) or type(e).__name__}") from None
    x = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    if len(x) > MAX_SECONDS * rate:
        raise InputError(f"{path} is {len(x) / rate:.0f} s long; the limit is {MAX_SECONDS:.0f} s per file")
    if len(x) == 0:
        raise InputError(f"{path} holds no audio samples")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{path} contains NaN or inf samples")
    return x, rate


def _sample_bytes(subtype: str) -> int:
    return {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
            "ULAW": 1, "ALAW": 1}.get(subtype, 2)


# --- samples from outside ----------------------------------------------------------------------

def check_samples(samples: object, sample_rate: object, *, what: str = "audio", rates: tuple[int, int] = (MIN_RATE, MAX_RATE),
                  max_seconds: float = MAX_SECONDS, empty: bool = True, clip: bool = False) -> np.ndarray:
    """Samples handed over by a caller (a client, another module) as float32 mono PCM, or a one-line
    `InputError` naming `what` was wrong: not an array, not mono ((N, 1) and (1, N) are taken), a
    sample rate that is not an int within `rates`, longer than `max_seconds`, not numeric, empty
    (when `empty` is False), NaN or infinite. Integer PCM is scaled to [-1, 1]; `clip` clips floats."""
    if not isinstance(samples, np.ndarray):
        raise InputError(f"{what} samples must be a numpy array, got {type(samples).__name__}")
    if samples.ndim == 2 and 1 in samples.shape:
        samples = samples.reshape(-1)
    if samples.ndim != 1:
        raise InputError(f"{what} must be mono (1-D samples), got shape {samples.shape}")
    lo, hi = rates
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or not lo <= int(sample_rate) <= hi:
        raise InputError(f"{what} sample rate {sample_rate!r} is not supported (sample_rate: an int, {lo}-{hi} Hz)")
    if not empty and samples.size == 0:
        raise InputError(f"{what} is empty")
    if len(samples) > max_seconds * int(sample_rate):
        raise InputError(f"{what} is {len(samples) / int(sample_rate):.1f} s long; the limit per chunk is {max_seconds:.0f} s")
    if samples.dtype.kind not in "fiu":
        raise InputError(f"{what} samples must be numeric PCM, got dtype {samples.dtype}")
    x = samples.astype(np.float32, copy=False)
    if samples.dtype.kind in "iu":
        x = x / float(np.iinfo(samples.dtype).max)
    if not np.all(np.isfinite(x)):
        raise InputError(f"{what} contains NaN or infinite samples")
    return np.clip(x, -1.0, 1.0) if clip else x


# --- signal ------------------------------------------------------------------------------------

def resample(x: np.ndarray, rate_in: int, rate_out: int, dtype: type = np.float32) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly; it reduces the ratio itself), computed in the
    input's own precision, returned as `dtype`."""
    x = np.asarray(x)
    if int(rate_in) == int(rate_out):
        return x.astype(dtype, copy=False)
    from scipy.signal import resample_poly  # lazily: scipy.signal costs ~0.5 s to import

    g = math.gcd(int(rate_in), int(rate_out))
    return resample_poly(x, int(rate_out) // g, int(rate_in) // g).astype(dtype, copy=False)


ENVELOPE_HOP = 0.01  # s between envelope values
ENVELOPE_WINDOW = 0.02  # s each value averages


def rms_envelope(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS in 20 ms windows every 10 ms (window k covers hops k and k + 1). (N,) -> (ceil(N / hop),)"""
    hop = max(1, int(round(sample_rate * ENVELOPE_HOP)))
    n = int(math.ceil(len(samples) / hop))
    padded = np.zeros((n + 1) * hop, dtype=np.float32)
    padded[: len(samples)] = samples
    power = (padded.reshape(n + 1, hop) ** 2).mean(axis=1)  # (n+1,)
    return np.sqrt(0.5 * (power[:-1] + power[1:])).astype(np.float32)  # (n,) 20 ms windows


@lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, *, fmin: float = 0.0, fmax: float | None = None,
                   slaney_norm: bool = False) -> np.ndarray:
    """Triangular filters on the HTK mel scale (librosa.filters.mel), float32 (n_mels, n_fft // 2 + 1);
    `slaney_norm` scales each to unit area (2 / bandwidth in Hz), as Slaney's auditory toolbox does.
    Cached and read-only: callers share one array."""
    import librosa  # lazily: its first use imports numba (~1-3 s)

    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=True,
                             norm="slaney" if slaney_norm else None).astype(np.float32)
    fb.setflags(write=False)
    return fb
