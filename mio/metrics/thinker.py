"""Thinker metrics (§7.1, §7.6): CharacterBox-style score aggregation, TT and RT.

The judging itself (CharacterBox's LLM evaluator, Gemini 2.5 Pro in the paper) is outside; these
aggregate the judges' per-trial scores exactly as Table 8 and Figure 17 report them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

CHARACTERBOX_METRICS = ("KA", "BA", "EE", "PT", "IM", "AD", "BC")  # Table 8's seven dimensions
CB_RANGE = (1.0, 5.0)


def characterbox_score(scores: Mapping[str, Sequence[float]]) -> dict[str, object]:
    """Per-metric mean and SD, and the overall Average (the CB of Eq. S_cog).

    `scores[metric]` are the 1-5 judgements of every trial; all seven metrics are required.
    The Average is the mean of all judgements pooled (equal to the mean of the metric means
    when each metric has the same number of trials, as in the paper's 4 characters x 15 runs)."""
    missing = [m for m in CHARACTERBOX_METRICS if m not in scores]
    if missing:
        raise ValueError(f"CharacterBox scores missing for {missing}")
    per: dict[str, dict[str, float]] = {}
    pooled: list[float] = []
    for m in CHARACTERBOX_METRICS:
        x = np.asarray(scores[m], np.float64)
        if x.size == 0 or (x < CB_RANGE[0]).any() or (x > CB_RANGE[1]).any():
            raise ValueError(f"{m}: scores must be a non-empty list within {CB_RANGE}")
        per[m] = {"mean": float(x.mean()), "sd": float(x.std(ddof=1)) if x.size > 1 else 0.0}
        pooled += x.tolist()
    p = np.asarray(pooled)
    return {"per_metric": per, "average": float(p.mean()), "sd": float(p.std(ddof=1)) if p.size > 1 else 0.0}


def binary_accuracy(judgements: Sequence[bool | int]) -> float:
    """Share of correct (1) responses: TT = expressed ignorance of a future event, RT = refused in character."""
    x = np.asarray(judgements, np.float64)
    if x.size == 0 or not np.isin(x, (0.0, 1.0)).all():
        raise ValueError("judgements must be a non-empty list of 0/1")
    return float(x.mean())


timeline_coherence = binary_accuracy  # TT in [0, 1]
robustness = binary_accuracy  # RT in [0, 1]
