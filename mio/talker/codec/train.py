"""`mio train codec`: the Kodama tokenizer's training (Eq. 1-5) on any folder of wav files.

    mio train codec --corpus out/codec-corpus --build-corpus --preset embedded --steps 2400

runs as one process or under `torchrun --nproc_per_node N -m mio.cli train codec ...` (DDP; each
rank draws its own segments), writes `out_dir/{config.json, model.safetensors}` plus a resumable
training state, and resumes when rerun. The GAN (multi-period + multi-scale STFT discriminators)
joins after `--gan-start` steps: before it the generator learns from the mel, pitch, commitment
and semantic losses alone, which is where a short CPU run spends most of its steps.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from mio.core.errors import CheckpointError, InputError
from mio.talker.codec.config import PRESETS, CodecConfig
from mio.talker.codec.data import Utterance, build_corpus, load_audio, scan
from mio.talker.codec.losses import (
    Discriminators,
    LossWeights,
    MelLoss,
    PitchLoss,
    discriminator_loss,
    generator_losses,
    semantic_loss,
)
from mio.talker.codec.model import KodamaCodec
from mio.talker.codec.quant import pointwise
from mio.talker.codec.teacher import Teacher, cache_features, cache_path, load_teacher
from mio.train.checkpoint import load_pretrained, load_weights

log = logging.getLogger(__name__)

KIND = KodamaCodec.kind


@dataclass(frozen=True)
class CodecTrainConfig:
    steps: int = 2400
    batch: int = 8  # segments per step per rank
    segment_frames: int = 12  # token frames per segment (0.96 s)
    lr: float = 1e-3
    disc_lr: float = 2e-4
    warmup: int = 100
    gan_start: int = 2000  # step at which the discriminators join
    revive_every: int = 50  # replace dead codebook entries this often
    decay_start: int | None = None  # from this step the learning rate follows a cosine to 2% at `steps`
    mel_floor: float = 1e-3  # added to mel power before the log: sets how far below speech L_mel still looks
    seed: int = 0


def lr_factor(step: int, tcfg: CodecTrainConfig) -> float:
    """Linear warm-up, constant, then (with `decay_start`) a cosine down to 2% at the last step."""
    if step < tcfg.warmup:
        return (step + 1) / tcfg.warmup
    if tcfg.decay_start is None or step < tcfg.decay_start:
        return 1.0
    p = min(1.0, (step - tcfg.decay_start) / max(1, tcfg.steps - tcfg.decay_start))
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * p))


class SegmentSampler:
    """Deterministic batches per (step, rank): random frame-aligned segments with their teacher
    features, at a random gain, so a resumed run draws what a straight run would."""

    def __init__(self, utts: list[Utterance], teacher_name: str, cfg: CodecConfig, tcfg: CodecTrainConfig,
                 rank: int = 0) -> None:
        self.n = tcfg.segment_frames * cfg.hop
        self.k = round(cfg.teacher_rate / cfg.frame_rate)  # teacher frames per token frame
        self.cfg, self.tcfg, self.rank = cfg, tcfg, rank
        self.audio: list[np.ndarray] = []
        self.teacher: list[np.ndarray] = []
        for u in utts:
            x = load_audio(u.path)
            if len(x) < self.n:
                continue
            self.audio.append((np.clip(x, -1, 1) * 32767).astype(np.int16))
            self.teacher.append(np.load(cache_path(u.path, teacher_name)))
        if not self.audio:
            raise InputError(f"no utterance is longer than a {self.n / cfg.sample_rate:.2f} s segment")
        self.dim = self.teacher[0].shape[-1]

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.tcfg.seed, step, self.rank])
        wavs, feats = [], []
        t_len = self.tcfg.segment_frames * self.k
        for i in rng.integers(0, len(self.audio), self.tcfg.batch):
            x, f = self.audio[i], self.teacher[i]
            frame = int(rng.integers(0, (len(x) - self.n) // self.cfg.hop + 1))
            seg = x[frame * self.cfg.hop: frame * self.cfg.hop + self.n].astype(np.float32) / 32767
            gain = 10 ** (rng.uniform(-12, 0) / 20)
            wavs.append(seg * gain)
            ft = f[frame * self.k: frame * self.k + t_len].astype(np.float32)
            feats.append(np.pad(ft, ((0, t_len - len(ft)), (0, 0)), mode="edge"))
        return torch.from_numpy(np.stack(wavs))[:, None], torch.from_numpy(np.stack(feats))


def warm_start(model: KodamaCodec, src: str | Path) -> int:
    """Load a trained codec's weights into `model`, which may have a deeper Vocos decoder.

    The extra ConvNeXt blocks start with a zero layer scale, so the warm-started model computes
    exactly what the source did and training grows the new capacity from there. Every other
    tensor must match. Returns the number of new decoder blocks."""
    state, _ = load_pretrained(src, kind=KIND)
    own = model.state_dict()
    new = sorted({k.split(".")[2] for k in own if k.startswith("decoder.blocks.") and k not in state}, key=int)
    extra = [k for k in state if k not in own]
    if extra:
        raise CheckpointError(f"{src} has tensors this model lacks (a deeper decoder?): {extra[:3]}")
    load_weights(model, {**own, **{k: v.float() for k, v in state.items()}}, where=str(src))
    with torch.no_grad():
        for i in new:
            model.decoder.blocks[int(i)].gamma.zero_()
    return len(new)


@torch.no_grad()
def to_residual_quantizer(model: KodamaCodec, example: torch.Tensor) -> dict[str, float]:
    """Carry a model trained with the direction-only ('cosine') quantiser over to the residual one.

    Codebooks become unit vectors (what the cosine mode sent back, so the first stage's output is
    unchanged), and the layers that feed each RVQ are rescaled so that the first stage's projection
    has unit size on `example` audio: the residual then lives on the codes' scale. Stages after the
    first see true residuals from here on and re-learn their codes in training. `model` must be
    built in the residual mode (it holds the cosine checkpoint's weights). Returns the scales."""
    if model.cfg.quantizer != "residual":
        raise ValueError("to_residual_quantizer needs a model built with quantizer='residual'")
    scales = {}
    low, fused = model._latents(example)
    for name, rvq, feed, lat in (("semantic", model.semantic_rvq, model.semantic_in, low),
                                 ("acoustic", model.acoustic_rvq, model.fuse, fused)):
        z = pointwise(rvq.layers[0].proj_in, lat)
        c = 1.0 / float(z.norm(dim=1).mean().clamp_min(1e-12))
        feed.weight.mul_(c)
        feed.bias.mul_(c)
        for vq in rvq.layers:  # scaling the biases too keeps every projection's direction exact
            vq.proj_in.bias.mul_(c)
            vq.codebook.weight.copy_(torch.nn.functional.normalize(vq.codebook.weight, dim=-1))
        scales[name] = c
    return scales


def train_codec(corpus: str | Path, out_dir: str | Path, cfg: CodecConfig, tcfg: CodecTrainConfig, *,
                teacher: str = "whisper", weights: LossWeights | None = None, resume: bool = True,
                save_every: int = 200, threads: int | None = None, progress: bool = True,
                init_from: str | Path | None = None, log=print) -> dict[str, float]:
    from mio.train import Trainer, TrainerConfig, init_distributed

    info = init_distributed()
    utts = scan(corpus, split="train")
    t: Teacher | None = None
    name = "whisper-tiny" if teacher == "whisper" else f"w2vbert-{Path(teacher).name}"
    if info.is_main and any(not cache_path(u.path, name).is_file() for u in utts):
        t = load_teacher(teacher)
        log(f"computing teacher features ({t.name}) for {len(utts)} utterances, once")
        cache_features([u.path for u in utts], t, load_audio, progress=log)
    from mio.train.dist import barrier

    barrier()
    sampler = SegmentSampler(utts, name, cfg, tcfg, rank=info.rank)
    if sampler.dim != cfg.teacher_dim:  # the semantic head predicts whatever teacher the corpus was cached with
        cfg = CodecConfig.from_dict({**cfg.to_dict(), "teacher_dim": sampler.dim})
    torch.manual_seed(tcfg.seed)
    model = KodamaCodec(cfg)
    if init_from and not (Path(out_dir) / "train_state" / "state.json").is_file():
        grown = warm_start(model, init_from)
        log(f"warm start from {init_from}" + (f" with {grown} new decoder blocks" if grown else ""))
        if cfg.quantizer == "residual" and load_pretrained(init_from, kind=KIND)[1].get("quantizer", "cosine") == "cosine":
            log(f"cosine -> residual quantiser, latents rescaled by {to_residual_quantizer(model, sampler(0)[0])}")
    disc = Discriminators()
    g_opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=tcfg.lr, betas=(0.8, 0.99))
    d_opt = torch.optim.AdamW(disc.parameters(), lr=tcfg.disc_lr, betas=(0.8, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(g_opt, lambda s: lr_factor(s, tcfg))
    trainer = Trainer(TrainerConfig(out_dir=str(out_dir), max_steps=tcfg.steps, log_every=10, save_every=save_every,
                                    seed=tcfg.seed, resume=resume, threads=threads, desc="codec", progress=progress),
                      model, {"gen": g_opt, "disc": d_opt}, schedulers={"gen": sched},
                      model_config={**cfg.to_dict(), "teacher": name, "train": asdict(tcfg),
                                    "loss_weights": asdict(weights or LossWeights())}, kind=KIND,
                      extra_modules={"disc": disc}, info=info)
    gen, dis = trainer.ddp(model), trainer.ddp(disc)
    mel_loss, pitch_loss = MelLoss(cfg.sample_rate, floor=tcfg.mel_floor), PitchLoss(cfg.sample_rate)
    w = weights or LossWeights()

    def step_fn(step: int, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        x, feats = batch
        out = gen(x)
        y = out["audio"]
        l_mel, l_pitch = mel_loss(y, x), pitch_loss(y, x)
        l_sem = semantic_loss(out["semantic"], feats)
        loss = w.mel * l_mel + w.pitch * l_pitch + w.commit * out["commit"] + w.semantic * l_sem  # Eq. 2 + L_sem
        logs = {"mel": l_mel.item(), "pitch": l_pitch.item(), "commit": out["commit"].item(), "sem": l_sem.item()}
        if step >= tcfg.gan_start:
            l_d = discriminator_loss(dis(x), dis(y.detach()))
            trainer.backward_step(l_d, "disc")
            adv, fm = generator_losses(dis(x), dis(y))
            loss = loss + w.adv * adv + w.fm * fm
            logs.update(d=l_d.item(), adv=adv.item(), fm=fm.item())
        trainer.backward_step(loss, "gen")
        if (step + 1) % tcfg.revive_every == 0 and step < tcfg.steps - tcfg.revive_every:
            model.revive_dead_codes()
        logs["loss"] = loss.item()
        return logs

    return trainer.fit(sampler, step_fn)


def train_command(args: argparse.Namespace) -> int:
    from mio.train import shutdown_distributed

    out = Path(args.out)
    resuming = not args.no_resume and (out / "train_state" / "state.json").is_file()
    if resuming:  # a resumed run keeps the model it was started with, whatever the flags say now
        cfg = CodecConfig.from_dict(load_pretrained(out, kind=KIND)[1])
    else:
        base = load_pretrained(args.init_from, kind=KIND)[1] if args.init_from else PRESETS[args.preset]().to_dict()
        overrides = {"quantizer": args.quantizer, "vocos_layers": args.vocos_layers}
        cfg = CodecConfig.from_dict({**base, **{k: v for k, v in overrides.items() if v is not None}})
    tcfg = CodecTrainConfig(steps=args.steps, batch=args.batch, segment_frames=args.segment_frames, lr=args.lr,
                            gan_start=args.gan_start if args.gan_start is not None else int(args.steps * 0.85),
                            decay_start=args.decay_start, mel_floor=args.mel_floor, seed=args.seed)
    corpus = Path(args.corpus)
    if args.build_corpus and not (corpus / "manifest.jsonl").is_file():
        build_corpus(corpus, n_train=args.build_corpus, progress=log.info)
    weights = LossWeights(mel=args.mel_weight) if args.mel_weight is not None else None
    last = train_codec(corpus, args.out, cfg, tcfg, teacher=args.teacher, weights=weights, resume=not args.no_resume,
                       save_every=args.save_every, threads=args.threads, init_from=args.init_from,
                       log=log.info)
    is_main = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
    shutdown_distributed()
    if args.export and is_main:
        dst = Path(args.export)
        dst.mkdir(parents=True, exist_ok=True)
        for f in ("config.json", "model.safetensors"):
            shutil.copy(Path(args.out) / f, dst / f)
        log.info(f"exported {dst}")
    log.info(json.dumps(last))
    return 0
