"""Streaming inference: encode and decode one 80 ms frame (or a few) at a time.

    codec = KodamaCodec.from_pretrained()     # the embedded checkpoint
    with StreamingEncoder(codec) as enc, StreamingDecoder(codec) as dec:
        for frame in frames:                  # (B, 1, 1920) each
            audio = dec.step(enc.step(frame)) # (B, 1, 1920), same numbers as offline

Streamed output equals `codec.decode(codec.encode(x))` on the same samples (every layer is
causal and carries its own state; tests/talker/codec check it to float precision).
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import torch

from mio.core.errors import InputError
from mio.talker.codec.model import KodamaCodec, pad_to_frames
from mio.talker.codec.modules import streaming


class _Streamer:
    def __init__(self, codec: KodamaCodec, modules: list[torch.nn.Module]) -> None:
        self.codec, self._modules = codec, modules
        self._stack: ExitStack | None = None

    def __enter__(self):
        self._stack = ExitStack()
        self._stack.enter_context(streaming(*self._modules))
        self._stack.enter_context(torch.inference_mode())
        return self

    def __exit__(self, *exc) -> None:
        assert self._stack is not None
        self._stack.close()
        self._stack = None

    def _check(self) -> None:
        if self._stack is None:
            raise RuntimeError("use the streamer inside a `with` block")


class StreamingEncoder(_Streamer):
    def __init__(self, codec: KodamaCodec) -> None:
        super().__init__(codec, [codec.resample, codec.semantic, codec.acoustic, codec.acoustic_down])

    def step(self, frame: torch.Tensor) -> torch.Tensor:
        """(B, 1, k x 1920) 24 kHz -> codes (B, 8, k)."""
        self._check()
        return self.codec.encode(frame)


class StreamingDecoder(_Streamer):
    def __init__(self, codec: KodamaCodec) -> None:
        super().__init__(codec, [codec.decoder])

    def step(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, 8, k) -> (B, 1, k x 1920) 24 kHz."""
        self._check()
        return self.codec.decode(codes)


def encode_array(codec: KodamaCodec, samples: np.ndarray) -> np.ndarray:
    """float32 24 kHz mono -> int16 codes (8, T); the last frame is zero-padded."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if x.size == 0:
        raise InputError("no samples to encode")
    with torch.inference_mode():
        wav = pad_to_frames(torch.from_numpy(x)[None, None], codec.cfg.hop)
        return codec.encode(wav)[0].numpy().astype(np.int16)


MAX_DECODE_FRAMES = int(3600 * 12.5)  # an hour of speech in one call


def decode_array(codec: KodamaCodec, codes: np.ndarray) -> np.ndarray:
    """codes (8, T) integers in [0, codebook_size) -> float32 24 kHz mono."""
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise InputError(f"codes must be integers, got {c.dtype} values (a file of codes is written by `mio codec encode`)")
    if c.ndim != 2 or c.shape[0] != codec.cfg.n_q:
        raise InputError(f"codes must have shape ({codec.cfg.n_q}, T), got {c.shape}")
    if c.shape[1] == 0:
        raise InputError("there are no code frames to decode")
    if c.shape[1] > MAX_DECODE_FRAMES:
        raise InputError(f"{c.shape[1]} code frames ({c.shape[1] / codec.cfg.frame_rate:.0f} s); the limit is "
                         f"{MAX_DECODE_FRAMES} per call")
    if c.min() < 0 or c.max() >= codec.cfg.codebook_size:
        raise InputError(f"codes must lie in [0, {codec.cfg.codebook_size}), found {int(c.min())}..{int(c.max())}")
    with torch.inference_mode():
        return codec.decode(torch.from_numpy(c.astype(np.int64))[None])[0, 0].numpy()
