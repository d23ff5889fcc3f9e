"""Evaluate an AvatarDiT checkpoint on held-out rendered clips (§7.1 renderer metrics).

For each clip the model samples the video latents from noise, conditioned on the clip's face
parameters (and face crops), control renders, references and camera; the decoded frames are
compared with the ground-truth frames by PSNR and SSIM. Two references bracket the figures:

- `ceiling`: the ground-truth latents decoded (what the latent space itself loses - with the tiny
  `PixelLatents` that is a lot: 8x mean-pooled pixels);
- `mean_frame`: every frame predicted as the mean colour of the clip's reference view (a model
  that learned nothing about pose, face or camera scores about this).

    evaluate("out/avatardit/joint", clips=8)  ->  {"psnr_db": ..., "ssim": ..., "ceiling": {...}, ...}
"""

from __future__ import annotations

import numpy as np
import torch

from mio.metrics.render import psnr, ssim
from mio.render.avatardit.data import ClipConfig, PixelLatents, RenderedClips, collate
from mio.render.avatardit.model import AvatarDiT, sample

HELD_OUT_SEED = 10_000_019  # clip seeds from here on are never drawn by training (seeds < 1e6 * steps)


def _images(frames: torch.Tensor) -> list[np.ndarray]:
    """(3, F, H, W) in [-1, 1] -> F images (H, W, 3) in [0, 1]."""
    x = ((frames.clamp(-1, 1) + 1) / 2).permute(1, 2, 3, 0).numpy()
    return list(x)


def _scores(pred: list[np.ndarray], true: list[np.ndarray]) -> dict[str, float]:
    return {"psnr_db": float(np.mean([psnr(p, t) for p, t in zip(pred, true, strict=True)])),
            "ssim": float(np.mean([ssim(p, t) for p, t in zip(pred, true, strict=True)]))}


def evaluate(checkpoint: str, *, clips: int = 8, stage: str | None = None, steps: int = 20,
             seed: int = 0) -> dict:
    model = AvatarDiT.from_pretrained(checkpoint)
    config = model.pretrained_config
    stage = stage or config.get("stage", "joint")
    clip_cfg = ClipConfig(**config["clips"]) if "clips" in config else ClipConfig()
    data = RenderedClips(clip_cfg)
    latents = PixelLatents()
    cfg = model.cfg
    rows = {"model": [], "ceiling": [], "mean_frame": []}
    gen = torch.Generator().manual_seed(seed)
    try:
        for k in range(clips):
            clip = data.clip(HELD_OUT_SEED + k, stage)
            b = collate([clip], latents)
            text = torch.zeros(1, 1, cfg.text_dim)
            z = sample(model, tuple(b["x0"].shape), steps=steps, generator=gen, references=b["references"],
                       control=b["control"], text=text, face_params=b["face_params"],
                       face_pixels=b["face_pixels"], camera=b["camera"])
            true = _images(torch.from_numpy(clip["video"]).transpose(0, 1))
            rows["model"].append(_scores(_images(latents.decode(z)[0]), true))
            rows["ceiling"].append(_scores(_images(latents.decode(b["x0"])[0]), true))
            mean = torch.from_numpy(clip["references"][0]).mean(dim=(1, 2), keepdim=True)  # (3, 1, 1)
            flat = mean[:, None].expand(3, len(true), *clip["video"].shape[-2:])
            rows["mean_frame"].append(_scores(_images(flat), true))
    finally:
        data.close()
    avg = {name: {m: round(float(np.mean([r[m] for r in rs])), 4) for m in ("psnr_db", "ssim")}
           for name, rs in rows.items()}
    return {"checkpoint": str(checkpoint), "stage": stage, "clips": clips, "sampling_steps": steps,
            "trained_steps": config.get("trained_steps"), **avg["model"], "ceiling": avg["ceiling"],
            "mean_frame": avg["mean_frame"]}
