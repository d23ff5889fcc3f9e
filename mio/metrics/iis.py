"""The Interactive Intelligence Score (§7.7.1): five dimension scores S_k in [0, 100] and their mean.

    S_IIS = 1/|D| sum_k S_k,  D = {cog, aco, fac, som, vis}

Each S_k is a fixed formula of objective metrics (one function per equation). The paper's own
inputs are in mio.bench.paper; `mio bench iis` (mio.bench.iis) measures this system's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

DIMENSIONS = ("cog", "aco", "fac", "som", "vis")
DIMENSION_NAMES = {
    "cog": "Cognitive Resonance (Thinker)",
    "aco": "Acoustic Fidelity (Talker)",
    "fac": "Facial Synchrony (Face Animator)",
    "som": "Somatic Fluidity (Body Animator)",
    "vis": "Visual Integrity (Renderer)",
}
PESQ_MAX = 4.5  # S_aco normalises PESQ by its range [0, 4.5]
MOS_MAX = 5.0  # UTMOS, DNSMOS in [0, 5]
FAC_LVE_DECAY = 0.03
FAC_DYN_DECAY = 0.02
SOM_FID_DECAY = 2.0
SOM_PJ_DECAY = 0.3


@dataclass(frozen=True)
class CognitiveInputs:
    cb: float  # CharacterBox average, [1, 5]
    tt: float  # Timeline-coherence accuracy, [0, 1]
    rt: float  # Robustness refusal rate, [0, 1]


@dataclass(frozen=True)
class AcousticInputs:
    """One language's Talker figures: reconstruction (codec) and zero-shot TTS."""

    stoi: float  # [0, 1]
    sim: float  # [0, 1]
    pesq: float  # [0, 4.5]
    utmos: float  # [0, 5]
    dnsmos: float  # [0, 5]
    wer: float  # word (or character) error rate as a fraction; 0.025 = 2.5 %


@dataclass(frozen=True)
class FacialInputs:
    lve: float
    fdd: float  # listening-segment FDD, PDD, JDD (§7.7.1: "for listening naturalness")
    pdd: float
    jdd: float


@dataclass(frozen=True)
class SomaticInputs:
    fid: float
    pj: float  # Peak Jerk


@dataclass(frozen=True)
class VisualInputs:
    clip: float
    ssim: float
    lpips: float


def s_cog(x: CognitiveInputs) -> float:
    """S_cog = 1/3 (20 CB + 50 TT + 50 RT). As written its maximum is 66.7, not 100."""
    return (20.0 * x.cb + 50.0 * x.tt + 50.0 * x.rt) / 3.0


def aco_terms(x: AcousticInputs) -> dict[str, float]:
    """The six 0-100 terms of S_aco for one language."""
    return {
        "stoi": 100.0 * x.stoi,
        "sim": 100.0 * x.sim,
        "pesq": 100.0 / PESQ_MAX * x.pesq,
        "utmos": 100.0 / MOS_MAX * x.utmos,
        "dnsmos": 100.0 / MOS_MAX * x.dnsmos,
        "accuracy": 100.0 * (1.0 - x.wer),
    }


def s_aco(languages: Sequence[AcousticInputs]) -> float:
    """S_aco = 1/6 (100 STOI + 100 SIM + 100/4.5 PESQ + 100/5 UTMOS + 100/5 DNSMOS + 100 (1 - WER)),
    averaged over the evaluated languages (English, Chinese, Japanese in the paper)."""
    if not languages:
        raise ValueError("S_aco needs at least one language")
    return sum(sum(aco_terms(x).values()) / 6.0 for x in languages) / len(languages)


def s_fac(x: FacialInputs) -> float:
    """S_fac = 1/2 (100 e^{-0.03 LVE} + 100 e^{-0.02 (FDD + PDD + JDD) / 3})."""
    dyn = (x.fdd + x.pdd + x.jdd) / 3.0
    return 50.0 * math.exp(-FAC_LVE_DECAY * x.lve) + 50.0 * math.exp(-FAC_DYN_DECAY * dyn)


def s_som(x: SomaticInputs) -> float:
    """S_som = 1/2 (100 e^{-2.0 FID} + 100 e^{-0.3 PJ})."""
    return 50.0 * math.exp(-SOM_FID_DECAY * x.fid) + 50.0 * math.exp(-SOM_PJ_DECAY * x.pj)


def s_vis(x: VisualInputs) -> float:
    """S_vis = 1/3 (100 CLIP + 100 SSIM + 100 (1 - LPIPS))."""
    return (100.0 * x.clip + 100.0 * x.ssim + 100.0 * (1.0 - x.lpips)) / 3.0


def iis(scores: Mapping[str, float]) -> float:
    """S_IIS: the arithmetic mean of the five dimension scores (all five are required)."""
    missing = [k for k in DIMENSIONS if scores.get(k) is None]
    if missing:
        raise ValueError(f"IIS needs all five dimensions; missing {missing}")
    return sum(float(scores[k]) for k in DIMENSIONS) / len(DIMENSIONS)


@dataclass(frozen=True)
class SystemInputs:
    cog: CognitiveInputs | None
    aco: tuple[AcousticInputs, ...] | None
    fac: FacialInputs | None
    som: SomaticInputs | None
    vis: VisualInputs | None

    def scores(self) -> dict[str, float | None]:
        return {
            "cog": s_cog(self.cog) if self.cog else None,
            "aco": s_aco(self.aco) if self.aco else None,
            "fac": s_fac(self.fac) if self.fac else None,
            "som": s_som(self.som) if self.som else None,
            "vis": s_vis(self.vis) if self.vis else None,
        }

    def to_dict(self) -> dict:
        return asdict(self)
