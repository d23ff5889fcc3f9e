"""`mio train tts`: Kodama-TTS on a LibriTTS-style corpus (paper §2.2.2), one process or torchrun DDP.

    mio train tts --preset small --data ~/.cache/mio/corpus/speech --steps 3000

Two stages, both resumable (rerun the same command): prepare the corpus (`out/data/`, see
mio/talker/tts/data.py), then train on batches of whole utterances with L_TTS (model.tts_loss).
The checkpoint folder holds config.json, model.safetensors, voice.safetensors (the default voice)
and tokenizer.json, so `from_pretrained` needs only it, the codec and the SmolLM2 GGUF.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from mio.core.errors import BackendError, CheckpointError, InputError
from mio.talker.tts.curation import CurationConfig
from mio.talker.tts.data import TTSData, codec_identity, default_voice, load_data, prepare, summarize_parts
from mio.talker.tts.model import (
    DefaultVoice,
    KodamaTTS,
    emotion_vector,
    preset,
)
from mio.talker.tts.sequence import TTSBatch, TTSExample, collate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 8  # utterances per step (per process)
    lr: float = 1e-3  # peak AdamW learning rate
    warmup: int = 200  # linear warm-up steps, then cosine decay to lr / 10
    weight_decay: float = 0.01
    prompt_prob: float = 0.5  # share of examples trained as in-context clones
    max_prompt_frames: int = 50  # prompts longer than 4 s are not used
    max_frames: int = 160  # utterances longer than 12.8 s are left out (sequence budget)


class Batcher:
    """`batch(step, rank)`: deterministic per step and rank, so a resumed run sees the same data."""

    def __init__(self, data: TTSData, cfg: TrainConfig, *, bos: int, eos: int, seed: int = 0) -> None:
        self.data, self.cfg, self.bos, self.eos, self.seed = data, cfg, bos, eos, seed
        self.usable = [i for i in range(len(data)) if 0 < data.frames(i) <= cfg.max_frames]
        if not self.usable:
            raise InputError(f"no utterance of at most {cfg.max_frames} frames in the data")
        sid = data.speaker_id.tolist()
        self.by_speaker: dict[int, list[int]] = {}
        for i in self.usable:
            self.by_speaker.setdefault(sid[i], []).append(i)
        self.neutral = emotion_vector()

    def example(self, i: int, rng: np.random.Generator) -> TTSExample:
        d = self.data
        same = self.by_speaker[int(d.speaker_id[i])]
        others = [j for j in same if j != i] or [i]
        vec_from = others[int(rng.integers(len(others)))]  # the speaker vector of another utterance
        text, prompt = d.utt_text(i), None
        if rng.random() < self.cfg.prompt_prob:
            short = [j for j in others if j != i and d.frames(j) <= self.cfg.max_prompt_frames]
            if short:
                j = short[int(rng.integers(len(short)))]
                prompt = d.utt_codes(j)
                text = torch.cat([d.utt_text(j), text])  # prompt transcript, then the target text
        return TTSExample(text, d.utt_codes(i), d.speaker_vec[vec_from], self.neutral, prompt)

    def batch(self, step: int, rank: int = 0, world: int = 1) -> TTSBatch:
        rng = np.random.default_rng([self.seed, step, rank, world])
        idx = rng.choice(self.usable, size=self.cfg.batch_size, replace=len(self.usable) < self.cfg.batch_size)
        return collate([self.example(int(i), rng) for i in idx], bos=self.bos, eos=self.eos)


def lr_lambda(cfg: TrainConfig, total: int):
    def f(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        p = min(1.0, (step - cfg.warmup) / max(1, total - cfg.warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p))
    return f


def train(model: KodamaTTS, data: TTSData, out: str | Path, *, steps: int, cfg: TrainConfig,
          voice: DefaultVoice | None = None, tokenizer_json: str | Path | None = None, seed: int = 0,
          log_every: int = 10, save_every: int = 200, threads: int | None = None, resume: bool = True,
          progress: bool = True, extra: dict[str, Any] | None = None) -> list[dict[str, float]]:
    """Train `model` on `data`; checkpoints (with the default voice) in `out`. Returns the log."""
    from mio.train import Trainer, TrainerConfig, init_distributed, load_pretrained, load_weights
    from mio.train.dist import unwrap

    info = init_distributed()
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, steps))
    out = Path(out)
    meta = {"train": asdict(cfg), **(extra or {})}
    trainer_ref: list[Any] = []

    def save_fn(m: torch.nn.Module, path: Path) -> None:
        step = trainer_ref[0].step if trainer_ref else 0
        unwrap(m).save_pretrained(path, voice=voice, extra={**meta, "trained_steps": step})
        if tokenizer_json is not None and Path(tokenizer_json).is_file():
            shutil.copy(tokenizer_json, path / "tokenizer.json")

    def load_fn(m: torch.nn.Module, path: Path) -> None:
        state, _ = load_pretrained(path, kind="kodama-tts")
        load_weights(unwrap(m), state, where=str(path))

    save_fn.load = load_fn  # type: ignore[attr-defined]
    tr = Trainer(TrainerConfig(out_dir=str(out), max_steps=steps, log_every=log_every, save_every=save_every,
                               seed=seed, resume=resume, threads=threads, desc="train tts", progress=progress),
                 model, {"main": opt}, model_config=model.config_dict(), kind="kodama-tts",
                 schedulers={"main": sched}, info=info, save_fn=save_fn)
    trainer_ref.append(tr)
    net = tr.ddp(model, broadcast_buffers=False) if info.distributed else model  # the LM table is a 113 MB buffer
    batcher = Batcher(data, cfg, bos=model.cfg.bos, eos=model.cfg.eos, seed=seed)

    def step_fn(step: int, batch: TTSBatch) -> dict[str, float]:
        from mio.talker.tts.model import tts_loss

        loss, logs = tts_loss(net(batch), batch.targets)
        logs["grad_norm"] = tr.backward_step(loss, "main")
        logs["lr"] = sched.get_last_lr()[0]
        return logs

    tr.fit(lambda step: batcher.batch(step, info.rank, info.world_size), step_fn)
    return tr.history


def export(src: str | Path, dst: str | Path, *, codec_dir: str | Path | None = None,
           dtype: torch.dtype = torch.float16) -> Path:
    """Copy a trained checkpoint for shipping: weights in float16 (halves the size; loading casts
    back to float32), its default voice, tokenizer.json and, with `codec_dir`, the codec checkpoint
    whose tokens it was trained on (in `dst/codec/`, so the pair always matches)."""
    src, dst = Path(src), Path(dst)
    state = load_file(str(src / "model.safetensors"))
    meta = json.loads((src / "config.json").read_text())
    small = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
    tmp = dst.with_name(dst.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file(small, str(tmp / "model.safetensors"))
    for name in ("voice.safetensors", "tokenizer.json", "README.md"):
        for where in (src, dst):
            if (where / name).is_file():
                shutil.copy(where / name, tmp / name)
                break
    if codec_dir is not None:
        (tmp / "codec").mkdir()
        cstate = load_file(str(Path(codec_dir) / "model.safetensors"))
        save_file({k: (v.to(dtype) if v.is_floating_point() else v) for k, v in cstate.items()},
                  str(tmp / "codec" / "model.safetensors"))
        shutil.copy(Path(codec_dir) / "config.json", tmp / "codec" / "config.json")
        import hashlib

        codec_meta = meta.setdefault("codec", {})
        codec_meta["trained_on_sha256"] = codec_meta.get("sha256")
        codec_meta["sha256"] = hashlib.sha256((tmp / "codec" / "model.safetensors").read_bytes()).hexdigest()
        codec_meta["path"] = "codec (bundled, float16)"
    (tmp / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)
    return dst


def train_command(args: argparse.Namespace) -> int:

    from mio.talker.tts.lm import LMTokenizer, default_tokenizer_json
    from mio.talker.tts.speaker import SPEAKER_DIM
    from mio.talker.tts.voice import NumpyCodec
    from mio.train import init_distributed

    say = log.info
    overrides: dict[str, Any] = {}
    if args.backbone_path:
        overrides["backbone_path"] = args.backbone_path
    mcfg = preset(args.preset, **overrides)
    out = Path(args.out)
    data_dir = Path(args.data_cache) if args.data_cache else out / "data"
    info = init_distributed()
    if info.is_main:
        tok = LMTokenizer()  # SmolLM2's tokenizer (built from the GGUF once, then cached)
        try:
            codec = NumpyCodec.from_pretrained(args.codec)
        except (BackendError, CheckpointError) as e:
            if not args.prepare_only:
                raise
            codec = None
            say(f"no codec yet ({e}): curating only; rerun once the codec exists to encode")
        from mio.talker.tts.speaker import SpeakerEncoder

        say(f"preparing {args.data} -> {data_dir} (curation, codec, speaker vectors) ...")
        prepare(args.data, data_dir, codec=codec, tokenizer=tok, speaker_encoder=SpeakerEncoder(),
                curation=CurationConfig(min_dnsmos=args.min_dnsmos, min_consistency=args.min_consistency),
                progress=say, limit=args.limit)
        say(f"curation: {json.dumps(summarize_parts(data_dir))}")
    if info.distributed:
        from mio.train.dist import barrier

        barrier()
    if args.prepare_only:
        return 0
    codec = NumpyCodec.from_pretrained(args.codec)
    codec_sha = codec_identity(codec)  # the codec this model's tokens belong to
    # the token spaces are the codec's and the LM tokenizer's, whatever the preset's test sizes say
    mcfg = replace(mcfg, n_codebooks=codec.n_codebooks, codebook_size=codec.codebook_size,
                   frame_rate=codec.frame_rate, speaker_dim=SPEAKER_DIM)
    if mcfg.text_embeddings == "random":
        mcfg = replace(mcfg, text_vocab=max(mcfg.text_vocab, len(LMTokenizer().tok.get_vocab())))
    data = load_data(data_dir, args.limit)
    say(f"{len(data)} utterances, {len(data.speakers)} speakers, {int(data.code_off[-1])} frames "
        f"({int(data.code_off[-1]) / mcfg.frame_rate / 60:.1f} min)")
    if args.init and not (out / "train_state").is_dir():
        model = KodamaTTS.from_pretrained(args.init)
        say(f"initialised from {args.init}")
    else:
        model = KodamaTTS(mcfg)
    model.train()
    tcfg = TrainConfig(batch_size=args.batch_size, lr=args.lr, warmup=min(args.warmup, max(1, args.steps // 5)),
                       prompt_prob=args.prompt_prob)
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    say(f"training {n / 1e6:.2f} M parameters ({mcfg.backbone}) for {args.steps} steps -> {out}")
    hist = train(model, data, out, steps=args.steps, cfg=tcfg, voice=default_voice(data, args.voice_speaker),
                 tokenizer_json=default_tokenizer_json(), seed=args.seed, log_every=args.log_every,
                 save_every=args.save_every, resume=not args.no_resume,
                 extra={"data": {"corpus": str(args.data), "utterances": len(data), "speakers": data.speakers},
                        "codec": {"path": str(args.codec or "embedded"), "sha256": codec_sha}})
    if hist and info.is_main:
        say(f"done: {json.dumps(hist[-1])}")
    if args.export and info.is_main:
        say(f"exported {export(out, args.export, codec_dir=args.codec or _embedded_codec_dir())}")
    return 0


def _embedded_codec_dir() -> Path | None:
    from mio.talker.codec import KodamaCodec

    folder = KodamaCodec.embedded
    return folder if (folder / "model.safetensors").is_file() else None
