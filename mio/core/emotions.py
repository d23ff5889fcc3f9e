"""Emotion labels shared by every module that expresses an emotion (face, voice, body).

The Thinker's plan names an emotion freely ("joyful", "stern", "pondering"); `resolve` validates it
and maps synonyms onto the canonical labels the modules have expressions for.
"""

from __future__ import annotations

import math

from mio.core.errors import InputError
from mio.core.frames import Emotion

# fmt: off
EMOTION_ALIASES: dict[str, str] = {
    **{k: "happy" for k in ("joy", "joyful", "glad", "cheerful", "amused", "playful", "warm", "friendly", "pleased",
                            "delighted", "smile", "smiling", "laugh", "laughing", "proud")},
    **{k: "sad" for k in ("unhappy", "sorrow", "sorrowful", "melancholy", "down", "grief", "gloomy", "disappointed")},
    **{k: "angry" for k in ("anger", "mad", "annoyed", "frustrated", "irritated", "furious", "stern")},
    **{k: "surprised" for k in ("surprise", "shocked", "astonished", "amazed", "awe", "wow")},
    **{k: "thinking" for k in ("think", "pondering", "thoughtful", "contemplative", "skeptical", "pensive", "unsure")},
    **{k: "curious" for k in ("interested", "intrigued", "wonder", "inquisitive", "questioning")},
    **{k: "fear" for k in ("afraid", "scared", "fearful", "anxious", "nervous", "worried_fear")},
    **{k: "disgust" for k in ("disgusted", "revolted")},
    **{k: "excited" for k in ("enthusiastic", "eager", "thrilled")},
    **{k: "calm" for k in ("content", "serene", "relaxed", "gentle", "kind")},
    **{k: "concerned" for k in ("worried", "sympathetic", "empathetic", "sorry", "apologetic")},
}
# fmt: on


def resolve(emotion: Emotion) -> tuple[str, float]:
    """(canonical label, intensity clipped to [0, 1]); unknown labels pass through lower-cased."""
    if not isinstance(emotion, Emotion):
        raise InputError(f"emotion must be mio.core.frames.Emotion, got {type(emotion).__name__}")
    intensity = float(emotion.intensity)
    if not math.isfinite(intensity):
        raise InputError(f"emotion intensity must be a finite number, got {emotion.intensity!r}")
    label = str(emotion.label).strip().lower()
    return EMOTION_ALIASES.get(label, label), min(max(intensity, 0.0), 1.0)
