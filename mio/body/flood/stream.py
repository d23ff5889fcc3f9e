"""Streaming inference (§4.2.5) and its offline twin.

`FloodStream` runs the five steps of §4.2.5, one global time step Delta t = 1/n_s per call:

1. Initialize: new latent frames enter as pure Gaussian noise (alpha = 0) when the schedule
   reaches them.
2. Window identification: the frames with alpha(t) < 1 and alpha(t + Delta t) > 0 (`window_at`
   for Eq. 14) plus up to `context` committed frames before them.
3. Predict velocity: one DiT pass over that window with each frame's prompt (frame-wise text
   conditioning), optionally with classifier-free guidance.
4. Denoise update: Euler, z <- z + v * d(alpha) with each frame's own d(alpha).
5. Shift and commit: frames that reach alpha = 1 leave the window; the causal VAE decodes each
   committed latent into 4 motion frames at once (`StreamingDecoder`).

The cost per step is constant (the window never grows), output is endless, and `set_prompt`
may change the prompt at any step: frames not yet committed whose time is at or after the
prompt time take the new prompt. With the chunk schedule (the baseline) the same loop
denoises a whole chunk and commits it at once.

`generate_offline` computes the same thing over a whole known prompt timeline with the full
latent tensor and vectorised schedules (Eq. 11-12, 14) and decodes at the end; committed frames
of the stream equal it (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from mio.body.flood.dit import FloodDiT
from mio.body.flood.schedule import chunk_schedule, lower_triangular
from mio.body.flood.text import TextEmbedding, TextEncoder
from mio.body.flood.vae import CausalVAE, StreamingDecoder
from mio.core.layouts import BODY_FPS

REST_PROMPT = "stand"  # §4.3: the rest prompt that stops the current motion


def schedule_fn(kind: str, n_s: int) -> Callable[[float, torch.Tensor], torch.Tensor]:
    """alpha(t, k) for inference: lower-triangular (also used by the random-schedule ablation) or chunk."""
    if kind == "chunk":
        return lambda t, k: chunk_schedule(t, k, n_s)[0]
    return lambda t, k: lower_triangular(t, k, n_s)[0]


def frame_noise(seed: int, k: int, dim: int) -> torch.Tensor:
    """The initial noise of latent frame k: one generator per frame, so streaming and offline agree."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + k)
    return torch.randn(dim, generator=g)


@dataclass
class _Prompts:
    """Prompt table and the text tensors of a window."""

    encoder: TextEncoder
    texts: list[str] = field(default_factory=list)
    cache: dict[str, TextEmbedding] = field(default_factory=dict)
    stacked: dict[tuple[int, ...], tuple[torch.Tensor, ...]] = field(default_factory=dict)

    def index(self, text: str) -> int:
        if text not in self.texts:
            self.texts.append(text)
            self.cache[text] = self.encoder.encode_one(text)
        return self.texts.index(text)

    def tensors(self, ids: list[int], max_prompts: int) -> tuple[torch.Tensor, ...]:
        """Window prompt ids -> (local ids (1, W), tokens (1, P, L, D), mask (1, P, L), sentence (1, P, D))."""
        uniq = tuple(dict.fromkeys(ids))[-max_prompts:]
        local = torch.tensor([[uniq.index(i) if i in uniq else 0 for i in ids]])
        if uniq not in self.stacked:  # windows reuse the same few prompt sets: stack once
            embs = [self.cache[self.texts[i]] for i in uniq]
            self.stacked[uniq] = (torch.from_numpy(np.stack([e.tokens for e in embs]))[None],
                                  torch.from_numpy(np.stack([e.mask for e in embs]))[None],
                                  torch.from_numpy(np.stack([e.sentence for e in embs]))[None])
        return (local, *self.stacked[uniq])


@torch.no_grad()
def predict_velocity(dit: FloodDiT, x: torch.Tensor, alpha: torch.Tensor, local: torch.Tensor,
                     tok: torch.Tensor, mask: torch.Tensor, sent: torch.Tensor, guidance: float = 1.0
                     ) -> torch.Tensor:
    """One DiT pass over a window (1, W, C); guidance > 1 mixes in the unconditional velocity (CFG)."""
    if guidance == 1.0:
        return dit(x, alpha, local, tok, mask, sent)
    both = dit(torch.cat([x, x]), torch.cat([alpha, alpha]), torch.cat([local, local]), torch.cat([tok, tok]),
               torch.cat([mask, torch.zeros_like(mask)]), torch.cat([sent, sent]))
    cond, uncond = both[: len(x)], both[len(x):]
    return uncond + guidance * (cond - uncond)


