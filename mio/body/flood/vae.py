"""Causal motion VAE (§4.2.2): 263-D HumanML3D frames <-> a 4-channel latent at 1/4 the frame rate.

Wan2.1's causal video VAE, cut down to one (time) axis: every convolution is left-padded by
kernel - 1, so latent z_j depends only on frames x_{<= 4j+3} and the decoded frames 4j..4j+3
only on z_{<= j}. Downsampling is a stride-2 causal conv, upsampling repeats each step twice
and then applies a causal conv; norms are per frame over channels (RMS, as in Wan), never over
time, so nothing leaks backwards.

Training objective (Eq. 13), with z = E(x) + sigma * eps (sigma = `latent_noise`):

    L = ||x - D(z)||^2 + ||sg[E(x)] - z||^2 + gamma ||sg[z] - E(x)||^2

Features are standardised with the training set's mean/std (buffers saved with the weights)
before the encoder, and the latent is standardised with its own statistics for the diffusion
model (`latent_mean`, `latent_std`, set after training by `fit_latent_stats`).

Streaming decode: the decoder has a finite receptive field of R latent frames; decoding the last
R committed latents and keeping the newest 4 frames equals the offline decode of the whole
sequence (`StreamingDecoder`, tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mio.body.flood.config import VAEConfig
from mio.train.checkpoint import Pretrained


class CausalConv1d(nn.Conv1d):
    """Conv1d over time that only looks back: left padding kernel - 1 (x dilation). (B, C, T)"""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1):
        super().__init__(cin, cout, kernel, stride=stride)
        self.left = kernel - stride if stride > 1 else kernel - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


class RMSNorm1d(nn.Module):
    """Per-frame RMS norm over channels (Wan's RMS_norm): no statistics across time. (B, C, T)"""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-6) * self.weight


class ResBlock(nn.Module):
    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.net = nn.Sequential(
            RMSNorm1d(channels), nn.SiLU(), CausalConv1d(channels, channels, kernel),
            RMSNorm1d(channels), nn.SiLU(), CausalConv1d(channels, channels, kernel),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class Upsample(nn.Module):
    """x2 in time: repeat each step, then a causal conv (frame 2j, 2j+1 see only steps <= j)."""

    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__()
        self.conv = CausalConv1d(cin, cout, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.repeat_interleave(2, dim=-1))


class CausalVAE(Pretrained, nn.Module):
    kind = "flood-vae"

    config_class = VAEConfig

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        k = cfg.kernel
        enc: list[nn.Module] = [CausalConv1d(cfg.feat_dim, cfg.base, k)]
        width = cfg.base
        for ch in cfg.channels:
            enc += [ResBlock(width, k) for _ in range(cfg.blocks)]
            enc.append(CausalConv1d(width, ch, 2 * 2, stride=2))  # x2 down, sees frames <= 2j+1
            width = ch
        enc += [ResBlock(width, k), RMSNorm1d(width), nn.SiLU(), CausalConv1d(width, cfg.latent_dim, k)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [CausalConv1d(cfg.latent_dim, width, k), ResBlock(width, k)]
        for ch in (*reversed(cfg.channels[:-1]), cfg.base):
            dec.append(Upsample(width, ch, k))
            dec += [ResBlock(ch, k) for _ in range(cfg.blocks)]
            width = ch
        dec += [RMSNorm1d(width), nn.SiLU(), CausalConv1d(width, cfg.feat_dim, k)]
        self.decoder = nn.Sequential(*dec)
        self.register_buffer("feat_mean", torch.zeros(cfg.feat_dim))
        self.register_buffer("feat_std", torch.ones(cfg.feat_dim))
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_dim))
        self.register_buffer("latent_std", torch.ones(cfg.latent_dim))
        self.last_logs: dict[str, float] = {}

    # -- normalisation ------------------------------------------------------------------------
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.feat_mean) / self.feat_std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.feat_std + self.feat_mean

    # -- encode / decode in "diffusion units" (standardised latent) ----------------------------
    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, 263) raw features -> (B, ceil(T/4), 4) standardised latent (the posterior mean)."""
        z = self.encode_raw(self.normalize(features))
        return (z - self.latent_mean) / self.latent_std

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, K, 4) standardised latent -> (B, 4K, 263) raw features."""
        return self.denormalize(self.decode_raw(latent * self.latent_std + self.latent_mean))

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 263) standardised features -> (B, ceil(T/4), 4). T is padded at the end to x4."""
        pad = (-x.shape[1]) % self.cfg.down
        if pad:  # repeat the last frame; causal, so the earlier latents are unaffected
            x = torch.cat([x, x[:, -1:].expand(-1, pad, -1)], dim=1)
        return self.encoder(x.transpose(1, 2)).transpose(1, 2)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """(B, K, 4) -> (B, 4K, 263) standardised features."""
        return self.decoder(z.transpose(1, 2)).transpose(1, 2)

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Eq. 13 on standardised features x (B, T, 263), T a multiple of 4."""
        e = self.encode_raw(x)  # E(x)
        z = e + self.cfg.latent_noise * torch.randn_like(e)
        rec = F.mse_loss(self.decode_raw(z), x)  # ||x - D(z)||^2
        commit_z = F.mse_loss(z, e.detach())  # ||sg[E(x)] - z||^2
        commit_e = F.mse_loss(e, z.detach())  # ||sg[z] - E(x)||^2
        loss = rec + commit_z + self.cfg.gamma * commit_e
        return loss, {"rec": float(rec.detach()), "commit": float(commit_e.detach())}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The training loss (Eq. 13) of standardised features; logs in `last_logs`."""
        loss, self.last_logs = self.loss(x)
        return loss

    @torch.no_grad()
    def fit_latent_stats(self, features: list[torch.Tensor]) -> None:
        """Set latent_mean/std from raw feature clips [(T, 263)] so diffusion sees unit-scale latents."""
        zs = torch.cat([self.encode_raw(self.normalize(f[None]))[0] for f in features])
        self.latent_mean.copy_(zs.mean(0))
        self.latent_std.copy_(zs.std(0).clamp_min(1e-3))

    @torch.no_grad()
    def receptive_field(self, probe: int = 24) -> int:
        """Latent frames the newest 4 decoded frames depend on (measured with a gradient probe)."""
        with torch.enable_grad():
            z = torch.zeros(1, probe, self.cfg.latent_dim, requires_grad=True)
            self.decode_raw(z)[:, -self.cfg.down:].square().sum().backward()
        touched = (z.grad[0].abs().sum(-1) > 0).nonzero()
        return int(probe - touched.min()) if len(touched) else 1


class StreamingDecoder:
    """Committed latents in, 4 motion frames out per latent; equal to `CausalVAE.decode` offline."""

    def __init__(self, vae: CausalVAE):
        self.vae = vae
        self.rf = vae.receptive_field()
        self.buffer: list[torch.Tensor] = []  # (4,) standardised latents, newest last

    def reset(self) -> None:
        self.buffer = []

    @torch.no_grad()
    def push(self, latent: torch.Tensor) -> torch.Tensor:
        """(4,) standardised latent -> (4, 263) raw features of its frames."""
        self.buffer = (self.buffer + [latent])[-self.rf:]
        z = torch.stack(self.buffer)[None]  # (1, <=R, 4)
        return self.vae.decode(z)[0, -self.vae.cfg.down:]


__all__ = ["CausalConv1d", "CausalVAE", "StreamingDecoder"]
