"""The FloodDiffusion backbone (§4.2.3-§4.2.4): a DiT over latent motion frames that predicts velocity.

Inputs are one window of latent frames — committed context (alpha = 1) followed by the active
window — each with its own noise level alpha^k (the vectorised schedule, Eq. 11-12), and the
prompts that are active at each frame. Design points from the paper:

- **Bidirectional attention inside the window** (§4.2.3): every frame attends to every other frame
  of the window; `attention="causal"` restricts it to earlier frames (the ablation).
- **Frame-wise text conditioning by a biased attention mask** (§4.2.4): the prompts' token
  embeddings (and pooled sentence token) are extra keys/values; the mask lets motion frame k see
  only the tokens of the prompt active at k (plus one learned null token every frame may use, so
  classifier-free guidance can drop the text).
- Per-frame noise levels enter through adaLN-Zero modulation (DiT), one modulation per frame.
- Positions are learned and counted back from the newest frame, so the noise front always sits at
  the same position whatever the context length.

Shapes: B batch, W window frames, P prompts in the window, L tokens per prompt, d width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mio.body.flood.config import DiTConfig
from mio.train.checkpoint import Pretrained


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def level_embedding(alpha: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of the noise level alpha in [0, 1] (scaled to 0..1000). (..., ) -> (..., dim)"""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = alpha[..., None].float() * 1000.0 * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Attention(nn.Module):
    """Motion queries over [motion frames, text tokens] keys with a boolean mask."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, w, d = x.shape
        h = self.heads
        q = self.q(x).view(b, w, h, d // h).transpose(1, 2)  # (B, h, W, d/h)
        k, v = self.kv(torch.cat([x, text], dim=1)).chunk(2, dim=-1)  # (B, W + S, d) each
        k = k.view(b, -1, h, d // h).transpose(1, 2)
        v = v.view(b, -1, h, d // h).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])  # (B, h, W, d/h)
        return self.proj(out.transpose(1, 2).reshape(b, w, d))


class DiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.norm_text = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=-1)  # (B, W, d) each
        x = x + gate1 * self.attn(modulate(self.norm1(x), shift1, scale1), self.norm_text(text), mask)
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FloodDiT(Pretrained, nn.Module):
    kind = "flood-dit"

    config_class = DiTConfig

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.x_in = nn.Linear(cfg.latent_dim, d)
        self.pos = nn.Parameter(torch.zeros(cfg.window, d))  # index 0 = newest frame
        self.level = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.text_in = nn.Linear(cfg.text_dim, d)
        self.null_text = nn.Parameter(torch.zeros(1, 1, d))
        self.text_pos = nn.Parameter(torch.zeros(cfg.text_tokens + 1, d))  # +1: pooled sentence token
        self.blocks = nn.ModuleList([DiTBlock(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.out = nn.Linear(d, cfg.latent_dim)
        self._init()

    def _init(self) -> None:
        def basic(m: nn.Module) -> None:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

        self.apply(basic)
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.text_pos, std=0.02)
        nn.init.normal_(self.null_text, std=0.02)
        for blk in self.blocks:  # adaLN-Zero: every block starts as the identity
            nn.init.zeros_(blk.ada[-1].weight)
            nn.init.zeros_(blk.ada[-1].bias)
        nn.init.zeros_(self.ada_out[-1].weight)
        nn.init.zeros_(self.ada_out[-1].bias)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def text_keys(self, tokens: torch.Tensor, mask: torch.Tensor, sentence: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt embeddings -> key tokens (B, P*(L+1), d) and their validity (B, P*(L+1))."""
        b, p, L, _ = tokens.shape
        seq = torch.cat([sentence[:, :, None], tokens], dim=2)  # (B, P, L+1, D)
        keys = self.text_in(seq) + self.text_pos[: L + 1]
        valid = torch.cat([mask.any(-1, keepdim=True), mask], dim=2)  # sentence token valid if any token is
        return keys.reshape(b, p * (L + 1), -1), valid.reshape(b, p * (L + 1))

    def attention_mask(self, prompt_id: torch.Tensor, text_valid: torch.Tensor, n_prompts: int) -> torch.Tensor:
        """(B, W, W + 1 + P*(L+1)) bool: window frames (all, or earlier ones if causal), the null
        token, and the tokens of the prompt active at each frame (§4.2.4's biased mask)."""
        b, w = prompt_id.shape
        if self.cfg.attention == "causal":
            frames = torch.ones(w, w, dtype=torch.bool).tril()[None].expand(b, w, w)
        elif self.cfg.attention == "bidirectional":
            frames = torch.ones(b, w, w, dtype=torch.bool)
        else:
            raise ValueError(f"unknown attention {self.cfg.attention!r}; bidirectional or causal")
        per_prompt = text_valid.shape[1] // n_prompts
        key_prompt = torch.arange(n_prompts).repeat_interleave(per_prompt)  # (P*(L+1),)
        text = (prompt_id[:, :, None] == key_prompt[None, None]) & text_valid[:, None, :]  # (B, W, S)
        null = torch.ones(b, w, 1, dtype=torch.bool)
        return torch.cat([frames, null, text], dim=-1)

    def forward(self, x: torch.Tensor, alpha: torch.Tensor, prompt_id: torch.Tensor, tokens: torch.Tensor,
                token_mask: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        """Velocity (B, W, C) for noisy latents x (B, W, C) at levels alpha (B, W); prompt_id (B, W)
        indexes the prompts tokens (B, P, L, D), token_mask (B, P, L), sentence (B, P, D)."""
        b, w, _ = x.shape
        h = self.x_in(x) + self.pos[:w].flip(0)  # newest frame gets pos[0]
        c = self.level(level_embedding(alpha, self.cfg.dim))  # (B, W, d)
        keys, valid = self.text_keys(tokens, token_mask, sentence)
        text = torch.cat([self.null_text.expand(b, 1, -1), keys], dim=1)  # (B, 1 + S, d)
        mask = self.attention_mask(prompt_id, valid, tokens.shape[1])
        for blk in self.blocks:
            h = blk(h, c, text, mask)
        shift, scale = self.ada_out(c).chunk(2, dim=-1)
        return self.out(modulate(self.norm_out(h), shift, scale))


__all__ = ["FloodDiT", "level_embedding", "modulate"]
