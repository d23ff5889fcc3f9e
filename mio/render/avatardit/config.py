"""AvatarDiT configuration: the Wan-Animate backbone's sizes plus the paper's control modules (§5.2).

`paper()` is WanAnimate-14B (the backbone the paper fine-tunes, 40 blocks of width 5120, umT5 text
and CLIP image features) with the 112-D FLAME adapter; `tiny()` is a few-block random model that
trains for a step in a second on a CPU (tests, smoke runs). Real Wan-Animate weights load from a
local diffusers folder with `AvatarDiT.from_wan(path, config)` (mio.render.avatardit.model).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mio.core.config import Settings

# The motion encoder's conv widths per input resolution (WanAnimate uses 512 -> 4 with these).
WAN_MOTION_CHANNELS = {"4": 512, "8": 512, "16": 512, "32": 512, "64": 256, "128": 128, "256": 64, "512": 32}
CAMERA_DIM = 16  # fx/W, fy/H, cx/W, cy/H | world-to-camera R (9) | t (3)  (mio.render.avatardit.model)
STAGES = ("face", "multiview", "joint")  # §5.2's three training stages


@dataclass(frozen=True)
class AvatarDiTConfig(Settings):
    # --- Wan-Animate backbone (diffusers WanAnimateTransformer3DModel) ---
    num_layers: int = 40  # DiT blocks
    num_heads: int = 40  # attention heads
    head_dim: int = 128  # channels per head; block width = num_heads * head_dim
    ffn_dim: int = 13824  # feed-forward hidden width
    latent_channels: int = 16  # video latent channels (Wan VAE: 16)
    patch_size: tuple[int, int, int] = (1, 2, 2)  # (t, h, w) latent patch
    text_dim: int = 4096  # text encoder width (umT5-XXL)
    image_dim: int | None = 1280  # CLIP image feature width of the reference image; None = no image branch
    freq_dim: int = 256  # sinusoidal timestep features
    rope_max_seq_len: int = 1024
    motion_encoder_size: int = 512  # face crop resolution the motion encoder E_face takes
    motion_encoder_channels: dict[str, int] = field(default_factory=lambda: dict(WAN_MOTION_CHANNELS))
    motion_style_dim: int = 512  # motion encoder appearance width
    motion_dim: int = 20  # motion encoder's latent-motion basis size
    motion_encoder_dim: int = 512  # the face-motion embedding z of Eq. 17 (512-D)
    face_encoder_hidden_dim: int = 1024  # temporal conv encoder of the face-motion embedding
    face_encoder_heads: int = 4
    inject_face_latents_blocks: int = 5  # a face cross-attention after every 5th block
    # --- FLAME/ARKit adapter A(phi) of Eq. 17 ---
    face_dim: int = 112  # flame112 (paper); 61 for Mio's arkit52 face frames
    adapter_layers: int = 4  # "a 4-layer Transformer adapter"
    adapter_width: int = 512
    adapter_heads: int = 8
    # --- camera modulation of Eq. 18 ---
    camera_hidden: int = 256  # width of the shared camera MLP before the per-block e0, e1, e2 heads
    max_references: int = 5  # 1-5 multi-view reference latents (§5.2.2)
    # --- training ---
    train_backbone: bool = False  # True only without pretrained Wan weights (tiny, from scratch)
    shift: float = 5.0  # flow-matching timestep shift (Wan's sampling default for 480p/720p)

    @property
    def dim(self) -> int:
        return self.num_heads * self.head_dim

    def backbone_kwargs(self) -> dict:
        """Keyword arguments of diffusers' WanAnimateTransformer3DModel for this size."""
        return dict(
            patch_size=tuple(self.patch_size),
            num_attention_heads=self.num_heads,
            attention_head_dim=self.head_dim,
            latent_channels=self.latent_channels,
            in_channels=2 * self.latent_channels + 4,
            out_channels=self.latent_channels,
            text_dim=self.text_dim,
            freq_dim=self.freq_dim,
            ffn_dim=self.ffn_dim,
            num_layers=self.num_layers,
            image_dim=self.image_dim,
            rope_max_seq_len=self.rope_max_seq_len,
            motion_encoder_channel_sizes=dict(self.motion_encoder_channels),
            motion_encoder_size=self.motion_encoder_size,
            motion_style_dim=self.motion_style_dim,
            motion_dim=self.motion_dim,
            motion_encoder_dim=self.motion_encoder_dim,
            face_encoder_hidden_dim=self.face_encoder_hidden_dim,
            face_encoder_num_heads=self.face_encoder_heads,
            inject_face_latents_blocks=self.inject_face_latents_blocks,
        )

    @classmethod
    def tiny(cls, face_dim: int = 61) -> AvatarDiTConfig:
        """~1.6M parameters: 2 blocks of width 64, 32x32 face crops, no text/image encoders."""
        return cls(
            num_layers=2,
            num_heads=2,
            head_dim=32,
            ffn_dim=128,
            latent_channels=12,
            text_dim=32,
            image_dim=None,
            freq_dim=64,
            rope_max_seq_len=64,
            motion_encoder_size=32,
            motion_encoder_channels={"4": 32, "8": 32, "16": 32, "32": 16},
            motion_style_dim=64,
            motion_dim=8,
            motion_encoder_dim=512,
            face_encoder_hidden_dim=64,
            face_encoder_heads=2,
            inject_face_latents_blocks=1,
            face_dim=face_dim,
            adapter_layers=4,
            adapter_width=64,
            adapter_heads=4,
            camera_hidden=64,
            train_backbone=True,
            shift=1.0,
        )

    @classmethod
    def paper(cls, face_dim: int = 112) -> AvatarDiTConfig:
        """WanAnimate-14B with the 112-D FLAME adapter (§5.2.1)."""
        return cls(face_dim=face_dim)


PRESETS = {"tiny": AvatarDiTConfig.tiny, "paper": AvatarDiTConfig.paper}
