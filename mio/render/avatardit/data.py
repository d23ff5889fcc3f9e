"""Training clips for AvatarDiT's three stages (§5.2.3), and the latent spaces they are encoded in.

The paper trains on Seamless Interaction (face stage, FLAME labels), MVHumanNet (multi-view stage)
and a curated set with both (joint stage). None of these is available offline, so the stand-in is
the embedded avatar itself: the rasteriser renders one identity (a `Look`) with known face
parameters, body pose and cameras, which gives exactly the supervision each stage needs -

- face: one front view; target frames, face crops (RGB, for E_face) and the face parameters;
- multiview: 1-5 reference views of the first frame and a target from another random camera;
- joint: both at once (random camera, several references, face parameters and crops).

Every clip also carries the control renders (the bare posed mesh, `render_control`) from the
target camera: the body "SMPL render signal". This teaches the mechanics (parameters -> pixels,
camera -> view) on synthetic appearance only; it is no substitute for the paper's data.

Latents: `PixelLatents` is the tiny stand-in for the Wan VAE (8x spatial and 4x temporal
compression like it: mean-pooled pixels folded into 12 channels; its decoder is the matching
upsampling, so decoded frames are blurry by construction); `WanVAELatents` wraps diffusers'
AutoencoderKLWan from a local folder for real runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mio.render.avatardit.config import AvatarDiTConfig
from mio.render.avatardit.model import camera_vector


class PixelLatents:
    """(B, 3, F, H, W) frames in [-1, 1], F = 1 + 4k -> (B, 12, 1 + k, H/8, W/8) and back.
    Time: the first frame alone, then each group of 4 averaged (the Wan VAE's causal layout)."""

    channels = 12
    spatial = 8
    temporal = 4

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        B, C, n, H, W = frames.shape
        if (n - 1) % self.temporal:
            raise ValueError(f"clips need 1 + 4k frames, got {n}")
        first, rest = frames[:, :, :1], frames[:, :, 1:]
        rest = rest.unflatten(2, (-1, self.temporal)).mean(3)  # (B, 3, k, H, W)
        x = torch.cat([first, rest], 2).transpose(1, 2).flatten(0, 1)  # (B*T, 3, H, W)
        x = F.avg_pool2d(x, self.spatial // 2)
        x = F.pixel_unshuffle(x, 2)  # (B*T, 12, H/8, W/8)
        return x.unflatten(0, (B, -1)).transpose(1, 2)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        B, _, T = latents.shape[:3]
        x = latents.transpose(1, 2).flatten(0, 1)
        x = F.interpolate(F.pixel_shuffle(x, 2), scale_factor=self.spatial // 2, mode="bilinear", align_corners=False)
        x = x.unflatten(0, (B, T)).transpose(1, 2)  # (B, 3, T, H, W)
        return torch.cat([x[:, :, :1], x[:, :, 1:].repeat_interleave(self.temporal, dim=2)], 2)


class WanVAELatents:
    """The Wan 2.1 VAE (diffusers AutoencoderKLWan) from a local folder, with its latent normalisation."""

    def __init__(self, path: str | Path, dtype: torch.dtype = torch.float32) -> None:
        from diffusers import AutoencoderKLWan

        path = Path(path)
        sub = "vae" if (path / "vae" / "config.json").is_file() else None
        self.vae = AutoencoderKLWan.from_pretrained(str(path), subfolder=sub, torch_dtype=dtype,
                                                    use_safetensors=True, local_files_only=True).eval()
        c = self.vae.config
        self.channels = c.z_dim
        self.mean = torch.tensor(c.latents_mean).view(1, -1, 1, 1, 1)
        self.std = torch.tensor(c.latents_std).view(1, -1, 1, 1, 1)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        z = self.vae.encode(frames.to(self.vae.dtype)).latent_dist.mode()
        return (z - self.mean.to(z)) / self.std.to(z)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents * self.std.to(latents) + self.mean.to(latents)
        return self.vae.decode(z.to(self.vae.dtype)).sample.clamp(-1, 1)


@dataclass(frozen=True)
class ClipConfig:
    size: int = 64  # target frame side, pixels (latents are size / 8)
    latent_frames: int = 3  # T; the clip has 4 (T - 1) + 1 pixel frames
    face_size: int = 32  # face crop side for the motion encoder (its `motion_encoder_size`)
    look: str = "default"  # the identity rendered
    max_azimuth: float = 90.0  # degrees either side of the front, multiview / joint stages
    max_elevation: float = 20.0


def _to_unit(img: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1]."""
    return np.moveaxis(img.astype(np.float32) / 127.5 - 1.0, -1, -3)


class RenderedClips:
    """Synthetic clips from the rasteriser: `clip(seed, stage)` -> dict of numpy arrays."""

    def __init__(self, clip: ClipConfig, cache_dir: str | None = None) -> None:
        from mio.core.config import RenderConfig
        from mio.render.raster import AnnyRenderer
        from mio.render.retarget import relaxed_joints

        self.cfg = clip
        self.renderer = AnnyRenderer(RenderConfig(width=clip.size, height=clip.size, look=clip.look,
                                                  cache_dir=cache_dir, samples=0), threads=0)
        self.rest = relaxed_joints(self.renderer.rig)
        self.front = self.renderer.preset_camera("upper_body", clip.size, clip.size)
        self.face_cam = self.renderer.preset_camera("portrait", clip.face_size, clip.face_size)
        lm = self.renderer.asset.landmarks
        self.target = np.array([0.0, 0.5 * (lm["head_top"][1] + lm["pelvis"][1]), lm["eye_mid"][2]])

    def _random_camera(self, rng: np.random.Generator):
        from mio.render.camera import orbit

        c = self.cfg
        return orbit(self.front, self.target, rng.uniform(-c.max_azimuth, c.max_azimuth),
                     rng.uniform(-c.max_elevation / 2, c.max_elevation))

    def clip(self, seed: int, stage: str) -> dict[str, np.ndarray]:
        from mio.render.tracks import random_body, random_face

        rng = np.random.default_rng(seed)
        n = 4 * (self.cfg.latent_frames - 1) + 1
        face = random_face(n, rng)
        joints = random_body(self.rest, n, rng)
        cam = self.front if stage == "face" else self._random_camera(rng)
        n_refs = 1 if stage == "face" else int(rng.integers(1, 6))
        ref_cams = [self.front] + [self._random_camera(rng) for _ in range(n_refs - 1)]
        r = self.renderer
        video, control, crops = [], [], []
        for k in range(n):
            video.append(r.render(face[k], joints[k], cam))
            control.append(r.render_control(face[k], joints[k], cam))
            crops.append(r.render(face[k], joints[k], self.face_cam))
        refs = r.render_batch(face[0] * 0, self.rest, ref_cams)  # identity: neutral face, rest pose
        return {
            "video": _to_unit(np.stack(video)),  # (F, 3, H, W)
            "control": _to_unit(np.stack(control)),
            "face_pixels": _to_unit(np.stack(crops)),  # (F, 3, h, w)
            "face_params": face.astype(np.float32),  # (F, 61)
            "references": _to_unit(np.stack(refs)),  # (R, 3, H, W)
            "camera": camera_vector(cam),  # (16,)
        }

    def close(self) -> None:
        self.renderer.close()


def collate(clips: list[dict[str, np.ndarray]], latents) -> dict[str, torch.Tensor]:
    """Clips -> a model batch (references trimmed to the fewest in the batch)."""
    R = min(len(c["references"]) for c in clips)

    def frames(key: str) -> torch.Tensor:  # (B, F, 3, H, W) -> (B, 3, F, H, W)
        return torch.from_numpy(np.stack([c[key] for c in clips])).transpose(1, 2)

    refs = torch.from_numpy(np.stack([c["references"][:R] for c in clips])).transpose(1, 2)  # (B, 3, R, H, W)
    # each reference view is a one-frame clip of its own
    ref_lat = torch.cat([latents.encode(refs[:, :, i : i + 1]) for i in range(R)], dim=2)  # (B, C, R, h, w)
    return {
        "x0": latents.encode(frames("video")),
        "control": latents.encode(frames("control")),
        "references": ref_lat,
        "face_pixels": frames("face_pixels"),
        "face_params": torch.from_numpy(np.stack([c["face_params"] for c in clips])),
        "camera": torch.from_numpy(np.stack([c["camera"] for c in clips])),
    }


def random_batch(cfg: AvatarDiTConfig, batch: int = 2, latent_frames: int = 2, size: int = 8, references: int = 2,
                 generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Random tensors shaped like a training batch (tests; no renderer needed)."""
    g = generator
    C, T, S = cfg.latent_channels, latent_frames, 4 * (latent_frames - 1) + 1
    m = cfg.motion_encoder_size
    return {
        "x0": torch.randn(batch, C, T, size, size, generator=g),
        "control": torch.randn(batch, C, T, size, size, generator=g),
        "references": torch.randn(batch, C, references, size, size, generator=g),
        "face_pixels": torch.rand(batch, 3, S, m, m, generator=g) * 2 - 1,
        "face_params": torch.rand(batch, S, cfg.face_dim, generator=g),
        "camera": torch.randn(batch, 16, generator=g),
    }
