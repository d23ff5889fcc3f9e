"""Streaming building blocks of the Kodama tokenizer: every layer is causal and keeps its own state.

Offline, a layer sees the whole signal with zeros on the left; inside `streaming(model)` it
keeps the tail of its past input and sees one chunk at a time, so the same weights give the
same numbers either way (tests/talker/codec check streamed == offline and causality).
Chunks must be whole multiples of each layer's stride; the codec feeds whole 80 ms frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class StreamingModule(nn.Module):
    """A layer with per-stream state. `streaming(model)` switches every such layer of a model."""

    def __init__(self) -> None:
        super().__init__()
        self.is_streaming = False
        self.state: torch.Tensor | None = None

    def reset_state(self) -> None:
        self.state = None


@contextmanager
def streaming(*models: nn.Module) -> Iterator[None]:
    """Within the block, the causal layers of `models` keep state between calls; cleared on exit."""
    layers = [m for model in models for m in model.modules() if isinstance(m, StreamingModule)]
    for m in layers:
        m.is_streaming = True
        m.reset_state()
    try:
        yield
    finally:
        for m in layers:
            m.is_streaming = False
            m.reset_state()


class CausalConv1d(StreamingModule):
    """Conv1d padded on the left only: output frame t sees inputs up to the end of its stride."""

    def __init__(self, cin: int, cout: int, kernel: int, *, stride: int = 1, dilation: int = 1,
                 groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, stride=stride, dilation=dilation, groups=groups, bias=bias)
        self.stride = stride
        self.pad = (kernel - 1) * dilation + 1 - stride  # left context kept between chunks
        if self.pad < 0:
            raise ValueError(f"kernel {kernel} shorter than stride {stride}")

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of already left-padded input. Short inputs (a streamed frame at the
        low rates) go through im2col + matmul: PyTorch's conv1d for them takes a slow generic
        path (and loops over channels for depthwise convs), which cost most of a frame's time."""
        c = self.conv
        k, d = c.kernel_size[0], c.dilation[0]
        n_out = (x.shape[-1] - (k - 1) * d - 1) // self.stride + 1
        if n_out > 256 or (c.groups != 1 and c.groups != c.in_channels):
            return c(x)
        span = (k - 1) * d + 1
        cols = x.unfold(-1, span, self.stride)[..., ::d]  # (B, Cin, n_out, k)
        if c.groups == 1:
            y = torch.einsum("bctk,ock->bot", cols, c.weight)
        else:  # depthwise
            y = (cols * c.weight[:, 0, None, :]).sum(-1)
        return y if c.bias is None else y + c.bias[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, C', T / stride)
        n = x.shape[-1]
        if n % self.stride:
            raise ValueError(f"chunk of {n} samples is not a multiple of the stride {self.stride}")
        if not self.is_streaming:
            return self._conv(F.pad(x, (self.pad, 0)))
        if self.state is None:
            self.state = x.new_zeros(x.shape[0], x.shape[1], self.pad)
        inp = torch.cat([self.state, x], dim=-1)
        self.state = inp[..., n:]
        return self._conv(inp)


class Snake(nn.Module):
    """Snake activation x + sin^2(a x) / a, one learnable frequency a per channel (BigVGAN/DAC)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.log_alpha.exp()
        return x + (torch.sin(a * x) ** 2) / (a + 1e-9)


class ResidualUnit(nn.Module):
    """Snake -> dilated causal conv -> Snake -> 1x1, added to the input."""

    def __init__(self, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.block = nn.Sequential(Snake(channels), CausalConv1d(channels, channels, kernel, dilation=dilation),
                                   Snake(channels), CausalConv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class MultiReceptiveField(nn.Module):
    """Three parallel multi-dilation residual blocks (one kernel size each), averaged, added back."""

    def __init__(self, channels: int, kernels: tuple[int, ...], dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*[ResidualUnit(channels, k, d) for d in dilations]) for k in kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + sum(b(x) for b in self.branches) / len(self.branches)


class CausalResampler(CausalConv1d):
    """Fixed polyphase low-pass resampler by up/down (24 kHz -> 16 kHz is 2/3), causal and streamable.

    Each block of `down` input samples yields `up` output samples, computed from that block and
    the past only. The FIR is a Kaiser-windowed sinc at the lower Nyquist; its delay is ~0.5 ms."""

    def __init__(self, up: int = 2, down: int = 3, taps: int = 48) -> None:
        width = taps // up + down + 1  # input samples each output phase reaches back over
        super().__init__(1, up, width, stride=down, bias=False)
        self.up, self.down = up, down
        n = np.arange(taps)
        cutoff = 0.5 / max(up, down)  # in cycles per upsampled sample
        h = 2 * cutoff * np.sinc(2 * cutoff * (n - (taps - 1) / 2)) * np.kaiser(taps, 8.0)
        h = h / h.sum() * up
        w = np.zeros((up, 1, width), dtype=np.float32)
        # y[up*j + p] = sum_n h[n] u[down*(up*j + p) - n], u = x zero-stuffed by `up`;
        # in x samples: x[down*j + (down*p - n)/up]; conv tap k reads x[down*j + k - self.pad].
        for p in range(up):
            for i in range(taps):
                if (down * p - i) % up == 0:
                    k = self.pad + (down * p - i) // up
                    if 0 <= k < width:
                        w[p, 0, k] += h[i]
        self.conv.weight.data.copy_(torch.from_numpy(w))
        self.conv.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, T) -> (B, 1, T * up / down)
        y = super().forward(x)  # (B, up, T / down): one channel per output phase
        return y.transpose(1, 2).reshape(x.shape[0], 1, -1)


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over channels of a (B, C, T) tensor: per frame, so causal."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ConvNeXtBlock(nn.Module):
    """Vocos block with a causal depthwise conv: dwconv -> LN -> pw (x mult) -> GELU -> pw, scaled."""

    def __init__(self, dim: int, mult: int, kernel: int) -> None:
        super().__init__()
        self.dw = CausalConv1d(dim, dim, kernel, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pw1 = nn.Linear(dim, dim * mult)
        self.pw2 = nn.Linear(dim * mult, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1.0 / 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        h = self.dw(x).transpose(1, 2)  # (B, T, C)
        h = self.pw2(F.gelu(self.pw1(self.norm(h)))) * self.gamma
        return x + h.transpose(1, 2)


class ISTFTHead(StreamingModule):
    """Vocos head: per frame, log-magnitude and phase -> inverse FFT -> windowed overlap-add.

    Overlap-add without centring: frame j covers samples [j*hop, j*hop + n_fft), so after frame
    j every sample before (j+1)*hop is final; a stream emits exactly those, keeping the
    overlapping tail as state. Normalised by the squared-window envelope as torch.istft does."""

    def __init__(self, dim: int, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.proj = nn.Linear(dim, n_fft + 2)  # (n_fft/2 + 1) log-magnitudes and phases
        window = torch.hann_window(n_fft, periodic=True)
        self.register_buffer("window", window, persistent=False)
        # squared-window envelope at absolute sample s (constant after the first n_fft - hop)
        env = torch.zeros(n_fft)
        for j in range(n_fft // hop):
            env[j * hop:] += window[: n_fft - j * hop] ** 2
        self.register_buffer("envelope", env.clamp_min(1e-3 * float(env.max())), persistent=False)
        self.pos = 0

    def reset_state(self) -> None:
        super().reset_state()
        self.pos = 0

    def frames(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, F) -> (B, n_fft, F) windowed frames
        m, p = self.proj(x.transpose(1, 2)).chunk(2, dim=-1)  # (B, F, n_fft/2+1) each
        mag = m.exp().clamp(max=1e2)
        spec = torch.polar(mag, p)
        return (torch.fft.irfft(spec, n=self.n_fft, dim=-1) * self.window).transpose(1, 2)

    def _overlap_add(self, fr: torch.Tensor) -> torch.Tensor:  # (B, n_fft, F) -> (B, (F-1)*hop + n_fft)
        # n_fft = r * hop: piece j of frame f lands on output block f + j, so OLA is r shifted sums
        b, _, n = fr.shape
        r = self.n_fft // self.hop
        pieces = fr.reshape(b, r, self.hop, n)  # (B, r, hop, F)
        out = fr.new_zeros(b, self.hop, n + r - 1)
        for j in range(r):
            out[:, :, j: j + n] += pieces[:, j]
        return out.transpose(1, 2).reshape(b, -1)

    def _normalise(self, y: torch.Tensor, start: int) -> torch.Tensor:
        idx = torch.arange(start, start + y.shape[-1]).clamp(max=self.n_fft - 1)
        return y / self.envelope[idx]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, F) -> (B, 1, F * hop)
        ola = self._overlap_add(self.frames(x))
        n = x.shape[-1] * self.hop
        if not self.is_streaming:
            return self._normalise(ola[:, :n], 0).unsqueeze(1)
        if self.state is not None:
            ola[:, : self.state.shape[-1]] += self.state
        self.state = ola[:, n:]
        out = self._normalise(ola[:, :n], self.pos)
        self.pos += n
        return out.unsqueeze(1)


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
