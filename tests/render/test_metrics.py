"""Renderer metrics: PSNR, SSIM, Frechet distance, reprojection warping, metric networks by path."""

import numpy as np
import pytest

from mio.core.errors import InputError
from mio.render.camera import Camera
from mio.render.metrics import frechet_distance, psnr, ssim, warp


def _image(seed=0, size=48):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(6 * x), np.cos(5 * y), x * y], -1) * 0.4 + 0.5
    return np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1)


def test_psnr_and_ssim_known_values():
    a = _image()
    assert psnr(a, a) == float("inf") and ssim(a, a) == pytest.approx(1.0)
    b = np.clip(a + 0.1, 0, 1)
    assert psnr(a, np.clip(a + 0.1, -1, 2)) == pytest.approx(20.0, abs=1e-6)  # MSE 0.01
    noisy = np.clip(a + np.random.default_rng(1).normal(0, 0.1, a.shape), 0, 1)
    assert ssim(a, noisy) < ssim(a, b) < 1.0 and ssim(a, noisy) < 0.9
    u8 = (a * 255).round().astype(np.uint8)
    assert psnr(u8, u8) == float("inf") and 0 < psnr(u8, (noisy * 255).astype(np.uint8)) < 30
    with pytest.raises(InputError):
        ssim(a, a[:20])


def test_frechet_distance_of_shifted_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, rng.normal(size=(4000, 3))) < 0.02
    assert frechet_distance(a, a + [2.0, 0, 0]) == pytest.approx(4.0, rel=1e-6)


def test_warp_into_the_same_camera_is_the_identity():
    cam = Camera.look_at([0, 0, 2], [0, 0, 0], 32, 32)
    img = _image(size=32)
    depth = np.full((32, 32), 2.0, np.float32)  # a wall facing the camera
    depth[:, :4] = np.inf  # no surface on the left
    out, mask = warp(img, depth, cam, depth, cam)
    assert mask[:, 4:].all() and not mask[:, :4].any()
    np.testing.assert_allclose(out[mask], img[mask], atol=1e-9)


def test_warp_respects_occlusion():
    cam = Camera.look_at([0, 0, 2], [0, 0, 0], 32, 32)
    near = np.full((32, 32), 1.0, np.float32)  # the source saw something nearer than the target's surface
    far = np.full((32, 32), 2.0, np.float32)
    _, mask = warp(_image(size=32), near, cam, far, cam)
    assert not mask.any()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_metric_networks_load_from_torchscript_files(tmp_path):
    torch = pytest.importorskip("torch")
    from mio.render.metrics import fid, lpips

    class L1(torch.nn.Module):  # stands in for a traced LPIPS network
        def forward(self, x, y):
            return (x - y).abs().mean(dim=(1, 2, 3))

    class Feats(torch.nn.Module):  # stands in for an Inception feature network
        def forward(self, x):
            return x.mean(dim=(2, 3))

    torch.jit.script(L1()).save(str(tmp_path / "lpips.pt"))
    torch.jit.script(Feats()).save(str(tmp_path / "feats.pt"))
    imgs = [_image(s, 16) for s in range(4)]
    assert lpips(imgs, imgs, tmp_path / "lpips.pt") == 0.0
    assert lpips(imgs, [1 - i for i in imgs], tmp_path / "lpips.pt") > 0.1
    assert fid(imgs, imgs, tmp_path / "feats.pt") == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(InputError, match="does not exist"):
        lpips(imgs, imgs, tmp_path / "missing.pt")
