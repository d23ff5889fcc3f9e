"""The energy VAD that cuts the microphone stream into utterances."""

import numpy as np

from mio.talker.vad import EnergyVAD, VADConfig

SR = 16000


def tone(seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def hiss(seconds: float, level: float = 0.002, seed: int = 0) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def run(vad: EnergyVAD, audio: np.ndarray, chunk: int = 1600):
    events = []
    for i in range(0, len(audio), chunk):
        events += vad.push(audio[i:i + chunk])
    return events


def test_one_utterance_between_silences():
    events = run(EnergyVAD(), np.concatenate([hiss(1.0), tone(1.0) + hiss(1.0, seed=1)[:SR], hiss(1.5, seed=2)]))
    kinds = [e.kind for e in events if e.kind != "audio"]
    assert kinds == ["start", "end"]
    audio = np.concatenate([e.samples for e in events if e.kind == "audio"])
    # the utterance, its pre-roll and the hangover; not the silence around it
    assert 1.2 <= len(audio) / SR <= 2.2


def test_noise_and_clicks_are_not_speech():
    click = np.zeros(SR, np.float32)
    click[8000:8100] = 0.9  # ~6 ms: shorter than the onset
    assert run(EnergyVAD(), np.concatenate([hiss(2.0), click, hiss(2.0, level=0.004, seed=3)])) == []


def test_long_speech_is_cut_into_bounded_turns():
    vad = EnergyVAD(VADConfig(max_utterance_s=2.0))
    kinds = [e.kind for e in run(vad, tone(5.0)) if e.kind != "audio"]
    assert kinds.count("end") == 2 and kinds[0] == "start"


def test_chunking_does_not_change_the_result():
    audio = np.concatenate([hiss(0.5), tone(0.8), hiss(1.0, seed=4), tone(0.6), hiss(1.0, seed=5)])
    a = run(EnergyVAD(), audio, chunk=160)
    b = run(EnergyVAD(), audio, chunk=48000)
    assert [e.kind for e in a if e.kind != "audio"] == [e.kind for e in b if e.kind != "audio"] == \
        ["start", "end", "start", "end"]
    cat = lambda ev: np.concatenate([e.samples for e in ev if e.kind == "audio"])  # noqa: E731
    assert np.array_equal(cat(a), cat(b))
