"""The embedded voices speak real 24 kHz audio with word/phone timings (loads the real engines)."""

from __future__ import annotations

import numpy as np
import pytest

from mio.core.config import TalkerConfig
from mio.core.errors import BackendError, ConfigError, InputError
from mio.core.frames import Emotion
from mio.talker.text import ARPABET, word_tokens

TEXT = "Hello there, I am Mio. How are you today?"

pytestmark = pytest.mark.slow


def _voice(name: str, **config):
    if name == "hibari":
        from mio.talker.voices.hibari import HibariVoice as V
    elif name == "piper":
        from mio.talker.voices.piper import PiperVoice as V
    else:
        from mio.talker.voices.espeak import EspeakVoice as V
    return V(TalkerConfig(**config))


@pytest.fixture(scope="module", params=["hibari", "piper", "espeak"])
def voice(request):
    return _voice(request.param)


def check_timings(segments, duration: float) -> None:
    starts = [s.start for s in segments]
    assert starts == sorted(starts), "segments must be in time order"
    for s in segments:
        assert 0.0 <= s.start < s.end <= duration + 1e-6, s


def test_speech_is_real_24k_audio_with_timings(voice):
    speech = voice.synthesize(TEXT)
    x = speech.samples
    assert speech.sample_rate == 24000 == voice.sample_rate
    assert x.dtype == np.float32 and x.ndim == 1
    assert np.all(np.isfinite(x)) and np.abs(x).max() <= 1.0
    assert np.sqrt(np.mean(x**2)) > 0.01, "silent audio"
    # 8 words at a normal pace: ~2-5 s
    assert 1.5 < speech.duration < 6.0, speech.duration
    assert [w.label for w in speech.words] == word_tokens(TEXT)
    check_timings(speech.words, speech.duration)
    check_timings(speech.phones, speech.duration)
    assert len(speech.phones) >= 20 and {p.label for p in speech.phones} <= ARPABET
    # words sit on the loud part of the audio, not on the leading/trailing silence
    hop = 240
    rms = np.sqrt((x[: len(x) // hop * hop].reshape(-1, hop) ** 2).mean(axis=1))
    inside = np.zeros(len(rms), bool)
    for w in speech.words:
        inside[int(w.start * 100) : int(w.end * 100)] = True
    assert rms[inside].mean() > 3 * rms[~inside].mean() if (~inside).any() else True


def test_speed_and_emotion_change_the_pace(voice):
    base = voice.synthesize(TEXT).duration
    sad = voice.synthesize(TEXT, Emotion("sad", 1.0)).duration
    happy = voice.synthesize(TEXT, Emotion("happy", 1.0)).duration
    assert sad > base * 1.03
    assert happy < sad
    fast = type(voice)(TalkerConfig(speed=1.5, align=False)).synthesize(TEXT).duration
    assert fast < base * 0.85


def test_bad_text_is_refused(voice):
    for bad in ("", "   ", "?!"):
        with pytest.raises(InputError):
            voice.synthesize(bad)
    with pytest.raises(InputError, match="limit per clause"):
        voice.synthesize("word " * 400)
    with pytest.raises(InputError, match="intensity"):
        voice.synthesize(TEXT, Emotion("happy", float("nan")))


def test_unaligned_timings_are_estimated():
    speech = _voice("hibari", align=False).synthesize(TEXT)
    assert [w.label for w in speech.words] == word_tokens(TEXT)
    check_timings(speech.words, speech.duration)
    check_timings(speech.phones, speech.duration)


def test_hibari_is_deterministic_and_pitch_follows_emotion():
    v = _voice("hibari", align=False)
    a, b = v.synthesize(TEXT), v.synthesize(TEXT)
    np.testing.assert_array_equal(a.samples, b.samples)

    def f0(x: np.ndarray) -> float:  # median autocorrelation pitch of the loud 40 ms frames
        frames = x[: len(x) // 960 * 960].reshape(-1, 960)
        frames = frames[np.sqrt((frames**2).mean(1)) > 0.05]
        lags = []
        for fr in frames:
            ac = np.correlate(fr, fr, "full")[959:]
            lo, hi = 24000 // 400, 24000 // 80
            lags.append(lo + int(np.argmax(ac[lo:hi])))
        return 24000 / float(np.median(lags))

    neutral = f0(a.samples)
    surprised = f0(v.synthesize(TEXT, Emotion("surprised", 1.0)).samples)
    assert surprised > neutral * 1.04


def test_hibari_never_downloads_a_voice(tmp_path, monkeypatch):
    monkeypatch.setenv("HIBARI_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(BackendError, match="not installed"):
        _voice("hibari", voice="emma")
    with pytest.raises(BackendError, match="no voice"):
        _voice("hibari", voice="nobody")
    assert not any(tmp_path.iterdir())


def test_missing_engines_and_bad_config_are_clear(monkeypatch, tmp_path):
    import mio.talker.voices.espeak as espeak

    monkeypatch.setattr(espeak, "espeak_binary", lambda: None)
    with pytest.raises(BackendError, match="espeak-ng"):
        espeak.EspeakVoice(TalkerConfig())
    monkeypatch.undo()
    with pytest.raises(BackendError, match="no voice"):
        _voice("espeak", voice="xx-nolang")
    with pytest.raises(ConfigError):
        _voice("espeak", voice="--stdout")
    with pytest.raises(BackendError, match="not found"):
        _voice("piper", voice=str(tmp_path / "missing.onnx"))
    with pytest.raises(ConfigError, match="speed"):
        _voice("espeak", speed=0.0)


def test_registry_builds_every_voice():
    from mio.core.registry import create

    for name in ("hibari", "piper", "espeak"):
        v = create("talker", name, TalkerConfig(backend=name, align=False))
        assert v.synthesize("Hi.").sample_rate == 24000
