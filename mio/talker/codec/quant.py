"""Residual vector quantisation (L_RVQ of Eq. 2: the commitment term) with factorised codes.

A `VectorQuantizer` projects its input to `code_dim`, finds the nearest of `codebook_size`
codes by cosine similarity, and projects back (DAC's factorised codes: lookups in a small space
use the codebook far better than in the full width). A `ResidualVQ` is a stack of them, each
quantising what the previous ones left. Both return `(quantized, indices, loss)` and invert with
`from_indices`.

Two modes, chosen by the checkpoint's `quantizer` setting:
- `residual` (DAC): the code's own vector is what goes back, and the commitment pulls the
  *unnormalised* projection onto it, so each stage transmits direction and size and leaves a
  genuinely smaller residual for the next.
- `cosine` (the first embedded checkpoints): unit-norm codes, commitment between unit vectors.
  It transmits directions only and leaves the input's scale free; trained that way, the latent
  grew to ~1e7 while each code's output stayed ~2, so every stage saw nearly the same vector and
  the stack behaved as six projections of one latent, not as a residual quantiser. Kept so those
  checkpoints still load.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

QUANTIZERS = ("residual", "cosine")  # RVQ modes; see the module docstring


def pointwise(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 Conv1d as a matmul: same numbers, without conv1d's slow path for short inputs."""
    y = torch.einsum("oc,bct->bot", conv.weight[:, :, 0], x)
    return y if conv.bias is None else y + conv.bias[:, None]


class VectorQuantizer(nn.Module):
    def __init__(self, dim: int, *, codebook_size: int, code_dim: int, mode: str = "residual") -> None:
        super().__init__()
        if mode not in QUANTIZERS:
            raise ValueError(f"quantizer mode must be one of {QUANTIZERS}, not {mode!r}")
        self.mode = mode
        self.codebook_size = codebook_size
        self.proj_in = nn.Conv1d(dim, code_dim, 1)
        self.proj_out = nn.Conv1d(code_dim, dim, 1)
        self.codebook = nn.Embedding(codebook_size, code_dim)
        self.register_buffer("usage", torch.ones(codebook_size))  # EMA of how often each code is picked
        self.last_latents: torch.Tensor | None = None  # (N, code_dim), kept in training to revive dead codes

    def _codes(self) -> torch.Tensor:
        w = self.codebook.weight
        if self.training or torch.is_grad_enabled():
            return F.normalize(w, dim=-1)
        key = (w.data_ptr(), w._version)  # inference: normalise once per weight version
        if getattr(self, "_cache_key", None) != key:
            self._cache = F.normalize(w.detach(), dim=-1)
            self._cache_key = key
        return self._cache

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D, T) -> latents (B, T, d) and indices (B, T)."""
        z = pointwise(self.proj_in, x).transpose(1, 2)  # (B, T, d)
        u = F.normalize(z, dim=-1)
        idx = (u @ self._codes().t()).argmax(dim=-1)  # max cosine == min distance on the sphere
        return (z if self.mode == "residual" else u), idx

    def _values(self) -> torch.Tensor:
        """What a code sends back: its own vector (residual) or its direction (cosine)."""
        return self.codebook.weight if self.mode == "residual" else self._codes()

    def from_indices(self, idx: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, D, T)
        return pointwise(self.proj_out, F.embedding(idx, self._values()).transpose(1, 2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z, idx = self.encode(x)
        q = F.embedding(idx, self._values())  # (B, T, d)
        # commitment pulls the encoder to its code, the codebook term pulls the code to the encoder
        loss = 0.25 * F.mse_loss(z, q.detach()) + F.mse_loss(q, z.detach())
        q = z + (q - z).detach()  # straight-through estimator
        if self.training:
            with torch.no_grad():
                counts = torch.bincount(idx.flatten(), minlength=self.codebook_size).float()
                self.usage.mul_(0.99).add_(counts / max(1, idx.numel()) * self.codebook_size, alpha=0.01)
            self.last_latents = z.detach().reshape(-1, z.shape[-1])
        return pointwise(self.proj_out, q.transpose(1, 2)), idx, loss

    @torch.no_grad()
    def revive_dead_codes(self, threshold: float = 0.02) -> int:
        """Replace codes whose usage fell below `threshold` x uniform by recent encoder outputs.

        Under DDP every rank updates `usage` from its own batch, so the ranks first agree on rank
        0's usage (otherwise one rank could find dead codes and wait in a broadcast that another
        never joins), then rank 0's replacements are broadcast: the replicas stay identical."""
        if self.last_latents is None:
            return 0
        distributed = dist.is_available() and dist.is_initialized()
        usage = self.usage.clone()
        if distributed:
            dist.broadcast(usage, 0)
        dead = usage < threshold
        n = int(dead.sum())
        if n:
            pick = self.last_latents[torch.randint(0, self.last_latents.shape[0], (n,))]
            new = self.codebook.weight.data.clone()
            new[dead] = pick + 0.01 * torch.randn_like(pick)
            usage[dead] = 1.0
            if distributed:
                dist.broadcast(new, 0)
            self.codebook.weight.data.copy_(new)
        self.usage.copy_(usage)
        return n


class ResidualVQ(nn.Module):
    def __init__(self, dim: int, *, n_q: int, codebook_size: int, code_dim: int, mode: str = "residual") -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            VectorQuantizer(dim, codebook_size=codebook_size, code_dim=code_dim, mode=mode) for _ in range(n_q))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, D, T) -> quantized (B, D, T), indices (B, n_q, T), summed commitment loss."""
        residual, out = x, torch.zeros_like(x)
        codes, losses = [], []
        for vq in self.layers:
            q, idx, loss = vq(residual)
            residual = residual - q.detach() if not self.training else residual - q
            out = out + q
            codes.append(idx)
            losses.append(loss)
        return out, torch.stack(codes, dim=1), torch.stack(losses).sum()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D, T) -> indices (B, n_q, T)."""
        residual, codes = x, []
        for vq in self.layers:
            _, idx = vq.encode(residual)
            codes.append(idx)
            residual = residual - vq.from_indices(idx)
        return torch.stack(codes, dim=1)

    def from_indices(self, codes: torch.Tensor) -> torch.Tensor:  # (B, n_q, T) -> (B, D, T)
        return sum(vq.from_indices(codes[:, i]) for i, vq in enumerate(self.layers))  # type: ignore[return-value]

    def revive_dead_codes(self, threshold: float = 0.02) -> int:
        return sum(vq.revive_dead_codes(threshold) for vq in self.layers)
