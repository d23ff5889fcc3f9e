"""Word and phone timings for synthesised speech: pocketsphinx forced alignment, with a fallback.

The TTS engines give audio but no timings; the Face Animator needs phones (visemes) and the
runtime needs words (what was heard before a barge-in). `align(samples, rate, text)` runs
pocketsphinx's forced aligner (CMU en-us acoustic model + CMUdict, both inside the `pocketsphinx`
wheel) on the audio at 16 kHz and returns ARPABET phones and the clause's words with times in
seconds. Words the dictionary lacks (names, numbers) are pronounced the way the voice reads them
(hibari's own G2P; espeak-ng's reading for Piper and espeak-ng). Cost: one Viterbi pass, about
0.02 s per second of audio on one core.

If alignment is impossible (pocketsphinx missing, no match, odd audio), `estimate_timings` spreads
the words over the voiced part of the audio in proportion to their phone counts, with pauses at
punctuation, and the phones evenly inside each word. It never raises for speakable text.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mio.audio import resample
from mio.core.frames import Segment
from mio.core.shared import Shared
from mio.talker.text import ARPABET, Lexicon, word_tokens

log = logging.getLogger(__name__)

ALIGN_RATE = 16000  # pocketsphinx's en-us model is trained on 16 kHz audio
FRAME_RATE = 100  # pocketsphinx frames per second
VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())


@dataclass(frozen=True)
class Timings:
    words: tuple[Segment, ...]
    phones: tuple[Segment, ...]  # ARPABET, no stress digits, silences left out
    method: str  # "pocketsphinx" | "estimate"


Pronouncer = Callable[[str], list[str]]  # word token -> ARPABET phones, as the voice says it


def _pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class Aligner(Shared):
    """pocketsphinx forced aligner; the decoder (acoustic model + dictionary) loads once per process.

    The text is aligned as a sequence of *phones*, each entered in the decoder's dictionary as a
    one-phone word (ph_aa, ph_b, ...), so a single Viterbi pass over the audio gives phone times
    directly, with optional silences between them; word times are the spans of their phones. This
    agrees with pocketsphinx's two-pass word-then-phone alignment to within a frame or two (10-20 ms)
    at about a third of its cost.
    """

    def __init__(self) -> None:
        from pocketsphinx import Decoder, get_model_path

        self._decoder = Decoder(
            hmm=get_model_path("en-us/en-us"),
            dict=get_model_path("en-us/cmudict-en-us.dict"),
            lm=None,  # no language model: the text is given
            samprate=ALIGN_RATE,
            bestpath=False,
            topn=2,  # Gaussians scored per mixture: 2 instead of 4 is ~25 % faster, same alignments here
            beam=1e-80,  # wide beams: formant (espeak-ng) speech fits the acoustic model badly and
            pbeam=1e-80,  # falls off the default beams; the search space is one phone sequence, so
            wbeam=1e-60,  # widening costs little
            loglevel="FATAL",
        )
        for phone in sorted(ARPABET - {"SIL"}):
            self._decoder.add_word(_phone_word(phone), phone, True)
        self._lexicon = Lexicon.shared()
        self._lock = threading.Lock()

    def pronunciations(self, tokens: list[str], pronounce: Pronouncer | None) -> list[list[str]]:
        """ARPABET phones per token: CMUdict when it knows the word, else the voice's own reading."""
        out = []
        for token in tokens:
            if token in self._lexicon or pronounce is None:
                phones = self._lexicon.phones(token)
            else:
                phones = pronounce(token)
            out.append([p for p in phones if p in ARPABET and p != "SIL"] or ["AH"])
        return out

    def align(
        self, samples: np.ndarray, sample_rate: int, text: str, pronounce: Pronouncer | None = None
    ) -> Timings:
        """Forced alignment of `text` to `samples`. Raises RuntimeError if pocketsphinx finds no path.

        `pronounce` gives the phones of words CMUdict lacks (numbers, names) as the voice reads
        them; by default espeak-ng's reading (what Piper and espeak-ng say)."""
        tokens = word_tokens(text)
        if not tokens:
            raise RuntimeError("no words to align")
        prons = self.pronunciations(tokens, pronounce)
        pcm = _pcm16(resample(np.asarray(samples, np.float32), sample_rate, ALIGN_RATE))
        with self._lock:
            d = self._decoder
            d.set_align_text(" ".join(_phone_word(p) for pron in prons for p in pron))
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            if d.hyp() is None:
                raise RuntimeError("pocketsphinx could not fit the text to the audio")
            segments = [(s.word, s.start_frame, s.end_frame) for s in d.seg()]
        phone_times = [(w[3:].upper(), a, b) for w, a, b in segments if w.startswith("ph_")]
        n_expected = sum(len(p) for p in prons)
        if len(phone_times) != n_expected:
            raise RuntimeError(f"pocketsphinx aligned {len(phone_times)} of {n_expected} phones")
        words: list[Segment] = []
        phones: list[Segment] = []
        k = 0
        for token, pron in zip(tokens, prons, strict=True):
            group = phone_times[k : k + len(pron)]
            k += len(pron)
            for label, a, b in group:
                phones.append(Segment(label, a / FRAME_RATE, (b + 1) / FRAME_RATE))
            words.append(Segment(token, group[0][1] / FRAME_RATE, (group[-1][2] + 1) / FRAME_RATE))
        return Timings(tuple(words), tuple(phones), "pocketsphinx")


