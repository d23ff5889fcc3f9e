"""The unified action plan A_t (§6.1): dialogue streamed in clauses, each with an emotion and a gesture.

A strong LLM may annotate its reply inline with `[emotion: happy]` / `[gesture: wave]` tags
(the system prompt invites it); a small one (the embedded SmolLM2-135M) rarely does, so every
clause without tags gets an emotion and a gesture from a lexicon of cue words. Tags are always
removed from the spoken text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mio.core.frames import Emotion

TAG = re.compile(r"\[\s*(emotion|gesture|camera)\s*[:=]\s*([^\]]{1,40})\]", re.I)
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "curious", "thinking", "fearful")

# Cue words -> (emotion, intensity). First match in a clause wins; order matters.
_EMOTION_CUES: tuple[tuple[re.Pattern[str], str, float], ...] = (
    (re.compile(r"\b(sorry|sad|miss|lost|unfortunately|alas)\b", re.I), "sad", 0.6),
    (re.compile(r"\b(wow|amazing|incredible|really\?|no way|oh!)", re.I), "surprised", 0.7),
    (re.compile(r"\b(angry|furious|unacceptable|how dare)\b", re.I), "angry", 0.6),
    (re.compile(r"\b(afraid|scared|danger|careful)\b", re.I), "fearful", 0.5),
    (re.compile(r"\b(hmm+|perhaps|maybe|wonder|think|curious)\b", re.I), "thinking", 0.5),
    (re.compile(r"\b(hello|hi|glad|lovely|love|great|wonderful|happy|thank|welcome|fun|nice)\b", re.I), "happy", 0.7),
)
# Cue words -> a short motion prompt for the Body Animator (§4: text instructions).
_GESTURE_CUES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(hello|hi|hey|goodbye|bye|see you)\b", re.I), "wave"),
    (re.compile(r"\b(welcome|come in|everyone|all of you)\b", re.I), "open arms"),
    (re.compile(r"\b(thank you|thanks|grateful)\b", re.I), "bow"),
    (re.compile(r"\b(i am|i'm|me|myself|my name)\b", re.I), "hand on chest"),
    (re.compile(r"\b(look|there|over there|this one|that one)\b", re.I), "point"),
    (re.compile(r"\b(don't know|not sure|who knows|maybe)\b", re.I), "shrug"),
    (re.compile(r"\b(hmm+|let me think|wonder|perhaps)\b", re.I), "think"),
    (re.compile(r"\b(yes|yeah|of course|exactly|right|indeed|sure)\b", re.I), "nod"),
    (re.compile(r"\b(no|never|not at all)\b", re.I), "head shake"),
)


@dataclass(frozen=True)
class Clause:
    text: str
    emotion: Emotion
    gesture: str | None
    camera: str | None = None


def annotate(text: str, default: Emotion) -> Clause:
    """Strip inline tags from a clause and decide its emotion and gesture."""
    emotion: Emotion | None = None
    gesture: str | None = None
    camera: str | None = None
    for kind, value in TAG.findall(text):
        value = value.strip().lower()
        if kind.lower() == "emotion":
            label = value.split()[0] if value.split() else "neutral"
            emotion = Emotion(label if label in EMOTIONS else "neutral", 0.7)
        elif kind.lower() == "gesture":
            gesture = value
        else:
            camera = value
    spoken = clean_spoken(TAG.sub("", text))
    if emotion is None:
        emotion = next(
            (Emotion(label, k) for pat, label, k in _EMOTION_CUES if pat.search(spoken)),
            Emotion(default.label, default.intensity * 0.8),
        )
        if spoken.endswith("?") and emotion.label == default.label:
            emotion = Emotion("curious", 0.5)
    if gesture is None:
        gesture = next((g for pat, g in _GESTURE_CUES if pat.search(spoken)), None)
        if gesture is None and len(spoken.split()) >= 5:
            gesture = "beat"  # ordinary talking hands
    return Clause(spoken, emotion, gesture, camera)


_MARKUP = re.compile(r"[*_#`~>|]+|\s*\((?:[^)]{0,40})\)\s*")
_NON_SPEECH = re.compile(r"[^\w\s.,!?;:'\"\-]", re.UNICODE)


def clean_spoken(text: str) -> str:
    """Remove markdown, stage directions in parentheses and emoji; collapse spaces."""
    text = _MARKUP.sub(" ", text)
    text = _NON_SPEECH.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


_BOUNDARY = re.compile(r"([.!?;:]+[\"')\]]*|,|\u2014| - )\s")


def split_clauses(pieces: Iterable[str], first_min_words: int = 2, max_words: int = 14) -> Iterator[tuple[str, bool]]:
    """Group a stream of text pieces into speakable clauses as soon as each one is complete.

    A clause ends at sentence punctuation; a comma ends it only when the clause already has
    `first_min_words` (for the first clause, so audio starts early) or 6 words (later ones);
    a run of `max_words` without punctuation is cut at a word boundary. Yields (clause, is_tail):
    the tail is what was left when the stream ended, possibly cut off mid-sentence.
    """
    buf = ""
    emitted = 0
    for piece in pieces:
        buf += piece
        while True:
            cut = None
            for m in _BOUNDARY.finditer(buf):
                candidate = buf[: m.end()].strip()
                words = len(TAG.sub("", candidate).split())
                is_comma = m.group(1) in (",", "\u2014", " - ")
                need = first_min_words if emitted == 0 else 6
                if words >= (need if is_comma else 1):
                    cut = m.end()
                    break
            if cut is None and len(buf.split()) > max_words and buf.endswith((" ", "\n")):
                cut = len(buf)
            if cut is None:
                break
            clause, buf = buf[:cut].strip(), buf[cut:]
            if TAG.sub("", clause).strip(" ,;:-"):
                emitted += 1
                yield clause, False
    tail = buf.strip()
    if TAG.sub("", tail).strip(" ,;:-"):
        yield tail, True
