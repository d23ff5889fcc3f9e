"""UniLS configuration (§3.2): presets `tiny` (the embedded checkpoint, CPU) and `paper`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mio.core.config import Settings
from mio.core.errors import ConfigError
from mio.core.layouts import LAYOUTS


@dataclass(frozen=True)
class UniLSConfig(Settings):
    layout: str = "arkit52"  # parameter layout; its dimension is the model's motion dimension D
    # ---- multi-scale VQ-VAE (§3.2 implementation details)
    chunk: int = 10  # frames per motion chunk (window); the paper uses 100 (4 s at 25 fps)
    scales: tuple[int, ...] = (1, 5, 10)  # token lengths per scale, last = chunk; paper [1, 5, 25, 50, 100]
    codebook_size: int = 256  # codebook entries (paper 256)
    code_dim: int = 64  # code dimension (paper 64)
    vq_hidden: int = 128  # channels of the conv encoder/decoder
    vq_layers: int = 2  # residual conv blocks in the encoder and in the decoder
    # ---- autoregressive transformer (Eq. 7-9)
    context: int = 20  # past motion frames M_{1:t} the generator sees (Eq. 7)
    audio_context: int = 25  # past audio frames both cross-attentions see (1 s)
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.1
    n_styles: int = 8  # identities of the style embedding s
    audio_dim: int = 128  # log-mel features per face frame (4 hops x 32 mels)
    # ---- stage 2
    lora_rank: int = 8  # LoRA rank of the stage-1 backbone in stage 2 (0: none)
    lora_alpha: int = 16
    # ---- sampling
    temperature: float = 0.9
    top_k: int = 20

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"unknown face layout {self.layout!r}; choose one of {sorted(LAYOUTS)}")
        if not self.scales or self.scales[-1] != self.chunk or list(self.scales) != sorted(set(self.scales)):
            raise ConfigError(f"scales must increase and end with the chunk length {self.chunk}, got {self.scales}")
        if self.d_model % self.n_heads:
            raise ConfigError("d_model must be divisible by n_heads")

    @property
    def motion_dim(self) -> int:
        return LAYOUTS[self.layout].dim

    @property
    def tokens_per_chunk(self) -> int:
        return sum(self.scales)


def tiny(**kw: Any) -> UniLSConfig:
    """The embedded preset: 0.4 s chunks, ~1 M parameters; trained here on CPU."""
    return UniLSConfig(**kw)

def paper(**kw: Any) -> UniLSConfig:
    """The paper's sizes: 100-frame (4 s) windows, scales [1, 5, 25, 50, 100], 256 x 64 codebook."""
    base: dict[str, Any] = dict(layout="flame112", chunk=100, scales=(1, 5, 25, 50, 100), vq_hidden=256,
                                vq_layers=3, context=100, audio_context=100, d_model=512, n_layers=8,
                                n_heads=8, n_styles=512, audio_dim=128, lora_rank=16, lora_alpha=32)
    base.update(kw)
    return UniLSConfig(**base)

PRESETS = {"tiny": tiny, "paper": paper}

def preset(name: str, **kw: Any) -> UniLSConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown UniLS preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name](**kw)