class FloodStream:
    """One endless motion stream: prompts in (any time), committed feature frames out (20 fps)."""

    def __init__(self, dit: FloodDiT, vae: CausalVAE, text: TextEncoder, *, seed: int = 0,
                 schedule: str | None = None, guidance: float = 1.0, prompt: str = REST_PROMPT,
                 fps: float = BODY_FPS):
        self.dit, self.vae = dit.eval(), vae.eval()
        cfg = dit.cfg
        self.n_s, self.context, self.dim = cfg.n_s, cfg.context, cfg.latent_dim
        self.alpha = schedule_fn(schedule or ("chunk" if cfg.schedule == "chunk" else "triangular"), self.n_s)
        self.seed, self.guidance, self.fps = seed, guidance, fps
        self.frames_per_latent = vae.cfg.down
        self.prompts = _Prompts(text)
        self.timeline: list[tuple[float, int]] = [(0.0, self.prompts.index(prompt))]
        self.step_index = 0  # s: global time t = s / n_s
        self.latents: dict[int, torch.Tensor] = {}  # frame -> latent (committed context + active)
        self.prompt_of: dict[int, int] = {}  # frame -> prompt index
        self.committed = 0  # frames [0, committed) are final
        self.decoder = StreamingDecoder(vae)

    # -- prompts ----------------------------------------------------------------------------------
    def latent_time(self, k: int) -> float:
        return k * self.frames_per_latent / self.fps

    def set_prompt(self, prompt: str | None, t: float) -> None:
        """From time t (seconds of output), move as `prompt` says (None: the rest prompt)."""
        idx = self.prompts.index(prompt.strip() if prompt and prompt.strip() else REST_PROMPT)
        t = max(float(t), self.latent_time(self.committed))  # committed frames are final
        self.timeline = [(s, i) for s, i in self.timeline if s < t] + [(t, idx)]
        for k in self.prompt_of:
            if k >= self.committed and self.latent_time(k) >= t - 1e-9:
                self.prompt_of[k] = idx

    def _prompt_at(self, k: int) -> int:
        tk = self.latent_time(k)
        idx = self.timeline[0][1]
        for s, i in self.timeline:
            if s <= tk + 1e-9:
                idx = i
        return idx

    # -- the loop ---------------------------------------------------------------------------------
    def step(self) -> torch.Tensor:
        """One step of §4.2.5; returns the raw features (n, 263) of frames committed by it (n may be 0)."""
        s = self.step_index
        t0, t1 = s / self.n_s, (s + 1) / self.n_s
        # Step 2: the active window — every frame the schedule moves during [t0, t1].
        k_hi = self.committed
        while self.alpha(t1, torch.tensor(k_hi)) > 0:
            k_hi += 1
        active = list(range(self.committed, k_hi))
        for k in active:  # Step 1: new frames start as pure noise
            if k not in self.latents:
                self.latents[k] = frame_noise(self.seed, k, self.dim)
                self.prompt_of[k] = self._prompt_at(k)
        ctx = list(range(max(0, self.committed - self.context), self.committed))
        frames = ctx + active
        ks = torch.tensor(frames)
        a0, a1 = self.alpha(t0, ks), self.alpha(t1, ks)
        x = torch.stack([self.latents[k] for k in frames])[None]  # (1, W, C)
        local, tok, mask, sent = self.prompts.tensors([self.prompt_of[k] for k in frames], self.dit.cfg.max_prompts)
        v = predict_velocity(self.dit, x, a0[None], local, tok, mask, sent, self.guidance)  # Step 3
        x = x + v * (a1 - a0)[None, :, None]  # Step 4: Euler, per-frame d(alpha)
        for i, k in enumerate(frames):
            if k >= self.committed:
                self.latents[k] = x[0, i]
        self.step_index += 1
        # Step 5: commit frames that reached alpha = 1 and decode them.
        out = []
        while self.committed in self.latents and float(self.alpha(t1, torch.tensor(self.committed))) >= 1.0:
            out.append(self.decoder.push(self.latents[self.committed]))
            self.committed += 1
        for k in [k for k in self.latents if k < self.committed - self.context]:
            del self.latents[k]
            self.prompt_of.pop(k, None)
        if not out:
            return torch.zeros(0, self.vae.cfg.feat_dim)
        return torch.cat(out)


@torch.no_grad()
def generate_offline(dit: FloodDiT, vae: CausalVAE, text: TextEncoder, prompts: list[tuple[float, str]],
                     n_latents: int, *, seed: int = 0, schedule: str | None = None, guidance: float = 1.0,
                     fps: float = BODY_FPS) -> torch.Tensor:
    """All K latent frames at once with the vectorised schedule, decoded at the end. -> (4K, 263)

    prompts: [(time s, text)], sorted; frame k takes the last prompt with time <= its time."""
    cfg = dit.cfg
    alpha_fn = schedule_fn(schedule or ("chunk" if cfg.schedule == "chunk" else "triangular"), cfg.n_s)
    table = _Prompts(text)
    down = vae.cfg.down
    total = n_latents + cfg.n_s  # frames past K share the window of the last ones (bidirectional)
    pid = []
    for k in range(total):
        tk = k * down / fps
        pid.append(table.index([p for s, p in prompts if s <= tk + 1e-9][-1]))
    z = torch.stack([frame_noise(seed, k, cfg.latent_dim) for k in range(total)])  # (K + n_s, C)
    ks = torch.arange(total)
    s = 0
    while bool((alpha_fn(s / cfg.n_s, ks[:n_latents]) < 1).any()):
        a0, a1 = alpha_fn(s / cfg.n_s, ks), alpha_fn((s + 1) / cfg.n_s, ks)  # (K,) Eq. 11, Eq. 14
        moving = (a0 < 1) & (a1 > 0)
        first = int(moving.nonzero()[0])
        last = int(moving.nonzero()[-1]) + 1
        lo = max(0, first - cfg.context)
        local, tok, mask, sent = table.tensors(pid[lo:last], cfg.max_prompts)
        v = predict_velocity(dit, z[None, lo:last], a0[None, lo:last], local, tok, mask, sent, guidance)[0]
        z[first:last] += v[first - lo:] * (a1 - a0)[first:last, None]
        s += 1
    z = z[:n_latents]
    return vae.decode(z[None])[0]


__all__ = ["FloodStream", "REST_PROMPT", "frame_noise", "generate_offline", "predict_velocity", "schedule_fn"]
