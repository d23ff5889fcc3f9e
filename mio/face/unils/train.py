"""`mio train face --stage vq|free|audio|e2e`: the UniLS training recipe (§3.2), resumable, DDP-ready.

    mio train face --stage vq    --data DIR --out out/face/vq
    mio train face --stage free  --data DIR --init out/face/vq   --out out/face/free    # stage 1, Eq. 7-8
    mio train face --stage audio --data DIR --init out/face/free --out out/face/audio   # stage 2, Eq. 9 (LoRA)
    mio train face --stage e2e   --data DIR --init out/face/vq   --out out/face/e2e     # single-stage ablation
    mio train face --stage all --generate 72 --data out/face/dyadic --out out/face     # the embedded recipe

Stage 1 reads only motion (every track, with or without audio); stages audio/e2e read the dyadic
conversations (own + other audio). The VQ-VAE is frozen after its own stage. The same commands
run under `torchrun --nproc_per_node N -m mio.cli train face ...` (gloo on CPU).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mio.core.errors import ConfigError
from mio.face.unils import audio as A
from mio.face.unils.config import UniLSConfig, preset
from mio.face.unils.data import Track, load_dataset, split
from mio.face.unils.model import KIND, UniLS, copy_stage1

log = logging.getLogger(__name__)


@dataclass
class Batch:
    prev: torch.Tensor  # (B, chunk, D) the chunk before (decoder context)
    cur: torch.Tensor  # (B, chunk, D) the chunk to reconstruct / predict
    context: torch.Tensor  # (B, P, D) past motion M_{1:t}
    style: torch.Tensor  # (B,) long
    own: torch.Tensor | None  # (B, A + chunk, F)
    other: torch.Tensor | None  # (B, A, F)


def _window(x: np.ndarray, a: int, b: int, fill: float) -> np.ndarray:
    """x[a:b] along axis 0, filled with `fill` outside [0, len(x))."""
    out = np.full((b - a, *x.shape[1:]), fill, x.dtype)
    lo, hi = max(a, 0), min(b, len(x))
    if lo < hi:
        out[lo - a : hi - a] = x[lo:hi]
    return out


def make_batch(tracks: list[Track], cfg: UniLSConfig, rng: np.random.Generator, size: int, audio: bool,
               gain_jitter: float = 0.5) -> Batch:
    """Random chunks: start frames uniform over each track; neutral pose / silence before frame 0."""
    c, P, Ac = cfg.chunk, cfg.context, cfg.audio_context
    prev, cur, ctx, style, own, other = [], [], [], [], [], []
    for _ in range(size):
        t = tracks[int(rng.integers(len(tracks)))]
        n0 = int(rng.integers(0, max(1, t.frames - c + 1)))
        prev.append(_window(t.motion, n0 - c, n0, 0.0))
        cur.append(_window(t.motion, n0, n0 + c, 0.0))
        ctx.append(_window(t.motion, n0 - P, n0, 0.0))
        style.append(min(t.style, cfg.n_styles - 1))
        if audio:
            g = float(rng.uniform(-gain_jitter, gain_jitter))  # +-10 dB: voices and microphones differ in level
            own.append(_window(t.own, n0 - Ac, n0 + c, A.SILENCE) + g)
            other.append(_window(t.other, n0 - Ac, n0, A.SILENCE) + float(rng.uniform(-gain_jitter, gain_jitter)))
    as_t = lambda xs: torch.from_numpy(np.stack(xs)).float()  # noqa: E731
    return Batch(as_t(prev), as_t(cur), as_t(ctx), torch.tensor(style), as_t(own) if audio else None,
                 as_t(other) if audio else None)


def stats(tracks: list[Track]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Motion mean/std (D,) over every frame, audio mean/std (F,) over every own track."""
    m = np.concatenate([t.motion for t in tracks])
    a = [t.own for t in tracks if t.own is not None]
    am = np.concatenate(a) if a else None
    f = lambda x: torch.from_numpy(x.astype(np.float32))  # noqa: E731
    return (f(m.mean(0)), f(m.std(0)), f(am.mean(0)) if am is not None else None,
            f(am.std(0).clip(0.05)) if am is not None else None)


