"""The Kodama tokenizer (paper §2.1.2, Figure 2), readable top-down.

    24 kHz wav ─┬─ CausalResampler (16 kHz) ─ SemanticEncoder ─ BandSplit ─ low ─ RVQ(2) ──┐
                │                                                    └─ high ─┐           │
                └─ AcousticEncoder (50 Hz, MRF) ─ x4 down ─ fuse(acoustic, high) ─ RVQ(6) ─┤
                                                                                          + ─ Vocos ─ 24 kHz wav
    tokens: (B, 8, T) at 12.5 Hz, 1024 entries each -> 1 kbps

Every layer is causal (modules.py), so `encode` and `decode` also stream frame by frame
(stream.py). During training a semantic head maps the quantised low band back to the frozen
teacher's features (§2.1.2's semantic reconstruction).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mio.talker.codec.config import CodecConfig
from mio.talker.codec.modules import (
    CausalConv1d,
    CausalResampler,
    ChannelNorm,
    ConvNeXtBlock,
    ISTFTHead,
    MultiReceptiveField,
)
from mio.talker.codec.quant import ResidualVQ, pointwise
from mio.train.checkpoint import Pretrained


def _downsampler(cin: int, cout: int, stride: int) -> nn.Sequential:
    # LeakyReLU, not Snake, before the strided convs: at 16-24 kHz Snake's sin() cost more than
    # the convolutions themselves; Snake stays where §2.1.2 puts it, in the residual blocks.
    return nn.Sequential(nn.LeakyReLU(0.1), CausalConv1d(cin, cout, 2 * stride, stride=stride))


class SemanticEncoder(nn.Module):
    """16 kHz waveform -> semantic embeddings at 12.5 Hz (the student of the frozen teacher)."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        c = cfg.semantic_base
        layers: list[nn.Module] = [CausalConv1d(1, c, 7)]
        for s in cfg.semantic_strides:  # 16 kHz -> 50 Hz
            layers.append(_downsampler(c, 2 * c, s))
            c *= 2
        layers.append(_downsampler(c, cfg.semantic_dim, 4))  # 50 -> 12.5 Hz
        self.net = nn.Sequential(*layers)

    def forward(self, wav16: torch.Tensor) -> torch.Tensor:  # (B, 1, N16) -> (B, S, N16 / 1280)
        return self.net(wav16)


class AcousticEncoder(nn.Module):
    """24 kHz waveform: conv lift, four strided stages doubling the channels, then three parallel
    multi-dilation residual blocks (Snake) averaged and added back -> (B, 16 x base, T) at 50 Hz."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        c = cfg.acoustic_base
        layers: list[nn.Module] = [CausalConv1d(1, c, 7)]
        for s in cfg.acoustic_strides:
            layers.append(_downsampler(c, 2 * c, s))
            c *= 2
        layers.append(MultiReceptiveField(c, cfg.mrf_kernels, cfg.mrf_dilations))
        self.net = nn.Sequential(*layers)
        self.dim = c

    def forward(self, wav: torch.Tensor) -> torch.Tensor:  # (B, 1, N) -> (B, C, N / 480)
        return self.net(wav)


class BandSplit(nn.Module):
    """Learnable FFT band-split of the semantic embeddings, along their channel axis.

    rfft over the channels of each frame, a learnable soft mask (sigmoid of per-bin logits, set
    to the lowest `cutoff` of the bins at the start) keeps the low band, irfft back; the high band
    is the remainder, so low + high == x exactly. Per frame, hence causal."""

    def __init__(self, dim: int, cutoff: float) -> None:
        super().__init__()
        bins = dim // 2 + 1
        k = max(1, round(cutoff * bins))
        self.logits = nn.Parameter(torch.where(torch.arange(bins) < k, 4.0, -4.0))
        self.dim = dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (B, S, T) -> 2 x (B, S, T)
        spec = torch.fft.rfft(x, dim=1)
        low = torch.fft.irfft(spec * torch.sigmoid(self.logits)[None, :, None], n=self.dim, dim=1)
        return low, x - low


class VocosDecoder(nn.Module):
    """Tokens' latents at 12.5 Hz -> 24 kHz: sub-pixel upsampling to the ISTFT frame rate,
    causal ConvNeXt blocks, and an ISTFT head (Vocos)."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.up = cfg.hop // cfg.istft_hop  # ISTFT frames per token frame (8)
        self.dim = cfg.vocos_dim
        self.upsample = nn.Linear(cfg.latent_dim, cfg.vocos_dim * self.up)
        self.embed = CausalConv1d(cfg.vocos_dim, cfg.vocos_dim, cfg.vocos_kernel)
        self.norm = ChannelNorm(cfg.vocos_dim)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(cfg.vocos_dim, cfg.vocos_mult, cfg.vocos_kernel)
                                      for _ in range(cfg.vocos_layers)])
        self.final_norm = ChannelNorm(cfg.vocos_dim)
        self.head = ISTFTHead(cfg.vocos_dim, cfg.n_fft, cfg.istft_hop)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, L, T) -> (B, 1, T * hop)
        b, _, t = z.shape
        h = self.upsample(z.transpose(1, 2)).reshape(b, t * self.up, self.dim).transpose(1, 2)  # (B, V, 8T)
        h = self.final_norm(self.blocks(self.norm(self.embed(h))))
        return self.head(h)


