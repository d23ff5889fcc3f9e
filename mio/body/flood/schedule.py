"""Vectorised per-frame noise schedules for diffusion forcing (§4.2.1, §4.2.3).

Every latent frame k carries its own signal level alpha^k_t and noise level beta^k_t at the one
global denoising time t (Eq. 11-12), and a noisy latent is x^k = alpha^k z^k + beta^k eps^k
(Eq. 10, with beta = 1 - alpha: a rectified-flow path). The network predicts the velocity
dx/dalpha = z - eps, and the Euler step of §4.2.5 moves each frame by its own d(alpha).

Schedules:
- `lower_triangular` (Eq. 14-15): alpha^k_t = clamp(t - k / n_s, 0, 1). At any t the frames split
  into a fixed past (alpha = 1), an active window of n_s frames being denoised, and future noise
  (alpha = 0) — `regions`. Advancing t by 1/n_s finishes exactly one frame.
- `random_alphas`: vanilla diffusion forcing, independent alpha per frame (the ablation).
- `chunk_alphas`: chunk-based diffusion (the PRIMAL-like baseline): all frames of a chunk share a
  level, chunks are denoised one after another.
"""

from __future__ import annotations

import math

import torch

SCHEDULES = ("triangular", "random", "chunk")


def lower_triangular(t: float | torch.Tensor, k: torch.Tensor, n_s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha, beta) of frames k at time t (Eq. 14, Eq. 15). k: (K,) or broadcastable."""
    alpha = torch.clamp(torch.as_tensor(t, dtype=torch.float32) - k.float() / n_s, 0.0, 1.0)  # Eq. 14
    return alpha, 1.0 - alpha  # Eq. 15


def chunk_schedule(t: float | torch.Tensor, k: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunk-based diffusion written as a vectorised schedule: chunk c = k // chunk runs at t in [c, c+1]."""
    alpha = torch.clamp(torch.as_tensor(t, dtype=torch.float32) - torch.div(k, chunk, rounding_mode="floor"), 0.0, 1.0)
    return alpha, 1.0 - alpha


def noisy(z: torch.Tensor, eps: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """x = alpha z + beta eps, per frame (Eq. 10 with the vector schedules of Eq. 11-12). (B, K, C)"""
    a = alpha[..., None]
    return a * z + (1.0 - a) * eps


def velocity_target(z: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """d x / d alpha along the path of `noisy`."""
    return z - eps


def regions(alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Masks (fixed past, active window, future noise) of a schedule (§4.2.3)."""
    past = alpha >= 1.0
    future = alpha <= 0.0
    return past, ~(past | future), future


def window_at(t: float, n_s: int) -> tuple[int, int]:
    """Active window [m(t), n(t)) of the lower-triangular schedule: frames with 0 < alpha < 1.

    alpha^k > 0 iff k < n_s t and alpha^k < 1 iff k > n_s (t - 1)."""
    m = max(0, math.floor(n_s * (t - 1.0)) + 1)
    n = max(0, math.ceil(n_s * t))
    return m, n


def training_alphas(kind: str, batch: int, context: int, n_s: int, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
    """Signal levels (B, context + n_s) for one training window whose newest frame is the noise front.

    triangular: the window is the state the streaming loop sees at a random t — `context` clean
    frames, then n_s frames on the staircase of Eq. 14 offset by a random fraction of a step.
    random: vanilla diffusion forcing, alpha ~ U(0, 1) for every frame (context frames too).
    chunk: clean context, then one chunk of n_s frames at one shared level ~ U(0, 1).
    """
    w = context + n_s
    u = torch.rand(batch, 1, generator=generator)
    if kind == "triangular":
        k = torch.arange(w, dtype=torch.float32)[None]
        t = (w - 1) / n_s + u / n_s  # newest frame at alpha = u / n_s in [0, 1/n_s)
        return torch.clamp(t - k / n_s, 0.0, 1.0)
    if kind == "random":
        return torch.rand(batch, w, generator=generator)
    if kind == "chunk":
        a = torch.ones(batch, w)
        a[:, context:] = u
        return a
    raise ValueError(f"unknown schedule {kind!r}; choose one of {SCHEDULES}")


__all__ = ["SCHEDULES", "chunk_schedule", "lower_triangular", "noisy", "regions", "training_alphas",
           "velocity_target", "window_at"]
