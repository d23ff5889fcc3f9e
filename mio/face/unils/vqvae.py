"""The multi-scale VQ-VAE of UniLS (§3.2, after ARTalk): a motion chunk <-> tokens at several scales.

A chunk of `chunk` frames (B, T, D) is encoded to a latent f (B, C, T). Quantisation is residual
across scales (as VAR / ARTalk): at scale k the remaining residual is area-downsampled to s_k
positions, each position takes its nearest entry of one shared codebook (K x C, paper 256 x 64),
the codes are upsampled back to T and refined by a small conv phi_k, then added to the running
reconstruction f_hat and removed from the residual. Coarse scales carry the slow part of the motion
(head pose, expression drift), fine scales the fast part (lips, blinks). The decoder reads the
previous chunk's f_hat together with the current one, so consecutive chunks join without a seam.

    vq = MultiScaleVQVAE(cfg)
    recon, indices, losses = vq(prev, cur)          # (B, T, D), [ (B, s_k) ], {name: loss}
    f_hat = vq.f_hat_from_indices(indices)          # (B, C, T) -- the inverse of quantize
    motion = vq.decode(f_hat_prev, f_hat)           # (B, T, D)
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mio.face.unils.config import UniLSConfig


class ResBlock1d(nn.Module):
    def __init__(self, ch: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(ch, ch, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.gelu(self.conv1(F.gelu(x))))


class MultiScaleQuantizer(nn.Module):
    """Residual quantisation over scales with one shared codebook (VAR's multi-scale VQ)."""

    def __init__(self, *, scales: tuple[int, ...], codebook_size: int, code_dim: int, beta: float = 0.25) -> None:
        super().__init__()
        self.scales = tuple(scales)
        self.length = self.scales[-1]
        self.beta = beta
        self.codebook = nn.Embedding(codebook_size, code_dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / codebook_size, 1.0 / codebook_size)
        self.phi = nn.ModuleList(nn.Conv1d(code_dim, code_dim, 3, padding=1) for _ in self.scales)

    def _lookup(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest codebook entry per position. (B, C, s) -> (B, s) long"""
        flat = z.transpose(1, 2).reshape(-1, z.shape[1])  # (B*s, C)
        w = self.codebook.weight
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ w.t() + w.pow(2).sum(1)[None]  # (B*s, K)
        return dist.argmin(1).view(z.shape[0], z.shape[2])

    def upsample(self, idx: torch.Tensor, k: int) -> torch.Tensor:
        """Codes of scale k, upsampled to the chunk and refined by phi_k. (B, s_k) -> (B, C, T)"""
        z = self.codebook(idx).transpose(1, 2)  # (B, C, s_k)
        up = F.interpolate(z, size=self.length, mode="linear", align_corners=False) if z.shape[2] != self.length else z
        return up + 0.5 * self.phi[k](up)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """f (B, C, T) -> (f_hat with straight-through gradient, indices per scale, VQ loss)."""
        rest = f
        f_hat = torch.zeros_like(f)
        indices: list[torch.Tensor] = []
        for k, s in enumerate(self.scales):
            z = F.adaptive_avg_pool1d(rest, s) if s != self.length else rest  # (B, C, s)
            idx = self._lookup(z.detach())
            indices.append(idx)
            up = self.upsample(idx, k)
            f_hat = f_hat + up
            rest = rest - up
        loss = F.mse_loss(f_hat, f.detach()) + self.beta * F.mse_loss(f, f_hat.detach())
        f_hat = f + (f_hat - f).detach()  # straight-through estimator
        return f_hat, indices, loss

    def f_hat_from_indices(self, indices: list[torch.Tensor]) -> torch.Tensor:
        """The inverse of forward for the first len(indices) scales. -> (B, C, T)"""
        return sum(self.upsample(idx, k) for k, idx in enumerate(indices))

    def next_scale_input(self, f_hat: torch.Tensor, k: int) -> torch.Tensor:
        """What the transformer reads to predict scale k+1: f_hat downsampled to s_{k+1}. -> (B, C, s_{k+1})"""
        s = self.scales[k + 1]
        return F.adaptive_avg_pool1d(f_hat, s) if s != self.length else f_hat


class MultiScaleVQVAE(nn.Module):
    def __init__(self, cfg: UniLSConfig) -> None:
        super().__init__()
        self.cfg = cfg
        D, H, C = cfg.motion_dim, cfg.vq_hidden, cfg.code_dim
        self.register_buffer("mean", torch.zeros(D))  # motion normalisation, set from the data
        self.register_buffer("std", torch.ones(D))
        self.encoder = nn.Sequential(
            nn.Conv1d(D, H, 3, padding=1), *[ResBlock1d(H, 2**i) for i in range(cfg.vq_layers)], nn.GELU(),
            nn.Conv1d(H, C, 1),
        )
        self.quantizer = MultiScaleQuantizer(scales=cfg.scales, codebook_size=cfg.codebook_size, code_dim=C)
        self.decoder = nn.Sequential(
            nn.Conv1d(C, H, 3, padding=1), *[ResBlock1d(H, 2**i) for i in range(cfg.vq_layers)], nn.GELU(),
            nn.Conv1d(H, D, 3, padding=1),
        )

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-3))

    def normalise(self, m: torch.Tensor) -> torch.Tensor:
        return (m - self.mean) / self.std

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    def encode(self, motion: torch.Tensor) -> torch.Tensor:
        """(B, T, D) raw parameters -> (B, C, T) latent."""
        return self.encoder(self.normalise(motion).transpose(1, 2))

    def quantize(self, motion: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        return self.quantizer(self.encode(motion))

    def decode(self, f_hat_prev: torch.Tensor, f_hat: torch.Tensor) -> torch.Tensor:
        """Current chunk's motion from (previous, current) quantised latents. 2 x (B, C, T) -> (B, T, D)"""
        x = self.decoder(torch.cat([f_hat_prev, f_hat], dim=2))  # (B, D, 2T)
        return self.denormalise(x[:, :, -self.cfg.chunk :].transpose(1, 2))

    def forward(self, prev: torch.Tensor, cur: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, torch.Tensor]]:
        """Reconstruct `cur` (B, T, D) given the chunk before it; returns (recon, indices, losses)."""
        f_prev, _, vq_prev = self.quantize(prev)
        f_cur, indices, vq_cur = self.quantize(cur)
        recon = self.decode(f_prev, f_cur)
        x, y = self.normalise(recon), self.normalise(cur)
        losses = {
            "rec": F.smooth_l1_loss(x, y, beta=0.1),
            "vel": F.smooth_l1_loss(x[:, 1:] - x[:, :-1], y[:, 1:] - y[:, :-1], beta=0.1),
            "vq": 0.5 * (vq_prev + vq_cur),
        }
        return recon, indices, losses

    def loss(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return losses["rec"] + 0.5 * losses["vel"] + losses["vq"]
