"""UniLS = multi-scale VQ-VAE + autoregressive generator, saved together (safetensors + config.json).

Stages (§3.2): `vq` trains the VQ-VAE alone; `free` (stage 1) the audio-free generator on motion
only (Eq. 7-8); `audio` (stage 2) adds the two cross-attentions per block and tunes the stage-1
backbone through LoRA (Eq. 9); `e2e` is the single-stage ablation: the audio generator trained
from scratch on the dyadic data (§3.1 "listening stiffness").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from mio.face.unils.config import UniLSConfig
from mio.face.unils.transformer import UniLSGenerator, add_lora
from mio.face.unils.vqvae import MultiScaleVQVAE
from mio.train.checkpoint import Pretrained

KIND = "unils"
STAGES = ("vq", "free", "audio", "e2e")
EMBEDDED = Path(__file__).parent / "weights" / "unils-tiny"


class UniLS(Pretrained, nn.Module):
    """`UniLS.from_pretrained(path, merge=True)`: with `merge`, stage-2 LoRA adapters are folded into the
    weights (no extra matmuls per frame, and no `peft` import at run time). None: the embedded model."""

    kind = KIND
    embedded = EMBEDDED

    @classmethod
    def from_config(cls, config: dict[str, Any], *, merge: bool = True) -> UniLS:
        cfg = UniLSConfig.from_dict(config)
        stage = config.get("stage", "audio")
        return cls(cfg, stage, lora=not _folds(cfg, stage, merge))

    @classmethod
    def prepare_state(cls, state: dict[str, torch.Tensor], config: dict[str, Any], *,
                      merge: bool = True) -> dict[str, torch.Tensor]:
        cfg = UniLSConfig.from_dict(config)
        if _folds(cfg, config.get("stage", "audio"), merge) and any("lora_" in k for k in state):
            return fold_lora(state, cfg.lora_alpha, cfg.lora_rank)
        return state

    def __init__(self, cfg: UniLSConfig, stage: str = "audio", *, lora: bool = True) -> None:
        """`lora=False` builds stage 2 without adapters (for weights whose LoRA is already folded in)."""
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"unknown UniLS stage {stage!r}; one of {STAGES}")
        self.cfg, self.stage = cfg, stage
        self.vq = MultiScaleVQVAE(cfg)
        self.gen = None if stage == "vq" else UniLSGenerator(cfg, audio=stage in ("audio", "e2e"))
        if stage == "audio" and cfg.lora_rank > 0 and lora:
            add_lora(self.gen, cfg.lora_rank, cfg.lora_alpha)

    @property
    def uses_audio(self) -> bool:
        return self.stage in ("audio", "e2e")

    def config_dict(self) -> dict[str, Any]:
        return {**self.cfg.to_dict(), "stage": self.stage}


def fold_lora(state: dict[str, torch.Tensor], alpha: int, rank: int) -> dict[str, torch.Tensor]:
    """W + (alpha / r) B A for every LoRA-adapted linear, with the plain (un-adapted) key names."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if "lora_" in k:
            continue
        if ".base_layer." in k:
            prefix, _, leaf = k.partition(".base_layer.")
            if leaf == "weight":
                a, b = state[f"{prefix}.lora_A.default.weight"], state[f"{prefix}.lora_B.default.weight"]
                v = v + (alpha / rank) * (b @ a)
            k = f"{prefix}.{leaf}"
        out[k] = v
    return out


def _folds(cfg: UniLSConfig, stage: str, merge: bool) -> bool:
    return merge and stage == "audio" and cfg.lora_rank > 0


def copy_stage1(target: UniLS, stage1: UniLS) -> None:
    """Stage 2 starts from stage 1: the VQ-VAE and every backbone weight (the audio layers stay new)."""
    target.vq.load_state_dict(stage1.vq.state_dict())
    if stage1.gen is None:
        return
    src = stage1.gen.state_dict()
    dst = target.gen.state_dict()
    for name in dst:
        base = name.replace(".base_layer.", ".")
        if base in src and "lora_" not in name:
            dst[name] = src[base]
    target.gen.load_state_dict(dst)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


