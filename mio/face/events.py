"""Moments of the agent's speech that move the face: gaze aversion as a clause starts, nods and brow
flashes on stressed words (loud content words, else loudness peaks), blinks at sentence ends."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from mio.core.frames import AudioChunk
from mio.face.expression import FUNCTION_WORDS, HOP, FaceTuning, gaussian_smooth


@dataclass(order=True)
class Event:
    t: float
    kind: str = field(compare=False)  # "nod" | "blink" | "smile" | "brow" | "avert"
    amp: float = field(compare=False, default=1.0)
    dur: float = field(compare=False, default=0.4)
    yaw: float = field(compare=False, default=0.0)
    pitch: float = field(compare=False, default=0.0)
    agent: bool = field(compare=False, default=True)  # tied to the agent's speech (dropped on interrupt)


def speech_events(chunk: AudioChunk, words: list, env: np.ndarray, t0: float, dur: float,
                  rng: np.random.Generator, tu: FaceTuning) -> list[Event]:
    """Nods and brow flashes on stressed words, blinks at sentence ends, gaze aversion at the start of
    the clause `chunk` (at t0, `dur` s, loudness envelope `env`, word timings `words`), in the order
    they are drawn from `rng`."""
    events: list[Event] = []
    if rng.random() < 0.55:  # speakers often look away as they start a clause
        side = 1.0 if rng.random() < 0.5 else -1.0
        events.append(
            Event(
                t0 + 0.05,
                "avert",
                dur=float(rng.uniform(0.5, 1.2)),
                yaw=side * float(rng.uniform(0.1, 0.2)),
                pitch=-float(rng.uniform(0.02, 0.1)),
            )
        )
    # stressed moments: content words that are loud, else envelope peaks
    candidates: list[tuple[float, float]] = []  # (time, loudness)
    if words:
        for w in words:
            label = w.label.strip(".,!?;:'\"").lower()
            if len(label) < 3 or label in FUNCTION_WORDS:
                continue
            a, b = int(w.start / HOP), max(int(w.end / HOP), int(w.start / HOP) + 1)
            loud = float(env[a:b].mean()) if a < len(env) else 0.0
            candidates.append((t0 + w.start, loud))
    else:
        slow = gaussian_smooth(env, 10.0)
        peaks = (
            np.flatnonzero((slow[1:-1] > slow[:-2]) & (slow[1:-1] >= slow[2:]) & (slow[1:-1] > 0.5)) + 1
        )
        candidates = [(t0 + p * HOP - 0.1, float(slow[p])) for p in peaks]
    if candidates:
        ref = float(np.median([c[1] for c in candidates]))
        last = -math.inf
        for t, loud in candidates:
            if loud >= 0.9 * ref and t - last > 0.9 and rng.random() < 0.75:
                events.append(
                    Event(
                        t - 0.05,
                        "nod",
                        amp=tu.nod_speaking * float(rng.uniform(0.6, 1.2)),
                        dur=float(rng.uniform(0.3, 0.45)),
                    )
                )
                if rng.random() < 0.35:
                    events.append(Event(t - 0.05, "brow", amp=float(rng.uniform(0.15, 0.3)), dur=0.5))
                last = t
    # blinks at sentence ends (inside the clause) and at its end
    ends = sentence_end_times(chunk.text, words)
    for t in ends:
        if rng.random() < 0.7:
            events.append(Event(t0 + t + 0.05, "blink"))
    if rng.random() < 0.8:
        events.append(Event(t0 + dur + float(rng.uniform(0.0, 0.2)), "blink"))
    return events


def sentence_end_times(text: str, words: list) -> list[float]:
    """End times (chunk-relative) of words that close a sentence inside the clause's text."""
    tokens = list(re.finditer(r"[^\W_]+(?:['’][^\W_]+)*(?:[.,]\d+)*", text or ""))
    if not words or len(tokens) != len(words):
        return []
    out = []
    for m, w in zip(tokens[:-1], words[:-1], strict=True):
        if re.match(r"[\"”’)\]]*[.!?…]", text[m.end() : m.end() + 3]):
            out.append(float(w.end))
    return out
