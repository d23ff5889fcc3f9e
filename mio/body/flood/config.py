"""FloodDiffusion configurations (§4.2): the causal VAE and the diffusion-forcing DiT, with presets.

`tiny` trains in minutes on a CPU (tests and the embedded checkpoint use it); `paper` is the
size one would train on HumanML3D with a GPU (the paper does not list its exact widths; these
follow a DiT-S-like budget). Ablation variants are config values, not flags scattered in code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mio.core.config import Settings
from mio.core.layouts import HUMANML3D


@dataclass(frozen=True)
class VAEConfig(Settings):
    feat_dim: int = HUMANML3D.dim  # 263-D HumanML3D features in (§4.1)
    latent_dim: int = 4  # latent channels (§4.2.2)
    channels: tuple[int, ...] = (64, 96)  # width after each x2 downsampling stage; two stages = x4 (§4.2.2)
    base: int = 64  # width of the first conv
    blocks: int = 1  # residual blocks per stage
    kernel: int = 3  # causal conv kernel (left-padded by kernel - 1)
    latent_noise: float = 0.1  # sigma of z = E(x) + sigma * eps in Eq. 13 (decoder robustness)
    gamma: float = 0.25  # weight of the encoder commitment term of Eq. 13

    @property
    def down(self) -> int:
        return 2 ** len(self.channels)  # temporal downsampling factor (4)

    @staticmethod
    def tiny() -> VAEConfig:
        return VAEConfig(channels=(32, 48), base=32)

    @staticmethod
    def paper() -> VAEConfig:
        return VAEConfig(channels=(256, 512), base=256, blocks=2)


@dataclass(frozen=True)
class DiTConfig(Settings):
    latent_dim: int = 4  # channels of the VAE latent
    dim: int = 128  # transformer width
    depth: int = 4  # DiT blocks
    heads: int = 4
    mlp_ratio: float = 4.0
    text_dim: int = 384  # MiniLM token width (T5-base: 768)
    text_tokens: int = 12  # token embeddings kept per prompt (+1 pooled sentence token)
    n_s: int = 8  # streaming step size of Eq. 14: the active window holds n_s latent frames
    context: int = 8  # committed latent frames the model sees before the active window
    attention: str = "bidirectional"  # inside the window: bidirectional (paper) | causal (ablation)
    schedule: str = "triangular"  # training noise: triangular Eq. 14 | random (vanilla DF) | chunk
    max_prompts: int = 3  # distinct prompts one window can hold
    text_dropout: float = 0.1  # training: drop the prompt (null text) for classifier-free guidance

    @property
    def window(self) -> int:
        return self.context + self.n_s

    @staticmethod
    def tiny() -> DiTConfig:
        return DiTConfig(dim=64, depth=2, heads=4, n_s=4, context=4)

    @staticmethod
    def small() -> DiTConfig:  # the embedded checkpoint
        return DiTConfig()

    @staticmethod
    def paper() -> DiTConfig:
        return DiTConfig(dim=384, depth=8, heads=6, text_dim=768, text_tokens=32, n_s=10, context=20)


PRESETS = ("tiny", "small", "paper")


def vae_preset(name: str) -> VAEConfig:
    return {"tiny": VAEConfig.tiny, "small": VAEConfig, "paper": VAEConfig.paper}[name]()


def dit_preset(name: str) -> DiTConfig:
    return {"tiny": DiTConfig.tiny, "small": DiTConfig.small, "paper": DiTConfig.paper}[name]()


__all__ = ["DiTConfig", "PRESETS", "VAEConfig", "dit_preset", "replace", "vae_preset"]
