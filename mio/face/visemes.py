"""Phones -> visemes -> ARKit mouth shapes, with coarticulation weights.

The 15 visemes are the set used by Oculus/Meta lip sync and most game-engine lip-sync tools
(sil PP FF TH DD kk CH SS nn RR aa E ih oh ou). Each has a target in the 52 ARKit blendshapes
and a *dominance* strength for the Cohen-Massaro coarticulation model used by the procedural
face: lip closures (PP) and lip-teeth contacts (FF) must be reached whatever the neighbours,
so they dominate; tongue consonants (DD, kk, nn) barely show on the lips and take their shape
from the vowels around them.

Phone labels are ARPABET (the Talker's aligner); stress digits and case are ignored. Unknown
labels (noise markers, other alphabets) fall back to a generic half-open mouth.
"""

from __future__ import annotations

import numpy as np

from mio.core.layouts import ARKIT_BLENDSHAPES, blendshape_index

# fmt: off
VISEMES: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")

ARPABET_TO_VISEME: dict[str, str] = {
    "SIL": "sil", "SP": "sil", "SPN": "sil", "NSN": "sil",
    "P": "PP", "B": "PP", "M": "PP",
    "F": "FF", "V": "FF",
    "TH": "TH", "DH": "TH",
    "T": "DD", "D": "DD",
    "K": "kk", "G": "kk", "NG": "kk", "HH": "kk",
    "CH": "CH", "JH": "CH", "SH": "CH", "ZH": "CH",
    "S": "SS", "Z": "SS",
    "N": "nn", "L": "nn",
    "R": "RR", "ER": "RR",
    "AA": "aa", "AH": "aa", "AY": "aa", "AW": "aa",
    "AE": "E", "EH": "E", "EY": "E",
    "IH": "ih", "IY": "ih", "Y": "ih",
    "AO": "oh", "OW": "oh", "OY": "oh",
    "UW": "ou", "UH": "ou", "W": "ou",
}


def _lr(name: str, w: float) -> dict[str, float]:
    return {f"{name}Left": w, f"{name}Right": w}


# Mouth targets (weights in [0,1]). "Open" shapes (jaw, lower lip down, upper lip up) are scaled by
# loudness at run time; closures and roundings are not (see OPENING_SHAPES).
_TARGETS: dict[str, dict[str, float]] = {
    "sil": {},
    "PP": {"jawOpen": 0.04, "mouthClose": 0.04, **_lr("mouthPress", 0.45), "mouthRollLower": 0.22,
           "mouthRollUpper": 0.15},
    "FF": {"jawOpen": 0.10, "mouthRollLower": 0.55, **_lr("mouthUpperUp", 0.25), "mouthShrugUpper": 0.15},
    "TH": {"jawOpen": 0.18, "tongueOut": 0.30, **_lr("mouthLowerDown", 0.12), **_lr("mouthStretch", 0.1)},
    "DD": {"jawOpen": 0.20, **_lr("mouthStretch", 0.15), **_lr("mouthLowerDown", 0.15)},
    "kk": {"jawOpen": 0.26, **_lr("mouthStretch", 0.12), **_lr("mouthLowerDown", 0.1)},
    "CH": {"jawOpen": 0.15, "mouthFunnel": 0.45, "mouthPucker": 0.2, **_lr("mouthUpperUp", 0.2),
           **_lr("mouthLowerDown", 0.2)},
    "SS": {"jawOpen": 0.08, **_lr("mouthStretch", 0.35), **_lr("mouthSmile", 0.12), **_lr("mouthLowerDown", 0.08)},
    "nn": {"jawOpen": 0.18, **_lr("mouthLowerDown", 0.1), **_lr("mouthStretch", 0.08)},
    "RR": {"jawOpen": 0.15, "mouthFunnel": 0.35, "mouthPucker": 0.3},
    "aa": {"jawOpen": 0.62, **_lr("mouthLowerDown", 0.3), **_lr("mouthUpperUp", 0.08), **_lr("mouthStretch", 0.08)},
    "E": {"jawOpen": 0.40, **_lr("mouthStretch", 0.32), **_lr("mouthSmile", 0.12), **_lr("mouthLowerDown", 0.3)},
    "ih": {"jawOpen": 0.22, **_lr("mouthStretch", 0.42), **_lr("mouthSmile", 0.22), **_lr("mouthLowerDown", 0.12)},
    "oh": {"jawOpen": 0.45, "mouthFunnel": 0.55, "mouthPucker": 0.22, **_lr("mouthLowerDown", 0.15)},
    "ou": {"jawOpen": 0.16, "mouthPucker": 0.72, "mouthFunnel": 0.35},
}
GENERIC_TARGET = {"jawOpen": 0.3, **_lr("mouthLowerDown", 0.15)}

# Cohen-Massaro dominance magnitude per viseme (alpha in D(t) = alpha * exp(-(|t-c|/w)^shape)).
DOMINANCE: dict[str, float] = {
    "sil": 0.6, "PP": 3.0, "FF": 2.0, "TH": 1.2, "DD": 0.5, "kk": 0.45, "CH": 1.3, "SS": 0.9,
    "nn": 0.5, "RR": 1.0, "aa": 1.0, "E": 1.0, "ih": 1.0, "oh": 1.2, "ou": 1.4,
}
GENERIC_DOMINANCE = 0.8
# fmt: on

# Shapes that express how open the mouth is: they follow the loudness of the speech.
OPENING_SHAPES: tuple[str, ...] = (
    "jawOpen",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
)


def _vector(weights: dict[str, float]) -> np.ndarray:
    v = np.zeros(len(ARKIT_BLENDSHAPES), dtype=np.float32)
    for name, w in weights.items():
        v[blendshape_index(name)] = w
    return v


VISEME_TARGETS: np.ndarray = np.stack(
    [_vector(_TARGETS[v]) for v in VISEMES] + [_vector(GENERIC_TARGET)]
)  # (16, 52)
VISEME_DOMINANCE: np.ndarray = np.array(
    [DOMINANCE[v] for v in VISEMES] + [GENERIC_DOMINANCE], dtype=np.float32
)
GENERIC = len(VISEMES)  # row index of the generic target
SILENCE = VISEMES.index("sil")
OPENING_MASK: np.ndarray = _vector({n: 1.0 for n in OPENING_SHAPES}).astype(bool)
MOUTH_MASK: np.ndarray = np.any(VISEME_TARGETS > 0, axis=0)  # shapes the visemes ever touch


def viseme_index(phone: str) -> int:
    """Row of VISEME_TARGETS for an ARPABET phone ("AH0", "ah", "+NSN+", "sil" all accepted)."""
    label = phone.strip().strip("+").upper().rstrip("012")
    if not label:
        return SILENCE
    v = ARPABET_TO_VISEME.get(label)
    if v is None:
        if label.lower() in ("sil", "sp", "<sil>", "<s>", "</s>", "pau", "spn", "nsn", "noise"):
            return SILENCE
        return GENERIC
    return VISEMES.index(v)
