"""AvatarDiT (§5.2): Eq. 17/18 modules' shapes and zero-init identity, one training step, save/load."""

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")
if not hasattr(diffusers, "WanAnimateTransformer3DModel"):
    pytest.skip("diffusers has no WanAnimateTransformer3DModel (needs >= 0.36)", allow_module_level=True)

from mio.render.avatardit.config import AvatarDiTConfig  # noqa: E402
from mio.render.avatardit.data import PixelLatents, random_batch  # noqa: E402
from mio.render.avatardit.model import (  # noqa: E402
    AvatarDiT,
    CameraModulation,
    FaceAdapter,
    camera_vector,
    sample,
)
from mio.render.avatardit.train import trainable_parameters, training_step  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and CI machines are shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def cfg():
    return AvatarDiTConfig.tiny()


@pytest.fixture()
def model(cfg):
    torch.manual_seed(0)
    return AvatarDiT(cfg)


def _cond(b, cfg):
    text = torch.zeros(b["x0"].shape[0], 1, cfg.text_dim)
    return dict(references=b["references"], control=b["control"], text=text, face_params=b["face_params"],
                face_pixels=b["face_pixels"], camera=b["camera"])


def test_face_adapter_maps_parameters_to_512d_and_starts_at_zero(cfg):
    a = FaceAdapter(cfg)
    phi = torch.randn(3, 9, cfg.face_dim)
    z = a(phi)
    assert z.shape == (3, 9, 512) and torch.all(z == 0)  # Eq. 17: z = E_face(I) + A(phi), A = 0 at init
    assert len(a.blocks.layers) == 4
    torch.nn.init.normal_(a.proj_out.weight)
    z2 = a(phi)
    assert z2.abs().sum() > 0 and not torch.allclose(z2[:, 0], z2[:, 1])  # depends on the frame's parameters


def test_camera_modulation_gives_three_channel_vectors_per_block_zero_at_init(cfg):
    m = CameraModulation(cfg)
    e = m(torch.randn(2, 16))
    assert len(e) == cfg.num_layers
    assert all(x.shape == (2, 3, cfg.dim) and torch.all(x == 0) for x in e)  # e0, e1, e2 of Eq. 18


def test_fresh_avatardit_equals_its_wan_animate_backbone(model, cfg):
    """Zero-initialised control modules: AvatarDiT computes exactly what WanAnimate computes."""
    g = torch.Generator().manual_seed(1)
    b = random_batch(cfg, batch=2, latent_frames=2, size=8, references=1, generator=g)
    t = torch.tensor([700.0, 50.0])
    model.eval()
    with torch.no_grad():
        ours = model(b["x0"], t, **_cond(b, cfg))
        B, C, T, H, W = b["x0"].shape
        x = torch.cat([
            torch.cat([b["references"], b["x0"]], 2),
            torch.cat([torch.ones(B, 4, 1, H, W), torch.zeros(B, 4, T, H, W)], 2),
            torch.cat([b["references"], torch.zeros_like(b["x0"])], 2),
        ], 1)
        wan = model.backbone(x, t, torch.zeros(B, 1, cfg.text_dim), None, pose_hidden_states=b["control"],
                             face_pixel_values=b["face_pixels"]).sample
    assert ours.shape == b["x0"].shape
    torch.testing.assert_close(ours, wan[:, :, 1:])


