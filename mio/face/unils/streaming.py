"""Streaming UniLS inference for several speakers at once (Eq. 6), chunk by chunk.

    stream = UniLSStream(model, styles=[0, 3], seed=0)     # speaker A and speaker B
    stream.tracks[0].add(samples_a, sr, pts)              # each speaker's own audio, as it arrives
    stream.tracks[1].add(samples_b, sr, pts)
    motion = stream.generate_until(n)                     # (B, >= n, D): frames 0..n-1 for both

Speaker b's own track is `tracks[b]`; its "other" track is the other speaker's (two speakers: the
tracks swapped, Eq. 6). Each step generates one chunk for every speaker in one batched pass.

Latency (documented, docs/architecture.md budget): the original multi-scale design generates 100-frame
windows, a 4 s floor before the first frame. Here a chunk is `cfg.chunk` frames (tiny: 10 = 0.4 s)
with `cfg.context` frames of past motion and `cfg.audio_context` frames of past audio as context.
- A chunk starting at frame n0 reads the speaker's own audio up to the end of the chunk
  ((n0 + chunk) / 25 s + 11 ms): for the avatar this audio comes from the Talker before it is
  played, so lip sync adds no delay beyond one chunk's compute.
- It reads the other speaker's audio only up to n0 / 25 s (strictly the past, as Eq. 6): a
  listener reacts at most one chunk (0.4 s) after the sound, about a human backchannel delay.
Both properties are tested (tests/face/unils: causality).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mio.core.layouts import FACE_FPS
from mio.face.unils import audio as A
from mio.face.unils.model import UniLS

KEEP_SECONDS = 12.0  # audio older than this (behind the generated frames) is dropped


class AudioTimeline:
    """One speaker's audio on the session clock (16 kHz); featurises any window of frames."""

    def __init__(self, n_mels: int = 32) -> None:
        self.n_mels = n_mels
        self.chunks: list[tuple[int, np.ndarray]] = []  # (first sample index, samples at 16 kHz)

    def add(self, samples: np.ndarray, sample_rate: int, pts: float) -> None:
        x = A.to_16k(samples, sample_rate)
        if len(x):
            self.chunks.append((int(round(pts * A.SAMPLE_RATE)), x))

    def clear_after(self, t: float) -> None:
        """Forget audio after t seconds (an interrupted reply)."""
        cut = int(round(t * A.SAMPLE_RATE))
        self.chunks = [(s, x[: max(0, cut - s)]) for s, x in self.chunks if s < cut]

    def prune(self, before: float) -> None:
        cut = int(before * A.SAMPLE_RATE)
        self.chunks = [(s, x) for s, x in self.chunks if s + len(x) > cut]

    def features(self, f0: int, f1: int) -> np.ndarray:
        """Log-mel of frames [f0, f1) (f0 may be negative: silence). -> (f1 - f0, F)"""
        s0 = f0 * A.FRAME_SAMPLES - A.LEAD
        n = (f1 - f0) * A.FRAME_SAMPLES + A.WIN
        buf = np.zeros(n, np.float32)
        for s, x in self.chunks:
            a, b = max(s, s0), min(s + len(x), s0 + n)
            if a < b:
                buf[a - s0 : b - s0] += x[a - s : b - s]
        return A.log_mel_padded(buf, f1 - f0, self.n_mels)


