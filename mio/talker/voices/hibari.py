"""hibari-tts: the default embedded voice (24 kHz, ~7.9 MB ONNX model distilled from Kokoro-82M).

Only the bundled voice "heart" is used unless the user names another one that is already in
hibari's cache: other voices would be downloaded from a hub at run time, which Mio never does.

Emotion: speed goes to the model's duration input; pitch scales the predicted F0 curve before
hibari's own harmonic-plus-noise synthesis (hibari.dsp.synth), so a happier clause is a little
faster and higher, a sad one slower and lower.

Character voices (`synthesize_shaped`): the same predicted frames are reshaped before that
synthesis (F0 shift and intonation, envelope warp and tilt; shape.py), so one loaded model
gives several distinct speakers at the cost of one. Threads: onnxruntime sessions run
concurrently; hibari's G2P (Python, with caches) is guarded by a lock.
"""

from __future__ import annotations

import threading

import numpy as np

from mio.core.config import TalkerConfig
from mio.core.errors import BackendError, InputError
from mio.talker.text import ipa_to_arpabet
from mio.talker.voices._common import EmbeddedVoice, Prosody
from mio.talker.voices.shape import VoiceShape, shape_hibari_frames

DEFAULT_VOICE = "heart"


class HibariVoice(EmbeddedVoice):
    name = "hibari"

    def __init__(self, config: TalkerConfig | None = None, *, threads: int = 1, seed: int = 0) -> None:
        super().__init__(config)
        try:
            import hibari
            from hibari import dsp
            from hibari.voices import VOICES, voice_path
        except ImportError as e:
            raise BackendError(f"the hibari voice needs `pip install hibari-tts==0.2.1` ({e})") from e
        voice = self.config.voice or DEFAULT_VOICE
        if voice not in VOICES:
            raise BackendError(f"hibari has no voice {voice!r}; voices: {', '.join(VOICES)}")
        try:
            model = voice_path(voice, download_missing=False)  # never fetch from a hub at run time
        except FileNotFoundError as e:
            raise BackendError(
                f"hibari voice {voice!r} is not installed (only 'heart' ships in the wheel); copy its file to "
                f"{e.args[0]} or use talker.voice=heart"
            ) from None
        try:
            self._tts = hibari.Hibari(voice=voice, model=model, threads=threads)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises many types
            raise BackendError(f"cannot load the hibari model {model}: {e}") from e
        self._dsp = dsp
        self.engine_rate = int(hibari.SAMPLE_RATE)
        self.seed = seed
        self.voice = voice
        self._g2p_lock = threading.Lock()  # the G2P keeps Python caches; the ONNX session is thread-safe

    def pronounce(self, word: str) -> list[str]:
        """hibari's own G2P (misaki phonemes) mapped to ARPABET: numbers and names as hibari reads them."""
        try:
            with self._g2p_lock:
                ipa = self._tts.g2p(word) or ""
            phones = ipa_to_arpabet(ipa)
        except Exception:  # noqa: BLE001 - the G2P may refuse odd tokens; fall back to the lexicon
            phones = []
        return phones or super().pronounce(word)

    def _render(self, text: str, prosody: Prosody) -> tuple[np.ndarray, int]:
        return self._render_shaped(text, prosody, VoiceShape())

    def _render_shaped(self, text: str, prosody: Prosody, shape: VoiceShape) -> tuple[np.ndarray, int]:
        tts = self._tts
        rng = np.random.default_rng(self.seed)  # fixed noise: the same clause sounds the same
        with self._g2p_lock:
            chunks = [tts.ids(phonemes) for phonemes in tts.phonemize(text)]
        parts = []
        for ids in chunks:
            if len(ids) < 3:
                continue
            out = tts.sess.run(
                None, {"ids": np.asarray([ids], np.int64), "speed": np.asarray([prosody.speed], np.float32)}
            )
            frames = shape_hibari_frames(tuple(o[0] for o in out), shape, prosody.pitch)
            parts.append(self._dsp.synth(*frames, rng))
        if not parts:
            raise InputError(f"hibari found nothing to pronounce in {text[:60]!r}")
        return np.concatenate(parts), self.engine_rate
