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
# The first clause may end at its sentence mark without waiting for the next token to confirm it
# (one decoding step, ~30 ms of the time to first audio): only after a word of 3+ letters that is
# not a common abbreviation, so "Mr.", "Capt." and "3." wait.
_EAGER_END = re.compile(r"\b([A-Za-z]{3,})[.!?]$")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "jr", "sr", "st", "mt", "capt", "prof", "gen", "col", "sgt", "lt",
                  "rev", "hon", "etc", "vs", "no"}
_LAST_WORD = re.compile(r"([A-Za-z]+)$")


def _after_abbreviation(text: str) -> bool:
    """Whether `text` (up to a ".") ends with an abbreviation such as "Capt": no sentence ends there."""
    m = _LAST_WORD.search(text)
    return m is not None and m.group(1).lower() in _ABBREVIATIONS


# Words a long first clause may be cut before (a new phrase starts there), when no punctuation has
# come after FIRST_PHRASE_WORDS words: "The Nautilus is a submarine vessel designed | and built by me".
PHRASE_STARTS = frozenset("and but or which who whose where when while because with from of in on at by for into "
                          "through since until after before".split())
FIRST_PHRASE_WORDS = 5
_PHRASE_START = re.compile(r"\s(" + "|".join(sorted(PHRASE_STARTS)) + r")\s", re.IGNORECASE)


def split_clauses(pieces: Iterable[str], first_min_words: int = 1, max_words: int = 14,
                  first_phrase_words: int = FIRST_PHRASE_WORDS) -> Iterator[tuple[str, bool]]:
    """Group a stream of text pieces into speakable clauses as soon as each one is complete.

    A clause ends at sentence punctuation (the first one as soon as the mark arrives, later ones
    when the next word confirms it); a comma ends it only when the clause already has
    `first_min_words` (for the first clause, so audio starts early: "Yes," is said while the rest
    is written; it was 2, and "Yes, Aronnax and Ned Land are aboard." waited 0.5 s more for its
    first sound than the other turns of `mio bench pipeline`) or 6 words (later ones);
    a run of `max_words` without punctuation is cut at a word boundary; and the first clause, when
    `first_phrase_words` words have come without a mark, is cut before the next word that starts a
    phrase (`PHRASE_STARTS`: "and", "which", "of", ...), so a long first sentence does not hold the
    first sound back for all its words (the Talker speaks such a cut with a continuing intonation,
    mio.runtime.processors). Yields (clause, is_tail):
    the tail is what was left when the stream ended, possibly cut off mid-sentence.
    """
    buf = ""
    emitted = 0
    eager = False  # the first clause was cut at a sentence mark at the very end of the text so far
    for piece in pieces:
        buf += piece
        if eager and buf.strip():
            buf = buf.lstrip(".!?\"')]")  # the rest of an ellipsis or a closing quote: already ended
            eager = False
        while True:
            cut = None
            for m in _BOUNDARY.finditer(buf):
                candidate = buf[: m.end()].strip()
                if candidate.count("[") > candidate.count("]"):
                    continue  # never cut inside an inline tag such as "[emotion: sad]"
                if m.group(1) == "." and _after_abbreviation(buf[: m.start()]):
                    continue
                words = len(TAG.sub("", candidate).split())
                is_comma = m.group(1) in (",", "\u2014", " - ")
                need = first_min_words if emitted == 0 else 6
                if words >= (need if is_comma else 1):
                    cut = m.end()
                    break
            if cut is None and len(buf.split()) > max_words and buf.endswith((" ", "\n")):
                cut = len(buf)
            if cut is None and emitted == 0 and first_phrase_words and buf.count("[") == buf.count("]"):
                for m in _PHRASE_START.finditer(buf):
                    before = buf[: m.start()]
                    if len(TAG.sub("", before).split()) >= first_phrase_words and before.count('"') % 2 == 0:
                        cut = m.start() + 1  # before the phrase's first word
                        break
            end = _EAGER_END.search(buf) if cut is None and emitted == 0 else None
            if (end and not _after_abbreviation(end.group(1)) and buf.count('"') % 2 == 0
                    and buf.count("[") == buf.count("]")):
                cut, eager = len(buf), True
            if cut is None:
                break
            clause, buf = buf[:cut].strip(), buf[cut:]
            if TAG.sub("", clause).strip(" ,;:-"):
                emitted += 1
                yield clause, False
    tail = buf.strip()
    if TAG.sub("", tail).strip(" ,;:-"):
        yield tail, True


# -- the validated plan schema (§6.1) ------------------------------------------------------------
# A clause reaches the Talker only if it passes `validate`; LLM output is first `repair`ed
# (role markers, broken or free-form tags, unknown emotion words) and a clause that still fails is
# dropped — the Thinker regenerates or falls back to an in-character line when nothing survives.

