"""Audio files from anywhere (mio.audio and the loaders built on it): the WAVs here are
written byte by byte to the RIFF/WAVE layout (Microsoft's 1991 multimedia spec), not by soundfile,
so the headers can lie the way damaged or hostile files do."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from mio.audio import MAX_SECONDS, read_audio
from mio.core.errors import InputError


def riff_wav(path: Path, samples: np.ndarray, rate: int, *, channels: int = 1,
             announce_bytes: int | None = None) -> Path:
    """PCM16 WAV; `announce_bytes` puts another length in the data chunk's header than is written."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    data_size = len(pcm) if announce_bytes is None else announce_bytes
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_size) + pcm
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body) - 4 + (data_size - len(pcm))) + body)
    return path


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_a_plain_wav_is_read_at_its_own_rate(tmp_path):
    x, sr = read_audio(riff_wav(tmp_path / "a.wav", tone(0.5, 16000), 16000))
    assert sr == 16000 and len(x) == 8000 and x.dtype == np.float32
    assert abs(float(np.abs(x).max()) - 0.3) < 1e-3


def test_stereo_is_mixed_to_mono(tmp_path):
    left = tone(0.2, 8000)
    inter = np.stack([left, -left], axis=1).reshape(-1)  # the channels cancel
    x, _ = read_audio(riff_wav(tmp_path / "s.wav", inter, 8000, channels=2))
    assert len(x) == len(left) and float(np.abs(x).max()) < 1e-4


@pytest.mark.parametrize("rate", [1, 4000, 384_000])
def test_sample_rates_outside_8_to_192_khz_are_refused(tmp_path, rate):
    path = riff_wav(tmp_path / "r.wav", np.zeros(100, np.float32), rate)
    with pytest.raises(InputError, match=f"sample rate {rate} Hz is outside 8000-192000 Hz"):
        read_audio(path)


def test_a_truncated_wav_is_read_with_a_warning_saying_how_much_is_missing(tmp_path, capsys):
    rate = 16000
    x = tone(0.25, rate)
    path = riff_wav(tmp_path / "cut.wav", x, rate, announce_bytes=rate * 2 * 4)  # header: 4 s
    got, sr = read_audio(path)
    assert sr == rate and len(got) == len(x)
    err = capsys.readouterr().err
    assert "truncated" in err and "announces 4.00 s" in err and "holds 0.25 s" in err


def test_a_complete_wav_gives_no_warning(tmp_path, capsys):
    read_audio(riff_wav(tmp_path / "ok.wav", tone(0.1, 22050), 22050))
    assert capsys.readouterr().err == ""


def test_files_longer_than_the_cap_are_refused_before_decoding(tmp_path):
    import soundfile as sf

    rate = 8000
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(int((MAX_SECONDS + 1) * rate), np.float32), rate, subtype="PCM_U8")
    with pytest.raises(InputError, match=f"is {MAX_SECONDS + 1:.0f} s long; the limit is {MAX_SECONDS:.0f} s per file"):
        read_audio(path)
    assert read_audio(path, max_seconds=MAX_SECONDS + 2)[1] == rate  # a caller may allow more


@pytest.mark.parametrize("content, message", [
    (b"", "cannot read .* as audio"),
    (b"RIFF\x00\x00\x00\x00WAVE", "cannot read .* as audio"),
    (b"Once upon a time", "cannot read .* as audio"),
    (bytes(range(256)) * 64, "cannot read .* as audio"),
])
def test_files_that_are_not_audio_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "x.wav"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as e:
        read_audio(path)
    assert "\n" not in str(e.value)


def test_missing_files_folders_and_empty_or_nan_audio(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(InputError, match="is a folder"):
        read_audio(tmp_path)
    with pytest.raises(InputError, match="holds no samples"):
        read_audio(riff_wav(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000))
    import soundfile as sf

    sf.write(tmp_path / "nan.wav", np.array([0.0, np.nan, 0.1], np.float32), 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN or infinite"):
        read_audio(tmp_path / "nan.wav")


def test_codec_loader_resamples_after_the_checks(tmp_path):
    from mio.talker.codec.data import load_audio

    x = load_audio(riff_wav(tmp_path / "a.wav", tone(0.5, 16000), 16000), 24000)
    assert len(x) == 12000
    with pytest.raises(InputError, match="sample rate 1 Hz"):
        load_audio(riff_wav(tmp_path / "b.wav", np.zeros(100, np.float32), 1), 24000)


def test_face_loader_refuses_the_same_rates_through_pyav(tmp_path):
    pytest.importorskip("av")
    from mio.audio import read_media_audio as read_any

    x, sr = read_any(riff_wav(tmp_path / "a.wav", tone(0.5, 16000), 16000))
    assert sr == 16000 and abs(len(x) - 8000) <= 1
    with pytest.raises(InputError, match="sample rate 4000 Hz is outside"):
        read_any(riff_wav(tmp_path / "b.wav", np.zeros(100, np.float32), 4000))
    (tmp_path / "c.wav").write_bytes(b"not audio at all")
    with pytest.raises(InputError, match="cannot read audio"):
        read_any(tmp_path / "c.wav")