def _phone_word(phone: str) -> str:
    return f"ph_{phone.lower()}"


# ---------------------------------------------------------------- fallback


def voiced_region(samples: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """(start, end) seconds of the part of the audio louder than 3 % of its peak RMS (10 ms frames)."""
    hop = max(1, sample_rate // 100)
    n = len(samples) // hop
    if n == 0:
        return 0.0, len(samples) / max(sample_rate, 1)
    rms = np.sqrt((samples[: n * hop].astype(np.float32).reshape(n, hop) ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > 0.03 * max(float(rms.max()), 1e-6))
    if len(loud) == 0:
        return 0.0, len(samples) / sample_rate
    return loud[0] * hop / sample_rate, min((loud[-1] + 1) * hop / sample_rate, len(samples) / sample_rate)


def estimate_timings(
    samples: np.ndarray, sample_rate: int, text: str, pronounce: Pronouncer | None = None
) -> Timings:
    """Words spread over the voiced audio by phone count (pauses at punctuation), phones even inside words."""
    tokens = word_tokens(text)
    if not tokens or len(samples) == 0:
        return Timings((), (), "estimate")
    lexicon = Lexicon.shared()
    prons = []
    for token in tokens:
        phones = lexicon.phones(token) if token in lexicon or pronounce is None else pronounce(token)
        prons.append([p for p in phones if p in ARPABET and p != "SIL"] or ["AH"])
    # pause after each word, in "phone units": sentence end 3, clause punctuation 2, none 0
    pauses = []
    for m in re.finditer(r"[^\W_]+(?:['’][^\W_]+)*(?:[.,]\d+)*([^\w\s]*)", text):
        tail = m.group(1)
        pauses.append(3.0 if re.search(r"[.!?…]", tail) else 2.0 if re.search(r"[,;:—–]", tail) else 0.0)
    pauses = (pauses + [0.0] * len(tokens))[: len(tokens)]
    pauses[-1] = 0.0
    units = [sum(1.4 if p in VOWELS else 1.0 for p in pr) for pr in prons]
    start, end = voiced_region(np.asarray(samples, np.float32), sample_rate)
    per_unit = (end - start) / max(sum(units) + sum(pauses), 1e-6)
    words: list[Segment] = []
    phones: list[Segment] = []
    t = start
    for token, pron, u, pause in zip(tokens, prons, units, pauses, strict=True):
        w_end = t + u * per_unit
        words.append(Segment(token, t, w_end))
        pt = t
        for p in pron:
            pd = (1.4 if p in VOWELS else 1.0) * per_unit
            phones.append(Segment(p, pt, pt + pd))
            pt += pd
        t = w_end + pause * per_unit
    return Timings(tuple(words), tuple(phones), "estimate")


def align(samples: np.ndarray, sample_rate: int, text: str, pronounce: Pronouncer | None = None) -> Timings:
    """Forced alignment when pocketsphinx can do it, otherwise `estimate_timings`. Never raises for
    speakable text; the result's `method` says which one produced the times."""
    try:
        timings = Aligner.shared().align(samples, sample_rate, text, pronounce)
        if _plausible(timings, len(samples) / sample_rate):
            return timings
        log.debug("pocketsphinx alignment implausible; estimating timings")
    except Exception as e:  # noqa: BLE001 - any aligner failure falls back to the estimate
        log.debug("pocketsphinx alignment failed (%s); estimating timings", e)
    return estimate_timings(samples, sample_rate, text, pronounce)


def _plausible(t: Timings, duration: float) -> bool:
    if not t.words:
        return False
    times = [s.start for s in t.words] + [s.end for s in t.words]
    if min(times) < -1e-6 or max(times) > duration + 0.05:
        return False
    return all(a.start <= b.start for a, b in zip(t.words, t.words[1:], strict=False))