class KodamaCodec(Pretrained, nn.Module):
    """Kodama tokenizer: `encode` (B, 1, N) 24 kHz -> (B, 8, N / 1920); `decode` the inverse.
    `KodamaCodec.from_pretrained()` is the embedded checkpoint (mio/talker/codec/embedded)."""

    kind = "kodama-codec"
    embedded = Path(__file__).resolve().parent / "embedded"

    config_class = CodecConfig

    @classmethod
    def prepare_state(cls, state: dict, config: dict, **options) -> dict:
        return {k: v.float() for k, v in state.items()}  # a float16 shipping copy runs in float32

    def __init__(self, cfg: CodecConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or CodecConfig()
        self.resample = CausalResampler(2, 3)
        self.semantic = SemanticEncoder(cfg)
        self.band_split = BandSplit(cfg.semantic_dim, cfg.band_cutoff)
        self.semantic_in = nn.Conv1d(cfg.semantic_dim, cfg.latent_dim, 1)
        self.semantic_rvq = ResidualVQ(cfg.latent_dim, n_q=cfg.n_semantic_q, codebook_size=cfg.codebook_size,
                                       code_dim=cfg.code_dim, mode=cfg.quantizer)
        self.acoustic = AcousticEncoder(cfg)
        self.acoustic_down = _downsampler(self.acoustic.dim, cfg.latent_dim, 4)  # 50 -> 12.5 Hz
        self.high_in = nn.Conv1d(cfg.semantic_dim, cfg.latent_dim, 1)
        self.fuse = nn.Conv1d(2 * cfg.latent_dim, cfg.latent_dim, 1)
        self.acoustic_rvq = ResidualVQ(cfg.latent_dim, n_q=cfg.n_acoustic_q, codebook_size=cfg.codebook_size,
                                       code_dim=cfg.code_dim, mode=cfg.quantizer)
        self.decoder = VocosDecoder(cfg)
        # training only: quantised low band -> teacher features at the teacher's frame rate
        self.teacher_per_frame = round(cfg.teacher_rate / cfg.frame_rate)
        self.semantic_head = nn.Sequential(
            CausalConv1d(cfg.latent_dim, cfg.latent_dim, 3), nn.GELU(),
            nn.Conv1d(cfg.latent_dim, cfg.teacher_dim * self.teacher_per_frame, 1))

    # --- the two streams -----------------------------------------------------------------
    def _latents(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, N) -> semantic low band and fused acoustic latent, both (B, L, N / 1920)."""
        if wav.shape[-1] % self.cfg.hop:
            raise ValueError(f"audio length {wav.shape[-1]} is not a multiple of {self.cfg.hop}; use pad_to_frames")
        sem = self.semantic(self.resample(wav))  # (B, S, T)
        low, high = self.band_split(sem)
        ac = self.acoustic_down(self.acoustic(wav))  # (B, L, T)
        fused = pointwise(self.fuse, torch.cat([ac, pointwise(self.high_in, high)], dim=1))
        return pointwise(self.semantic_in, low), fused

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, 1, N) 24 kHz, N a multiple of 1920 -> codes (B, 8, N / 1920): 2 semantic, then 6 acoustic."""
        low, fused = self._latents(wav)
        return torch.cat([self.semantic_rvq.encode(low), self.acoustic_rvq.encode(fused)], dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, 8, T) -> (B, 1, T * 1920) 24 kHz."""
        if codes.dim() != 3 or codes.shape[1] != self.cfg.n_q:
            raise ValueError(f"codes must be (B, {self.cfg.n_q}, T), got {tuple(codes.shape)}")
        n = self.cfg.n_semantic_q
        z = self.semantic_rvq.from_indices(codes[:, :n]) + self.acoustic_rvq.from_indices(codes[:, n:])
        return self.decoder(z)

    def forward(self, wav: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass: reconstruction, codes, commitment loss and the teacher-feature prediction."""
        low, fused = self._latents(wav)
        q_sem, c_sem, l_sem = self.semantic_rvq(low)
        q_ac, c_ac, l_ac = self.acoustic_rvq(fused)
        audio = self.decoder(q_sem + q_ac)
        b, _, t = q_sem.shape
        sem = self.semantic_head(q_sem)  # (B, teacher_dim * k, T)
        sem = sem.transpose(1, 2).reshape(b, t * self.teacher_per_frame, self.cfg.teacher_dim)  # (B, kT, D)
        return {"audio": audio, "codes": torch.cat([c_sem, c_ac], dim=1), "commit": l_sem + l_ac,
                "semantic": sem}

    def revive_dead_codes(self) -> int:
        return self.semantic_rvq.revive_dead_codes() + self.acoustic_rvq.revive_dead_codes()


def pad_to_frames(wav: torch.Tensor, hop: int) -> torch.Tensor:
    """Right-pad (..., N) with zeros to a whole number of token frames."""
    return F.pad(wav, (0, (-wav.shape[-1]) % hop))
