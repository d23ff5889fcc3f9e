"""AvatarDiT (paper §5.2): Wan-Animate's video DiT driven by parameters instead of driving video.

    V_t = R(phi_t, psi_t, kappa_t, I*)                                         (Eq. 16)

The backbone is diffusers' `WanAnimateTransformer3DModel`, used as is (so real Wan-Animate weights
load unchanged); AvatarDiT adds the paper's control modules around it and runs its forward pass
itself, top-down, so they can be injected:

- **FLAME/ARKit adapter** `FaceAdapter` (§5.2.1): a 4-layer transformer A(phi) mapping face
  parameters (flame112 or Mio's arkit52) to the 512-D face-motion embedding, added to the one the
  Wan-Animate motion encoder E_face extracts from face images (RGB crops or face-mesh renders):
      z = E_face(I) + A(phi)                                                    (Eq. 17)
  Either term may be absent (parameters only, face images only, or both).
- **Body control** psi: renders of the body mesh from the rasteriser (mio.render.raster
  `render_control`), encoded to latents, enter through Wan-Animate's pose patch embedding - the
  "SMPL render signal" of §5.2.2.
- **Multi-view references**: 1-5 reference latents (views of the identity I*) are prepended in time,
  marked "given" by the I2V mask channels, as Wan-Animate does with its single reference frame.
- **Camera modulation** `CameraModulation` (§5.2.2): per block, the camera kappa (intrinsics +
  extrinsics) gives channel vectors e0, e1, e2 that shift the feed-forward branch's modulation,
  on top of the timestep's shift / scale / gate:
      z_out = z_ca + FFN(Norm(z_ca) * (1 + e1) + e0) * e2                      (Eq. 18)
  The camera heads are zero-initialised, and so is the adapter's output layer, so a fresh
  AvatarDiT computes exactly what its Wan-Animate backbone computes (tested).

Shapes: B batch, C latent channels, R references, T latent frames, S = 4 (T - 1) + 1 face frames
(the Wan VAE's 4x temporal compression), H x W latent size, D face parameters.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mio.render.avatardit.config import CAMERA_DIM, AvatarDiTConfig
from mio.train.checkpoint import Pretrained

I2V_MASK_CHANNELS = 4  # Wan's I2V mask: one channel per pixel frame folded into a latent frame
MOTION_ENCODER_BATCH = 16  # face crops per motion-encoder call (bounded memory at 512x512)


def camera_vector(camera) -> np.ndarray:
    """kappa: a mio Camera -> (16,) float32 [fx/W, fy/H, cx/W, cy/H, R (9, row-major), t (3)]."""
    w, h = float(camera.width), float(camera.height)
    intr = [camera.fx / w, camera.fy / h, camera.cx / w, camera.cy / h]
    return np.concatenate([intr, np.asarray(camera.R, np.float64).ravel(), np.asarray(camera.t, np.float64)]
                          ).astype(np.float32)


def sinusoid(n: int, width: int, device=None) -> torch.Tensor:
    """(n, width) sinusoidal positions (frame index)."""
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, width, 2, device=device, dtype=torch.float32) / width)
    pe = torch.zeros(n, width, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: width // 2])
    return pe


class FaceAdapter(nn.Module):
    """A(phi) of Eq. 17: a 4-layer transformer over the frames, (B, S, D) -> (B, S, 512)."""

    def __init__(self, cfg: AvatarDiTConfig) -> None:
        super().__init__()
        w = cfg.adapter_width
        self.proj_in = nn.Linear(cfg.face_dim, w)
        layer = nn.TransformerEncoderLayer(w, cfg.adapter_heads, 4 * w, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.adapter_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(w)
        self.proj_out = nn.Linear(w, cfg.motion_encoder_dim)
        nn.init.zeros_(self.proj_out.weight)  # starts as "no change" to the image-derived embedding
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, phi: torch.Tensor) -> torch.Tensor:
        x = self.proj_in(phi) + sinusoid(phi.shape[1], self.proj_in.out_features, phi.device)  # (B, S, w)
        return self.proj_out(self.norm(self.blocks(x)))  # (B, S, 512)


class CameraModulation(nn.Module):
    """kappa -> per block (e0, e1, e2), each (B, C): the camera terms of Eq. 18, zero-initialised."""

    def __init__(self, cfg: AvatarDiTConfig) -> None:
        super().__init__()
        h = cfg.camera_hidden
        self.embed = nn.Sequential(nn.Linear(CAMERA_DIM, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU())
        self.heads = nn.ModuleList([nn.Linear(h, 3 * cfg.dim) for _ in range(cfg.num_layers)])
        for head in self.heads:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, kappa: torch.Tensor) -> list[torch.Tensor]:
        h = self.embed(kappa)  # (B, hidden)
        return [head(h).unflatten(1, (3, -1)) for head in self.heads]  # num_layers x (B, 3, C)


def camera_block(block: nn.Module, x: torch.Tensor, context: torch.Tensor, t_mod: torch.Tensor,
                 rope, cam: torch.Tensor | None) -> torch.Tensor:
    """One Wan DiT block (diffusers WanTransformerBlock's weights) with Eq. 18's camera shifting.
    x (B, N, C), context (B, L, C), t_mod (B, 6, C) timestep modulation, cam (B, 3, C) or None."""
    shift_msa, scale_msa, gate_msa, c_shift, c_scale, c_gate = (block.scale_shift_table + t_mod.float()).chunk(6, dim=1)
    if cam is not None:  # Eq. 18: e0 shifts, e1 scales, e2 gates the feed-forward branch
        e0, e1, e2 = cam.float().chunk(3, dim=1)
        c_shift, c_scale, c_gate = c_shift + e0, c_scale + e1, c_gate + e2
    # self-attention
    h = (block.norm1(x.float()) * (1 + scale_msa) + shift_msa).type_as(x)
    x = (x.float() + block.attn1(h, None, None, rope) * gate_msa).type_as(x)
    # cross-attention (text and image context): z^(ca)
    x = x + block.attn2(block.norm2(x.float()).type_as(x), context, None, None)
    # feed-forward, modulated by timestep and camera
    h = (block.norm3(x.float()) * (1 + c_scale) + c_shift).type_as(x)
    return (x.float() + block.ffn(h).float() * c_gate).type_as(x)


class AvatarDiT(Pretrained, nn.Module):
    """`AvatarDiT.from_pretrained(path)`: a model trained by `mio train render` (its config.json holds
    {"stage", "avatardit": the AvatarDiTConfig, "clips"}); `from_wan` wraps real Wan-Animate weights."""

    kind = "avatardit"

    @classmethod
    def from_config(cls, config: dict, **options) -> AvatarDiT:
        return cls(AvatarDiTConfig.from_dict(config["avatardit"]))

    def config_dict(self) -> dict:
        return {"avatardit": self.cfg.to_dict()}

    def __init__(self, cfg: AvatarDiTConfig, backbone: nn.Module | None = None) -> None:
        super().__init__()
        from diffusers import WanAnimateTransformer3DModel

        self.cfg = cfg
        self.backbone = backbone if backbone is not None else WanAnimateTransformer3DModel(**cfg.backbone_kwargs())
        self.adapter = FaceAdapter(cfg)
        self.camera = CameraModulation(cfg)

    @classmethod
    def from_wan(cls, path: str | Path, *, face_dim: int = 112, dtype: torch.dtype = torch.float32,
                 **overrides) -> AvatarDiT:
        """Wrap real Wan-Animate weights from a local diffusers folder (the model folder or its
        `transformer/` subfolder). The control modules start from their zero-initialised identity."""
        from diffusers import WanAnimateTransformer3DModel

        path = Path(path)
        sub = "transformer" if (path / "transformer" / "config.json").is_file() else None
        wan = WanAnimateTransformer3DModel.from_pretrained(str(path), subfolder=sub, torch_dtype=dtype,
                                                           use_safetensors=True, local_files_only=True)
        c = wan.config
        cfg = AvatarDiTConfig(
            num_layers=c.num_layers, num_heads=c.num_attention_heads, head_dim=c.attention_head_dim,
            ffn_dim=c.ffn_dim, latent_channels=c.latent_channels, patch_size=tuple(c.patch_size),
            text_dim=c.text_dim, image_dim=c.image_dim, freq_dim=c.freq_dim, rope_max_seq_len=c.rope_max_seq_len,
            motion_encoder_size=c.motion_encoder_size,
            motion_encoder_channels=dict(c.motion_encoder_channel_sizes or AvatarDiTConfig().motion_encoder_channels),
            motion_style_dim=c.motion_style_dim, motion_dim=c.motion_dim, motion_encoder_dim=c.motion_encoder_dim,
            face_encoder_hidden_dim=c.face_encoder_hidden_dim, face_encoder_heads=c.face_encoder_num_heads,
            inject_face_latents_blocks=c.inject_face_latents_blocks, face_dim=face_dim, **overrides,
        )
        return cls(cfg, backbone=wan).to(dtype)

    # ------------------------------------------------------------------ Eq. 17
    def face_motion(self, face_params: torch.Tensor | None, face_pixels: torch.Tensor | None) -> torch.Tensor:
        """z = E_face(I) + A(phi): face_params (B, S, D), face_pixels (B, 3, S, h, w) in [-1, 1] -> (B, S, 512)."""
        if face_params is None and face_pixels is None:
            raise ValueError("AvatarDiT needs face parameters, face images, or both (Eq. 17)")
        z = 0
        if face_pixels is not None:
            B, _, S = face_pixels.shape[:3]
            frames = face_pixels.transpose(1, 2).flatten(0, 1)  # (B*S, 3, h, w)
            chunks = frames.split(MOTION_ENCODER_BATCH)
            z = torch.cat([self.backbone.motion_encoder(c) for c in chunks]).view(B, S, -1)  # E_face(I)
        if face_params is not None:
            if face_params.shape[-1] != self.cfg.face_dim:
                raise ValueError(f"face parameters have {face_params.shape[-1]} values, the adapter takes "
                                 f"{self.cfg.face_dim}")
            z = z + self.adapter(face_params)  # + A(phi)
        return z

    # ------------------------------------------------------------------ the DiT
    def forward(self, noisy: torch.Tensor, timestep: torch.Tensor, *, references: torch.Tensor,
                control: torch.Tensor, text: torch.Tensor, face_params: torch.Tensor | None = None,
                face_pixels: torch.Tensor | None = None, camera: torch.Tensor | None = None,
                image_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Flow-matching velocity for the video latents.

        noisy (B, C, T, H, W) latents at `timestep` (B,) in [0, 1000]; references (B, C, R, H, W)
        clean latents of 1-5 views of the identity; control (B, C, T, H, W) latents of the body
        (and face) mesh renders; text (B, L, text_dim); camera (B, 16) (`camera_vector`) or None;
        image_embeds (B, 257, image_dim) CLIP features of the reference image when the model has an
        image branch. Returns (B, C, T, H, W)."""
        wan, cfg = self.backbone, self.cfg
        B, C, T, H, W = noisy.shape
        R = references.shape[2]
        if not 1 <= R <= cfg.max_references:
            raise ValueError(f"AvatarDiT takes 1-{cfg.max_references} reference latents, got {R}")
        if control.shape != noisy.shape:
            raise ValueError(f"control latents {tuple(control.shape)} must match the video latents {tuple(noisy.shape)}")
        # Wan-Animate's input: [latents | I2V mask (1 = given) | condition latents], references first.
        x = torch.cat([references, noisy], dim=2)  # (B, C, R+T, H, W)
        mask = torch.zeros(B, I2V_MASK_CHANNELS, R + T, H, W, dtype=x.dtype, device=x.device)
        mask[:, :, :R] = 1
        cond = torch.cat([references, torch.zeros_like(noisy)], dim=2)
        x = torch.cat([x, mask, cond], dim=1)  # (B, 2C+4, R+T, H, W)

        p_t, p_h, p_w = cfg.patch_size
        grid = ((R + T) // p_t, H // p_h, W // p_w)
        rope = wan.rope(x)
        x = wan.patch_embedding(x)  # (B, dim, R+T, H/2, W/2)
        pose = wan.pose_patch_embedding(control)  # body/face mesh render signal, video frames only
        x = torch.cat([x[:, :, :R], x[:, :, R:] + pose], dim=2)
        x = x.flatten(2).transpose(1, 2)  # (B, N, dim)

        temb, t_mod, context, image_ctx = wan.condition_embedder(timestep, text, image_embeds, timestep_seq_len=None)
        t_mod = t_mod.unflatten(1, (6, -1))  # (B, 6, dim)
        if image_ctx is not None:
            context = torch.cat([image_ctx, context], dim=1)

        z = self.face_motion(face_params, face_pixels)  # (B, S, 512)  Eq. 17
        motion = wan.face_encoder(z)  # (B, T, heads + 1, dim): 4x temporal downsampling
        if motion.shape[1] != T:
            raise ValueError(f"{z.shape[1]} face frames give {motion.shape[1]} latent frames, the video has {T}: "
                             f"use S = 4 (T - 1) + 1 = {4 * (T - 1) + 1} face frames")
        motion = torch.cat([motion.new_zeros(B, R, *motion.shape[2:]), motion], dim=1)  # references: no face

        cams = self.camera(camera) if camera is not None else [None] * len(wan.blocks)
        every = wan.config.inject_face_latents_blocks
        for i, block in enumerate(wan.blocks):
            x = camera_block(block, x, context, t_mod, rope, cams[i])  # Eq. 18
            if i % every == 0:
                x = x + wan.face_adapter[i // every](x, motion)

        shift, scale = (wan.scale_shift_table + temb.unsqueeze(1)).chunk(2, dim=1)
        x = (wan.norm_out(x.float()) * (1 + scale) + shift).type_as(x)
        x = wan.proj_out(x)  # (B, N, C * p_t * p_h * p_w)
        x = x.reshape(B, *grid, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        out = x.flatten(6, 7).flatten(4, 5).flatten(2, 3)  # (B, C, R+T, H, W)
        return out[:, :, R:]


# ---------------------------------------------------------------------------------------------
# Flow matching (Wan's rectified flow): x_s = (1 - s) x0 + s eps, the model predicts eps - x0.
# ---------------------------------------------------------------------------------------------


def shift_sigma(s: torch.Tensor, shift: float) -> torch.Tensor:
    """Wan's timestep shift: more steps at high noise for larger shift."""
    return shift * s / (1 + (shift - 1) * s)


def flow_matching_loss(model: nn.Module, x0: torch.Tensor, generator: torch.Generator | None = None,
                       shift: float = 1.0, **cond) -> torch.Tensor:
    """MSE between predicted and true velocity at a random noise level per sample."""
    B = x0.shape[0]
    s = shift_sigma(torch.rand(B, generator=generator), shift).to(x0)
    eps = torch.randn(x0.shape, generator=generator).to(x0)
    xs = (1 - s.view(B, 1, 1, 1, 1)) * x0 + s.view(B, 1, 1, 1, 1) * eps
    v = model(xs, s * 1000.0, **cond)
    return F.mse_loss(v.float(), (eps - x0).float())


@torch.no_grad()
def sample(model: AvatarDiT, shape: tuple[int, ...], *, steps: int = 20, shift: float | None = None,
           generator: torch.Generator | None = None, **cond) -> torch.Tensor:
    """Euler integration of the flow from noise (s = 1) to data (s = 0); returns (B, C, T, H, W) latents."""
    shift = model.cfg.shift if shift is None else shift
    p = next(model.parameters())
    x = torch.randn(shape, generator=generator).to(p)
    sig = shift_sigma(torch.linspace(1.0, 0.0, steps + 1), shift)
    for k in range(steps):
        t = torch.full((shape[0],), float(sig[k]) * 1000.0, device=p.device)
        x = x + (sig[k + 1] - sig[k]).item() * model(x, t, **cond)
    return x
