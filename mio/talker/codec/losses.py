"""Training objective of the Kodama tokenizer (paper Eq. 1-5, §2.1).

    L_D = L_adv(D; G)                                                             (Eq. 1)
    L_G = l_adv L_adv(G; D) + l_mel L_mel + l_pitch L_pitch + l_fm L_fm + l_commit L_RVQ   (Eq. 2)
    L_adv(G; D) = sum_k E[(1 - D_k(x_hat))^2]                                     (Eq. 3) LS-GAN, generator
    L_adv(D; G) = sum_k E[(1 - D_k(x))^2] + E[D_k(x_hat)^2]                       (Eq. 4) LS-GAN, discriminators
    L_fm = sum_k sum_l |D_k^l(x) - D_k^l(x_hat)|_1 / mean|D_k^l(x)|               (Eq. 5) feature matching
    L = L_G + l_sem L_sem                     the semantic reconstruction of §2.1.2 (no equation number)

with D_k the multi-period (periods 2, 3, 5, 7, 11) and multi-scale STFT discriminators, L_mel an L2
distance of log-mel spectrograms at several resolutions, L_pitch an L2 distance of log-F0 on
voiced frames, and L_sem the distance of the semantic head's output to the frozen teacher's
features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mio.audio import mel_filterbank


@dataclass(frozen=True)
class LossWeights:
    # log-mel L2 starts near 25 and the semantic term near 2: these keep both in play
    adv: float = 1.0
    fm: float = 2.0
    mel: float = 1.0
    pitch: float = 1.0
    commit: float = 1.0
    semantic: float = 2.0


# --- mel ------------------------------------------------------------------------------------

class MelLoss(nn.Module):
    """L2 between log-mel spectrograms at several STFT resolutions (L_mel)."""

    def __init__(self, sr: int = 24000, scales: tuple[tuple[int, int], ...] = ((512, 32), (1024, 64), (2048, 128)),
                 floor: float = 1e-5):
        super().__init__()
        self.scales, self.floor = scales, floor
        for i, (n_fft, n_mels) in enumerate(scales):
            self.register_buffer(f"fb{i}", torch.tensor(mel_filterbank(sr, n_fft, n_mels, fmax=sr / 2, slaney_norm=True)), persistent=False)
            self.register_buffer(f"win{i}", torch.hann_window(n_fft), persistent=False)

    def log_mel(self, x: torch.Tensor, i: int) -> torch.Tensor:  # (B, N) -> (B, mels, frames)
        n_fft = self.scales[i][0]
        spec = torch.stft(x, n_fft, hop_length=n_fft // 4, window=getattr(self, f"win{i}"), return_complex=True)
        return torch.log(getattr(self, f"fb{i}") @ spec.abs().pow(2) + self.floor)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        y, x = y.reshape(y.shape[0], -1), x.reshape(x.shape[0], -1)
        return sum(F.mse_loss(self.log_mel(y, i), self.log_mel(x, i)) for i in range(len(self.scales))) / len(self.scales)


# --- pitch ----------------------------------------------------------------------------------

class PitchLoss(nn.Module):
    """L2 of log-F0 on the reference's voiced frames (L_pitch).

    F0 is a soft arg-max of the normalised autocorrelation over the lags of 60-400 Hz, so it is
    differentiable for the reconstruction; voicing comes from the reference's peak correlation."""

    def __init__(self, sr: int = 24000, frame: int = 1024, hop: int = 240, fmin: float = 60.0,
                 fmax: float = 400.0, temperature: float = 0.02) -> None:
        super().__init__()
        self.frame, self.hop, self.temperature = frame, hop, temperature
        lags = torch.arange(int(sr / fmax), int(sr / fmin) + 1)
        self.register_buffer("lags", lags, persistent=False)
        self.register_buffer("log_f0", torch.log(sr / lags.float()), persistent=False)
        self.register_buffer("win", torch.hann_window(frame), persistent=False)

    def _acf(self, x: torch.Tensor) -> torch.Tensor:  # (B, N) -> (B, frames, lags) normalised
        fr = x.unfold(-1, self.frame, self.hop) * self.win
        spec = torch.fft.rfft(fr, n=2 * self.frame)
        r = torch.fft.irfft(spec.abs().pow(2), n=2 * self.frame)
        return r[..., self.lags] / (r[..., :1] + 1e-4)

    def f0(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) -> log-F0 (B, frames) and the peak normalised correlation (voicing)."""
        acf = self._acf(x)
        w = torch.softmax(acf / self.temperature, dim=-1)
        return (w * self.log_f0).sum(-1), acf.max(dim=-1).values

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        y, x = y.reshape(y.shape[0], -1), x.reshape(x.shape[0], -1)
        with torch.no_grad():
            f_x, voiced = self.f0(x)
            mask = (voiced > 0.5).float()
        f_y, _ = self.f0(y)
        return ((f_y - f_x).pow(2) * mask).sum() / mask.sum().clamp_min(1.0)


# --- semantic ----------------------------------------------------------------------------------

def semantic_loss(pred: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """L_sem: L2 to the (per-frame normalised) teacher features plus (1 - cosine). (B, T, D) each."""
    n = min(pred.shape[1], teacher.shape[1])
    p, t = pred[:, :n], F.layer_norm(teacher[:, :n].float(), teacher.shape[-1:])
    return F.mse_loss(p, t) + (1 - F.cosine_similarity(p, t, dim=-1)).mean()


# --- discriminators ---------------------------------------------------------------------------

class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.period = period
        layers, c = [], 1
        for i, ch in enumerate(channels):
            layers.append(nn.Conv2d(c, ch, (5, 1), (3, 1) if i < len(channels) - 1 else (1, 1), padding=(2, 0)))
            c = ch
        self.convs = nn.ModuleList(layers)
        self.out = nn.Conv2d(c, 1, (3, 1), padding=(1, 0))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, _, n = x.shape
        x = F.pad(x, (0, (-n) % self.period), mode="reflect")
        h = x.view(b, 1, -1, self.period)  # (B, 1, N / p, p)
        fmaps = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.1)
            fmaps.append(h)
        return self.out(h), fmaps


class STFTDiscriminator(nn.Module):
    """EnCodec's STFT discriminator at one resolution: 2D convs over (real, imag) of the STFT."""

    def __init__(self, n_fft: int, filters: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("win", torch.hann_window(n_fft), persistent=False)
        f = filters
        self.convs = nn.ModuleList([
            nn.Conv2d(2, f, (3, 9), padding=(1, 4)),
            nn.Conv2d(f, f, (3, 9), stride=(1, 2), dilation=(1, 1), padding=(1, 4)),
            nn.Conv2d(f, f, (3, 9), stride=(1, 2), dilation=(2, 1), padding=(2, 4)),
            nn.Conv2d(f, f, (3, 9), stride=(1, 2), dilation=(4, 1), padding=(4, 4)),
            nn.Conv2d(f, f, (3, 3), padding=(1, 1)),
        ])
        self.out = nn.Conv2d(f, 1, (3, 3), padding=(1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(x.reshape(x.shape[0], -1), self.n_fft, hop_length=self.n_fft // 4, window=self.win,
                          return_complex=True)  # (B, F, T)
        h = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # (B, 2, T, F)
        fmaps = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
            fmaps.append(h)
        return self.out(h), fmaps


class Discriminators(nn.Module):
    """Multi-period + multi-scale STFT discriminators; returns per-discriminator (logits, fmaps)."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), mpd_channels: tuple[int, ...] = (8, 32, 64, 64),
                 stft_ffts: tuple[int, ...] = (1024, 512, 256), stft_filters: int = 8) -> None:
        super().__init__()
        self.discs = nn.ModuleList([PeriodDiscriminator(p, mpd_channels) for p in periods] +
                                   [STFTDiscriminator(n, stft_filters) for n in stft_ffts])

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [d(x) for d in self.discs]


def discriminator_loss(real: list, fake: list) -> torch.Tensor:
    """Eq. 1 with Eq. 4 (LS-GAN): real -> 1, fake -> 0."""
    return sum(((r[0] - 1) ** 2).mean() + (f[0] ** 2).mean() for r, f in zip(real, fake, strict=True))  # type: ignore[return-value]


def generator_losses(real: list, fake: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 3 (adversarial) and Eq. 5 (feature matching, relative to the real features' scale)."""
    adv = sum(((f[0] - 1) ** 2).mean() for f in fake)
    fm = sum(F.l1_loss(fm_f, fm_r.detach()) / (fm_r.detach().abs().mean() + 1e-5)
             for r, f in zip(real, fake, strict=True) for fm_r, fm_f in zip(r[1], f[1], strict=True))
    n = sum(len(r[1]) for r in real)
    return adv / len(fake), fm / n  # type: ignore[return-value]
