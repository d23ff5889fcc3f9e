"""Kodama tokenizer configuration (paper §2.1.2): rates fixed by the paper, widths by preset.

The rates are not options: 24 kHz in, 1920x compression -> 12.5 frames/s, 2 semantic + 6
acoustic codebooks of 1024 entries (10 bits) -> 12.5 x 8 x 10 = 1000 bit/s. `CodecConfig.check()`
enforces them, so a preset can change widths and depths but never the token interface the TTS
is trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mio.core.config import Settings
from mio.core.errors import ConfigError

SAMPLE_RATE = 24000  # acoustic stream and decoder output
SEMANTIC_RATE = 16000  # the semantic encoder (and its teacher) hear 16 kHz
HOP = 1920  # 24 kHz samples per token frame: 80 ms, 12.5 Hz
FRAME_RATE = SAMPLE_RATE / HOP  # 12.5
N_SEMANTIC_Q = 2
N_ACOUSTIC_Q = 6
CODEBOOK_SIZE = 1024
BITRATE = FRAME_RATE * (N_SEMANTIC_Q + N_ACOUSTIC_Q) * math.log2(CODEBOOK_SIZE)  # 1000.0


@dataclass(frozen=True)
class CodecConfig(Settings):
    # --- acoustic encoder (24 kHz -> 50 Hz): conv lift, 4 strided stages doubling channels, MRF
    acoustic_base: int = 32  # channels after the lift; doubled by each of the 4 stages (32 -> 512)
    acoustic_strides: tuple[int, ...] = (4, 4, 5, 6)  # product 480: 24 kHz -> 50 Hz
    mrf_kernels: tuple[int, ...] = (3, 5, 7)  # the three parallel multi-dilation residual blocks
    mrf_dilations: tuple[int, ...] = (1, 3, 5)
    # --- semantic encoder (16 kHz -> 12.5 Hz)
    semantic_base: int = 32
    semantic_strides: tuple[int, ...] = (4, 4, 5, 4)  # product 320: 16 kHz -> 50 Hz
    semantic_dim: int = 256  # embedding width that the FFT band-split divides
    band_cutoff: float = 0.25  # initial low band: this fraction of the channel-FFT bins
    # --- latent streams at 12.5 Hz (x4 down from 50 Hz) and quantisers
    latent_dim: int = 256
    code_dim: int = 16  # factorised codes: lookups in a low-dimensional, l2-normalised space
    # "residual": DAC's RVQ (codes carry direction and size); "cosine": direction-only codes, the
    # default only so that checkpoints written before the setting existed load as they were trained
    quantizer: str = "cosine"
    # --- Vocos decoder (12.5 Hz -> 100 Hz ConvNeXt -> ISTFT at 24 kHz)
    vocos_dim: int = 256
    vocos_layers: int = 6
    vocos_mult: int = 3  # ConvNeXt MLP expansion
    vocos_kernel: int = 7
    n_fft: int = 960
    istft_hop: int = 240  # 8 ISTFT frames per token frame
    # --- semantic teacher (training only)
    teacher_dim: int = 384  # whisper-tiny encoder width (1024 for W2v-BERT 2.0)
    teacher_rate: float = 50.0  # teacher frames per second
    # --- fixed by the paper (checked)
    sample_rate: int = SAMPLE_RATE
    semantic_rate: int = SEMANTIC_RATE
    hop: int = HOP
    n_semantic_q: int = N_SEMANTIC_Q
    n_acoustic_q: int = N_ACOUSTIC_Q
    codebook_size: int = CODEBOOK_SIZE
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept in config.json

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        from mio.talker.codec.quant import QUANTIZERS

        if self.quantizer not in QUANTIZERS:
            raise ConfigError(f"quantizer must be one of {QUANTIZERS}, not {self.quantizer!r}")
        if math.prod(self.acoustic_strides) * 4 != self.hop:
            raise ConfigError(f"acoustic strides {self.acoustic_strides} x 4 must equal the hop {self.hop}")
        if math.prod(self.semantic_strides) * 4 * self.sample_rate != self.hop * self.semantic_rate:
            raise ConfigError(f"semantic strides {self.semantic_strides} x 4 must give 12.5 Hz at 16 kHz")
        if len(self.acoustic_strides) != 4:
            raise ConfigError("the acoustic encoder has four strided stages (§2.1.2)")
        if self.hop % self.istft_hop or self.n_fft % self.istft_hop:
            raise ConfigError("istft_hop must divide the hop and n_fft")
        if (self.sample_rate, self.hop, self.codebook_size, self.n_semantic_q, self.n_acoustic_q) != (
                SAMPLE_RATE, HOP, CODEBOOK_SIZE, N_SEMANTIC_Q, N_ACOUSTIC_Q):
            raise ConfigError("the Kodama token interface is fixed: 24 kHz, hop 1920, 2 + 6 codebooks of 1024")

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    @property
    def n_q(self) -> int:
        return self.n_semantic_q + self.n_acoustic_q

    @property
    def bitrate(self) -> float:
        return self.frame_rate * self.n_q * math.log2(self.codebook_size)

    @property
    def semantic_hop(self) -> int:
        return self.hop * self.semantic_rate // self.sample_rate  # 1280

    # --- presets ------------------------------------------------------------------------
    @classmethod
    def paper(cls) -> CodecConfig:
        """Widths of §2.1.2: acoustic encoder up to 512 channels at 50 Hz, W2v-BERT 2.0 teacher."""
        return cls(acoustic_base=32, semantic_base=64, semantic_dim=1024, latent_dim=512, vocos_dim=512,
                   vocos_layers=8, teacher_dim=1024, mrf_kernels=(3, 7, 11), quantizer="residual")

    @classmethod
    def embedded(cls) -> CodecConfig:
        """The checkpoint trained on 2 CPU cores: the paper's layout, narrower and shallower."""
        return cls(acoustic_base=8, semantic_base=8, semantic_dim=128, latent_dim=128, vocos_dim=128,
                   vocos_layers=4, mrf_kernels=(3, 5, 7), mrf_dilations=(1, 3), quantizer="residual")

    @classmethod
    def tiny(cls) -> CodecConfig:
        """For tests: every part present, a few thousand parameters per part."""
        return cls(acoustic_base=4, semantic_base=4, semantic_dim=16, latent_dim=16, code_dim=4, vocos_dim=16,
                   vocos_layers=1, mrf_kernels=(3, 3, 3), mrf_dilations=(1, 3), teacher_dim=8, quantizer="residual")


PRESETS = {"paper": CodecConfig.paper, "embedded": CodecConfig.embedded, "tiny": CodecConfig.tiny}
