"""Text + audio sequences for Kodama-TTS (paper §2.2.2), as the model reads them.

One example, position by position (L text tokens, P prompt frames, T target frames):

    text tokens          speaker  emotion  BOS   prompt frames    target frames
    w_1 ... w_L          s        e        [B]   p_1 ... p_P      a_1 ... a_T
                                           |     |       |        |       |
    next-frame targets (audio positions):  p_1   p_2 ... a_1      a_2 ... EOS
    loss:                                  no    no      yes      yes     yes (codebook 0 only)

The text is the prompt's transcript followed by the target text, so an in-context voice clone
reads exactly like one long utterance whose first part is given. `audio_in` is [BOS, prompt,
target] (N = 1 + P + T frames) and `targets` is the same sequence shifted by one frame with EOS at
the end; prompt targets are IGNORE, and so are codebooks 1..K-1 of the EOS frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE = -100  # cross_entropy's ignore_index


@dataclass
class TTSExample:
    text_ids: torch.Tensor  # (L,) int64: prompt transcript + target text, LM token ids
    codes: torch.Tensor  # (T, K) int64: target frames
    speaker: torch.Tensor  # (S,) float32 speaker embedding
    emotion: torch.Tensor  # (E,) float32 emotion vector
    prompt_codes: torch.Tensor | None = None  # (P, K) int64: acoustic prompt (no loss)


@dataclass
class TTSBatch:
    text_ids: torch.Tensor  # (B, L) int64, right-padded with 0
    text_len: torch.Tensor  # (B,)
    audio_in: torch.Tensor  # (B, N, K) int64: BOS + prompt + target frames, right-padded with BOS
    targets: torch.Tensor  # (B, N, K) int64: next frame, IGNORE where no loss
    audio_len: torch.Tensor  # (B,)
    speaker: torch.Tensor  # (B, S)
    emotion: torch.Tensor  # (B, E)

    @property
    def frames(self) -> int:
        """T summed over the batch: the frames the loss averages over (EOS frames included)."""
        return int((self.targets[..., 0] != IGNORE).sum())


def join_text(prompt_text: str, text: str) -> str:
    """The text segment of a cloned utterance: the prompt's transcript, then the target text."""
    prompt_text, text = prompt_text.strip(), text.strip()
    return f"{prompt_text} {text}" if prompt_text else text


def audio_rows(codes: torch.Tensor, prompt: torch.Tensor | None, *, bos: int, eos: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio_in (N, K), targets (N, K)) for one example; N = 1 + P + T."""
    codes = codes.long()
    k = codes.shape[-1]
    if codes.ndim != 2:
        raise ValueError(f"codes must be (T, K), got {tuple(codes.shape)}")
    prompt = torch.zeros(0, k, dtype=torch.long) if prompt is None else prompt.long()
    if prompt.ndim != 2 or prompt.shape[1] != k:
        raise ValueError(f"prompt codes must be (P, {k}), got {tuple(prompt.shape)}")
    bos_row = torch.full((1, k), bos, dtype=torch.long)
    audio_in = torch.cat([bos_row, prompt, codes])  # (1 + P + T, K)
    eos_row = torch.full((1, k), IGNORE, dtype=torch.long)
    eos_row[0, 0] = eos
    targets = torch.cat([prompt, codes, eos_row])  # the next frame at each input position
    targets[: len(prompt)] = IGNORE  # the prompt is given, not predicted
    return audio_in, targets


def collate(examples: list[TTSExample], *, bos: int, eos: int) -> TTSBatch:
    """Pad a list of examples into one batch (right padding; the model masks it)."""
    if not examples:
        raise ValueError("collate needs at least one example")
    rows = [audio_rows(e.codes, e.prompt_codes, bos=bos, eos=eos) for e in examples]
    b, k = len(examples), examples[0].codes.shape[-1]
    lt = max(len(e.text_ids) for e in examples)
    na = max(len(r[0]) for r in rows)
    text = torch.zeros(b, lt, dtype=torch.long)
    audio_in = torch.full((b, na, k), bos, dtype=torch.long)
    targets = torch.full((b, na, k), IGNORE, dtype=torch.long)
    for i, (e, (a, t)) in enumerate(zip(examples, rows, strict=True)):
        text[i, : len(e.text_ids)] = e.text_ids.long()
        audio_in[i, : len(a)] = a
        targets[i, : len(t)] = t
    return TTSBatch(
        text_ids=text,
        text_len=torch.tensor([len(e.text_ids) for e in examples]),
        audio_in=audio_in,
        targets=targets,
        audio_len=torch.tensor([len(r[0]) for r in rows]),
        speaker=torch.stack([e.speaker.float() for e in examples]),
        emotion=torch.stack([e.emotion.float() for e in examples]),
    )
