"""Pacing of the avatar's speech: clause audio trimmed to the sound it holds.

hibari renders every clause with ~0.26-0.34 s of silence before its first word and ~0.41-0.47 s
after its last (piper ~0.05 / 0.1-0.2 s). Played as they come, each reply started a third of a
second after its audio "arrived", and clauses were 0.75 s apart. `trim_silence` keeps a short
attack before the first sound and a pause after the last that fits the punctuation (a comma is
a short breath, a full stop a longer one), and moves the word and phone timings with the cut.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mio.core.frames import Segment

LEVEL_FRAME_S = 0.01  # 10 ms frames to find where the sound starts and stops
SILENCE_DB = -40.0  # below the clause's loudest frame by this much is silence
ABS_FLOOR = 1e-4  # ... and below this RMS always (an all-quiet clause is left alone)
KEEP_LEAD_S = 0.02  # attack kept before the first sound (a hard cut clicks)
PAUSE_AFTER_S = {".": 0.3, "!": 0.3, "?": 0.3, ",": 0.12, ";": 0.18, ":": 0.18}  # after the clause
DEFAULT_PAUSE_S = 0.12


@dataclass(frozen=True)
class Trimmed:
    samples: np.ndarray
    words: tuple[Segment, ...]
    phones: tuple[Segment, ...]
    lead_cut_s: float  # seconds removed from the start
    tail_cut_s: float  # seconds removed from the end


def sound_span(samples: np.ndarray, sample_rate: int) -> tuple[float, float] | None:
    """(start, end) in seconds of the part of `samples` that is not silence, None if all is."""
    hop = max(1, int(LEVEL_FRAME_S * sample_rate))
    n = len(samples) // hop
    if n == 0:
        return None
    frames = np.asarray(samples[: n * hop], np.float64).reshape(n, hop)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    loud = rms >= max(float(rms.max()) * 10 ** (SILENCE_DB / 20), ABS_FLOOR)
    if not loud.any():
        return None
    idx = np.flatnonzero(loud)
    return idx[0] * hop / sample_rate, min(len(samples), (idx[-1] + 1) * hop) / sample_rate


def pause_after(text: str) -> float:
    end = text.rstrip().rstrip('"\')]')[-1:]
    return PAUSE_AFTER_S.get(end, DEFAULT_PAUSE_S)


def _shift(segs: tuple[Segment, ...], by: float, limit: float) -> tuple[Segment, ...]:
    out = []
    for s in segs:
        start, end = max(0.0, s.start - by), min(limit, max(0.0, s.end - by))
        if end > start or s.end - s.start <= 0:
            out.append(replace(s, start=start, end=max(start, end)))
    return tuple(out)


def trim_silence(samples: np.ndarray, sample_rate: int, text: str, words: tuple[Segment, ...] = (),
                 phones: tuple[Segment, ...] = (), keep_lead: float = KEEP_LEAD_S,
                 keep_tail: float | None = None) -> Trimmed:
    """Cut a clause's audio to `keep_lead` before its first sound and `keep_tail` (default: the
    pause its punctuation asks for) after its last; timings are moved with the cut."""
    span = sound_span(samples, sample_rate)
    if span is None:
        return Trimmed(samples, words, phones, 0.0, 0.0)
    tail = pause_after(text) if keep_tail is None else keep_tail
    start = max(0.0, span[0] - keep_lead)
    end = min(len(samples) / sample_rate, span[1] + tail)
    a, b = int(round(start * sample_rate)), int(round(end * sample_rate))
    out = np.ascontiguousarray(samples[a:b])
    limit = len(out) / sample_rate
    return Trimmed(out, _shift(words, a / sample_rate, limit), _shift(phones, a / sample_rate, limit),
                   a / sample_rate, (len(samples) - b) / sample_rate)


def leading_silence(samples: np.ndarray, sample_rate: int) -> float:
    """Seconds before the first sound (what a listener waits after the audio starts playing)."""
    span = sound_span(samples, sample_rate)
    return 0.0 if span is None else span[0]
