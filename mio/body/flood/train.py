"""`mio train body --stage data|vae|dit|eval`: the FloodDiffusion training stages (§4.2).

    mio train body --stage data --out out/body/library           # render the motion library
    mio train body --stage vae  --data out/body/library --out out/body/vae
    mio train body --stage dit  --data out/body/library --vae out/body/vae --out out/body/dit
    mio train body --stage dit  ... --variant causal|random|chunk   # the §7.4 ablations
    mio train body --stage eval --data out/body/library --out out/body/evaluator

Single process or `torchrun --nproc_per_node N -m mio.cli train body ...` (DDP, gloo on CPU);
rerunning a command resumes from its last checkpoint. `--data` is any HumanML3D-layout folder
(the real dataset works as is).

DiT training windows mimic what streaming inference sees (`schedule.training_alphas`): up to
`context` clean committed latents, then the n_s-frame active window on the lower-triangular
staircase with the noise front at the newest frame; at stream start (no context) windows begin
at the first frame. The loss is the velocity MSE on the frames that are still noisy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from mio.body.data import load_humanml3d
from mio.body.flood.config import DiTConfig, dit_preset, vae_preset
from mio.body.flood.dit import FloodDiT
from mio.body.flood.schedule import noisy, training_alphas, velocity_target
from mio.body.flood.text import TextEncoder
from mio.body.flood.vae import CausalVAE
from mio.body.motionlib import MotionSample
from mio.core.errors import InputError
from mio.train.dist import init_distributed
from mio.train.loop import Trainer, TrainerConfig

VARIANTS = {  # --variant -> DiT config changes (§7.4 ablations)
    "flood": {},
    "causal": {"attention": "causal"},
    "random": {"schedule": "random"},
    "chunk": {"schedule": "chunk"},
}


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def load_samples(data: str | Path, split: str, limit: int | None = None) -> list[MotionSample]:
    samples = load_humanml3d(data, split, limit=limit)
    if not samples:
        raise InputError(f"no {split} clips in {data}")
    return samples


def feature_stats(data: str | Path, samples: list[MotionSample]) -> tuple[np.ndarray, np.ndarray]:
    """HumanML3D's Mean/Std if the folder has them, else computed; std floored (contacts, constants)."""
    root = Path(data)
    if (root / "Mean.npy").is_file() and (root / "Std.npy").is_file():
        mean, std = np.load(root / "Mean.npy"), np.load(root / "Std.npy")
    else:
        feats = np.concatenate([s.features for s in samples])
        mean, std = feats.mean(0), feats.std(0)
    return mean.astype(np.float32), np.maximum(std, 1e-2).astype(np.float32)


def vae_batch(samples: list[MotionSample], rng: np.random.Generator, batch: int, frames: int) -> torch.Tensor:
    """Random crops (B, frames, 263) of raw features (clips shorter than `frames` are edge-padded)."""
    lengths = np.array([len(s.features) for s in samples], dtype=np.float64)
    idx = rng.choice(len(samples), size=batch, p=lengths / lengths.sum())
    out = []
    for i in idx:
        f = samples[i].features
        if len(f) < frames:
            f = np.concatenate([f, np.repeat(f[-1:], frames - len(f), 0)])
        s = int(rng.integers(0, len(f) - frames + 1))
        out.append(f[s:s + frames])
    return torch.from_numpy(np.stack(out))


@dataclass
class LatentSet:
    """Training data of the DiT: latent sequences with a prompt per latent frame, and the prompts' text."""

    latents: list[torch.Tensor]  # (K_i, C) standardised latents
    prompt_ids: list[np.ndarray]  # (K_i,) index into texts
    tokens: torch.Tensor  # (N, L, D)
    mask: torch.Tensor  # (N, L)
    sentence: torch.Tensor  # (N, D)
    texts: list[str]


@torch.no_grad()
def encode_latents(vae: CausalVAE, samples: list[MotionSample], text: TextEncoder) -> LatentSet:
    down = vae.cfg.down
    texts: list[str] = sorted({t for s in samples for g in s.segments for t in (g.text, *g.alternatives)})
    index = {t: i for i, t in enumerate(texts)}
    latents, pids = [], []
    for s in samples:
        z = vae.encode(torch.from_numpy(s.features)[None])[0]
        frame_pid = np.zeros(len(s.features), np.int64)
        for g in s.segments:
            frame_pid[g.start:] = index[g.text]
        pid = frame_pid[np.minimum(np.arange(len(z)) * down, len(frame_pid) - 1)]  # prompt at each latent's first frame
        latents.append(z)
        pids.append(pid)
    embs = text.encode(texts)
    return LatentSet(latents, pids, torch.from_numpy(np.stack([e.tokens for e in embs])),
                     torch.from_numpy(np.stack([e.mask for e in embs])),
                     torch.from_numpy(np.stack([e.sentence for e in embs])), texts)