def vq_step(vq: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    """`vq` is the MultiScaleVQVAE, or its DDP wrapper."""
    _, _, losses = vq(batch.prev, batch.cur)
    loss = losses["rec"] + 0.5 * losses["vel"] + losses["vq"]
    return loss, {k: float(v.detach()) for k, v in losses.items()}


def gen_step(model: UniLS, gen: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    """Teacher-forced next-scale cross-entropy on the VQ indices of the next chunk (Eq. 8, discrete form)."""
    vq = model.vq
    with torch.no_grad():
        _, indices, _ = vq.quantize(batch.cur)
        inputs = model.gen.teacher_inputs(vq, indices)
        ctx = vq.normalise(batch.context)
    logits = gen(ctx, batch.style, inputs, batch.own, batch.other)  # (B, N, K)
    target = torch.cat(indices, dim=1)  # (B, N)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
    acc = float((logits.argmax(-1) == target).float().mean())
    return loss, {"ce": float(loss.detach()), "acc": acc}


def build(stage: str, cfg: UniLSConfig, init: str | None, tracks: list[Track]) -> UniLS:
    model = UniLS(cfg, stage)
    m_mean, m_std, a_mean, a_std = stats(tracks)
    if stage == "vq":
        model.vq.set_normalisation(m_mean, m_std)
        return model
    if init is None:
        raise ConfigError(f"--stage {stage} starts from a trained checkpoint: give --init (vq for free/e2e, free for audio)")
    prior = UniLS.from_pretrained(init, merge=False)
    if prior.cfg.to_dict() | {"lora_rank": 0} != cfg.to_dict() | {"lora_rank": 0}:
        cfg_diff = {k: (v, cfg.to_dict()[k]) for k, v in prior.cfg.to_dict().items() if cfg.to_dict()[k] != v}
        raise ConfigError(f"--init {init} was trained with another configuration: {cfg_diff}")
    need = {"free": ("vq", "free"), "e2e": ("vq", "free"), "audio": ("free",)}[stage]
    if prior.stage not in need:
        raise ConfigError(f"--stage {stage} needs an --init from stage {' or '.join(need)}, {init} is stage {prior.stage!r}")
    if stage == "audio":
        copy_stage1(model, prior)
    else:
        model.vq.load_state_dict(prior.vq.state_dict())
    model.vq.requires_grad_(False)
    if model.uses_audio:
        model.gen.audio_mean.copy_(a_mean)
        model.gen.audio_std.copy_(a_std)
    return model


def train(stage: str, data: str, out: str, *, preset_name: str = "tiny", layout: str = "arkit52", init: str | None = None,
          steps: int = 2000, batch: int = 32, lr: float | None = None, seed: int = 0, save_every: int = 250,
          resume: bool = True, progress: bool = True, tracks: list[Track] | None = None,
          cfg: UniLSConfig | None = None) -> dict[str, float]:
    from mio.train import Trainer, TrainerConfig, init_distributed

    info = init_distributed()
    cfg = cfg or preset(preset_name, layout=layout)
    if tracks is None:
        tracks, _ = split(load_dataset(data, cfg.layout, n_mels=cfg.audio_dim // A.HOPS_PER_FRAME))
    audio = stage in ("audio", "e2e")
    if audio:
        tracks = [t for t in tracks if t.own is not None]
        if not tracks:
            raise ConfigError(f"--stage {stage} needs dyadic conversations (CONV/NAME.wav + .npz) in {data}")
    model = build(stage, cfg, init, tracks)
    if stage == "vq":
        module = model.vq
        lr = lr or 1e-3
    else:
        module = model.gen
        lr = lr or (1e-3 if stage == "audio" else 5e-4)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01 if stage != "vq" else 0.0, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(s / steps, 1.0)))))
    trainer = Trainer(TrainerConfig(out_dir=out, max_steps=steps, log_every=25, save_every=save_every, seed=seed,
                                    resume=resume, desc=f"unils {stage}", progress=progress, grad_clip=1.0),
                      model, {"main": opt}, schedulers={"main": sched}, model_config=model.config_dict(), kind=KIND,
                      info=info)
    wrapped = trainer.ddp(module)
    model.train()
    model.vq.train(stage == "vq")

    def batch_fn(step: int) -> Batch:
        rng = np.random.default_rng([seed, step, info.rank])
        return make_batch(tracks, cfg, rng, batch, audio)

    def step_fn(step: int, b: Batch) -> dict[str, float]:
        if stage == "vq":
            loss, logs = vq_step(wrapped, b)
        else:
            loss, logs = gen_step(model, wrapped, b)
        trainer.backward_step(loss, "main")
        return logs

    return trainer.fit(batch_fn, step_fn)


# The embedded unils-tiny recipe: steps per stage (batch 32); e2e gets the two-stage total (free + audio).
RECIPE = {"vq": 1500, "free": 400, "audio": 350, "e2e": 750}
PREVIOUS = {"free": "vq", "audio": "free", "e2e": "vq"}


def train_command(args: argparse.Namespace) -> int:
    if args.generate:
        from mio.face.unils.data import generate_dyadic
        from mio.train.dist import init_distributed

        if init_distributed().is_main:
            generate_dyadic(args.data, args.generate, seconds=40.0, seed=args.seed,
                            progress=lambda i, n: log.info(f"conversation {i}/{n}"))
    stages = list(RECIPE) if args.stage == "all" else [args.stage]
    for stage in stages:
        if args.stage == "all":
            out = str(Path(args.out or "out/face") / stage)
            init = str(Path(args.out or "out/face") / PREVIOUS[stage]) if stage in PREVIOUS else None
            steps = RECIPE[stage]
        else:
            out, init, steps = args.out or f"out/face/{stage}", args.init, args.steps
        last = train(stage, args.data, out, preset_name=args.preset, layout=args.layout, init=init, steps=steps,
                     batch=args.batch, lr=args.lr, seed=args.seed, save_every=args.save_every,
                     resume=not args.restart)
        log.info(f"{stage}: {({k: round(v, 4) for k, v in last.items()})}")
        log.info(f"wrote {out}")
    return 0