class UniLSStream:
    """Chunked generation for B speakers; frames are kept from `offset` on (older ones are pruned)."""

    def __init__(self, model: UniLS, styles: list[int], seed: int = 0, temperature: float | None = None) -> None:
        if model.gen is None:
            raise ValueError("a VQ-only UniLS checkpoint cannot generate motion; train --stage free or audio")
        self.model = model
        self.cfg = model.cfg
        self.B = len(styles)
        self.styles = torch.tensor([min(int(s), self.cfg.n_styles - 1) for s in styles], dtype=torch.long)
        n_mels = self.cfg.audio_dim // A.HOPS_PER_FRAME
        self.tracks = [AudioTimeline(n_mels) for _ in range(self.B)]  # each speaker's own audio
        # what each speaker hears: the other speaker's track (Eq. 6), or, for one speaker (the avatar
        # in a live session), a track of its own that the runtime fills with the user's microphone
        self.other_tracks = [self.tracks[1 - b] for b in range(2)] if self.B == 2 else [AudioTimeline(n_mels)
                                                                                     for _ in range(self.B)]
        self.generator = torch.Generator().manual_seed(int(seed))
        self.temperature = temperature
        self.offset = 0  # absolute index of frames[0]
        self.frames = np.zeros((self.B, 0, self.cfg.motion_dim), np.float32)

    @property
    def end(self) -> int:
        """Absolute index of the first frame not generated yet."""
        return self.offset + self.frames.shape[1]

    def _history(self, n0: int, length: int) -> np.ndarray:
        """Frames [n0 - length, n0) for every speaker, the neutral pose (zeros) before frame 0. -> (B, length, D)"""
        out = np.zeros((self.B, length, self.cfg.motion_dim), np.float32)
        a = max(n0 - length, self.offset)
        if a < n0:
            out[:, length - (n0 - a) :] = self.frames[:, a - self.offset : n0 - self.offset]
        return out

    def _audio(self, n0: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Own audio over [n0 - A, n0 + chunk), the other's over [n0 - A, n0) (strictly past, Eq. 6)."""
        c, ac = self.cfg.chunk, self.cfg.audio_context
        own = np.stack([t.features(n0 - ac, n0 + c) for t in self.tracks])  # (B, ac + c, F)
        other = np.stack([t.features(n0 - ac, n0) for t in self.other_tracks])  # (B, ac, F)
        return torch.from_numpy(own), torch.from_numpy(other)

    @torch.inference_mode()
    def step(self) -> np.ndarray:
        """Generate the next chunk for every speaker. -> (B, chunk, D)"""
        cfg, m = self.cfg, self.model
        n0 = self.end
        ctx = torch.from_numpy(self._history(n0, cfg.context))
        prev = torch.from_numpy(self._history(n0, cfg.chunk))
        own = other = None
        if m.uses_audio:
            own, other = self._audio(n0)
        f_hat, _ = m.gen.sample(m.vq, m.vq.normalise(ctx), self.styles, own, other, generator=self.generator,
                                temperature=self.temperature)
        f_prev, _, _ = m.vq.quantize(prev)
        chunk = m.vq.decode(f_prev, f_hat).numpy()  # (B, chunk, D)
        if cfg.layout == "arkit52":
            np.clip(chunk[..., :52], 0.0, 1.0, out=chunk[..., :52])
        self.frames = np.concatenate([self.frames, chunk], axis=1)
        return chunk

    def generate_until(self, n: int) -> np.ndarray:
        """Make sure frames up to n (exclusive) exist; returns all frames kept. -> (B, T, D)"""
        while self.end < n:
            self.step()
        return self.frames

    def truncate(self, n: int) -> None:
        """Drop generated frames from absolute index n on (they will be generated again)."""
        n = max(n, self.offset)
        self.frames = self.frames[:, : n - self.offset]

    def skip_to(self, n: int) -> None:
        """Jump ahead without generating the gap (after a long pause in frame requests): the last pose holds."""
        keep = max(self.cfg.context, self.cfg.chunk)
        if n - self.end <= keep:
            return
        last = self.frames[:, -1:] if self.frames.shape[1] else np.zeros((self.B, 1, self.cfg.motion_dim), np.float32)
        self.frames = np.repeat(last, keep, axis=1)
        self.offset = n - keep

    def prune(self, before: int) -> None:
        """Forget frames before `before` except the context the next chunk needs, and old audio."""
        keep_from = min(before, self.end) - max(self.cfg.context, self.cfg.chunk)
        if keep_from > self.offset:
            self.frames = self.frames[:, keep_from - self.offset :]
            self.offset = keep_from
            for t in {id(t): t for t in self.tracks + self.other_tracks}.values():
                t.prune(keep_from / FACE_FPS - KEEP_SECONDS)


def animate(model: UniLS, own: tuple[np.ndarray, int], other: tuple[np.ndarray, int] | None, *,
            style: int = 0, other_style: int = 0, seed: int = 0, frames: int | None = None,
            temperature: float | None = None) -> np.ndarray:
    """Both speakers of a two-track recording, streamed chunk by chunk. -> (2, T, D); [0] is `own`'s face."""
    stream = UniLSStream(model, [style, other_style], seed=seed, temperature=temperature)
    dur = len(own[0]) / own[1]
    stream.tracks[0].add(own[0], own[1], 0.0)
    if other is not None:
        stream.tracks[1].add(other[0], other[1], 0.0)
        dur = max(dur, len(other[0]) / other[1])
    T = frames if frames is not None else int(math.ceil(dur * FACE_FPS))
    return stream.generate_until(T)[:, :T]
