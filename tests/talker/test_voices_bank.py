"""Voice specs, the voice bank and the voice shapes, without loading a speech model (fast).

The engines here are small stand-ins built on EmbeddedVoice (a synthetic vowel with a known F0
and formant), so what is checked is the bank's and the shapes' own behaviour: parsing a card's
`voice:` mapping, one load per engine, threads, and that a shape moves F0 and formants where it
says while keeping length and word timings. tests/talker/test_voices_cast.py speaks the real cast.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mio.core import registry
from mio.core.config import TalkerConfig
from mio.core.errors import ConfigError
from mio.core.frames import Emotion, Segment
from mio.talker.base import Speech, Voice
from mio.talker.voices import bank as bank_mod
from mio.talker.voices._common import EmbeddedVoice, Prosody
from mio.talker.voices.bank import VoiceBank, VoiceSpec, available_voices, parse_voice_spec
from mio.talker.voices.shape import (
    VoiceShape,
    reshape_f0,
    shape_hibari_frames,
    tilt_log_gain,
    warp_frequency,
    world_shift,
)

REPO = Path(__file__).resolve().parents[2]
WHERE = "nemo.yaml voice"
RATE = 16000
VOWEL_F0 = 200.0
VOWEL_FORMANT = 800.0
WORD_SECONDS = 0.25
GAP_SECONDS = 0.08


def vowel(seconds: float, f0: float = VOWEL_F0, formant: float = VOWEL_FORMANT, rate: int = RATE) -> np.ndarray:
    """A sustained vowel: a glottal pulse train at `f0` through one resonance at `formant` Hz."""
    from scipy.signal import lfilter

    n = int(seconds * rate)
    pulses = np.zeros(n)
    pulses[:: int(rate / f0)] = 1.0
    r = np.exp(-np.pi * 120.0 / rate)  # 120 Hz bandwidth
    theta = 2 * np.pi * formant / rate
    y = lfilter([1.0], [1.0, -2 * r * np.cos(theta), r * r], pulses)
    y = lfilter([1.0], [1.0, -0.9], y)  # the glottal roll-off
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


def autocorr_f0(x: np.ndarray, rate: int) -> float:
    """Median autocorrelation pitch of 40 ms frames of a steady voiced signal."""
    n = int(0.04 * rate)
    frames = x[: len(x) // n * n].reshape(-1, n)
    frames = frames[np.sqrt((frames**2).mean(1)) > 0.3 * np.sqrt((x**2).mean())]
    lags = []
    for fr in frames:
        ac = np.correlate(fr, fr, "full")[n - 1 :]
        lo, hi = rate // 400, rate // 50
        lags.append(lo + int(np.argmax(ac[lo:hi])))
    return rate / float(np.median(lags))


def lpc_formant(x: np.ndarray, rate: int) -> float:
    """The sharpest resonance between 300 and 2500 Hz: the LPC pole (order 10, at 8 kHz) of
    narrowest bandwidth. An estimate independent of WORLD, which the shift itself uses."""
    import librosa

    from mio.audio import resample

    y = resample(x, rate, 8000).astype(np.float64)
    roots = np.roots(librosa.lpc(y * np.hanning(len(y)), order=10))
    roots = roots[np.imag(roots) > 0]
    freq = np.angle(roots) * 8000 / (2 * np.pi)
    bandwidth = -np.log(np.abs(roots)) * 8000 / np.pi
    band = (freq > 300) & (freq < 2500)
    return float(freq[band][np.argmin(bandwidth[band])])


class VowelVoice(EmbeddedVoice):
    """A stand-in engine: each word of the clause is a vowel, words separated by short gaps.
    Speed is its own duration control (as hibari's and piper's length inputs are); pitch scales F0."""

    name = "vowel"
    init_seconds = 0.0
    created = 0
    _count_lock = threading.Lock()

    def __init__(self, config: TalkerConfig | None = None) -> None:
        super().__init__(config)
        time.sleep(self.init_seconds)  # a model load takes a while: races show up here
        with VowelVoice._count_lock:
            VowelVoice.created += 1

    def _render(self, text: str, prosody: Prosody) -> tuple[np.ndarray, int]:
        gap = np.zeros(int(GAP_SECONDS / prosody.speed * RATE), np.float32)
        word = vowel(WORD_SECONDS / prosody.speed, VOWEL_F0 * prosody.pitch)
        parts = [gap]
        for _ in text.split():
            parts += [word, gap]
        return np.concatenate(parts), RATE


class OwnSynthVoice(Voice):
    """A stand-in for an engine with its own synthesize (as Kodama): the bank reshapes its output."""

    name = "own"

    def __init__(self, config: TalkerConfig | None = None) -> None:
        self.sample_rate = (config or TalkerConfig()).sample_rate

    def synthesize(self, text: str, emotion: Emotion | None = None) -> Speech:
        x = vowel(1.0, rate=self.sample_rate)
        words = (Segment("hello", 0.1, 0.5), Segment("there", 0.55, 0.95))
        return Speech(samples=x, sample_rate=self.sample_rate, words=words, phones=())


@pytest.fixture
def fake_engines(monkeypatch):
    """registry 'talker' gains `vowel` and `own`; VowelVoice counts its loads."""
    monkeypatch.setitem(registry._REGISTRY["talker"], "vowel", f"{__name__}:VowelVoice")
    monkeypatch.setitem(registry._REGISTRY["talker"], "own", f"{__name__}:OwnSynthVoice")
    monkeypatch.setattr(VowelVoice, "created", 0)
    return TalkerConfig(backend="vowel", align=False)


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "mapping, names",
    [
        ({"backend": "festival"}, ["backend", "'festival'", "hibari", "piper", "espeak"]),
        ({"voice": "heart"}, ["missing 'backend'", "hibari"]),
        ({"backend": "hibari", "colour": "blue"}, ["unknown key 'colour'", "pitch", "formant"]),
        ({"backend": "hibari", "voice": "fenrir"}, ["hibari voice 'fenrir'", "not installed", "heart"]),
        ({"backend": "hibari", "voice": "nobody"}, ["hibari voice 'nobody'", "heart"]),
        ({"backend": "hibari", "pitch": -30}, ["pitch -30", "[-12, 12]", "semitones"]),
        ({"backend": "hibari", "formant": 3}, ["formant 3", "[0.7, 1.4]"]),
        ({"backend": "hibari", "formant": "deep"}, ["formant must be a number", "'deep'"]),
        ({"backend": "hibari", "speed": True}, ["speed must be a number", "True"]),
        ({"backend": "hibari", "speed": float("nan")}, ["speed must be a number"]),
        ({"backend": "hibari", "tilt": 40}, ["tilt 40", "dB/octave"]),
        ({"backend": "hibari", "intonation": -1}, ["intonation -1", "[0, 2]"]),
        ({"backend": "hibari", "voice": " "}, ["voice must be a voice name or a path"]),
        ({"backend": "piper", "voice": "bob"}, ["piper voice 'bob'", "joe", ".onnx"]),
        ({"backend": "piper", "voice": "/nowhere/x.onnx"}, ["/nowhere/x.onnx", "not found"]),
        ({"backend": "espeak", "voice": "xx-nolang"}, ["no language 'xx-nolang'", "en-us"]),
        ({"backend": "espeak", "voice": "en-us+nobody"}, ["no variant 'nobody'", "m3"]),
        ({"backend": "kodama", "voice": "/nowhere/me.txt"}, ["kodama voice", "reference recording"]),
        ("piper", ["must be a mapping", "'piper'"]),
    ],
)
def test_a_bad_voice_is_one_line_naming_the_field_and_the_choices(mapping, names):
    with pytest.raises(ConfigError) as err:
        parse_voice_spec(mapping, WHERE)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(WHERE + ":"), msg
    for name in names:
        assert name in msg, (name, msg)


def test_a_good_voice_parses_to_its_spec():
    assert parse_voice_spec(None, WHERE) is None
    assert parse_voice_spec({}, WHERE) is None  # no voice: the talker default
    spec = parse_voice_spec({"backend": "hibari", "voice": "heart", "pitch": -9, "formant": 0.8, "tilt": 3,
                             "intonation": 1.25, "speed": 1.1}, WHERE)
    assert spec == VoiceSpec("hibari", "heart", pitch=-9.0, formant=0.8, speed=1.1, tilt=3.0, intonation=1.25)
    assert spec.shape == VoiceShape(pitch=-9.0, formant=0.8, tilt=3.0, intonation=1.25, speed=1.1)
    assert spec.describe() == "hibari:heart pitch-9 formant0.8 tilt+3 intonation1.25 speed1.1"
    # yamlines' line bookkeeping keys are not fields
    assert parse_voice_spec({"backend": "espeak", "voice": "en-us+m3", "__line__": 4}, WHERE).voice == "en-us+m3"
    assert parse_voice_spec({"backend": "piper", "voice": "joe"}, WHERE).describe() == "piper:joe"


def test_a_local_piper_voice_file_is_accepted(tmp_path):
    model = tmp_path / "en_GB-someone.onnx"
    model.write_bytes(b"")
    with pytest.raises(ConfigError, match="json"):
        parse_voice_spec({"backend": "piper", "voice": str(model)}, WHERE)
    Path(f"{model}.json").write_text("{}")
    assert parse_voice_spec({"backend": "piper", "voice": str(model)}, WHERE).voice == str(model)


def test_every_card_parses_without_loading_a_model(monkeypatch):
    """`mio story validate` parses voices: no engine may be created, no ONNX session opened."""
    import onnxruntime

    from mio.bench.voices import character_specs

    def refuse(*_a, **_k):
        raise AssertionError("parsing a voice spec loaded a model")

    monkeypatch.setattr(registry, "create", refuse)
    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)
    specs = character_specs()
    assert {"mio", "nemo", "aronnax", "conseil", "ned"} <= set(specs)
    assert specs["mio"][0] == VoiceSpec("hibari", "heart")  # Mio keeps heart, unshaped
    men = [specs[c][0] for c in ("nemo", "aronnax", "conseil", "ned")]
    assert len(set(men)) == 4, "two men share a voice"
    for spec in men:  # hibari's only voice is a woman's: a man on it must be shaped down
        assert spec.backend != "hibari" or (spec.pitch <= -4 and spec.formant < 0.9), spec
    cards = [c for c in (REPO / "stories").rglob("*.yaml") if "\nvoice:" in c.read_text()]
    assert len(cards) >= 5
    for card in cards:  # each card says, in the comment just above `voice:`, which voice and why
        lines = card.read_text().splitlines()
        i = next(n for n, line in enumerate(lines) if line.startswith("voice:"))
        comment = []
        while i > 0 and lines[i - 1].startswith("#"):
            i -= 1
            comment.append(lines[i])
        assert comment and comment[-1].startswith("# Voice:"), card


def test_available_voices_lists_the_installed_ones():
    voices = available_voices()
    assert set(voices) == set(registry.names("talker"))
    assert "heart" in voices["hibari"]
    assert "fenrir" not in voices["hibari"]  # in hibari's table, but it would be downloaded
    assert "en-us" in voices["espeak"] and "+m3" in voices["espeak"]
    from mio.talker.tts.model import KodamaTTS  # the kodama check looks where the backend loads from

    EMBEDDED = KodamaTTS.embedded

    assert bank_mod.KODAMA_EMBEDDED.resolve() == EMBEDDED.resolve()


# ----------------------------------------------------------------------------- the bank


def test_the_bank_loads_an_engine_once_for_every_spec(fake_engines):
    bank = VoiceBank(fake_engines)
    deep = bank.get(VoiceSpec("vowel", pitch=-5, formant=0.85))
    fast = bank.get(VoiceSpec("vowel", speed=1.3))
    assert bank.get(None) is bank.get(VoiceSpec("vowel"))  # None = the talker config's voice
    assert bank.get(VoiceSpec("vowel", pitch=-5, formant=0.85)) is deep  # one view per spec
    assert deep.engine is fast.engine
    assert VowelVoice.created == 1 and bank.loads == {("vowel", ""): 1}
    assert deep.sample_rate == fake_engines.sample_rate == 24000
    assert deep.name == "vowel:default pitch-5 formant0.85"
    assert bank_mod.shared_bank(fake_engines) is bank_mod.shared_bank(fake_engines)


def test_two_threads_asking_at_once_load_the_engine_once(fake_engines, monkeypatch):
    monkeypatch.setattr(VowelVoice, "init_seconds", 0.3)
    bank = VoiceBank(fake_engines)
    specs = [VoiceSpec("vowel", pitch=-p) for p in range(4)]
    got: dict[int, Voice] = {}
    start = threading.Barrier(len(specs))

    def ask(i: int) -> None:
        start.wait()
        got[i] = bank.get(specs[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(specs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert VowelVoice.created == 1
    assert len({id(v.engine) for v in got.values()}) == 1


def test_two_threads_speaking_at_once_get_what_one_thread_gets(fake_engines):
    bank = VoiceBank(fake_engines)
    voices = [bank.get(VoiceSpec("vowel", pitch=-7, formant=0.8)), bank.get(VoiceSpec("vowel", speed=1.2))]
    texts = ["one two three", "four five"]
    alone = [v.synthesize(t).samples for v, t in zip(voices, texts, strict=True)]
    together: dict[int, list[np.ndarray]] = {0: [], 1: []}
    errors: list[BaseException] = []

    def speak(i: int) -> None:
        try:
            for _ in range(3):
                together[i].append(voices[i].synthesize(texts[i]).samples)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=speak, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in (0, 1):
        for x in together[i]:
            np.testing.assert_allclose(x, alone[i], atol=1e-6)


def test_a_shaped_voice_moves_f0_and_formants_and_keeps_the_timing(fake_engines):
    bank = VoiceBank(fake_engines)
    text = "one two three four"
    plain = bank.get(None).synthesize(text)
    deep = bank.get(VoiceSpec("vowel", pitch=-12, formant=0.8)).synthesize(text)
    # an octave down; formant 800 Hz x 0.8 = 640 Hz
    assert autocorr_f0(deep.samples, 24000) == pytest.approx(VOWEL_F0 / 2, rel=0.06)
    assert autocorr_f0(plain.samples, 24000) == pytest.approx(VOWEL_F0, rel=0.03)
    assert lpc_formant(plain.samples, 24000) == pytest.approx(VOWEL_FORMANT, rel=0.02)
    assert lpc_formant(deep.samples, 24000) == pytest.approx(VOWEL_FORMANT * 0.8, rel=0.05)
    # same length to the sample, the same words at the same times
    assert len(deep.samples) == len(plain.samples)
    assert [w.label for w in deep.words] == [w.label for w in plain.words] == text.split()
    for a, b in zip(deep.words, plain.words, strict=True):  # within 30 ms (under a 25 fps frame)
        assert abs(a.start - b.start) < 0.03 and abs(a.end - b.end) < 0.03, (a, b)
    # and the sound stays where the engine put it: loud in each word, quiet in the gaps between
    rms = [[], []]
    for k in range(len(text.split())):
        start = GAP_SECONDS + k * (WORD_SECONDS + GAP_SECONDS)
        for inside, (t0, t1) in ((1, (start + 0.02, start + WORD_SECONDS - 0.02)),
                                 (0, (start + WORD_SECONDS + 0.03, start + WORD_SECONDS + GAP_SECONDS - 0.02))):
            seg = deep.samples[int(t0 * 24000) : int(t1 * 24000)]
            rms[inside].append(float(np.sqrt(np.mean(seg**2))))
    assert max(rms[0]) < 0.1 * min(rms[1]), rms
    assert np.max(np.abs(deep.samples)) <= 1.0
    # speed is the engine's own duration control: 1.25x faster is 1/1.25 as long
    quick = bank.get(VoiceSpec("vowel", pitch=-12, formant=0.8, speed=1.25)).synthesize(text)
    assert quick.duration == pytest.approx(plain.duration / 1.25, rel=0.02)
    assert quick.words[-1].end <= quick.duration + 1e-6


def test_an_engine_with_its_own_synthesis_is_reshaped_with_its_timings(fake_engines):
    bank = VoiceBank(fake_engines)
    plain = bank.get(VoiceSpec("own")).synthesize("hello there")
    slow = bank.get(VoiceSpec("own", pitch=-12, speed=0.8)).synthesize("hello there")
    assert bank.loads == {("own", ""): 1}
    assert len(slow.samples) == round(len(plain.samples) / 0.8)
    for a, b in zip(slow.words, plain.words, strict=True):  # every time scales by exactly 1/speed
        assert a.start == pytest.approx(b.start / 0.8) and a.end == pytest.approx(b.end / 0.8)
    assert autocorr_f0(slow.samples, 24000) == pytest.approx(VOWEL_F0 / 2, rel=0.06)


# ----------------------------------------------------------------------------- the shapes


def test_warp_moves_an_envelope_peak_by_the_formant_factor():
    env = np.exp(-0.5 * ((np.arange(601) - 100) / 6.0) ** 2)[:, None].repeat(3, axis=1)  # [bins, frames]
    assert warp_frequency(env, 1.0, axis=0) is env
    assert int(np.argmax(warp_frequency(env, 0.8, axis=0)[:, 0])) == 80
    assert int(np.argmax(warp_frequency(env, 1.2, axis=0)[:, 0])) == 120
    assert warp_frequency(env, 0.8, axis=0).shape == env.shape


def test_tilt_is_flat_below_the_knee_and_linear_in_octaves_above():
    g = tilt_log_gain(601, 20.0, 6.0)
    db = 20 * g / np.log(10)
    assert np.all(db[:26] == 0)  # up to 500 Hz
    assert db[50] == pytest.approx(6.0, abs=1e-4)  # 1 kHz: one octave
    assert db[200] == pytest.approx(18.0, abs=1e-4)  # 4 kHz: three octaves


def test_reshape_f0_shifts_voiced_frames_and_scales_the_excursions():
    f0 = np.array([0, 0, 100, 150, 200, 0, 120, 135], np.float32)  # odd count: the median is a frame
    down = reshape_f0(f0, 0.5, 1.0, 40.0)
    np.testing.assert_array_equal(down[f0 == 0], 0)  # unvoiced stays unvoiced
    np.testing.assert_allclose(down[f0 > 0], f0[f0 > 0] * 0.5, rtol=1e-6)
    flat = reshape_f0(f0, 1.0, 0.5, 40.0)
    voiced = f0 > 0
    assert np.median(flat[voiced]) == pytest.approx(np.median(f0[voiced]), rel=1e-5)
    assert np.ptp(np.log(flat[voiced])) == pytest.approx(0.5 * np.ptp(np.log(f0[voiced])), rel=1e-5)
    low = reshape_f0(np.array([45.0, 50.0], np.float32), 0.5, 1.0, 40.0)
    assert np.all(low > 40.0)  # a voiced onset is never pushed under the voicing threshold


def test_hibari_frames_keep_their_count_and_phases():
    rng = np.random.default_rng(0)
    lh, th, ln, lr, phi = (rng.normal(size=(601, 37)).astype(np.float32) for _ in range(5))
    f0 = np.abs(rng.normal(200, 20, size=37)).astype(np.float32)
    out = shape_hibari_frames((lh, th, ln, lr, phi, f0), VoiceShape(pitch=-12, formant=0.8, tilt=3, intonation=1.2))
    assert [a.shape for a in out] == [a.shape for a in (lh, th, ln, lr, phi, f0)]
    assert out[1] is th and out[4] is phi
    assert np.median(out[5]) == pytest.approx(np.median(f0) / 2, rel=1e-4)
    untouched = shape_hibari_frames((lh, th, ln, lr, phi, f0), VoiceShape())
    for a, b in zip(untouched, (lh, th, ln, lr, phi, f0), strict=True):
        np.testing.assert_array_equal(a, b)


def test_world_shift_keeps_the_length_and_lands_on_the_target_pitch():
    x = vowel(0.8, rate=22050)
    for semitones in (-5.0, -10.0):
        y = world_shift(x, 22050, VoiceShape(pitch=semitones))
        assert len(y) == len(x) and np.all(np.isfinite(y))
        assert autocorr_f0(y, 22050) == pytest.approx(VOWEL_F0 * 2 ** (semitones / 12), rel=0.05)
    assert len(world_shift(x, 22050, VoiceShape(), speed=2.0)) == round(len(x) / 2)