@pytest.mark.slow  # training
def test_camera_and_face_parameters_change_the_output_once_trained(model, cfg):
    b = random_batch(cfg, batch=1, latent_frames=2, references=3, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([500.0])
    for head in model.camera.heads:
        torch.nn.init.normal_(head.weight, std=0.1)
    torch.nn.init.normal_(model.adapter.proj_out.weight, std=0.1)
    model.eval()
    with torch.no_grad():
        base = model(b["x0"], t, **_cond(b, cfg))
        other_cam = model(b["x0"], t, **{**_cond(b, cfg), "camera": b["camera"] + 1})
        other_face = model(b["x0"], t, **{**_cond(b, cfg), "face_params": b["face_params"] * 0})
        no_pixels = model(b["x0"], t, **{**_cond(b, cfg), "face_pixels": None})
    assert not torch.allclose(base, other_cam) and not torch.allclose(base, other_face)
    assert no_pixels.shape == base.shape  # parameters alone drive the face


def test_references_one_to_five_and_shape_errors(model, cfg):
    for r in (1, 5):
        b = random_batch(cfg, batch=1, latent_frames=2, references=r)
        with torch.no_grad():
            assert model(b["x0"], torch.tensor([10.0]), **_cond(b, cfg)).shape == b["x0"].shape
    b = random_batch(cfg, batch=1, latent_frames=2, references=6)
    with pytest.raises(ValueError, match="1-5 reference"):
        model(b["x0"], torch.tensor([10.0]), **_cond(b, cfg))
    b = random_batch(cfg, batch=1, latent_frames=2, references=1)
    with pytest.raises(ValueError, match="face frames"):
        model(b["x0"], torch.tensor([10.0]), **{**_cond(b, cfg), "face_params": b["face_params"][:, :3],
                                                "face_pixels": None})


@pytest.mark.parametrize("stage", ["face", "multiview", "joint"])
def test_stages_train_their_modules_only(cfg, stage):
    frozen_cfg = AvatarDiTConfig.from_dict({**cfg.to_dict(), "train_backbone": False})
    m = AvatarDiT(frozen_cfg)
    names = {n for n, p in m.named_parameters() if p in set(trainable_parameters(m, stage))}
    assert names
    has = lambda prefix: any(n.startswith(prefix) for n in names)  # noqa: E731
    assert has("adapter.") == (stage != "multiview")
    assert has("camera.") == (stage != "face")
    assert not has("backbone.blocks.0.attn1")  # the pretrained DiT stays frozen


@pytest.mark.slow  # training
def test_one_training_step_lowers_the_loss_on_its_batch(model, cfg):
    params = trainable_parameters(model, "joint")
    opt = torch.optim.AdamW(params, lr=1e-3)
    b = random_batch(cfg, batch=2, latent_frames=2, generator=torch.Generator().manual_seed(3))

    def loss():
        return training_step(model, cfg, b, "joint", torch.Generator().manual_seed(4))

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss()
    assert torch.isfinite(before) and after.item() < before.item()


def test_save_and_load_round_trip(model, cfg, tmp_path):
    model.save_pretrained(tmp_path / "ck", extra={"stage": "face"})
    loaded = AvatarDiT.from_pretrained(tmp_path / "ck")
    assert loaded.pretrained_config["stage"] == "face" and loaded.cfg == cfg
    b = random_batch(cfg, batch=1, latent_frames=2)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(b["x0"], torch.tensor([3.0]), **_cond(b, cfg)),
                                   model(b["x0"], torch.tensor([3.0]), **_cond(b, cfg)))


def test_from_wan_wraps_a_saved_wan_animate_folder(model, cfg, tmp_path):
    model.backbone.save_pretrained(tmp_path / "wan" / "transformer")
    wrapped = AvatarDiT.from_wan(tmp_path / "wan", face_dim=cfg.face_dim)
    assert wrapped.cfg.num_layers == cfg.num_layers and wrapped.cfg.dim == cfg.dim
    for (n, p), (_, q) in zip(model.backbone.state_dict().items(), wrapped.backbone.state_dict().items(),
                              strict=True):
        assert torch.equal(p, q), n


def test_sampler_and_pixel_latents_shapes(model, cfg):
    b = random_batch(cfg, batch=1, latent_frames=2)
    out = sample(model.eval(), tuple(b["x0"].shape), steps=2, **_cond(b, cfg))
    assert out.shape == b["x0"].shape and torch.isfinite(out).all()
    lat = PixelLatents()
    frames = torch.rand(1, 3, 5, 64, 64) * 2 - 1
    z = lat.encode(frames)
    assert z.shape == (1, 12, 2, 8, 8) and lat.decode(z).shape == frames.shape
    flat = torch.full((1, 3, 5, 64, 64), 0.25)
    torch.testing.assert_close(lat.decode(lat.encode(flat)), flat)  # constant frames survive the round trip


def test_camera_vector_layout():
    from mio.render.camera import Camera

    cam = Camera.look_at([0, 1.5, 2], [0, 1.5, 0], 64, 32)
    v = camera_vector(cam)
    assert v.shape == (16,) and v.dtype == np.float32
    np.testing.assert_allclose(v[2:4], [0.5, 0.5])
    np.testing.assert_allclose(v[4:13].reshape(3, 3), cam.R, atol=1e-6)


def test_sampler_and_loss_agree_on_the_flow_convention():
    """An oracle velocity (x_s - x0) / s has zero loss, and Euler sampling with it lands on x0."""
    from mio.render.avatardit.model import flow_matching_loss

    class Oracle(torch.nn.Module):
        def __init__(self, x0):
            super().__init__()
            self.x0, self.cfg = x0, AvatarDiTConfig.tiny()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, t, **cond):
            return (x - self.x0) / (t / 1000).clamp_min(1e-4).view(-1, 1, 1, 1, 1)

    x0 = torch.randn(2, 3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    oracle = Oracle(x0)
    assert flow_matching_loss(oracle, x0, torch.Generator().manual_seed(1), shift=3.0) < 1e-10
    torch.testing.assert_close(sample(oracle, tuple(x0.shape), steps=7, shift=3.0), x0, atol=1e-5, rtol=0)