def dit_batch(data: LatentSet, cfg: DiTConfig, rng: np.random.Generator, batch: int,
              generator: torch.Generator) -> dict[str, torch.Tensor]:
    """One batch of training windows (see module doc)."""
    w_full = cfg.window
    if rng.random() < 0.8:  # a window in mid-stream: full context
        w, at_start = w_full, False
    else:  # the start of a stream: only the first w frames exist
        w, at_start = int(rng.integers(1, w_full)), True
    ok = [i for i, z in enumerate(data.latents) if len(z) >= w]
    lengths = np.array([len(data.latents[i]) - w + 1 for i in ok], dtype=np.float64)
    chosen = rng.choice(ok, size=batch, p=lengths / lengths.sum())
    z, pid = [], []
    for i in chosen:
        s = 0 if at_start else int(rng.integers(0, len(data.latents[i]) - w + 1))
        z.append(data.latents[i][s:s + w])
        pid.append(data.prompt_ids[i][s:s + w])
    z = torch.stack(z)  # (B, w, C)
    # Clean context, then the staircase; at a stream start shorter than n_s, its newest w frames.
    alpha = training_alphas(cfg.schedule, batch, max(0, w - cfg.n_s), cfg.n_s, generator)[:, -w:]
    # Prompts of the window, renumbered 0..P-1 per sample (padded with the first).
    p = cfg.max_prompts
    local = torch.zeros(batch, w, dtype=torch.long)
    table = torch.zeros(batch, p, dtype=torch.long)
    keep = torch.ones(batch, p, dtype=torch.bool)
    for b, ids in enumerate(pid):
        uniq = list(dict.fromkeys(ids.tolist()))[-p:]
        table[b, : len(uniq)] = torch.tensor(uniq)
        keep[b, len(uniq):] = False
        local[b] = torch.tensor([uniq.index(i) if i in uniq else 0 for i in ids.tolist()])
    drop = torch.rand(batch, generator=generator) < cfg.text_dropout  # classifier-free guidance
    mask = data.mask[table] & keep[:, :, None] & ~drop[:, None, None]
    eps = torch.randn(z.shape, generator=generator)
    return {"x": noisy(z, eps, alpha), "alpha": alpha, "target": velocity_target(z, eps), "local": local,
            "tokens": data.tokens[table], "mask": mask, "sentence": data.sentence[table]}


def dit_loss(dit: torch.nn.Module, b: dict[str, torch.Tensor]) -> torch.Tensor:
    v = dit(b["x"], b["alpha"], b["local"], b["tokens"], b["mask"], b["sentence"])
    weight = (b["alpha"] < 1.0).float()[..., None]  # clean context frames carry no target
    return ((v - b["target"]) ** 2 * weight).sum() / (weight.sum() * v.shape[-1]).clamp_min(1.0)


# ---------------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------------


def train_vae(data: str, out: str, *, preset: str = "small", steps: int = 2000, batch: int = 32,
              frames: int = 64, lr: float = 1e-3, seed: int = 0, save_every: int = 200,
              limit: int | None = None, progress: bool = True) -> CausalVAE:
    info = init_distributed()
    samples = load_samples(data, "train", limit)
    cfg = vae_preset(preset)
    vae = CausalVAE(cfg)
    mean, std = feature_stats(data, samples)
    vae.feat_mean.copy_(torch.from_numpy(mean))
    vae.feat_std.copy_(torch.from_numpy(std))
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100) * max(0.05, 1 - s / steps))
    trainer = Trainer(TrainerConfig(out, steps, log_every=20, save_every=save_every, seed=seed, desc="body vae",
                                    progress=progress),
                      vae, {"vae": opt}, model_config=cfg.to_dict(), kind=CausalVAE.kind, schedulers={"vae": sched}, info=info)
    net = trainer.ddp(vae)

    def batch_fn(step: int) -> torch.Tensor:
        rng = np.random.default_rng([seed, step, info.rank])
        return vae.normalize(vae_batch(samples, rng, batch, frames))

    def step_fn(step: int, x: torch.Tensor) -> dict[str, float]:
        loss = net(x)  # Eq. 13 (forward, so DDP all-reduces the gradients)
        trainer.backward_step(loss, "vae")
        return {"loss": float(loss), **vae.last_logs}

    trainer.fit(batch_fn, step_fn)
    if info.is_main:  # latent statistics for the diffusion model, then the final checkpoint
        vae.fit_latent_stats([torch.from_numpy(s.features) for s in samples[:400]])
        vae.save_pretrained(out, extra={"trained_steps": trainer.step})
    return vae


def train_dit(data: str, vae_dir: str, out: str, *, preset: str = "small", variant: str = "flood",
              steps: int = 3000, batch: int = 32, lr: float = 3e-4, seed: int = 0, save_every: int = 200,
              limit: int | None = None, text: TextEncoder | None = None, progress: bool = True) -> FloodDiT:
    from mio.body.flood.text import shared_text_encoder

    info = init_distributed()
    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    vae = CausalVAE.from_pretrained(vae_dir)
    cfg = replace(dit_preset(preset), **VARIANTS[variant])
    text = text or shared_text_encoder("minilm", cfg.text_tokens)
    if text.dim != cfg.text_dim:
        cfg = replace(cfg, text_dim=text.dim)
    samples = load_samples(data, "train", limit)
    latents = encode_latents(vae, samples, text)
    dit = FloodDiT(cfg)
    opt = torch.optim.AdamW(dit.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 200) * max(0.1, 1 - s / steps))
    config = {**cfg.to_dict(), "variant": variant, "text_encoder": text.name, "vae": str(vae_dir)}
    trainer = Trainer(TrainerConfig(out, steps, log_every=20, save_every=save_every, seed=seed,
                                    desc=f"body dit ({variant})", progress=progress),
                      dit, {"dit": opt}, model_config=config, kind=FloodDiT.kind, schedulers={"dit": sched}, info=info)
    net = trainer.ddp(dit)

    def batch_fn(step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([seed, step, info.rank])
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        return dit_batch(latents, cfg, rng, batch, gen)

    def step_fn(step: int, b: dict[str, torch.Tensor]) -> dict[str, float]:
        loss = dit_loss(net, b)
        trainer.backward_step(loss, "dit")
        return {"loss": float(loss)}

    trainer.fit(batch_fn, step_fn)
    return dit


__all__ = ["VARIANTS", "dit_batch", "dit_loss", "encode_latents", "feature_stats", "load_samples", "train_dit",
           "train_vae"]
