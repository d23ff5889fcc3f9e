"""`mio train render --stage face|multiview|joint`: AvatarDiT's three training stages (§5.2).

    mio train render --stage face      --preset tiny --steps 300 -o out/avatardit/face
    mio train render --stage multiview --preset tiny --steps 300 --init out/avatardit/face -o out/avatardit/mv
    mio train render --stage joint     --preset tiny --steps 300 --init out/avatardit/mv -o out/avatardit/joint
    torchrun --nproc_per_node 2 -m mio.cli train render --stage face ...          # DDP (gloo on CPU)

What each stage trains (the rest is frozen), following §5.2:
- face: the FLAME/ARKit adapter A and the motion encoder E_face (Eq. 17). Face images are dropped
  from half the clips so the parameters alone must carry the expression.
- multiview: the camera modulation (Eq. 18) and each block's modulation table, on clips seen from a
  random camera with 1-5 reference views.
- joint: all control modules together (adapter, motion and face encoders, face cross-attention,
  camera modulation, modulation tables, the body-render patch embedding).
With no pretrained Wan weights (`tiny`, `train_backbone`), the backbone trains in every stage too -
there is nothing to keep frozen. Objective: Wan's rectified flow matching (velocity MSE).
Data: synthetic clips rendered by the embedded rasteriser (mio.render.avatardit.data).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path

import torch

from mio.core.errors import ConfigError
from mio.render.avatardit.config import PRESETS, STAGES, AvatarDiTConfig
from mio.render.avatardit.model import AvatarDiT, flow_matching_loss

log = logging.getLogger(__name__)

KIND = AvatarDiT.kind
FACE_IMAGE_DROPOUT = 0.5  # face stage: share of clips driven by parameters alone


def trainable_parameters(model: AvatarDiT, stage: str) -> list[torch.nn.Parameter]:
    """Select (and mark requires_grad on) the parameters `stage` trains; freezes the others."""
    if stage not in STAGES:
        raise ConfigError(f"unknown AvatarDiT stage {stage!r}; choose one of {', '.join(STAGES)}")
    wan = model.backbone
    tables = [b.scale_shift_table for b in wan.blocks]
    modules: dict[str, list] = {
        "face": [model.adapter, wan.motion_encoder],
        "multiview": [model.camera, *tables],
        "joint": [model.adapter, wan.motion_encoder, wan.face_encoder, wan.face_adapter, model.camera,
                  wan.pose_patch_embedding, *tables],
    }
    for p in model.parameters():
        p.requires_grad_(model.cfg.train_backbone)
    if not model.cfg.train_backbone:
        for m in modules[stage]:
            for p in [m] if isinstance(m, torch.nn.Parameter) else m.parameters():
                p.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def training_step(model: torch.nn.Module, cfg: AvatarDiTConfig, batch: dict[str, torch.Tensor], stage: str,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """The flow-matching loss of one batch (see `random_batch` / `collate` for its keys)."""
    x0 = batch["x0"]
    B = x0.shape[0]
    face_pixels = batch.get("face_pixels")
    if stage == "face" and face_pixels is not None:  # parameters alone must drive the face for some clips
        keep = (torch.rand(B, generator=generator) >= FACE_IMAGE_DROPOUT).to(face_pixels)
        face_pixels = face_pixels * keep.view(B, 1, 1, 1, 1) - (1 - keep.view(B, 1, 1, 1, 1))  # dropped: black
    text = torch.zeros(B, 1, cfg.text_dim)  # the empty prompt (no text encoder offline)
    return flow_matching_loss(model, x0, generator, shift=cfg.shift, references=batch["references"],
                              control=batch["control"], text=text, face_params=batch["face_params"],
                              face_pixels=face_pixels, camera=batch["camera"])


def train_command(args: argparse.Namespace) -> int:
    from mio.render.avatardit.data import ClipConfig, PixelLatents, RenderedClips, WanVAELatents, collate
    from mio.train import Trainer, TrainerConfig
    from mio.train.checkpoint import load_pretrained, load_weights
    from mio.train.dist import init_distributed

    info = init_distributed()
    torch.manual_seed(args.seed)
    if args.wan:
        model = AvatarDiT.from_wan(args.wan, face_dim=args.face_dim or 112)
    else:
        cfg = PRESETS[args.preset]() if args.face_dim is None else PRESETS[args.preset](face_dim=args.face_dim)
        if args.preset == "paper":
            raise ConfigError("the paper preset needs Wan-Animate weights: pass --wan DIR (a local diffusers folder)")
        model = AvatarDiT(cfg)
    cfg = model.cfg
    if cfg.face_dim != 61:
        raise ConfigError(f"the rendered training clips carry arkit52 face parameters (61), the model takes "
                          f"{cfg.face_dim}; use --face-dim 61")
    if args.init and not (Path(args.output) / "train_state").is_dir():
        state, _ = load_pretrained(args.init, kind=KIND)
        load_weights(model, state, where=args.init)
    params = trainable_parameters(model, args.stage)
    latents = WanVAELatents(args.vae) if args.vae else PixelLatents()
    if latents.channels != cfg.latent_channels:
        raise ConfigError(f"latents have {latents.channels} channels, the model takes {cfg.latent_channels}")
    clip_cfg = ClipConfig(size=args.size, latent_frames=args.latent_frames, face_size=cfg.motion_encoder_size,
                          look=args.look)
    clips = RenderedClips(clip_cfg)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    trainer = Trainer(
        TrainerConfig(out_dir=args.output, max_steps=args.steps, log_every=args.log_every, save_every=args.save_every,
                      seed=args.seed, resume=not args.restart, threads=args.threads, desc=f"avatardit {args.stage}"),
        model, {"main": opt}, model_config={"stage": args.stage, "avatardit": cfg.to_dict(), "clips": asdict(clip_cfg)},
        kind=KIND, info=info,
    )
    net = trainer.ddp(model, find_unused_parameters=True)
    gen = torch.Generator().manual_seed(args.seed * 7919 + info.rank)

    def batch_fn(step: int) -> dict[str, torch.Tensor]:
        base = (args.seed * 1_000_003 + step * info.world_size + info.rank) * args.batch
        return collate([clips.clip(base + i, args.stage) for i in range(args.batch)], latents)

    def step_fn(step: int, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        loss = training_step(net, cfg, batch, args.stage, gen)
        norm = trainer.backward_step(loss, "main")
        return {"loss": loss.item(), "grad_norm": norm}

    try:
        last = trainer.fit(batch_fn, step_fn)
    finally:
        clips.close()
    if info.is_main:
        log.info(f"avatardit {args.stage}: step {trainer.step}, loss {last.get('loss', float('nan')):.4f} -> {args.output}")
    return 0
