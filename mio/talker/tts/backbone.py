"""A small Llama-style decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU) with a KV cache.

The embedded Kodama-TTS backbone. It is the same architecture as SmolLM2 / Qwen3 (which load
through `transformers`), written out here because at this size `transformers`' per-call overhead
(~30 ms per generated frame on one core, plus a 15 s import) dominates the actual compute. It takes
`inputs_embeds` and returns an object with `last_hidden_state` and `past_key_values`, like the
`transformers` base models, so KodamaTTS drives every backbone the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

KVCache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values (B, kv_heads, S, head_dim)


@dataclass
class BackboneOutput:
    last_hidden_state: torch.Tensor  # (B, S, H)
    past_key_values: KVCache | None


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def rope_tables(pos: torch.Tensor, d: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (S, d) of the rotary embedding at positions pos (S,); computed once per forward."""
    inv = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d)  # (d/2,)
    ang = pos.float()[:, None] * inv[None]  # (S, d/2)
    ang = torch.cat([ang, ang], -1)  # (S, d)
    return ang.cos(), ang.sin()


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (rotate-half form) of x (B, h, S, d)."""
    d = x.shape[-1]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, kv_heads: int, theta: float, dropout: float) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.hd, self.theta, self.dropout = heads, kv_heads, dim // heads, theta, dropout
        self.q = nn.Linear(dim, heads * self.hd, bias=False)
        self.kv = nn.Linear(dim, 2 * kv_heads * self.hd, bias=False)
        self.o = nn.Linear(heads * self.hd, dim, bias=False)

    def forward(self, x: torch.Tensor, rot: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None,
                past: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, s, _ = x.shape
        q = self.q(x).view(b, s, self.heads, self.hd).transpose(1, 2)  # (B, h, S, d)
        k, v = self.kv(x).view(b, s, 2, self.kv_heads, self.hd).permute(2, 0, 3, 1, 4)  # 2 x (B, kv, S, d)
        q, k = rope(q, *rot), rope(k, *rot)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)  # (B, kv, P + S, d)
        rep = self.heads // self.kv_heads
        kk, vv = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)  # (B, h, P + S, d)
        drop = self.dropout if self.training else 0.0
        if mask is None:  # plain causal (prefill), or one new token that sees everything (decode)
            y = F.scaled_dot_product_attention(q, kk, vv, is_causal=s > 1 and past is None, dropout_p=drop)
        else:
            y = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask, dropout_p=drop)
        return self.o(y.transpose(1, 2).reshape(b, s, -1)), (k, v)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, kv_heads: int, hidden: int, theta: float, dropout: float) -> None:
        super().__init__()
        self.attn_norm, self.mlp_norm = RMSNorm(dim), RMSNorm(dim)
        self.attn = Attention(dim, heads, kv_heads, theta, dropout)
        self.gate_up = nn.Linear(dim, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x, rot, mask, past):
        a, cache = self.attn(self.attn_norm(x), rot, mask, past)
        x = x + a
        gate, up = self.gate_up(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up), cache


class TinyLlama(nn.Module):
    def __init__(self, dim: int, layers: int, heads: int, kv_heads: int, hidden: int, *, theta: float = 10000.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads, kv_heads, hidden, theta, dropout) for _ in range(layers))
        self.norm = RMSNorm(dim)
        self.head_dim, self.theta = dim // heads, theta
        for name, p in self.named_parameters():
            if p.ndim == 2:
                std = 0.02 / (2 * layers) ** 0.5 if name.endswith(("o.weight", "down.weight")) else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None,
                past_key_values: KVCache | None = None, use_cache: bool = False) -> BackboneOutput:
        """inputs_embeds (B, S, H); attention_mask (B, S) 1 = real token (right padding only)."""
        b, s, _ = inputs_embeds.shape
        start = 0 if not past_key_values else past_key_values[0][0].shape[2]
        rot = rope_tables(torch.arange(start, start + s), self.head_dim, self.theta)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            causal = torch.ones(s, s, dtype=torch.bool).tril()  # (S, S)
            mask = causal[None, None] & attention_mask.bool()[:, None, None, :]  # (B, 1, S, S)
            mask = mask | torch.eye(s, dtype=torch.bool)[None, None]  # padded queries see themselves (no NaN)
        x, caches = inputs_embeds, []
        for i, blk in enumerate(self.blocks):
            x, cache = blk(x, rot, mask, past_key_values[i] if past_key_values else None)
            caches.append(cache)
        return BackboneOutput(self.norm(x), caches if use_cache else None)