MAX_CLAUSE_CHARS = 240
_GESTURE_OK = re.compile(r"^[a-z][a-z \-']{0,39}$")
_EMOTION_SYNONYMS = {
    "joyful": "happy", "glad": "happy", "excited": "happy", "cheerful": "happy", "proud": "happy", "warm": "happy",
    "calm": "neutral", "solemn": "neutral", "grave": "neutral", "serious": "neutral", "stern": "neutral",
    "worried": "fearful", "scared": "fearful", "afraid": "fearful", "anxious": "fearful", "nervous": "fearful",
    "annoyed": "angry", "mad": "angry", "furious": "angry", "irritated": "angry", "bitter": "angry",
    "pensive": "thinking", "thoughtful": "thinking", "reflective": "thinking", "contemplative": "thinking",
    "melancholy": "sad", "sorrowful": "sad", "grieving": "sad", "gloomy": "sad",
    "amazed": "surprised", "astonished": "surprised", "shocked": "surprised",
    "intrigued": "curious", "interested": "curious", "inquisitive": "curious",
}
_ROLE_MARK = re.compile(
    r"<\|?(im_start|im_end|endoftext|eot_id|end)\|?>|(^|\n)\s*(user|assistant|system|visitor|human|ai)\s*:", re.I)
_BROKEN_TAG = re.compile(r"\[\s*(emotion|gesture|camera)\s*[:=][^\]]*$|\[\s*(emotion|gesture|camera)\s*\]", re.I)
_BARE_EMOTION = re.compile(r"[\[(]\s*(" + "|".join([*EMOTIONS, *_EMOTION_SYNONYMS]) + r")\s*[\])]", re.I)
_URL = re.compile(r"https?://\S+|www\.\S+")


class PlanError(ValueError):
    """LLM output that cannot be turned into a valid action-plan clause."""


def emotion_label(word: str) -> str | None:
    w = word.strip().lower()
    return w if w in EMOTIONS else _EMOTION_SYNONYMS.get(w)


def repair(text: str) -> tuple[str, bool]:
    """Fix what a small LLM gets wrong in a clause. Returns (text, stop): `stop` is True when the
    model started writing another speaker's turn — everything from there on is discarded."""
    stop = False
    m = _ROLE_MARK.search(text)
    if m:
        text, stop = text[: m.start()], True
    text = _BROKEN_TAG.sub("", text)
    text = _BARE_EMOTION.sub(lambda k: f"[emotion: {emotion_label(k.group(1))}]", text)
    text = TAG.sub(lambda k: _fix_tag(k.group(1), k.group(2)), text)
    text = _URL.sub("", text)
    return text, stop


def _fix_tag(kind: str, value: str) -> str:
    if kind.lower() == "emotion":
        label = emotion_label((value.split() or ["neutral"])[0])
        return f"[emotion: {label}]" if label else ""
    return f"[{kind.lower()}: {value.strip().lower()}]"


def validate(clause: Clause) -> Clause:
    """The schema of one plan clause; raises PlanError naming what is wrong."""
    text = clause.text
    if not text or not text.strip(" .,;:!?-'\""):
        raise PlanError("empty dialogue text")
    if len(text) > MAX_CLAUSE_CHARS:
        raise PlanError(f"clause of {len(text)} characters (limit {MAX_CLAUSE_CHARS})")
    letters = sum(ch.isalpha() for ch in text)
    if letters < 0.6 * len(text.replace(" ", "")):
        raise PlanError(f"not speakable text: {text[:40]!r}")
    if clause.emotion.label not in EMOTIONS:
        raise PlanError(f"unknown emotion {clause.emotion.label!r}")
    if not 0.0 <= clause.emotion.intensity <= 1.0:
        raise PlanError(f"emotion intensity {clause.emotion.intensity} outside 0..1")
    if clause.gesture is not None and not _GESTURE_OK.match(clause.gesture):
        raise PlanError(f"gesture {clause.gesture!r} is not a short motion prompt")
    return clause


def parse_plan_json(raw: str, default: Emotion) -> list[Clause]:
    """A plan written as JSON by a stronger LLM: an object {"say", "emotion", "gesture", "camera"},
    a list of them, or {"clauses": [...]}. Code fences, single quotes and trailing commas are repaired."""
    import json

    s = raw.strip()
    s = re.sub(r"^```(?:json)?\s*|\s*```$", "", s)
    start = min((i for i in (s.find("{"), s.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise PlanError("no JSON object in the plan")
    s = s[start:]
    candidates = [s, re.sub(r",\s*([}\]])", r"\1", s)]
    candidates.append(candidates[-1].replace("'", '"'))
    data = None
    for c in candidates:
        for attempt in (c, c + "}", c + "]", c + "}]", c + '"}', c + '"}]'):
            try:
                data = json.loads(attempt)
                break
            except json.JSONDecodeError:
                continue
        if data is not None:
            break
    if data is None:
        raise PlanError(f"unrepairable JSON plan: {raw[:60]!r}")
    items = data.get("clauses", [data]) if isinstance(data, dict) else data
    out: list[Clause] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        say = item.get("say") or item.get("text") or item.get("dialogue")
        if not isinstance(say, str):
            continue
        emo = item.get("emotion")
        label, k = (emo.get("label"), emo.get("intensity", 0.7)) if isinstance(emo, dict) else (emo, 0.7)
        label = emotion_label(str(label)) if label else None
        try:
            k = min(1.0, max(0.0, float(k)))
        except (TypeError, ValueError):
            k = 0.7
        base = annotate(say, default)
        gesture = item.get("gesture")
        gesture = str(gesture).strip().lower()[:40] if gesture else base.gesture
        clause = Clause(base.text, Emotion(label, k) if label else base.emotion, gesture,
                        str(item["camera"]) if item.get("camera") else None)
        try:
            out.append(validate(clause))
        except PlanError:
            continue
    if not out:
        raise PlanError("the JSON plan has no valid clause")
    return out
